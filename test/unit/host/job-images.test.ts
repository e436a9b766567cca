/**
 * A queued job's images live in files under <data>/jobs/<jobId>/, not in its database row: decoded once
 * at enqueue, handed to the runner as paths, kept across a restart, removed when the job ends (finished,
 * failed, cancelled, cleared), and folders nobody owns are removed at start. A full disk at enqueue is
 * E_DISK_FULL in words, with nothing stored and no file left. Real SQLite (host.sqlite), real files; the
 * last test runs a real engine process on the tiny inpainting fixture.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { SqliteDatabase } from '../../../electron/history/database.js';
import { Host } from '../../../electron/host/host.js';
import { openHostDatabase } from '../../../electron/host/host-database.js';
import { readImageFile, withImageFiles } from '../../../electron/host/engine-process/job-files.js';
import { JobQueue, type JobRunner, type QueuedRequest, type StoredJob } from '../../../electron/host/job-queue.js';
import { canMount, mountSmallDisk, type SmallDisk } from '../../support/history-mounts.js';
import { FIXTURE_SIZE, jobFinished, ok, TEST_ENGINE_SETTINGS, TINY_SD1, TINY_SD1_INPAINT, tempDir } from './support/host-fixtures.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function dataDir(prefix: string): string {
  const t = tempDir(prefix);
  cleanups.push(t.remove);
  return t.dir;
}

/** A PNG header followed by random bytes: `size` bytes in all (named .png; nothing here decodes it). */
function fakePng(size: number): Buffer {
  const bytes = randomBytes(size);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 64, 0, 0, 0, 64]).copy(bytes);
  return bytes;
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Opened {
  db: SqliteDatabase;
  queue: JobQueue;
  jobsDir: string;
}

function openQueue(dir: string, run: JobRunner, extra: { maxQueued?: number } = {}): Opened {
  const db = openHostDatabase(dir);
  const jobsDir = join(dir, 'jobs');
  const queue = new JobQueue(db, { imagesDir: jobsDir, run, ...extra });
  return { db, queue, jobsDir };
}

async function closeQueue(o: Opened): Promise<void> {
  await o.queue.close();
  o.db.close();
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
}

/** Resolves when the job has one of the final statuses. */
async function settled(queue: JobQueue, id: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const { status } = queue.get(id);
    // A run's folder is removed before its end is written.
    if (status !== 'queued' && status !== 'running') return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`job ${id} did not finish`);
}

test('the images go to files at enqueue, not into the row; the runner gets their paths; they go when the job ends', async () => {
  const dir = dataDir('job-images');
  // Larger than one decoding chunk (4 Mi base64 characters), so the chunks must join exactly.
  const init = fakePng(7 * 1024 * 1024 + 5);
  const mask = fakePng(1000);
  const control = randomBytes(333);
  const region = fakePng(2001);
  const seen: Array<{ job: StoredJob; bytes: Record<string, string> }> = [];
  const o = openQueue(dir, async (job) => {
    const bytes: Record<string, string> = {};
    for (const [key, path] of Object.entries(job.images)) {
      for (const [i, p] of (Array.isArray(path) ? path : [path]).entries()) bytes[Array.isArray(path) ? `${key}${i}` : key] = sha(readFileSync(p as string));
    }
    seen.push({ job, bytes });
    return 1;
  });
  const request: QueuedRequest = {
    mode: 'inpaint',
    prompt: 'a hat',
    seed: 5,
    initImage: init.toString('base64'),
    mask: mask.toString('base64'),
    control: { image: control.toString('base64'), scale: 0.5 },
    regions: [{ prompt: 'left', mask: region.toString('base64'), weight: 0.7 }],
  };
  const job = await o.queue.enqueue('m', request);

  const row = o.db.prepare('SELECT request, images FROM jobs WHERE id = ?').get(job.id) as { request: string; images: string };
  assert.ok(row.request.length < 500, `the row's request is ${row.request.length} characters: the images are not in it`);
  assert.deepEqual(JSON.parse(row.request), { mode: 'inpaint', prompt: 'a hat', seed: 5, control: { scale: 0.5 }, regions: [{ prompt: 'left', weight: 0.7 }] });
  assert.deepEqual(JSON.parse(row.images), { initImage: 'init-image.png', mask: 'mask.png', control: 'control.bin', regions: ['region-1-mask.png'] });
  const folder = join(o.jobsDir, job.id);
  assert.deepEqual(readdirSync(folder).sort(), ['control.bin', 'init-image.png', 'mask.png', 'region-1-mask.png'], 'no temp file is left');
  assert.equal(sha(readFileSync(join(folder, 'init-image.png'))), sha(init), 'decoded once, byte for byte');

  await o.queue.start();
  await settled(o.queue, job.id);
  assert.equal(o.queue.get(job.id).status, 'succeeded');
  assert.deepEqual(seen[0]!.bytes, { initImage: sha(init), mask: sha(mask), control: sha(control), regions0: sha(region) });
  assert.equal(seen[0]!.job.request.prompt, 'a hat');
  assert.ok(!('initImage' in seen[0]!.job.request), 'the runner gets no base64');
  assert.equal(existsSync(folder), false, "a finished job's folder is removed");

  await closeQueue(o);
});

