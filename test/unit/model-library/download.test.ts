import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ModelLibrary } from '../../../electron/model-library/library.js';
import type { ModelDownloadProgress } from '../../../electron/shared/model-library.js';
import { canMount, mountSmallDisk } from '../../support/history-mounts.js';
import { openLibrary, readFolder, sandbox, serveModel, TINY_SD1, type ModelServer, type Sandbox, type ServerBehaviour } from './support.js';

const WEIGHTS = 'unet/weights.pb';

function withServer(behaviour: ServerBehaviour, fn: (box: Sandbox, server: ModelServer) => Promise<void>): () => Promise<void> {
  return async () => {
    const box = sandbox('model-download-');
    const server = await serveModel(TINY_SD1, behaviour);
    try {
      await fn(box, server);
    } finally {
      await server.close();
      box.cleanup();
    }
  };
}

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => (err as { code?: string }).code === code;
}

/** Nothing left behind: no partial files, no download row. */
async function assertCleanedUp(lib: ModelLibrary, box: Sandbox): Promise<void> {
  assert.deepEqual(readdirSync(join(box.modelsDir, '.downloads')), []);
  assert.deepEqual(await lib.pendingDownloads(), []);
  assert.deepEqual(lib.list(), []);
}

async function waitForSize(file: string, bytes: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (existsSync(file) && statSync(file).size >= bytes) return;
    await delay(10);
  }
  throw new Error(`${file} never reached ${bytes} bytes`);
}

test('a manifest download completes with progress events, verified, installed atomically', withServer({}, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const events: ModelDownloadProgress[] = [];
    const total = [...server.files.values()].reduce((s, b) => s + b.length, 0);
    const { downloadId, done } = lib.startDownload({ name: 'tiny sd1', files: server.manifest() }, (p) => events.push(p));
    const model = await done;
    assert.equal(model.origin, 'downloaded');
    assert.equal(model.dir, join(box.modelsDir, 'tiny sd1'));
    assert.deepEqual(readFolder(model.dir), server.files);
    assert.equal(model.sizeBytes, total);
    assert.equal(model.kind, 'txt2img');

    const phases = [...new Set(events.map((e) => e.phase))];
    assert.deepEqual(phases, ['checking', 'downloading', 'verifying', 'installing', 'done']);
    assert.ok(events.every((e) => e.downloadId === downloadId && e.name === 'tiny sd1'));
    const downloading = events.filter((e) => e.phase === 'downloading');
    assert.ok(downloading.every((e) => e.totalBytes === total), 'sizes known up front: the total is known from the start');
    for (let i = 1; i < downloading.length; i++) assert.ok(downloading[i]!.receivedBytes >= downloading[i - 1]!.receivedBytes);
    const last = events.at(-1)!;
    assert.deepEqual([last.phase, last.receivedBytes, last.percent, last.modelId], ['done', total, 100, model.id]);
    assert.ok(events.some((e) => e.bytesPerSecond > 0), 'a speed is reported');
    assert.ok(events.some((e) => e.phase === 'downloading' && e.etaSeconds !== null), 'an ETA is reported');
    assert.deepEqual(readdirSync(join(box.modelsDir, '.downloads')), []);
    assert.deepEqual(await lib.pendingDownloads(), []);
    // The same files again are the same model.
    await assert.rejects(lib.startDownload({ name: 'again', files: server.manifest() }).done, isCode('E_DUPLICATE'));
    assert.deepEqual(readdirSync(join(box.modelsDir, '.downloads')), []);
  } finally {
    await lib.close();
  }
}));

test('a list of file URLs is a model folder: paths below their common folder; sizes asked with HEAD', withServer({}, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const urls = server.manifest().map((f) => f.url);
    const events: ModelDownloadProgress[] = [];
    const model = await lib.startDownload({ name: 'from-urls', urls }, (p) => events.push(p)).done;
    assert.deepEqual(readFolder(model.dir), server.files);
    assert.equal(model.source, urls.join('\n'));
    assert.ok(server.requests.some((r) => r.method === 'HEAD'));
    assert.equal(events.find((e) => e.phase === 'downloading')!.totalBytes, model.sizeBytes);
  } finally {
    await lib.close();
  }
}));

