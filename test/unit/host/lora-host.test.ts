/**
 * LoRAs through the host's contract: loras.list from the library's records (made at import), a LoRA of
 * another family or an unknown name refused before the job is queued, a job with a LoRA recorded with its
 * hash, and loras.restore (Reuse) renaming a tag by hash and naming what is missing. Real host, real
 * engine process, tiny-sd1-named with the tiny LoRA fixtures.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPngMetadata } from '../../../electron/history/png.js';
import { Host } from '../../../electron/host/host.js';
import { importLora, loraFolder } from '../../../electron/model-library/loras.js';
import { FIXTURE_MODELS, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const LORAS = join(FIXTURE_MODELS, '..', 'loras');
const data = tempDir('lora-host');
const dataDir = join(data.dir, 'data');
let host: Host;

before(async () => {
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  ok('models.import', await host.invoke('models.import', { path: join(FIXTURE_MODELS, 'tiny-sd1-named') }));
  for (const name of ['tiny-kohya', 'tiny-sdxl-kohya']) await importLora(loraFolder(dataDir), join(LORAS, `${name}.safetensors`));
});

after(async () => {
  await host?.close();
  data.remove();
});

test('loras.list: the records made at import (family, hash, trigger words), no paths', async () => {
  assert.ok(existsSync(join(loraFolder(dataDir), '.loras.json')), 'import writes the record');
  const { loras, broken } = ok('loras.list', await host.invoke('loras.list', {}));
  assert.deepEqual(broken, []);
  assert.deepEqual(loras.map((l) => [l.name, l.family]), [['tiny-kohya', 'sd1'], ['tiny-sdxl-kohya', 'sdxl']]);
  assert.ok(loras.every((l) => /^[0-9a-f]{12}$/.test(l.hash) && l.modules > 0 && !('path' in l)));
  assert.ok(loras.every((l) => l.problem === null), 'no model named: no problem');
  const forModel = ok('loras.list', await host.invoke('loras.list', { modelId: 'tiny-sd1-named' })).loras;
  assert.deepEqual(forModel.map((l) => l.problem === null), [true, false]);
  assert.match(forModel[1]!.problem!, /<lora:tiny-sdxl-kohya> is a SDXL LoRA .*; tiny-sd1-named is not SDXL/);
  // The record is what list answers: a file changed behind the library's back is read again.
  const records = JSON.parse(readFileSync(join(loraFolder(dataDir), '.loras.json'), 'utf8')) as Record<string, { family: string }>;
  assert.equal(records['tiny-sdxl-kohya']!.family, 'sdxl');
});

test('an SDXL LoRA on an SD 1 model, or an unknown name, is refused before the job is queued', async () => {
  const before = host.queue.snapshot().revision;
  const wrong = await host.invoke('generate', { mode: 'txt2img', prompt: 'a fox <lora:tiny-sdxl-kohya:1>', steps: 2, width: 64, height: 64 });
  assert.equal(wrong.ok, false);
  if (!wrong.ok) {
    assert.equal(wrong.error.code, 'E_LORA_FILE');
    assert.match(wrong.error.message, /<lora:tiny-sdxl-kohya> is a SDXL LoRA \(.+\); tiny-sd1-named is not SDXL: it can't be applied/);
  }
  const unknown = await host.invoke('generate', { mode: 'txt2img', prompt: 'a fox <lora:tiny-kohy:1>', steps: 2, width: 64, height: 64 });
  assert.equal(unknown.ok, false);
  if (!unknown.ok) {
    assert.equal(unknown.error.code, 'E_NOT_FOUND');
    assert.match(unknown.error.message, /no LoRA named "tiny-kohy" in the library; did you mean "tiny-kohya"/);
  }
  assert.equal(host.queue.snapshot().revision, before, 'nothing was queued');
});

test('a job with a LoRA keeps the tag and records its hash; loras.restore renames by hash and names the missing', async () => {
  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'a fox <lora:tiny-kohya:0.8>', steps: 2, width: 64, height: 64 }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const item = ok('history.get', await host.invoke('history.get', { id: job.historyId! }));
  assert.equal(item.params.prompt, 'a fox <lora:tiny-kohya:0.8>');
  const hash = item.params.loras![0]!.hash;
  assert.deepEqual(item.params.loras, [{ name: 'tiny-kohya', hash }]);

  // The same file under another name in the library (a rename since): the tag follows the hash.
  copyFileSync(join(loraFolder(dataDir), 'tiny-kohya.safetensors'), join(loraFolder(dataDir), 'my-style.safetensors'));
  const restored = ok(
    'loras.restore',
    await host.invoke('loras.restore', { prompt: 'a fox <lora:old-style:0.8> <lora:gone:1>', loras: [{ name: 'old-style', hash }, { name: 'gone', hash: 'ffffffffffff' }] }),
  );
  assert.match(restored.prompt, /^a fox <lora:(tiny-kohya|my-style):0\.8> <lora:gone:1>$/);
  assert.deepEqual(restored.missing, ['gone']);
  // A name that is there with its hash stays as it is.
  assert.deepEqual(ok('loras.restore', await host.invoke('loras.restore', { prompt: item.params.prompt, loras: item.params.loras! })), { prompt: item.params.prompt, missing: [] });
});

test('the LCM sampler chosen by hand on a plain SD folder with an LCM-LoRA under its shipped name: run, stored, in the infotext', async () => {
  // latent-consistency ships pytorch_lora_weights.safetensors: not known as an LCM-LoRA by its name.
  const shipped = join(data.dir, 'pytorch_lora_weights.safetensors');
  copyFileSync(join(LORAS, 'lcm-lora-tiny.safetensors'), shipped);
  await importLora(loraFolder(dataDir), shipped);
  const prompt = 'a fox <lora:pytorch_lora_weights:1>';
  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt, sampler: 'lcm', steps: 4, cfg: 1.5, width: 64, height: 64, seed: 3 }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const item = ok('history.get', await host.invoke('history.get', { id: job.historyId! }));
  assert.deepEqual([item.params.sampler, item.params.steps, item.params.cfg], ['lcm', 4, 1.5]);
  const infotext = readPngMetadata(readFileSync(host.history.imagePath(item.output!.hash))).parameters!;
  assert.match(infotext, /Steps: 4, Sampler: LCM, CFG scale: 1\.5,/);
  assert.match(infotext, new RegExp(`Lora hashes: "pytorch_lora_weights: ${item.params.loras![0]!.hash}"`));
});