test('a failing job and a job without images: the folder goes, and none is made', async () => {
  const dir = dataDir('job-images-fail');
  const o = openQueue(dir, async (job) => {
    if (job.request.prompt === 'fails') throw new Error('the engine refused it');
    return 1;
  });
  await o.queue.start();
  const failing = await o.queue.enqueue('m', { mode: 'img2img', prompt: 'fails', seed: 1, initImage: fakePng(100).toString('base64') });
  const plain = await o.queue.enqueue('m', { mode: 'txt2img', prompt: 'plain', seed: 2 });
  await settled(o.queue, failing.id);
  await settled(o.queue, plain.id);
  assert.equal(o.queue.get(failing.id).status, 'failed');
  assert.deepEqual(existsSync(o.jobsDir) ? readdirSync(o.jobsDir) : [], []);
  await closeQueue(o);
});

test('queued jobs keep their images across a restart, and run with them at the next start', async () => {
  const dir = dataDir('job-images-restart');
  const first = openQueue(dir, async () => 1);
  // Not started: both stay queued.
  const images = [fakePng(5000), fakePng(6000)];
  const ids: string[] = [];
  for (const [i, image] of images.entries()) ids.push((await first.queue.enqueue('m', { mode: 'img2img', prompt: `job ${i}`, seed: i, initImage: image.toString('base64') })).id);
  await closeQueue(first);
  for (const id of ids) assert.ok(existsSync(join(dir, 'jobs', id, 'init-image.png')));

  const ran = new Map<string, string>();
  const second = openQueue(dir, async (job) => {
    ran.set(job.id, sha(readFileSync(job.images.initImage!)));
    return 1;
  });
  await second.queue.start();
  for (const id of ids) await settled(second.queue, id);
  assert.deepEqual(ids.map((id) => ran.get(id)), images.map(sha));
  assert.deepEqual(readdirSync(second.jobsDir), []);
  await closeQueue(second);
});

test('cancel, clear and a removed model remove a queued job’s folder; a cancelled running job’s goes when it stops', async () => {
  const dir = dataDir('job-images-cancel');
  let release!: () => void;
  const o = openQueue(dir, (_job, { signal }) => new Promise<number>((resolve, reject) => {
    release = () => resolve(1);
    signal.addEventListener('abort', () => setTimeout(() => reject(Object.assign(new Error('cancelled'), { name: 'CancelledError', code: 'E_CANCELLED' })), 30));
  }));
  const image = () => fakePng(3000).toString('base64');
  await o.queue.start();
  const running = await o.queue.enqueue('m', { mode: 'img2img', prompt: 'running', seed: 1, initImage: image() });
  const a = await o.queue.enqueue('m', { mode: 'img2img', prompt: 'a', seed: 2, initImage: image() });
  const b = await o.queue.enqueue('m', { mode: 'img2img', prompt: 'b', seed: 3, initImage: image() });
  const c = await o.queue.enqueue('other-model', { mode: 'img2img', prompt: 'c', seed: 4, initImage: image() });
  const d = await o.queue.enqueue('m', { mode: 'img2img', prompt: 'd', seed: 5, initImage: image() });
  assert.equal(o.queue.get(running.id).status, 'running');
  const folders = () => readdirSync(o.jobsDir).sort();
  assert.deepEqual(folders(), [running.id, a.id, b.id, c.id, d.id].sort());

  assert.equal(await o.queue.cancel(a.id), 'cancelled');
  assert.ok(!folders().includes(a.id), 'a cancelled queued job leaves no folder');
  o.queue.failQueuedForModel('other-model', { name: 'StudioError', code: 'E_NOT_FOUND', message: 'removed' });
  await until(() => !folders().includes(c.id), 'a job failed with its model leaves no folder');

  assert.equal(await o.queue.cancel(running.id), 'cancelled');
  assert.ok(!folders().includes(running.id), 'a cancelled running job leaves no folder once it stopped');
  release();
  // b runs next: clear it (running) and d (queued) at once.
  await until(() => o.queue.get(b.id).status === 'running', 'b starts');
  await o.queue.clear(true);
  assert.deepEqual(folders(), []);
  assert.deepEqual([b, d].map((j) => o.queue.get(j.id).status), ['cancelled', 'cancelled']);
  await closeQueue(o);
});