test('without sizes from anyone, the total is unknown until the end, and the download still completes', withServer({ hideLengths: true }, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const events: ModelDownloadProgress[] = [];
    const model = await lib.startDownload({ name: 'chunked', files: server.manifest({ sizes: false, sha256: false }) }, (p) => events.push(p)).done;
    assert.deepEqual(readFolder(model.dir), server.files);
    const first = events.find((e) => e.phase === 'downloading')!;
    assert.deepEqual([first.totalBytes, first.percent, first.etaSeconds], [null, null, null]);
  } finally {
    await lib.close();
  }
}));

test('a connection dropped midway is resumed with a Range request from the bytes received', withServer({}, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    let partFile = '';
    server.behaviour.dropOnce = { path: WEIGHTS, afterBytes: 50_000, before: () => waitForSize(partFile, 50_000) };
    const { downloadId, done } = lib.startDownload({ name: 'dropped', files: server.manifest() });
    partFile = join(box.modelsDir, '.downloads', downloadId, `${WEIGHTS}.part`);
    const model = await done;
    assert.deepEqual(readFolder(model.dir), server.files);
    const gets = server.requests.filter((r) => r.method === 'GET' && r.path === WEIGHTS);
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, null);
    assert.equal(gets[1]!.range, 'bytes=50000-');
    assert.match(gets[1]!.ifRange ?? '', /^"[0-9a-f]{16}"$/, 'guarded by the ETag, so a changed file would start over');
  } finally {
    await lib.close();
  }
}));

test('a download interrupted by an app restart resumes from disk in a new library', withServer({ stall: { path: WEIGHTS, afterBytes: 60_000 } }, async (box, server) => {
  let lib = await openLibrary(box);
  const first = lib.startDownload({ name: 'restarted', files: server.manifest() });
  await server.stalled;
  const part = join(box.modelsDir, '.downloads', first.downloadId, `${WEIGHTS}.part`);
  await waitForSize(part, 60_000);
  await lib.close(); // the app quits mid-download
  await assert.rejects(first.done, isCode('E_CANCELLED'));

  server.behaviour.stall = undefined;
  lib = await openLibrary(box);
  try {
    const pending = await lib.pendingDownloads();
    assert.equal(pending.length, 1);
    assert.equal(pending[0]!.downloadId, first.downloadId);
    assert.ok(pending[0]!.receivedBytes >= 60_000);
    assert.equal(pending[0]!.totalBytes, [...server.files.values()].reduce((s, b) => s + b.length, 0));
    const before = server.requests.length;
    const model = await lib.resumeDownload(first.downloadId).done;
    assert.deepEqual(readFolder(model.dir), server.files);
    const gets = server.requests.slice(before).filter((r) => r.method === 'GET');
    assert.equal(gets[0]!.path, WEIGHTS, 'files finished before the restart are not fetched again');
    assert.equal(gets[0]!.range, 'bytes=60000-');
    assert.equal(server.requests.filter((r) => r.path === 'model_index.json' && r.method === 'GET').length, 1);
    assert.deepEqual(await lib.pendingDownloads(), []);
  } finally {
    await lib.close();
  }
}));

test('a server that keeps failing leaves a resumable download; resuming later finishes it', withServer({ failGet: { path: WEIGHTS, status: 503 } }, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const events: ModelDownloadProgress[] = [];
    const first = lib.startDownload({ name: 'flaky', files: server.manifest() }, (p) => events.push(p));
    await assert.rejects(first.done, (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'E_DOWNLOAD');
      assert.match((err as Error).message, /unet\/weights\.pb: the download kept failing \(HTTP 503\); it can be resumed later/);
      return true;
    });
    assert.equal(events.at(-1)!.phase, 'failed');
    assert.equal(server.requests.filter((r) => r.method === 'GET' && r.path === WEIGHTS).length, 4, 'one try and 3 retries');
    const [pending] = await lib.pendingDownloads();
    assert.equal(pending?.downloadId, first.downloadId);
    assert.ok(pending!.receivedBytes > 0, 'the files before it are kept');

    server.behaviour.failGet = undefined;
    const model = await lib.resumeDownload(first.downloadId).done;
    assert.deepEqual(readFolder(model.dir), server.files);
    assert.deepEqual(await lib.pendingDownloads(), []);
  } finally {
    await lib.close();
  }
}));

