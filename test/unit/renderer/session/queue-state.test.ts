/** The renderer's queue copy folds `queue.changed` deltas into the last snapshot, and asks again after a gap. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobSummary, QueueDelta, QueueSnapshot } from '../../../../electron/shared/contract.js';
import { applyQueueDelta, EMPTY_QUEUE } from '../../../../renderer/src/session/queue-state.js';

function job(id: string, status: JobSummary['status'], position: number, finishedAt: number | null = null): JobSummary {
  return { id, status, position, mode: 'txt2img', prompt: id, modelId: 'm', createdAt: position, startedAt: null, finishedAt, progress: null, historyId: null, error: null, warnings: [] };
}

const base: QueueSnapshot = { revision: 4, running: job('a', 'running', 1), queued: [job('b', 'queued', 2), job('c', 'queued', 3)], recent: [job('z', 'succeeded', 0, 10)] };

test('a delta adds, changes and removes jobs; queued order follows position, recent is newest first', () => {
  const delta: QueueDelta = {
    revision: 5,
    added: [job('d', 'queued', 4)],
    changed: [job('a', 'succeeded', 1, 20), job('c', 'queued', 1.5), job('b', 'running', 2)],
    removed: ['z'],
  };
  const next = applyQueueDelta(base, delta)!;
  assert.equal(next.revision, 5);
  assert.equal(next.running?.id, 'b');
  assert.deepEqual(next.queued.map((j) => j.id), ['c', 'd']);
  assert.deepEqual(next.recent.map((j) => j.id), ['a']);
});

test('an old delta changes nothing; a missed one (gap) or none before the first snapshot asks for a reload', () => {
  const same: QueueDelta = { revision: 4, added: [job('x', 'queued', 9)], changed: [], removed: [] };
  assert.equal(applyQueueDelta(base, same), base);
  assert.equal(applyQueueDelta(base, { ...same, revision: 6 }), null);
  assert.equal(applyQueueDelta(EMPTY_QUEUE, { ...same, revision: 1 }), null);
});