test('at start: folders no queued job owns are removed, a job left running is failed and its folder removed', async () => {
  const dir = dataDir('job-images-orphans');
  const first = openQueue(dir, async () => 1);
  const queued = await first.queue.enqueue('m', { mode: 'img2img', prompt: 'queued', seed: 1, initImage: fakePng(100).toString('base64') });
  const crashed = await first.queue.enqueue('m', { mode: 'img2img', prompt: 'crashed', seed: 2, initImage: fakePng(100).toString('base64') });
  // The app died while `crashed` ran, and after writing the images of a job whose row never got stored.
  first.db.prepare(`UPDATE jobs SET status = 'running' WHERE id = ?`).run(crashed.id);
  await closeQueue(first);
  mkdirSync(join(dir, 'jobs', 'never-stored'));
  writeFileSync(join(dir, 'jobs', 'never-stored', 'init-image.png.part'), 'half');
  writeFileSync(join(dir, 'jobs', 'stray-file'), 'x');

  let ran = 0;
  let gate!: () => void;
  const opened = new Promise<void>((r) => (gate = r));
  const second = openQueue(dir, async () => {
    ran++;
    await opened;
    return 1;
  });
  const interrupted = await second.queue.start();
  assert.deepEqual(interrupted, [crashed.id]);
  assert.equal(second.queue.get(crashed.id).error?.code, 'E_INTERRUPTED');
  assert.deepEqual(readdirSync(second.jobsDir), [queued.id], 'only the queued job keeps a folder');
  gate();
  await settled(second.queue, queued.id);
  assert.equal(ran, 1);
  await closeQueue(second);
});

test('a job queued by an earlier version (base64 in its row) gets files at start and runs with them', async () => {
  const dir = dataDir('job-images-legacy');
  const image = fakePng(4000);
  const db = openHostDatabase(dir);
  db.prepare(
    `INSERT INTO jobs (id, position, status, model_id, mode, prompt, request, created_at) VALUES ('old-job', 1, 'queued', 'm', 'img2img', 'old', ?, 1)`,
  ).run(JSON.stringify({ mode: 'img2img', prompt: 'old', seed: 9, initImage: image.toString('base64') }));
  db.close();
  let got: string | null = null;
  const o = openQueue(dir, async (job) => {
    got = sha(readFileSync(job.images.initImage!));
    assert.ok(!('initImage' in job.request));
    return 1;
  });
  await o.queue.start();
  await settled(o.queue, 'old-job');
  assert.equal(o.queue.get('old-job').status, 'succeeded');
  assert.equal(got, sha(image));
  await closeQueue(o);
});

test('a job refused after its images were written (the queue filled meanwhile) leaves no file', async () => {
  const dir = dataDir('job-images-refused');
  const o = openQueue(dir, async () => 1, { maxQueued: 1 });
  const results = await Promise.allSettled([0, 1].map((i) => o.queue.enqueue('m', { mode: 'img2img', prompt: `j${i}`, seed: i, initImage: fakePng(50_000).toString('base64') })));
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.equal((refused.reason as { code?: string }).code, 'E_QUEUE_FULL');
  const stored = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ id: string }>).value.id;
  assert.deepEqual(readdirSync(o.jobsDir), [stored]);
  await closeQueue(o);
});

const disks: SmallDisk[] = [];
after(() => disks.forEach((d) => d.dispose()));

