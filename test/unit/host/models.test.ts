/**
 * The model channels through Host.invoke, with the model library in the data folder and the real engine
 * process as its validator: import (good, broken, duplicate, copy), download from a local HTTP server
 * serving tiny-sd1 (progress events, cancel, resumed at the next start), remove with history kept,
 * the default model across a restart, and an older data folder's models moved into the library.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Events } from '../../../electron/shared/contract.js';
import { openDatabase } from '../../../electron/history/database.js';
import { Host } from '../../../electron/host/host.js';
import { HOST_DATABASE_FILE, HOST_MIGRATIONS } from '../../../electron/host/host-database.js';
import { copyFixture, serveModel } from '../model-library/support.js';
import { FIXTURE_SIZE, jobFinished, nextEvent, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1, TINY_SD1_INPAINT } from './support/host-fixtures.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function scratch(prefix: string): string {
  const t = tempDir(prefix);
  cleanups.push(t.remove);
  return t.dir;
}

async function openHost(dataDir: string): Promise<Host> {
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  cleanups.push(() => host.close());
  return host;
}

function failure(result: Awaited<ReturnType<Host['invoke']>>): { code: string; message: string } {
  assert.equal(result.ok, false, 'expected an error');
  if (result.ok) throw new Error('unreachable');
  return result.error;
}

test('import: a good folder (in place or copied), a broken one with its exact problem, and the same model twice', async () => {
  const dir = scratch('models-import');
  const host = await openHost(join(dir, 'data'));

  const broken = copyFixture(TINY_SD1, dir, 'broken');
  writeFileSync(join(broken, 'unet', 'model.onnx'), 'not an onnx file');
  const brokenError = failure(await host.invoke('models.import', { path: broken }));
  assert.equal(brokenError.code, 'E_MODEL_FOLDER');
  assert.match(brokenError.message, /unet/, 'the message names the bad part');
  const missing = failure(await host.invoke('models.import', { path: join(dir, 'nowhere') }));
  assert.equal(missing.code, 'E_MODEL_FOLDER');
  assert.match(missing.message, /not found/);

  const referenced = ok('models.import', await host.invoke('models.import', { path: TINY_SD1, name: 'Tiny' }));
  assert.deepEqual([referenced.name, referenced.origin, referenced.dir, referenced.kind, referenced.available], ['Tiny', 'referenced', TINY_SD1, 'txt2img', true]);
  assert.match(referenced.contentHash, /^[0-9a-f]{64}$/);

  const elsewhere = copyFixture(TINY_SD1, dir, 'same-model');
  const duplicate = failure(await host.invoke('models.import', { path: elsewhere, copy: true }));
  assert.equal(duplicate.code, 'E_DUPLICATE');
  assert.match(duplicate.message, /already in the library as "Tiny"/);

  const copied = ok('models.import', await host.invoke('models.import', { path: TINY_SD1_INPAINT, copy: true }));
  assert.equal(copied.origin, 'copied');
  assert.equal(copied.kind, 'inpaint');
  assert.ok(copied.dir.startsWith(join(dir, 'data', 'models')), copied.dir);
  assert.ok(existsSync(join(copied.dir, 'model_index.json')));

  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual(list.models.map((m) => m.id), [referenced.id, copied.id]);
  assert.equal(list.defaultId, referenced.id, 'the oldest model is the default until one is set');
});

test('download through the contract from a local server: progress events to done, then the model is usable; cancel cleans up', async () => {
  const dir = scratch('models-download');
  const dataDir = join(dir, 'data');
  const host = await openHost(dataDir);
  const server = await serveModel(TINY_SD1);
  cleanups.push(() => server.close());

  const events: Array<Events['models.downloadProgress']> = [];
  host.subscribe((e) => {
    if (e.event === 'models.downloadProgress') events.push(e.payload);
  });
  const done = nextEvent(host, 'models.downloadProgress', (p) => p.phase === 'done' || p.phase === 'failed');
  const { downloadId } = ok('models.download', await host.invoke('models.download', { name: 'tiny download', files: server.manifest() }));
  assert.match(downloadId, /^[0-9a-f]{64}$/);
  const final = await done;
  assert.equal(final.phase, 'done', JSON.stringify(final.error));
  const total = [...server.files.values()].reduce((sum, b) => sum + b.length, 0);
  assert.deepEqual([final.receivedBytes, final.totalBytes, final.percent], [total, total, 100]);
  assert.ok(events.some((e) => e.phase === 'downloading'), `phases: ${events.map((e) => e.phase).join(',')}`);
  assert.ok(events.every((e) => e.downloadId === downloadId));

  const list = ok('models.list', await host.invoke('models.list', {}));
  const model = list.models.find((m) => m.id === final.modelId);
  assert.ok(model, 'the downloaded model is listed');
  assert.equal(model.origin, 'downloaded');
  assert.deepEqual(list.downloads, [], 'nothing left running or pending');
  assert.deepEqual(readdirSync(join(dataDir, 'models', '.downloads')), []);

  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'a fox', steps: 1, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 3, modelId: model.id }));
  assert.equal((await jobFinished(host, jobId)).status, 'succeeded');

  // Cancel: a server that stalls midway keeps the download running until it is cancelled.
  const stalling = await serveModel(TINY_SD1_INPAINT, { stall: { path: 'unet/model.onnx', afterBytes: 1000 } });
  cleanups.push(() => stalling.close());
  const cancelledEvent = nextEvent(host, 'models.downloadProgress', (p) => p.phase === 'cancelled' || p.phase === 'failed' || p.phase === 'done');
  const second = ok('models.download', await host.invoke('models.download', { name: 'stalled', files: stalling.manifest() }));
  await stalling.stalled;
  const running = ok('models.list', await host.invoke('models.list', {})).downloads;
  assert.deepEqual(running.map((d) => [d.downloadId, d.name, d.running]), [[second.downloadId, 'stalled', true]]);
  assert.deepEqual(ok('models.cancelDownload', await host.invoke('models.cancelDownload', { downloadId: second.downloadId })), { downloadId: second.downloadId, cancelled: true });
  assert.equal((await cancelledEvent).phase, 'cancelled');
  const after = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual(after.downloads, []);
  assert.equal(after.models.length, 1);
  assert.deepEqual(readdirSync(join(dataDir, 'models', '.downloads')), [], 'the partial files are gone');
  assert.equal(failure(await host.invoke('models.cancelDownload', { downloadId: second.downloadId })).code, 'E_NOT_FOUND');
  const badUrl = failure(await host.invoke('models.download', { name: 'x', urls: ['file:///etc/passwd'] }));
  assert.equal(badUrl.code, 'E_INVALID_REQUEST');
});

test('a corrupt download ends with a failed event naming the checksum problem, and leaves nothing behind', async () => {
  const dir = scratch('models-corrupt');
  const dataDir = join(dir, 'data');
  const host = await openHost(dataDir);
  const server = await serveModel(TINY_SD1, { corrupt: ['text_encoder/model.onnx'] });
  cleanups.push(() => server.close());
  const finished = nextEvent(host, 'models.downloadProgress', (p) => p.phase === 'done' || p.phase === 'failed');
  const { downloadId } = ok('models.download', await host.invoke('models.download', { name: 'corrupt', files: server.manifest() }));
  const final = await finished;
  assert.deepEqual([final.downloadId, final.phase, final.error?.code], [downloadId, 'failed', 'E_CHECKSUM']);
  assert.match(final.error?.message ?? '', /text_encoder\/model\.onnx/);
  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual([list.models, list.downloads], [[], []]);
  assert.deepEqual(readdirSync(join(dataDir, 'models', '.downloads')), []);
});

test('a download the host closed on is resumed at the next start and completes', async () => {
  const dir = scratch('models-resume');
  const dataDir = join(dir, 'data');
  const stallAfter = 4096;
  const server = await serveModel(TINY_SD1, { stall: { path: 'unet/model.onnx', afterBytes: stallAfter } });
  cleanups.push(() => server.close());
  const first = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  cleanups.push(() => first.close());
  const { downloadId } = ok('models.download', await first.invoke('models.download', { name: 'resumed', files: server.manifest() }));
  await server.stalled;
  // The bytes sent before the stall reach the disk before the host stops (so the resume point is known).
  const part = join(dataDir, 'models', '.downloads', downloadId, 'unet', 'model.onnx.part');
  while (!existsSync(part) || statSync(part).size < stallAfter) await new Promise((r) => setTimeout(r, 20));
  await first.close();

  delete server.behaviour.stall;
  const logged: string[] = [];
  const host = await withStderrCaptured(logged, () => openHost(dataDir));
  assert.ok(logged.some((l) => /resuming 1 unfinished model download\(s\): "resumed"/.test(l)), logged.join('\n'));
  const running = ok('models.list', await host.invoke('models.list', {})).downloads;
  assert.ok(running.length === 0 || (running[0]?.downloadId === downloadId && running[0].running), JSON.stringify(running));
  await waitForModel(host, 'resumed');
  const gets = server.requests.filter((r) => r.method === 'GET' && r.path === 'unet/model.onnx');
  assert.equal(gets.at(-1)?.range, `bytes=${stallAfter}-`, `the U-Net continued from the bytes on disk: ${JSON.stringify(gets)}`);
  assert.deepEqual(ok('models.list', await host.invoke('models.list', {})).downloads, []);
});

/** Runs `work` with console.error collected into `lines` (the host logs there). */
async function withStderrCaptured<T>(lines: string[], work: () => Promise<T>): Promise<T> {
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  try {
    return await work();
  } finally {
    console.error = original;
  }
}

