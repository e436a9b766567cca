/**
 * The queue under the prompt panel: the running job, then the queued ones in the order they will run.
 * Queued jobs are reordered by dragging a row onto another (it lands before or after it, by which half
 * of the row the pointer is over), or from the keyboard with Move up / Move down; each change sends the
 * whole queued order with `queue.reorder`. The list follows `queue.changed`, never a local guess.
 * A job's warnings (what the host changed to run it, e.g. a resized mask) are shown under its row.
 */
import { useState, type DragEvent } from 'react';
import { describeError } from '../session/session.js';
import { useStore } from '../session/store.js';
import { dropJob, moveJob, sameOrder } from './queue-order.js';
import { useSession } from '../session/hooks.js';

/** The drag payload type: a job id (text/plain too, which is what browsers let every drop target read). */
const JOB_DRAG_TYPE = 'application/x-studio-job';

export function QueueList() {
  const { client, queueStore } = useSession();
  const q = useStore(queueStore);
  const [error, setError] = useState<string | null>(null);
  const [dragged, setDragged] = useState<string | null>(null);
  const [dropAt, setDropAt] = useState<{ id: string; after: boolean } | null>(null);
  const jobs = [...(q.running ? [q.running] : []), ...q.queued];
  if (jobs.length === 0) return null;
  const queuedIds = q.queued.map((j) => j.id);

  const send = async (order: string[]): Promise<void> => {
    // The queue may have moved on since this render (a job started): reorder what is still queued.
    const current = queueStore.get().queued.map((j) => j.id);
    const next = order.filter((id) => current.includes(id));
    if (next.length === 0 || sameOrder(next, current)) return;
    try {
      await client.call('queue.reorder', { jobIds: next });
      setError(null);
    } catch (err) {
      setError(describeError(err));
    }
  };
  const move = (id: string, delta: number) => void send(moveJob(queuedIds, id, queuedIds.indexOf(id) + delta));

  const overHalf = (e: DragEvent<HTMLLIElement>): boolean => {
    const box = e.currentTarget.getBoundingClientRect();
    return e.clientY > box.top + box.height / 2;
  };
  const endDrag = () => {
    setDragged(null);
    setDropAt(null);
  };

  return (
    <section className="queue" aria-label="Queue">
      <h3>Queue</h3>
      {error && <p className="error-text" role="alert">{error}</p>}
      <ol>
        {jobs.map((j) => {
          const queuedIndex = queuedIds.indexOf(j.id);
          const queued = queuedIndex >= 0;
          const marker = dropAt?.id === j.id && dragged !== j.id ? (dropAt.after ? ' drop-after' : ' drop-before') : '';
          return (
            <li
              key={j.id}
              data-job-id={j.id}
              className={`${j.status === 'running' ? 'is-running' : ''}${dragged === j.id ? ' is-dragged' : ''}${marker}`}
              draggable={queued}
              onDragStart={(e) => {
                if (!queued) return;
                e.dataTransfer.effectAllowed = 'move';
                e.dataTransfer.setData(JOB_DRAG_TYPE, j.id);
                e.dataTransfer.setData('text/plain', j.id);
                setDragged(j.id);
              }}
              onDragOver={(e) => {
                if (!queued || dragged === null) return;
                e.preventDefault();
                e.dataTransfer.dropEffect = 'move';
                const after = overHalf(e);
                if (dropAt?.id !== j.id || dropAt.after !== after) setDropAt({ id: j.id, after });
              }}
              onDrop={(e) => {
                if (!queued) return;
                e.preventDefault();
                const id = dragged ?? e.dataTransfer.getData(JOB_DRAG_TYPE);
                const after = overHalf(e);
                endDrag();
                if (id) void send(dropJob(queuedIds, id, j.id, after));
              }}
              onDragEnd={endDrag}
            >
              <span className="queue-mode">{j.mode}</span>
              <span className="queue-prompt" title={j.prompt}>
                {queued && <span className="queue-handle" aria-hidden="true">⠿ </span>}
                {j.prompt || '(no prompt)'}
              </span>
              <span className="queue-status">{j.status === 'running' && j.progress ? `${j.progress.step}/${j.progress.total}` : j.status}</span>
              <span className="queue-moves">
                {queued && (
                  <>
                    <button type="button" aria-label={`Move up: ${j.prompt}`} title="Move up (runs earlier)" disabled={queuedIndex === 0} onClick={() => move(j.id, -1)}>↑</button>
                    <button type="button" aria-label={`Move down: ${j.prompt}`} title="Move down (runs later)" disabled={queuedIndex === queuedIds.length - 1} onClick={() => move(j.id, 1)}>↓</button>
                  </>
                )}
              </span>
              <button type="button" aria-label={`Cancel job: ${j.prompt}`} title="Cancel" onClick={() => void client.call('cancel', { jobId: j.id }).catch((e: unknown) => setError(describeError(e)))}>✕</button>
              {j.warnings.length > 0 && (
                <ul className="queue-warnings" aria-label={`Warnings for job: ${j.prompt}`}>
                  {j.warnings.map((w) => (
                    <li key={w}>⚠ {w}</li>
                  ))}
                </ul>
              )}
            </li>
          );
        })}
      </ol>
    </section>
  );
}
