/**
 * A job that carried large images leaves nothing resident: before the next job starts, a full garbage
 * collection frees its request (the stored string, its parsed copy). Without it V8 kept them until its
 * next major collection, so four queued 79 MiB uploads piled up in the host. Real SQLite (host.sqlite).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openHostDatabase } from '../../../electron/host/host-database.js';
import { JobQueue } from '../../../electron/host/job-queue.js';
import { COLLECT_AFTER_BYTES } from '../../../electron/host/request-body.js';
import { tempDir } from './support/host-fixtures.js';

const data = tempDir('job-queue-memory');
after(() => data.remove());

test("a large job's request is collected before the next job starts", async () => {
  const db = openHostDatabase(data.dir);
  const seen: Array<WeakRef<object>> = [];
  let collectedBeforeSecond: boolean | null = null;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const queue = new JobQueue(db, {
    run: async (job) => {
      if (job.request.prompt === 'second') {
        collectedBeforeSecond = seen[0]!.deref() === undefined;
        done();
        return 2;
      }
      seen.push(new WeakRef(job.request));
      return 1;
    },
  });
  // The large one is queued first, with nothing of it kept here.
  (() => queue.enqueue('m', { mode: 'img2img', prompt: 'first', seed: 1, initImage: 'A'.repeat(COLLECT_AFTER_BYTES + 4) }))();
  queue.enqueue('m', { mode: 'txt2img', prompt: 'second', seed: 2 });
  queue.start();
  await finished;
  await queue.close();
  db.close();
  assert.equal(collectedBeforeSecond, true, 'the first job’s request was still in memory when the second started');
});

test('host.sqlite is not memory-mapped: the large rows the queue reads do not stay resident', () => {
  const db = openHostDatabase(data.dir);
  try {
    assert.equal(db.pragma('mmap_size', { simple: true }), 0);
  } finally {
    db.close();
  }
});