async function waitForModel(host: Host, name: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = ok('models.list', await host.invoke('models.list', {})).models.find((m) => m.name === name);
    if (found) return found.id;
    if (Date.now() > deadline) throw new Error(`no model "${name}" within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('remove: the model leaves the list, its copy is deleted, and history rows keep its id (shown as missing)', async () => {
  const dir = scratch('models-remove');
  const host = await openHost(join(dir, 'data'));
  const model = ok('models.import', await host.invoke('models.import', { path: TINY_SD1, copy: true }));
  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'kept', steps: 1, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 5 }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));

  assert.deepEqual(ok('models.remove', await host.invoke('models.remove', { modelId: model.id })), { removed: model.id, defaultId: null, failedJobs: [] });
  assert.equal(existsSync(model.dir), false, 'the copied folder is deleted');
  assert.deepEqual(ok('models.list', await host.invoke('models.list', {})).models, []);
  const item = ok('history.get', await host.invoke('history.get', { id: job.historyId! }));
  assert.deepEqual(item.model, { id: model.id, hash: model.contentHash }, 'the history row still names the model');
  assert.equal(failure(await host.invoke('models.info', { modelId: model.id })).code, 'E_NOT_FOUND');
  assert.equal(failure(await host.invoke('models.remove', { modelId: model.id })).code, 'E_NOT_FOUND');
  const generate = failure(await host.invoke('generate', { mode: 'txt2img', prompt: 'x', modelId: model.id }));
  assert.equal(generate.code, 'E_NOT_FOUND');
});

test('a bundled model is listed read-only and cannot be removed', async () => {
  const dir = scratch('models-bundled');
  const bundled = copyFixture(TINY_SD1, dir, 'emoji-ldm');
  const host = await Host.open({ dataDir: join(dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS, bundledModelDir: bundled });
  cleanups.push(() => host.close());
  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual(list.models.map((m) => [m.id, m.origin, m.readOnly, m.isDefault]), [['emoji-ldm', 'bundled', true, true]]);
  assert.equal(failure(await host.invoke('models.remove', { modelId: 'emoji-ldm' })).code, 'E_READ_ONLY');
  assert.ok(existsSync(join(bundled, 'model_index.json')));
});

test('setDefault is kept across a restart, and settings report it; models.select is its alias', async () => {
  const dir = scratch('models-default');
  const dataDir = join(dir, 'data');
  let host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  const a = ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
  const b = ok('models.import', await host.invoke('models.import', { path: TINY_SD1_INPAINT }));
  assert.equal(ok('models.list', await host.invoke('models.list', {})).defaultId, a.id);
  assert.deepEqual(ok('models.setDefault', await host.invoke('models.setDefault', { modelId: b.id })), { defaultId: b.id });
  assert.equal(failure(await host.invoke('models.setDefault', { modelId: 'nope' })).code, 'E_NOT_FOUND');
  await host.close();

  host = await openHost(dataDir);
  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.equal(list.defaultId, b.id);
  assert.deepEqual(list.models.filter((m) => m.isDefault).map((m) => m.id), [b.id]);
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).selectedModelId, b.id);
  assert.equal(ok('tokenize', await host.invoke('tokenize', { text: 'a fox' })).maxTokens, 75);
  assert.deepEqual(ok('models.select', await host.invoke('models.select', { modelId: a.id })), { selectedId: a.id });
  assert.equal(ok('models.list', await host.invoke('models.list', {})).defaultId, a.id);
});

test('a data folder from before the library keeps its models and selection (host.sqlite migration 2)', async () => {
  const dir = scratch('models-legacy');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  // host.sqlite as the previous version left it: schema 1, two registered folders (one gone), a selection.
  const old = openDatabase(join(dataDir, HOST_DATABASE_FILE), HOST_MIGRATIONS.slice(0, 1));
  const insert = old.prepare('INSERT INTO models (id, dir, added_at) VALUES (?, ?, ?)');
  insert.run('tiny-sd1', TINY_SD1, 1);
  insert.run('tiny-sd1-inpaint', TINY_SD1_INPAINT, 2);
  insert.run('gone', join(dir, 'gone'), 3);
  old.prepare('INSERT INTO settings (key, value) VALUES (?, ?)').run('selectedModelId', JSON.stringify('tiny-sd1-inpaint'));
  old.prepare('INSERT INTO model_hashes (dir, fingerprint, hash) VALUES (?, ?, ?)').run(TINY_SD1, '[]', 'f'.repeat(64));
  old.close();

  const logged: string[] = [];
  const host = await withStderrCaptured(logged, () => openHost(dataDir));
  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual(list.models.map((m) => [m.id, m.origin, m.dir]), [
    ['tiny-sd1', 'referenced', TINY_SD1],
    ['tiny-sd1-inpaint', 'referenced', TINY_SD1_INPAINT],
  ]);
  assert.equal(list.defaultId, 'tiny-sd1-inpaint', 'the old selection became the default');
  assert.ok(logged.some((l) => /"gone" .* could not be moved to the model library/.test(l)), logged.join('\n'));
  const db = openDatabase(join(dataDir, HOST_DATABASE_FILE), HOST_MIGRATIONS);
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
    assert.deepEqual(tables.filter((t) => /model/.test(t)), [], 'the old tables are gone');
    assert.equal((db.prepare("SELECT count(*) AS n FROM settings WHERE key = 'selectedModelId'").get() as { n: number }).n, 0);
  } finally {
    db.close();
  }
});
