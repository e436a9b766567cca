/**
 * Layout mode through the host and the CLI: a layout model in the library, generate with a label map
 * over the contract, the map stored beside the result and handed back for reuse, and
 * `studio generate --label-map` drawing the same picture. Real host, real engine process,
 * test/fixtures/models/tiny-sd1-layout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Host } from '../../../electron/host/host.js';
import { readPngMetadata } from '../../../electron/history/png.js';
import { FIXTURES, REPO_ROOT, maxAbsDiff, readRgb } from '../../support/engine-fixtures.js';
import { FIXTURE_MODELS, FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const LAYOUT = join(FIXTURE_MODELS, 'tiny-sd1-layout');
const MAP_FILE = join(FIXTURES, 'parity', 'layout-label-map.png');
const mapBytes = readFileSync(MAP_FILE);
const request = { mode: 'layout', prompt: 'a red apple', seed: 21, steps: 3, width: FIXTURE_SIZE, height: FIXTURE_SIZE } as const;

const data = tempDir('layout');
let host: Host;

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS, bundledModelDirs: [] });
});

after(async () => {
  await host?.close();
  data.remove();
});

test('a layout model enters the library as kind layout, and models.info gives its labels', async () => {
  const model = ok('models.import', await host.invoke('models.import', { path: LAYOUT }));
  assert.deepEqual([model.id, model.kind, model.supports, model.exporter], ['tiny-sd1-layout', 'layout', ['layout'], 'optimum']);
  const { info } = ok('models.info', await host.invoke('models.info', { modelId: model.id }));
  assert.deepEqual(info.layout?.labels.map((l) => [l.id, l.name]), [[0, 'background'], [1, 'outline'], [2, 'skin'], [3, 'accent']]);
  assert.deepEqual(info.layout?.labels[2]?.color, [255, 204, 77]);
});

test('generate in layout mode: the label map is stored beside the result, and reusing it draws the same picture', async () => {
  const { jobId, seed } = ok('generate', await host.invoke('generate', { ...request, labelMap: mapBytes.toString('base64') }));
  assert.equal(seed, request.seed);
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal(job.mode, 'layout');
  const item = ok('history.get', await host.invoke('history.get', { id: job.historyId! }));
  assert.equal(item.mode, 'layout');
  assert.equal(item.params.seed, request.seed);
  assert.deepEqual([item.labelMap?.width, item.labelMap?.height], [FIXTURE_SIZE, FIXTURE_SIZE]);
  assert.equal(item.initImage, null);
  const stored = ok('history.image', await host.invoke('history.image', { hash: item.labelMap!.hash }));
  assert.deepEqual([stored.mime, stored.data], ['image/png', mapBytes.toString('base64')], 'the map comes back byte for byte');
  const meta = readPngMetadata(readFileSync(host.history.imagePath(item.output!.hash)));
  assert.equal((meta.request as { labelMapHash?: string }).labelMapHash, item.labelMap!.hash);

  // Reuse: the recorded parameters and the stored map give the same output, byte for byte.
  const p = item.params;
  const again = ok('generate', await host.invoke('generate', {
    mode: p.mode, prompt: p.prompt, negativePrompt: p.negativePrompt, seed: p.seed!, steps: p.steps!, cfg: p.cfg!, sampler: p.sampler!,
    width: p.width, height: p.height, labelMap: stored.data, parentId: item.id,
  }));
  const second = await jobFinished(host, again.jobId);
  assert.equal(second.status, 'succeeded', JSON.stringify(second.error));
  const reused = ok('history.get', await host.invoke('history.get', { id: second.historyId! }));
  assert.equal(reused.labelMap?.hash, item.labelMap!.hash, 'the same map is stored once');
  assert.equal(maxAbsDiff(await readRgb(host.history.imagePath(reused.output!.hash)), await readRgb(host.history.imagePath(item.output!.hash))), 0);
  assert.equal(ok('history.counts', await host.invoke('history.counts', {})).byMode.layout, 2);
});

test('layout requests that cannot work are refused before or by the engine, with clear errors', async () => {
  const small = (await sharp({ create: { width: 32, height: 32, channels: 3, background: '#ffffff' } }).png().toBuffer()).toString('base64');
  const wrongSize = await host.invoke('generate', { ...request, labelMap: small });
  assert.equal(wrongSize.ok, false);
  if (!wrongSize.ok) assert.match(wrongSize.error.message, /labelMap: the label map is 32×32; it must be the picture's size 64×64/);
  const missing = await host.invoke('generate', { ...request });
  assert.equal(missing.ok, false);
  if (!missing.ok) assert.match(missing.error.message, /labelMap: layout needs a label map/);

  // A txt2img request to the layout model is refused at once, against the model's stored info (no job id).
  const refused = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 1 });
  assert.equal(refused.ok, false);
  if (!refused.ok) {
    assert.equal(refused.error.code, 'E_INVALID_REQUEST');
    assert.match(refused.error.message, /tiny-sd1-layout cannot do txt2img \(it supports layout\)/);
  }
  assert.equal(host.queue.snapshot().queued.length, 0);
});

test('studio generate --label-map draws the same picture as the host', async () => {
  const out = join(data.dir, 'cli.png');
  const args = ['generate', '--model', LAYOUT, '--prompt', request.prompt, '--seed', String(request.seed), '--steps', String(request.steps)];
  args.push('--label-map', MAP_FILE, '--mode', 'layout', '--providers', 'cpu', '--threads', '1', '--out', out);
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [join(REPO_ROOT, 'bin', 'studio.mjs'), ...args], { cwd: REPO_ROOT });
  const printed = JSON.parse(stdout) as { mode: string; width: number; height: number };
  assert.deepEqual([printed.mode, printed.width, printed.height], ['layout', FIXTURE_SIZE, FIXTURE_SIZE], 'the size comes from the map');
  const [first] = ok('history.page', await host.invoke('history.page', { filter: { mode: 'layout' } })).items.slice(-1);
  assert.equal(maxAbsDiff(await readRgb(out), await readRgb(host.history.imagePath(first!.output!.hash))), 0);

  const refused = await run(process.execPath, [join(REPO_ROOT, 'bin', 'studio.mjs'), 'generate', '--model', LAYOUT, '--prompt', 'x', '--mode', 'layout', '--out', out], {
    cwd: REPO_ROOT,
  }).then(
    () => null,
    (err: { stderr: string }) => err.stderr,
  );
  assert.match(refused ?? '', /--mode layout needs --label-map PNG/);
});
