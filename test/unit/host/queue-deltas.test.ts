/**
 * Queue events are deltas: each change sends the jobs that changed, not the whole queue, and a client
 * that folds them into its snapshot (the renderer's own code) ends where the host is. The queue has a
 * cap. Real SQLite (host.sqlite); the runner stands in for the engine, which these rules don't involve.
 */
import { after, test } from 'node:test';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { QueueDelta, QueueSnapshot } from '../../../electron/shared/contract.js';
import { openHostDatabase } from '../../../electron/host/host-database.js';
import { JobQueue, type QueuedRequest } from '../../../electron/host/job-queue.js';
import { applyQueueDelta } from '../../../renderer/src/session/queue-state.js';
import { tempDir } from './support/host-fixtures.js';

const data = tempDir('queue-deltas');
after(() => data.remove());

const request = (i: number): QueuedRequest => ({ mode: 'txt2img', prompt: `job ${i}`, seed: i });

test('300 queued jobs: every event stays small, and a client folding the deltas ends with the host snapshot', async () => {
  const db = openHostDatabase(data.dir);
  const deltas: QueueDelta[] = [];
  let gate!: () => void;
  const opened = new Promise<void>((r) => (gate = r));
  let historyId = 0;
  const queue = new JobQueue(db, {
    imagesDir: join(data.dir, 'jobs'),
    recentLimit: 20,
    onChange: (d) => deltas.push(d),
    run: async (job) => {
      await opened;
      if (job.request.prompt.endsWith('7')) throw new Error('a failing job');
      return ++historyId;
    },
  });
  await queue.start();
  let client: QueueSnapshot = queue.snapshot();
  const ids: string[] = [];
  for (let i = 0; i < 300; i++) ids.push((await queue.enqueue('m', request(i))).id);
  const biggest = Math.max(...deltas.map((d) => JSON.stringify(d).length));
  assert.ok(biggest < 2000, `the largest queue event while queueing is ${biggest} characters (a snapshot of 300 jobs would be ~100 000)`);

  const fold = () => {
    for (const d of deltas.splice(0)) {
      const next = applyQueueDelta(client, d);
      assert.ok(next, `delta ${d.revision} applies after ${client.revision}`);
      client = next;
    }
  };
  fold();
  assert.deepEqual(client, queue.snapshot(), 'after queueing');
  queue.reorder([ids[299]!, ids[150]!]);
  fold();
  assert.deepEqual(client.queued.slice(0, 2).map((j) => j.id), [ids[299], ids[150]]);
  assert.deepEqual(client, queue.snapshot(), 'after a reorder');

  gate();
  while (queue.snapshot().queued.length > 0 || queue.snapshot().running) await new Promise((r) => setTimeout(r, 200));
  await new Promise((r) => setImmediate(r));
  fold();
  assert.deepEqual(client, queue.snapshot(), 'after every job ran');
  assert.equal(client.recent.length, 20, 'finished jobs beyond the recent list were removed');
  const statuses = new Map(ids.map((id) => [id, queue.get(id).status]));
  assert.equal([...statuses.values()].filter((s) => s === 'failed').length, 30);
  assert.equal([...statuses.values()].filter((s) => s === 'succeeded').length, 270);
  await queue.close();
  db.close();
});

test('the queue is capped: one job past the limit is refused with E_QUEUE_FULL in words, and nothing is stored', async () => {
  const t = tempDir('queue-cap');
  const db = openHostDatabase(t.dir);
  const queue = new JobQueue(db, { imagesDir: join(t.dir, 'jobs'), maxQueued: 3, run: () => new Promise<number>(() => undefined) });
  // Not started: every job stays queued.
  for (let i = 0; i < 3; i++) await queue.enqueue('m', request(i));
  await assert.rejects(queue.enqueue('m', request(3)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_QUEUE_FULL');
    assert.match(err.message, /queue is full: 3 jobs are waiting \(at most 3\)/);
    return true;
  });
  assert.equal(queue.snapshot().queued.length, 3);
  await queue.close();
  db.close();
  t.remove();
});

test('finished jobs beyond the newest `keepFinished` leave host.sqlite at the next start; queued ones stay', async () => {
  const t = tempDir('queue-prune');
  let now = 1_000;
  const clock = () => ++now;
  let db = openHostDatabase(t.dir);
  let queue = new JobQueue(db, { imagesDir: join(t.dir, 'jobs'), clock, run: async () => 1 });
  await queue.start();
  const done: string[] = [];
  for (let i = 0; i < 12; i++) done.push((await queue.enqueue('m', request(i))).id);
  while (queue.snapshot().queued.length > 0 || queue.snapshot().running) await new Promise((r) => setTimeout(r, 20));
  await queue.close();
  const count = (): number => db.prepare('SELECT COUNT(*) FROM jobs').pluck().get() as number;
  assert.equal(count(), 12);
  // Queued while the app is closed (not started): these must survive the pruning.
  queue = new JobQueue(db, { imagesDir: join(t.dir, 'jobs'), clock, run: () => new Promise<number>(() => undefined) });
  const waiting = [(await queue.enqueue('m', request(90))).id, (await queue.enqueue('m', request(91))).id];
  await queue.close();
  db.close();

  db = openHostDatabase(t.dir);
  const untilCancelled = (_job: unknown, { signal }: { signal: AbortSignal }) => new Promise<number>((_, reject) => signal.addEventListener('abort', () => reject(new Error('cancelled'))));
  queue = new JobQueue(db, { imagesDir: join(t.dir, 'jobs'), clock, recentLimit: 3, keepFinished: 5, run: untilCancelled });
  await queue.start();
  const left = db.prepare('SELECT id, status FROM jobs ORDER BY finished_at').all() as Array<{ id: string; status: string }>;
  assert.deepEqual(left.filter((r) => r.status === 'succeeded').map((r) => r.id), done.slice(-5), 'the newest five finished jobs');
  assert.equal(left.filter((r) => r.status !== 'succeeded').length, 2);
  const snap = queue.snapshot();
  assert.deepEqual([snap.running?.id, ...snap.queued.map((j) => j.id)], waiting, 'the queued jobs are still there (the first runs now)');
  assert.deepEqual(queue.snapshot().recent.map((j) => j.id), done.slice(-3).reverse());
  await queue.close();
  db.close();
  t.remove();
});
