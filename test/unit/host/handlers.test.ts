/**
 * The handler table through Host.invoke: settings, the model registry, tokenize, history channels and
 * their change events, and the output folder. Real host, real engine process, tiny-sd1 fixture.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Events } from '../../../electron/shared/contract.js';
import { Host } from '../../../electron/host/host.js';
import { defaultMaxJobMemoryMb } from '../../../electron/host/request-limits.js';
import { DEFAULT_MAX_INPUT_PIXELS, DEFAULT_MAX_SIZE_FACTOR, DEFAULT_UNDO_MEMORY_MB } from '../../../electron/shared/resource-limits.js';
import { FIXTURE_MODELS, FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const data = tempDir('handlers');
const dataDir = join(data.dir, 'data');
writeFileSync(join(data.dir, 'a-file'), 'not a folder');
let host: Host;
const historyEvents: Array<Events['history.changed']> = [];
/** The resource limits settings.get reports when none is set. */
const limitDefaults = { maxInputPixels: DEFAULT_MAX_INPUT_PIXELS, maxSizeFactor: DEFAULT_MAX_SIZE_FACTOR, maxJobMemoryMb: defaultMaxJobMemoryMb(), undoMemoryMb: DEFAULT_UNDO_MEMORY_MB };

before(async () => {
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  host.subscribe((e) => {
    if (e.event === 'history.changed') historyEvents.push(e.payload);
  });
});

after(async () => {
  await host?.close();
  data.remove();
});

test('without a model, generate and tokenize say how to get one', async () => {
  const r = await host.invoke('generate', { mode: 'txt2img', prompt: 'x' });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error.code, 'E_NOT_FOUND');
    assert.match(r.error.message, /models\.import/);
  }
  assert.deepEqual(ok('models.list', await host.invoke('models.list', {})), { models: [], defaultId: null, selectedId: null, downloads: [] });
});

test('models.import registers a folder the engine can open, and refuses one it cannot', async () => {
  const notAModel = join(data.dir, 'not-a-model');
  mkdirSync(notAModel);
  writeFileSync(join(notAModel, 'model_index.json'), '{"_class_name": "StableDiffusionPipeline"}');
  const refused = await host.invoke('models.import', { path: notAModel });
  assert.equal(refused.ok, false);
  if (!refused.ok) assert.equal(refused.error.code, 'E_MODEL_FOLDER', refused.error.message);
  const missing = await host.invoke('models.import', { path: join(data.dir, 'nowhere') });
  assert.equal(missing.ok, false);

  const entry = ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
  assert.deepEqual([entry.id, entry.dir, entry.origin, entry.readOnly], ['tiny-sd1', TINY_SD1, 'referenced', false]);
  assert.deepEqual(entry.providers, ['cpu'], 'the engine process opened it on the CPU');
  const again = await host.invoke('models.import', { path: `${TINY_SD1}/` });
  assert.equal(again.ok, false, 'the same folder is not added twice');
  if (!again.ok) assert.equal(again.error.code, 'E_DUPLICATE');
  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual(list.models.map((m) => m.id), ['tiny-sd1']);
  assert.equal(list.defaultId, 'tiny-sd1');
  assert.equal(list.selectedId, 'tiny-sd1');

  const info = ok('models.info', await host.invoke('models.info', { modelId: 'tiny-sd1' }));
  assert.equal(info.info.kind, 'txt2img');
  assert.equal(info.model.contentHash, entry.contentHash);
  const unknown = await host.invoke('models.select', { modelId: 'nope' });
  assert.equal(unknown.ok, false);
  assert.deepEqual(ok('models.select', await host.invoke('models.select', { modelId: 'tiny-sd1' })), { selectedId: 'tiny-sd1' });
});

