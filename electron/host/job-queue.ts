/**
 * The job queue: FIFO, one job at a time (one device), persisted in the host database so that queued
 * jobs survive a restart. A job that was running when the app died is marked failed with the reason at
 * the next start, never silently lost or silently rerun.
 *
 * The queue knows nothing of models or images: `run` (supplied by the host) turns a job into a
 * history item id, reporting progress and honouring the AbortSignal.
 */
import { randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { JobStatus, JobSummary, QueueSnapshot, Requests } from '../shared/contract.js';
import { isCancelled, serializeError, StudioError, type SerializedError } from '../shared/errors.js';
import type { SqliteDatabase } from '../history/database.js';

/** A generate request as queued: the seed is always chosen before the job is stored. */
export type QueuedRequest = Requests['generate'] & { seed: number };

export interface StoredJob {
  id: string;
  modelId: string;
  request: QueuedRequest;
}

export interface JobProgress {
  step: number;
  total: number;
}

export type JobRunner = (
  job: StoredJob,
  context: { signal: AbortSignal; onProgress: (progress: JobProgress) => void },
) => Promise<number>;

export interface JobQueueOptions {
  run: JobRunner;
  /** Called after every change of the queue (enqueue, start, finish, cancel, reorder). */
  onChange?: (snapshot: QueueSnapshot) => void;
  clock?: () => number;
  /** How many finished jobs `snapshot().recent` lists. */
  recentLimit?: number;
}

const DEFAULT_RECENT_LIMIT = 20;

interface JobRow {
  id: string;
  position: number;
  status: JobStatus;
  model_id: string;
  mode: JobSummary['mode'];
  prompt: string;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  history_id: number | null;
  error: string | null;
  warnings: string;
}

const SUMMARY_COLUMNS = 'id, position, status, model_id, mode, prompt, created_at, started_at, finished_at, history_id, error, warnings';

interface ActiveJob {
  id: string;
  controller: AbortController;
  /** Why it was aborted, when the queue (not the engine) stopped it. */
  abortReason: string | null;
  progress: JobProgress | null;
  settled: Promise<void>;
}

export class JobQueue {
  private readonly run: JobRunner;
  private readonly onChange: (snapshot: QueueSnapshot) => void;
  private readonly clock: () => number;
  private readonly recentLimit: number;
  private active: ActiveJob | null = null;
  private started = false;
  private closed = false;
  private readonly stmt: {
    insert: Statement;
    maxPosition: Statement;
    next: Statement;
    byId: Statement;
    queued: Statement;
    recent: Statement;
    running: Statement;
    request: Statement;
    markRunning: Statement;
    finish: Statement;
    setPosition: Statement;
    interrupt: Statement;
  };

  constructor(
    private readonly db: SqliteDatabase,
    options: JobQueueOptions,
  ) {
    this.run = options.run;
    this.onChange = options.onChange ?? (() => undefined);
    this.clock = options.clock ?? Date.now;
    this.recentLimit = options.recentLimit ?? DEFAULT_RECENT_LIMIT;
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO jobs (id, position, status, model_id, mode, prompt, request, created_at, warnings)
         VALUES (@id, @position, 'queued', @modelId, @mode, @prompt, @request, @createdAt, @warnings)`,
      ),
      maxPosition: db.prepare('SELECT COALESCE(MAX(position), 0) AS max FROM jobs').pluck(),
      next: db.prepare(`SELECT id, model_id, request FROM jobs WHERE status = 'queued' ORDER BY position, created_at LIMIT 1`),
      byId: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE id = ?`),
      queued: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY position, created_at`),
      recent: db.prepare(
        `SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')
         ORDER BY finished_at DESC, position DESC LIMIT ?`,
      ),
      running: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE status = 'running'`),
      request: db.prepare('SELECT request FROM jobs WHERE id = ?').pluck(),
      markRunning: db.prepare(`UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'`),
      finish: db.prepare(
        `UPDATE jobs SET status = @status, finished_at = @finishedAt, history_id = @historyId, error = @error,
           -- A finished job's request (with its input images) is no longer needed: keep the row small.
           request = '{}'
         WHERE id = @id`,
      ),
      setPosition: db.prepare('UPDATE jobs SET position = ? WHERE id = ?'),
      interrupt: db.prepare(
        `UPDATE jobs SET status = 'failed', finished_at = @now, error = @error, request = '{}' WHERE status = 'running'`,
      ),
    };
  }

  /**
   * Marks jobs left `running` by a crash as failed (with the reason) and starts running queued jobs.
   * Returns the ids of the interrupted jobs.
   */
  start(): string[] {
    if (this.started) return [];
    this.started = true;
    const interrupted = (this.stmt.running.all() as JobRow[]).map((r) => r.id);
    if (interrupted.length > 0) {
      const error: SerializedError = {
        name: 'JobInterruptedError',
        code: 'E_INTERRUPTED',
        message: 'The app stopped (crash or forced quit) while this job was running; it did not finish and was not rerun.',
      };
      this.stmt.interrupt.run({ now: this.clock(), error: JSON.stringify(error) });
      this.changed();
    }
    this.pump();
    return interrupted;
  }

  /** Adds a job at the end of the queue; `warnings` say what the host changed to run it. */
  enqueue(modelId: string, request: QueuedRequest, warnings: readonly string[] = []): JobSummary {
    if (this.closed) throw new StudioError('E_CLOSED', 'The job queue is closed (the app is shutting down).');
    const id = randomUUID();
    const position = (this.stmt.maxPosition.get() as number) + 1;
    this.stmt.insert.run({
      id,
      position,
      modelId,
      mode: request.mode,
      prompt: request.prompt,
      request: JSON.stringify(request),
      createdAt: this.clock(),
      warnings: JSON.stringify(warnings),
    });
    this.changed();
    this.pump();
    return this.get(id);
  }

  get(id: string): JobSummary {
    const row = this.stmt.byId.get(id) as JobRow | undefined;
    if (!row) throw new StudioError('E_NOT_FOUND', `No job ${id}.`);
    return this.summary(row);
  }

  /** How many jobs run before this one (0: it is running or next). */
  positionOf(id: string): number {
    const queued = (this.stmt.queued.all() as JobRow[]).map((r) => r.id);
    const index = queued.indexOf(id);
    if (index < 0) return 0;
    return index + (this.active ? 1 : 0);
  }

  snapshot(): QueueSnapshot {
    const running = this.stmt.running.get() as JobRow | undefined;
    return {
      running: running ? this.summary(running) : null,
      queued: (this.stmt.queued.all() as JobRow[]).map((r) => this.summary(r)),
      recent: (this.stmt.recent.all(this.recentLimit) as JobRow[]).map((r) => this.summary(r)),
    };
  }

  /**
   * Cancels a queued job at once, or aborts the running one (between steps) and waits until it has
   * stopped. Returns the job's final status (a job that finished meanwhile stays `succeeded`).
   */
  async cancel(id: string, reason = 'Cancelled by the user.'): Promise<JobStatus> {
    const job = this.get(id);
    if (job.status === 'queued') {
      this.finish(id, 'cancelled', null, { name: 'CancelledError', code: 'E_CANCELLED', message: `${reason} (before it started)` });
      return 'cancelled';
    }
    if (job.status === 'running' && this.active?.id === id) {
      const active = this.active;
      active.abortReason ??= reason;
      active.controller.abort();
      await active.settled;
      return this.get(id).status;
    }
    return job.status;
  }

  /** Moves the named queued jobs to the front, in the given order; the others keep their order after them. */
  reorder(ids: string[]): QueueSnapshot {
    const queued = (this.stmt.queued.all() as JobRow[]);
    const queuedIds = new Set(queued.map((r) => r.id));
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw new StudioError('E_INVALID_REQUEST', `queue.reorder: job ${id} is named twice.`);
      seen.add(id);
      if (!queuedIds.has(id)) {
        const row = this.stmt.byId.get(id) as JobRow | undefined;
        throw new StudioError(row ? 'E_INVALID_REQUEST' : 'E_NOT_FOUND', row ? `Job ${id} is ${row.status}, not queued: only queued jobs can be reordered.` : `No job ${id}.`);
      }
    }
    const order = [...ids, ...queued.map((r) => r.id).filter((id) => !seen.has(id))];
    const base = queued[0]?.position ?? 1;
    this.db.transaction(() => order.forEach((id, i) => this.stmt.setPosition.run(base + i, id)))();
    this.changed();
    return this.snapshot();
  }

  /** Cancels every queued job (and with `includeRunning`, the running one). Returns the ids cancelled. */
  async clear(includeRunning = false, reason = 'The queue was cleared.'): Promise<string[]> {
    const ids = (this.stmt.queued.all() as JobRow[]).map((r) => r.id);
    this.db.transaction(() => {
      for (const id of ids) {
        this.stmt.finish.run({ id, status: 'cancelled', finishedAt: this.clock(), historyId: null, error: JSON.stringify({ name: 'CancelledError', code: 'E_CANCELLED', message: `${reason} (before it started)` }) });
      }
    })();
    if (ids.length > 0) this.changed();
    const running = this.active?.id;
    if (includeRunning && running) {
      if ((await this.cancel(running, reason)) === 'cancelled') ids.push(running);
    }
    return ids;
  }

  /**
   * Fails every queued job of a model at once with `error` (the model was removed: they could never
   * run). Returns their ids. A running job is left to finish with the sessions it already holds.
   */
  failQueuedForModel(modelId: string, error: SerializedError): string[] {
    const ids = (this.stmt.queued.all() as JobRow[]).filter((r) => r.model_id === modelId).map((r) => r.id);
    this.db.transaction(() => {
      for (const id of ids) this.stmt.finish.run({ id, status: 'failed', finishedAt: this.clock(), historyId: null, error: JSON.stringify(error) });
    })();
    if (ids.length > 0) this.changed();
    return ids;
  }

  /** Stops taking jobs and aborts the running one (it ends `cancelled`); queued jobs stay queued for next time. */
  async close(): Promise<void> {
    this.closed = true;
    const active = this.active;
    if (active) {
      active.abortReason ??= 'The app was closed while this job was running.';
      active.controller.abort();
      await active.settled;
    }
  }

  private pump(): void {
    if (!this.started || this.closed || this.active) return;
    const next = this.stmt.next.get() as { id: string; model_id: string; request: string } | undefined;
    if (!next) return;
    this.stmt.markRunning.run(this.clock(), next.id);
    const job: StoredJob = { id: next.id, modelId: next.model_id, request: JSON.parse(next.request) as QueuedRequest };
    const controller = new AbortController();
    const active: ActiveJob = { id: job.id, controller, abortReason: null, progress: null, settled: Promise.resolve() };
    this.active = active;
    this.changed();
    active.settled = this.run(job, {
      signal: controller.signal,
      onProgress: (progress) => {
        active.progress = progress;
      },
    }).then(
      (historyId) => this.finish(job.id, 'succeeded', historyId, null),
      (err: unknown) => {
        const error = serializeError(err);
        if (isCancelled(err)) {
          // The queue's reason (user, clear, shutdown) says more than the engine's "cancelled"; when the
          // engine had to be restarted to stop, that follows it (EngineRestartedError).
          const reason = active.abortReason;
          const message = reason === null ? error.message : error.name === 'EngineRestartedError' ? `${reason} ${error.message}` : reason;
          this.finish(job.id, 'cancelled', null, { ...error, message });
        } else {
          this.finish(job.id, 'failed', null, error);
        }
      },
    ).finally(() => {
      this.active = null;
      this.changed();
      // The next job starts on a fresh tick, after listeners have seen this one finish.
      setImmediate(() => this.pump());
    });
  }

  private finish(id: string, status: JobStatus, historyId: number | null, error: SerializedError | null): void {
    this.stmt.finish.run({ id, status, finishedAt: this.clock(), historyId, error: error ? JSON.stringify(error) : null });
    if (this.active?.id !== id) this.changed();
  }

  private changed(): void {
    this.onChange(this.snapshot());
  }

  private summary(row: JobRow): JobSummary {
    const progress = this.active?.id === row.id ? this.active.progress : null;
    return {
      id: row.id,
      status: row.status,
      mode: row.mode,
      prompt: row.prompt,
      modelId: row.model_id,
      createdAt: row.created_at,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      progress: progress ? { ...progress } : null,
      historyId: row.history_id,
      error: row.error ? (JSON.parse(row.error) as SerializedError) : null,
      warnings: JSON.parse(row.warnings) as string[],
    };
  }
}