test('a full disk at enqueue: E_DISK_FULL in words (no path), nothing stored, no file left; room again, it queues', { skip: canMount() ? false : 'needs root to mount a small tmpfs (CI runs as root)' }, async () => {
  const disk = mountSmallDisk(1024 * 1024);
  disks.push(disk);
  const dir = dataDir('job-images-full');
  const db = openHostDatabase(dir);
  const queue = new JobQueue(db, { imagesDir: join(disk.dir, 'jobs'), run: async () => 1 });
  const big = { mode: 'img2img' as const, prompt: 'too big', seed: 1, initImage: fakePng(600_000).toString('base64'), mask: fakePng(600_000).toString('base64') };
  await assert.rejects(queue.enqueue('m', big), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_DISK_FULL');
    assert.match(err.message, /the disk is full \(its images need about 1 MB\)/);
    assert.ok(!err.message.includes(disk.dir), err.message);
    return true;
  });
  assert.equal(queue.snapshot().queued.length, 0);
  assert.equal(db.prepare('SELECT COUNT(*) FROM jobs').pluck().get(), 0, 'no row');
  assert.deepEqual(readdirSync(join(disk.dir, 'jobs')), [], 'no file, no folder');
  const fits = await queue.enqueue('m', { ...big, prompt: 'fits', mask: undefined } as never);
  assert.equal(queue.get(fits.id).status, 'queued');
  await queue.close();
  db.close();
});

test("the engine process's reader: a missing file is E_NOT_FOUND in words, without the data folder's path", async () => {
  const dir = dataDir('job-files');
  const path = join(dir, 'jobs', 'x', 'mask.png');
  await assert.rejects(readImageFile(path, 'mask'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_NOT_FOUND');
    assert.match(err.message, /The job's mask is no longer in the data folder/);
    assert.ok(!err.message.includes(dir), err.message);
    return true;
  });
  mkdirSync(join(dir, 'r'));
  writeFileSync(join(dir, 'r', 'a.png'), 'A');
  writeFileSync(join(dir, 'r', 'b.png'), 'B');
  const filled = await withImageFiles(
    { mode: 'txt2img', prompt: 'x', seed: 1, control: { image: new Uint8Array(0), scale: 1 }, regions: [{ prompt: 'r', mask: new Uint8Array(0) }] },
    { control: join(dir, 'r', 'a.png'), regions: [join(dir, 'r', 'b.png')] },
  );
  assert.equal(Buffer.from(filled.control!.image).toString(), 'A');
  assert.equal(Buffer.from(filled.regions![0]!.mask).toString(), 'B');
});

test('real engine: an inpaint job queued across a restart runs from its files; history keeps its images byte for byte', async () => {
  const dir = dataDir('job-images-host');
  const open = () => Host.open({ dataDir: dir, engineSettings: TEST_ENGINE_SETTINGS, previewEvery: 0 });
  const host = await open();
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
  const inpaint = ok('models.import', await host.invoke('models.import', { path: TINY_SD1_INPAINT })).id;
  const picture = await sharp({ create: { width: FIXTURE_SIZE, height: FIXTURE_SIZE, channels: 3, background: '#3a6' } }).png().toBuffer();
  const mask = await sharp({ create: { width: FIXTURE_SIZE, height: FIXTURE_SIZE, channels: 3, background: '#000' } })
    .composite([{ input: { create: { width: 32, height: 32, channels: 3, background: '#fff' } }, left: 16, top: 16 }])
    .png()
    .toBuffer();
  // A long job keeps the inpaint queued until the host closes.
  ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'long', steps: 1000, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 1 }));
  const jobId = ok('generate', await host.invoke('generate', {
    mode: 'inpaint', prompt: 'a hat', steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 3, modelId: inpaint,
    initImage: picture.toString('base64'), mask: mask.toString('base64'),
  })).jobId;
  await host.close();
  assert.deepEqual(readdirSync(join(dir, 'jobs')), [jobId], 'the cancelled long job left nothing; the queued one keeps its images');

  const again = await open();
  try {
    const done = await jobFinished(again, jobId);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const item = ok('history.get', await again.invoke('history.get', { id: done.historyId! }));
    assert.equal(item.initImage?.hash, sha(picture), 'the init image is stored as sent');
    assert.equal(item.mask?.hash, sha(mask), 'the mask is stored as sent');
    assert.deepEqual(readdirSync(join(dir, 'jobs')), []);
  } finally {
    await again.close();
  }
  rmSync(join(dir, 'jobs'), { recursive: true, force: true });
});