test('generate checks what it refers to before queueing: the parent and a stored init image', async () => {
  const noParent = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', parentId: 999 });
  assert.equal(noParent.ok, false);
  if (!noParent.ok) assert.equal(noParent.error.code, 'E_NOT_FOUND');
  const noImage = await host.invoke('generate', { mode: 'img2img', prompt: 'x', initImageHash: 'c'.repeat(64) });
  assert.equal(noImage.ok, false);
  if (!noImage.ok) assert.match(noImage.error.message, /initImageHash: no image/);
  assert.equal(ok('queue.list', await host.invoke('queue.list', {})).queued.length, 0);
});

test('tokenize counts a prompt as A1111 does: tokens over 75 × the chunks (long prompts are chunked, not cut)', async () => {
  const short = ok('tokenize', await host.invoke('tokenize', { text: 'a fox' }));
  assert.equal(short.maxTokens, 75);
  assert.equal(short.truncated, false);
  assert.ok(short.count >= 2);
  const long = ok('tokenize', await host.invoke('tokenize', { text: '(fox:1.2) '.repeat(100) }));
  assert.ok(long.count >= 100);
  assert.equal(long.maxTokens % 75, 0);
  assert.ok(long.maxTokens >= 150 && long.count <= long.maxTokens && long.count > long.maxTokens - 75);
  assert.equal(long.truncated, false);
  const tagged = ok('tokenize', await host.invoke('tokenize', { text: 'a fox <lora:style:0.8>' }));
  assert.equal(tagged.count, short.count, 'LoRA tags are not encoded');
});

test('embeddings.list names the library’s embeddings (file stems, sorted); tokenize counts an embedding as its vectors', async () => {
  assert.deepEqual(ok('embeddings.list', await host.invoke('embeddings.list', {})), { names: [] }, 'no folder yet');
  const before = ok('tokenize', await host.invoke('tokenize', { text: 'a fox, shiny-style' })).count;
  const folder = join(dataDir, 'embeddings');
  mkdirSync(join(folder, 'styles'), { recursive: true });
  // 3 vectors (emb_params [3, 32]), in a subfolder: A1111 walks the folder.
  copyFileSync(join(FIXTURE_MODELS, '..', 'parity', 'prompt-embedding.safetensors'), join(folder, 'styles', 'shiny-style.safetensors'));
  copyFileSync(join(FIXTURE_MODELS, '..', 'parity', 'prompt-embedding-a1111.pt'), join(folder, 'EasyNegative.pt'));
  writeFileSync(join(folder, 'notes.txt'), 'not an embedding');
  assert.deepEqual(ok('embeddings.list', await host.invoke('embeddings.list', {})), { names: ['EasyNegative', 'shiny-style'] });
  const after = ok('tokenize', await host.invoke('tokenize', { text: 'a fox, shiny-style' })).count;
  const plainTokens = ok('tokenize', await host.invoke('tokenize', { text: 'a fox,' })).count;
  assert.equal(after, plainTokens + 3, `shiny-style is 3 vectors (was ${before} tokens as text)`);
  // An embedding made for another family (1024 wide: SD 2.x) is skipped on this model, as in A1111: text.
  const asText = ok('tokenize', await host.invoke('tokenize', { text: 'a fox, wide-style' })).count;
  copyFileSync(join(FIXTURE_MODELS, '..', 'parity', 'prompt-embedding-sd2.safetensors'), join(folder, 'wide-style.safetensors'));
  assert.equal(ok('tokenize', await host.invoke('tokenize', { text: 'a fox, wide-style' })).count, asText);
  assert.ok(ok('embeddings.list', await host.invoke('embeddings.list', {})).names.includes('wide-style'), 'still offered');
  rmSync(folder, { recursive: true });
});

