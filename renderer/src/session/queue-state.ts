/**
 * The renderer's copy of the queue, kept up to date from `queue.changed` deltas (plain list maths, no
 * React): the host sends only the jobs that changed, and this folds them into the last snapshot.
 */
import type { JobSummary, QueueDelta, QueueSnapshot } from '../../../electron/shared/contract.js';

/** Before the first `queue.list` answer: revision −1, so every delta waits for that snapshot. */
export const EMPTY_QUEUE: QueueSnapshot = { revision: -1, running: null, queued: [], recent: [] };

function finished(job: JobSummary): boolean {
  return job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled';
}

/**
 * The snapshot after `delta`: the same snapshot when the delta is already in it (an older revision),
 * or null when a delta was missed (reload `queue.list`).
 */
export function applyQueueDelta(snapshot: QueueSnapshot, delta: QueueDelta): QueueSnapshot | null {
  if (snapshot.revision < 0) return null;
  if (delta.revision <= snapshot.revision) return snapshot;
  if (delta.revision !== snapshot.revision + 1) return null;
  const jobs = new Map<string, JobSummary>();
  for (const job of [snapshot.running, ...snapshot.queued, ...snapshot.recent]) if (job) jobs.set(job.id, job);
  for (const job of [...delta.added, ...delta.changed]) jobs.set(job.id, job);
  for (const id of delta.removed) jobs.delete(id);
  const all = [...jobs.values()];
  return {
    revision: delta.revision,
    running: all.find((j) => j.status === 'running') ?? null,
    queued: all.filter((j) => j.status === 'queued').sort((a, b) => a.position - b.position || a.createdAt - b.createdAt),
    recent: all.filter(finished).sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0) || b.position - a.position),
  };
}