test('a corrupt file (sha256 mismatch) is rejected and everything is cleaned up', withServer({ corrupt: [WEIGHTS] }, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const events: ModelDownloadProgress[] = [];
    await assert.rejects(lib.startDownload({ name: 'corrupt', files: server.manifest() }, (p) => events.push(p)).done, (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'E_CHECKSUM');
      assert.match((err as Error).message, /unet\/weights\.pb is corrupt: its sha256 is [0-9a-f]{64}, the manifest says/);
      return true;
    });
    assert.equal(events.at(-1)!.phase, 'failed');
    assert.equal(events.at(-1)!.error?.code, 'E_CHECKSUM');
    await assertCleanedUp(lib, box);
  } finally {
    await lib.close();
  }
}));

test('a corrupt file with no checksum to catch it is rejected by the engine, and cleaned up', withServer({ corrupt: ['text_encoder/model.onnx'] }, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    await assert.rejects(lib.startDownload({ name: 'corrupt', files: server.manifest({ sha256: false }) }).done, (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'E_MODEL_FOLDER');
      assert.match((err as Error).message, /text_encoder\/model\.onnx/);
      return true;
    });
    await assertCleanedUp(lib, box);
  } finally {
    await lib.close();
  }
}));

test('a file the server does not have fails the download with the URL and status', withServer({}, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const files = [...server.manifest(), { path: 'extra.txt', url: `${server.baseUrl}extra.txt` }];
    await assert.rejects(lib.startDownload({ name: 'missing', files }).done, /extra\.txt: the server answered HTTP 404 Not Found/);
    await assertCleanedUp(lib, box);
  } finally {
    await lib.close();
  }
}));

test('cancelling stops the download and deletes what it fetched', withServer({ stall: { path: WEIGHTS, afterBytes: 60_000 } }, async (box, server) => {
  const lib = await openLibrary(box);
  try {
    const events: ModelDownloadProgress[] = [];
    const { downloadId, done } = lib.startDownload({ name: 'cancelled', files: server.manifest() }, (p) => events.push(p));
    await server.stalled;
    assert.equal(await lib.cancelDownload(downloadId), true);
    await assert.rejects(done, isCode('E_CANCELLED'));
    assert.equal(events.at(-1)!.phase, 'cancelled');
    await assertCleanedUp(lib, box);
    assert.equal(await lib.cancelDownload(downloadId), false);
  } finally {
    await lib.close();
  }
}));

test('no disk space: refused up front when sizes are known, E_DISK_FULL when the disk fills midway', { skip: canMount() ? false : 'needs `mount -t tmpfs` (CAP_SYS_ADMIN) to make a small disk' }, withServer({}, async (box, server) => {
  const disk = mountSmallDisk(256 * 1024); // the model is 0.69 MB
  const lib = await openLibrary(box, { modelsDir: disk.dir });
  try {
    await assert.rejects(lib.startDownload({ name: 'too big', files: server.manifest() }).done, (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'E_DISK_FULL');
      assert.match((err as Error).message, /Not enough disk space for this model: it needs 0\.7 MB more but only 0\.\d MB is free/);
      return true;
    });
    assert.equal(server.requests.filter((r) => r.method === 'GET').length, 0, 'nothing was fetched');
    assert.deepEqual(readdirSync(join(disk.dir, '.downloads')), []);

    server.behaviour.hideLengths = true; // no sizes anywhere: only the write can find out
    await assert.rejects(lib.startDownload({ name: 'unknown size', files: server.manifest({ sizes: false, sha256: false }) }).done, isCode('E_DISK_FULL'));
    assert.deepEqual(readdirSync(join(disk.dir, '.downloads')), []);
    assert.deepEqual(await lib.pendingDownloads(), []);
  } finally {
    await lib.close();
    disk.dispose();
  }
}));