test('settings: providers, threads and releasing the text encoders reach the engine; the output folder gets a copy of each result', async () => {
  const outputFolder = join(data.dir, 'outputs');
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).releaseTextEncoders, false, 'off by default');
  const set = ok('settings.set', await host.invoke('settings.set', { providers: ['cpu'], threads: 2, outputFolder, releaseTextEncoders: true }));
  assert.deepEqual(set, { providers: ['cpu'], threads: 2, releaseTextEncoders: true, outputFolder, selectedModelId: 'tiny-sd1', ...limitDefaults });
  assert.deepEqual(ok('settings.get', await host.invoke('settings.get', {})), set);

  const unwritable = await host.invoke('settings.set', { outputFolder: join(data.dir, 'a-file', 'outputs') });
  assert.equal(unwritable.ok, false);
  if (!unwritable.ok) assert.match(unwritable.error.message, /outputFolder: can't write to/);
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).outputFolder, outputFolder, 'a refused folder is not stored');

  // The canvas's undo budget: stored, bounded, null is the default again.
  assert.equal(ok('settings.set', await host.invoke('settings.set', { undoMemoryMb: 64 })).undoMemoryMb, 64);
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).undoMemoryMb, 64);
  const tiny = await host.invoke('settings.set', { undoMemoryMb: 1 });
  assert.equal(tiny.ok, false);
  if (!tiny.ok) assert.match(tiny.error.message, /undoMemoryMb/);
  assert.equal(ok('settings.set', await host.invoke('settings.set', { undoMemoryMb: null })).undoMemoryMb, DEFAULT_UNDO_MEMORY_MB);

  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'a fox', steps: 2, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 11 }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.deepEqual(readdirSync(outputFolder), [`${job.historyId}-11.png`]);
  assert.ok(historyEvents.some((e) => e.kind === 'added' && e.ids.includes(job.historyId!)));
  const model = ok('models.info', await host.invoke('models.info', { modelId: 'tiny-sd1' })).model;
  assert.deepEqual(ok('history.get', await host.invoke('history.get', { id: job.historyId! })).model, { id: 'tiny-sd1', hash: model.contentHash });
  assert.deepEqual(model.providers, ['cpu']);
});

test('history channels pass through to the store and announce their changes', async () => {
  const [first] = ok('history.page', await host.invoke('history.page', {})).items;
  assert.ok(first);
  const id = first.id;
  historyEvents.length = 0;
  assert.deepEqual(ok('history.setFavorite', await host.invoke('history.setFavorite', { ids: [id], favorite: true })), { updated: 1 });
  assert.deepEqual(ok('history.setTags', await host.invoke('history.setTags', { id, tags: ['fox'] })).tags, ['fox']);
  assert.equal(ok('history.page', await host.invoke('history.page', { filter: { favorite: true } })).items.length, 1);
  assert.equal(ok('history.search', await host.invoke('history.search', { text: 'tag:fox' })).items.length, 1);
  assert.deepEqual(ok('history.delete', await host.invoke('history.delete', { ids: [id] })), { deleted: 1 });
  assert.equal(ok('history.counts', await host.invoke('history.counts', {})).trash, 1);
  assert.deepEqual(ok('history.restore', await host.invoke('history.restore', { ids: [id] })), { restored: 1 });
  assert.deepEqual(historyEvents.map((e) => e.kind), ['updated', 'updated', 'deleted', 'restored']);

  const folder = join(data.dir, 'export');
  const report = ok('history.export', await host.invoke('history.export', { ids: [id], folder }));
  assert.equal(report.files.length, 1);
  assert.ok(existsSync(report.manifest));
  const thumb = ok('history.image', await host.invoke('history.image', { hash: first.output!.hash, thumbnail: true }));
  assert.equal(thumb.mime, 'image/webp');
  const gone = await host.invoke('history.image', { hash: 'f'.repeat(64) });
  assert.equal(gone.ok, false);
  if (!gone.ok) assert.equal(gone.error.code, 'E_NOT_FOUND');
});

test('settings, models and the selection survive a restart', async () => {
  await host.close();
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  const settings = ok('settings.get', await host.invoke('settings.get', {}));
  assert.equal(settings.selectedModelId, 'tiny-sd1');
  assert.equal(settings.outputFolder, join(data.dir, 'outputs'));
  assert.deepEqual(ok('models.list', await host.invoke('models.list', {})).models.map((m) => m.id), ['tiny-sd1']);
  const app = ok('app.info', await host.invoke('app.info', {}));
  assert.equal(app.dataDir, dataDir);
  assert.equal(app.name, 'Latent Studio');
});
