/**
 * The job queue: FIFO, one job at a time (one device), persisted in the host database so that queued
 * jobs survive a restart. A job that was running when the app died is marked failed with the reason at
 * the next start, never silently lost or silently rerun.
 *
 * The queue knows nothing of models: `run` (supplied by the host) turns a job into a history item id,
 * reporting progress and honouring the AbortSignal. A job's input images are not in its row: at enqueue
 * they are decoded into files in the data folder (job-images.ts), which the engine process reads when
 * the job runs, and which go when the job ends; at start, folders no queued job owns are removed.
 *
 * Listeners get deltas (`QueueDelta`: the jobs that changed), never the whole queue: with hundreds of
 * queued jobs, a snapshot per change to every client stalled the server.
 *
 * A full disk must not stop the queue. A job whose final state can't be written (SQLITE_FULL) keeps it
 * in memory, shown as finished, and it is written as soon as the disk takes it; a job that can't be
 * marked running stays queued and is tried again on a timer, so the queue moves on by itself once
 * there is room, without waiting for another request.
 */
import { randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { JobStatus, JobSummary, QueueDelta, QueueSnapshot, Requests } from '../shared/contract.js';
import { isCancelled, serializeError, StudioError, type SerializedError } from '../shared/errors.js';
import { MAX_QUEUED_JOBS } from '../shared/resource-limits.js';
import type { SqliteDatabase } from '../history/database.js';
import { toHistoryError } from '../history/errors.js';
import { hasInlineImages, JobImages, type JobImageFiles, type JobRequest } from './job-images.js';

/** A generate request as queued: the seed is always chosen before the job is stored. */
export type QueuedRequest = Requests['generate'] & { seed: number };

export interface StoredJob {
  id: string;
  modelId: string;
  /** The request without its images… */
  request: JobRequest;
  /** …which are files (absolute paths), read by the engine process when the job runs. */
  images: JobImageFiles;
}

export interface JobProgress {
  step: number;
  total: number;
}

export interface JobRunContext {
  signal: AbortSignal;
  onProgress: (progress: JobProgress) => void;
  /** Adds to the job's warnings what the run said it changed or left out (the engine's result warnings). */
  addWarnings: (warnings: readonly string[]) => void;
}

export type JobRunner = (job: StoredJob, context: JobRunContext) => Promise<number>;

export interface JobQueueOptions {
  run: JobRunner;
  /** Where queued jobs' images are written (<data>/jobs): a folder per job, owned by the queue. */
  imagesDir: string;
  /** Called after every change of the queue (enqueue, start, finish, cancel, reorder) with what changed. */
  onChange?: (delta: QueueDelta) => void;
  clock?: () => number;
  /** How many finished jobs `snapshot().recent` lists. */
  recentLimit?: number;
  /** How many finished jobs the database keeps; older rows are removed at start (history keeps the results). */
  keepFinished?: number;
  /** Most queued jobs (default MAX_QUEUED_JOBS). */
  maxQueued?: number;
  /** How long to wait before trying again to start a job when the database could not be written. */
  retryMs?: number;
}

const DEFAULT_RECENT_LIMIT = 20;
/** Finished rows kept in host.sqlite: months of use, a few hundred KiB (a finished row is small). */
export const DEFAULT_KEEP_FINISHED = 1000;
const DEFAULT_RETRY_MS = 1000;

/** A job's final state that the database refused (full disk): held here until it can be written. */
interface UnsavedFinish {
  status: JobStatus;
  finishedAt: number;
  historyId: number | null;
  error: SerializedError | null;
}

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

/** How a run ended, as finishRun records it. */
interface RunEnd {
  status: JobStatus;
  historyId: number | null;
  error: SerializedError | null;
}

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
  private readonly onChange: (delta: QueueDelta) => void;
  private readonly clock: () => number;
  private readonly recentLimit: number;
  private readonly keepFinished: number;
  private readonly maxQueued: number;
  private readonly retryMs: number;
  private readonly images: JobImages;
  /** Jobs whose images are being written, not yet in the database (start's clean-up leaves them alone). */
  private readonly stashing = new Set<string>();
  private active: ActiveJob | null = null;
  private revision = 0;
  /** The recent list's ids as the last delta left it (to tell clients which fell off). */
  private recentWindow: string[] = [];
  private readonly unsaved = new Map<string, UnsavedFinish>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private started = false;
  /** Started, and start's clean-up done: jobs may run. */
  private ready = false;
  private closed = false;
  private readonly stmt: {
    insert: Statement;
    maxPosition: Statement;
    next: Statement;
    byId: Statement;
    queued: Statement;
    queuedCount: Statement;
    recent: Statement;
    running: Statement;
    markRunning: Statement;
    warnings: Statement;
    setWarnings: Statement;
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
    this.keepFinished = Math.max(options.keepFinished ?? DEFAULT_KEEP_FINISHED, this.recentLimit);
    this.maxQueued = options.maxQueued ?? MAX_QUEUED_JOBS;
    this.retryMs = options.retryMs ?? DEFAULT_RETRY_MS;
    this.images = new JobImages(options.imagesDir);
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO jobs (id, position, status, model_id, mode, prompt, request, images, created_at, warnings)
         VALUES (@id, @position, 'queued', @modelId, @mode, @prompt, @request, @images, @createdAt, @warnings)`,
      ),
      maxPosition: db.prepare('SELECT COALESCE(MAX(position), 0) AS max FROM jobs').pluck(),
      next: db.prepare(`SELECT id, model_id, request, images FROM jobs WHERE status = 'queued' ORDER BY position, created_at LIMIT 1`),
      byId: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE id = ?`),
      queued: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE status = 'queued' ORDER BY position, created_at`),
      queuedCount: db.prepare(`SELECT COUNT(*) FROM jobs WHERE status = 'queued'`).pluck(),
      recent: db.prepare(
        `SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')
         ORDER BY finished_at DESC, position DESC LIMIT ?`,
      ),
      running: db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM jobs WHERE status = 'running'`),
      markRunning: db.prepare(`UPDATE jobs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'`),
      warnings: db.prepare('SELECT warnings FROM jobs WHERE id = ?').pluck(),
      setWarnings: db.prepare('UPDATE jobs SET warnings = ? WHERE id = ?'),
      finish: db.prepare(
        `UPDATE jobs SET status = @status, finished_at = @finishedAt, history_id = @historyId, error = @error,
           -- A finished job's request and image files are no longer needed: keep the row small.
           request = '{}', images = '{}'
         WHERE id = @id`,
      ),
      setPosition: db.prepare('UPDATE jobs SET position = ? WHERE id = ?'),
      interrupt: db.prepare(
        `UPDATE jobs SET status = 'failed', finished_at = @now, error = @error, request = '{}', images = '{}' WHERE status = 'running'`,
      ),
    };
  }

  /**
   * Marks jobs left `running` by a crash as failed (with the reason), removes the image folders that no
   * queued job owns, and starts running queued jobs. Returns the ids of the interrupted jobs.
   */
  async start(): Promise<string[]> {
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
    }
    this.pruneFinished();
    await this.moveInlineImages();
    const queued = (this.stmt.queued.all() as JobRow[]).map((r) => r.id);
    const removed = await this.images.removeAllBut(new Set([...queued, ...this.stashing]));
    if (removed.length > 0) console.error(`studio host: removed the images of ${removed.length} job(s) that are no longer queued.`);
    this.recentWindow = this.recentIds();
    this.ready = true;
    this.pump();
    return interrupted;
  }

  /**
   * Removes finished rows beyond the newest `keepFinished`: a finished job's result is in the history
   * database, and its row only served the queue's list of recent jobs. A database that refuses the delete
   * (full disk) keeps them until the next start.
   */
  private pruneFinished(): void {
    try {
      const removed = this.db
        .prepare(
          `DELETE FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND id NOT IN (
             SELECT id FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')
             ORDER BY finished_at DESC, position DESC LIMIT ?)`,
        )
        .run(this.keepFinished).changes;
      if (removed > 0) console.error(`studio host: removed ${removed} finished job(s) from the queue's database (the newest ${this.keepFinished} are kept).`);
    } catch (err) {
      console.error(`studio host: could not remove old finished jobs: ${(err as Error).message}`);
    }
  }

  /**
   * Queued rows stored by a version that kept images in the row (base64 in the request) get files like
   * any new job. A job whose images can't be written (a full disk) fails with the reason, its row kept.
   */
  private async moveInlineImages(): Promise<void> {
    const rows = this.db.prepare(`SELECT id FROM jobs WHERE status = 'queued' AND images = '{}'`).pluck().all() as string[];
    const read = this.db.prepare('SELECT request FROM jobs WHERE id = ?').pluck();
    const update = this.db.prepare('UPDATE jobs SET request = ?, images = ? WHERE id = ?');
    for (const id of rows) {
      const request = JSON.parse(read.get(id) as string) as QueuedRequest;
      if (!hasInlineImages(request)) continue;
      try {
        const stored = await this.images.stash(id, request);
        update.run(JSON.stringify(stored.request), JSON.stringify(stored.files), id);
      } catch (err) {
        await this.images.remove(id);
        const error = serializeError(toHistoryErrorOrSelf(err));
        try {
          this.finish(id, 'failed', null, { ...error, message: `This job was queued by an earlier version, and its images could not be moved to files: ${error.message}` });
        } catch {
          // The database refuses too: the job stays as it is, and this is tried again at the next start.
        }
      }
    }
  }

  /**
   * Adds a job at the end of the queue; `warnings` say what the host changed to run it. Its images are
   * written to files first. Throws E_QUEUE_FULL past the cap, and E_DISK_FULL (nothing stored, no file
   * left) when the disk can't take the images or the database the row.
   */
  async enqueue(modelId: string, request: QueuedRequest, warnings: readonly string[] = []): Promise<JobSummary> {
    this.assertRoom();
    const id = randomUUID();
    this.stashing.add(id);
    try {
      const stored = await this.images.stash(id, request);
      try {
        // Checked again: the queue may have closed or filled while the images were written.
        this.assertRoom();
        const position = (this.stmt.maxPosition.get() as number) + 1;
        this.stmt.insert.run({
          id,
          position,
          modelId,
          mode: request.mode,
          prompt: request.prompt,
          request: JSON.stringify(stored.request),
          images: JSON.stringify(stored.files),
          createdAt: this.clock(),
          warnings: JSON.stringify(warnings),
        });
      } catch (err) {
        await this.images.remove(id);
        throw err instanceof StudioError ? err : toHistoryError(err, 'queue the job');
      }
    } finally {
      this.stashing.delete(id);
    }
    this.announce({ added: [id] });
    this.pump();
    return this.get(id);
  }

  private assertRoom(): void {
    if (this.closed) throw new StudioError('E_CLOSED', 'The job queue is closed (the app is shutting down).');
    const waiting = this.stmt.queuedCount.get() as number;
    if (waiting >= this.maxQueued) {
      throw new StudioError('E_QUEUE_FULL', `The queue is full: ${waiting} jobs are waiting (at most ${this.maxQueued}). Wait for some to finish, or cancel some, then generate again.`);
    }
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
    const running = (this.stmt.running.all() as JobRow[]).find((r) => !this.unsaved.has(r.id));
    return {
      revision: this.revision,
      running: running ? this.summary(running) : null,
      queued: (this.stmt.queued.all() as JobRow[]).map((r) => this.summary(r)),
      recent: this.recentRows().map((r) => this.summary(r)),
    };
  }

  /** The latest finished jobs, newest first: the database's and those whose final state is only in memory. */
  private recentRows(): JobRow[] {
    const rows = this.stmt.recent.all(this.recentLimit) as JobRow[];
    if (this.unsaved.size === 0) return rows;
    const held = [...this.unsaved.keys()].flatMap((id) => {
      const row = this.stmt.byId.get(id) as JobRow | undefined;
      return row ? [this.withUnsaved(row)] : [];
    });
    const merged = [...held, ...rows.filter((r) => !this.unsaved.has(r.id))];
    merged.sort((a, b) => (b.finished_at ?? 0) - (a.finished_at ?? 0) || b.position - a.position);
    return merged.slice(0, this.recentLimit);
  }

  private recentIds(): string[] {
    return this.recentRows().map((r) => r.id);
  }

  /**
   * Cancels a queued job at once, or aborts the running one (between steps) and waits until it has
   * stopped. Returns the job's final status (a job that finished meanwhile stays `succeeded`).
   */
  async cancel(id: string, reason = 'Cancelled by the user.'): Promise<JobStatus> {
    const job = this.get(id);
    if (job.status === 'queued') {
      try {
        this.finish(id, 'cancelled', null, { name: 'CancelledError', code: 'E_CANCELLED', message: `${reason} (before it started)` });
      } catch (err) {
        throw toHistoryError(err, 'cancel the job');
      }
      await this.images.remove(id);
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
    const before = new Map(queued.map((r) => [r.id, r.position]));
    try {
      this.db.transaction(() => order.forEach((id, i) => this.stmt.setPosition.run(base + i, id)))();
    } catch (err) {
      throw toHistoryError(err, 'reorder the queue');
    }
    this.announce({ changed: order.filter((id, i) => before.get(id) !== base + i) });
    return this.snapshot();
  }

  /** Cancels every queued job (and with `includeRunning`, the running one). Returns the ids cancelled. */
  async clear(includeRunning = false, reason = 'The queue was cleared.'): Promise<string[]> {
    const ids = (this.stmt.queued.all() as JobRow[]).map((r) => r.id);
    try {
      this.db.transaction(() => {
        for (const id of ids) {
          this.stmt.finish.run({ id, status: 'cancelled', finishedAt: this.clock(), historyId: null, error: JSON.stringify({ name: 'CancelledError', code: 'E_CANCELLED', message: `${reason} (before it started)` }) });
        }
      })();
    } catch (err) {
      throw toHistoryError(err, 'clear the queue');
    }
    for (const id of ids) await this.images.remove(id);
    if (ids.length > 0) this.announce({ changed: ids });
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
    try {
      this.db.transaction(() => {
        for (const id of ids) this.stmt.finish.run({ id, status: 'failed', finishedAt: this.clock(), historyId: null, error: JSON.stringify(error) });
      })();
    } catch (err) {
      throw toHistoryError(err, 'fail the jobs of the removed model');
    }
    for (const id of ids) void this.images.remove(id);
    if (ids.length > 0) this.announce({ changed: ids });
    return ids;
  }

  /** Stops taking jobs and aborts the running one (it ends `cancelled`); queued jobs stay queued for next time. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const active = this.active;
    if (active) {
      active.abortReason ??= 'The app was closed while this job was running.';
      active.controller.abort();
      await active.settled;
    }
  }

  /**
   * Starts the next queued job when none runs. Never throws: when the database can't be written (a
   * full disk), the job stays queued and this runs again after `retryMs`.
   */
  private pump(): void {
    if (!this.ready || this.closed || this.active) return;
    this.saveUnsaved();
    let next: { id: string; model_id: string; request: string; images: string } | undefined;
    try {
      next = this.stmt.next.get() as typeof next;
      if (!next) return;
      this.stmt.markRunning.run(this.clock(), next.id);
    } catch (err) {
      console.error(`studio host: could not start the next job (tried again in ${this.retryMs} ms): ${serializeError(toHistoryErrorOrSelf(err)).message}`);
      this.retryLater();
      return;
    }
    const job: StoredJob = {
      id: next.id,
      modelId: next.model_id,
      request: JSON.parse(next.request) as JobRequest,
      images: this.images.paths(next.id, JSON.parse(next.images) as JobImageFiles),
    };
    const controller = new AbortController();
    const active: ActiveJob = { id: job.id, controller, abortReason: null, progress: null, settled: Promise.resolve() };
    this.active = active;
    this.announce({ changed: [job.id] });
    active.settled = this.run(job, {
      signal: controller.signal,
      onProgress: (progress) => {
        active.progress = progress;
      },
      addWarnings: (warnings) => this.addWarnings(job.id, warnings),
    }).then(
      (historyId): RunEnd => ({ status: 'succeeded', historyId, error: null }),
      (err: unknown): RunEnd => {
        const error = serializeError(toHistoryErrorOrSelf(err));
        if (!isCancelled(err)) return { status: 'failed', historyId: null, error };
        // The queue's reason (user, clear, shutdown) says more than the engine's "cancelled"; when the
        // engine had to be restarted to stop, that follows it (EngineRestartedError).
        const reason = active.abortReason;
        const message = reason === null ? error.message : error.name === 'EngineRestartedError' ? `${reason} ${error.message}` : reason;
        return { status: 'cancelled', historyId: null, error: { ...error, message } };
      },
    ).then(async (end) => {
      // It will not run again, whether or not its end can be written (a job found running at the next
      // start is interrupted, not rerun): its images go first, so a job seen finished has none left.
      await this.images.remove(job.id);
      this.finishRun(job.id, end.status, end.historyId, end.error);
    }).catch((err: unknown) => {
      console.error(`studio host: the queue failed to record job ${job.id}:`, err);
    }).finally(() => {
      this.active = null;
      this.announce({ changed: [job.id] });
      // The next job starts on a fresh tick, after listeners have seen this one finish.
      setImmediate(this.pumpNext);
    });
  }

  /**
   * Appends warnings to a job's list (each once). A database that refuses the write (a full disk) loses
   * only the warnings, never the job: they are secondary to its result, which is written next.
   */
  private addWarnings(id: string, warnings: readonly string[]): void {
    if (warnings.length === 0) return;
    try {
      const stored = JSON.parse((this.stmt.warnings.get(id) as string | undefined) ?? '[]') as string[];
      const merged = [...stored, ...warnings.filter((w) => !stored.includes(w))];
      if (merged.length !== stored.length) this.stmt.setWarnings.run(JSON.stringify(merged), id);
    } catch (err) {
      console.error(`studio host: the warnings of job ${id} could not be written: ${serializeError(toHistoryErrorOrSelf(err)).message}`);
    }
  }

  private readonly pumpNext = (): void => {
    this.pump();
  };

  /** Writes a queued job's end (throws when the database refuses it: it stays queued, with its images; the caller removes them once written). */
  private finish(id: string, status: JobStatus, historyId: number | null, error: SerializedError | null): void {
    this.stmt.finish.run({ id, status, finishedAt: this.clock(), historyId, error: error ? JSON.stringify(error) : null });
    if (this.active?.id !== id) this.announce({ changed: [id] });
  }

  /** A run's end: written now, or held in memory (shown as finished) when the database refuses it. */
  private finishRun(id: string, status: JobStatus, historyId: number | null, error: SerializedError | null): void {
    const finishedAt = this.clock();
    try {
      this.stmt.finish.run({ id, status, finishedAt, historyId, error: error ? JSON.stringify(error) : null });
    } catch (err) {
      console.error(`studio host: job ${id} ended ${status}, but that could not be written yet: ${serializeError(toHistoryErrorOrSelf(err)).message}`);
      this.unsaved.set(id, { status, finishedAt, historyId, error });
      this.retryLater();
    }
  }

  /** Writes the final states held in memory; those the database still refuses stay held. */
  private saveUnsaved(): void {
    for (const [id, f] of this.unsaved) {
      try {
        this.stmt.finish.run({ id, status: f.status, finishedAt: f.finishedAt, historyId: f.historyId, error: f.error ? JSON.stringify(f.error) : null });
        this.unsaved.delete(id);
      } catch {
        return;
      }
    }
  }

  private retryLater(): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.saveUnsaved();
      this.pump();
      if (this.unsaved.size > 0) this.retryLater();
    }, this.retryMs);
    this.retryTimer.unref?.();
  }

  /** Tells listeners which jobs were added or changed, and which fell off the recent list. */
  private announce(ids: { added?: string[]; changed?: string[] }): void {
    const added = (ids.added ?? []).flatMap((id) => this.summaryOf(id));
    const changed = (ids.changed ?? []).flatMap((id) => this.summaryOf(id));
    const window = this.recentIds();
    const shown = new Set(window);
    const candidates = new Set([...this.recentWindow, ...changed.filter((j) => isFinished(j.status)).map((j) => j.id)]);
    const removed = [...candidates].filter((id) => !shown.has(id));
    this.recentWindow = window;
    this.revision++;
    this.onChange({ revision: this.revision, added, changed, removed });
  }

  private summaryOf(id: string): JobSummary[] {
    const row = this.stmt.byId.get(id) as JobRow | undefined;
    return row ? [this.summary(row)] : [];
  }

  private withUnsaved(row: JobRow): JobRow {
    const f = this.unsaved.get(row.id);
    if (!f) return row;
    return { ...row, status: f.status, finished_at: f.finishedAt, history_id: f.historyId, error: f.error ? JSON.stringify(f.error) : null };
  }

  private summary(stored: JobRow): JobSummary {
    const row = this.withUnsaved(stored);
    const progress = this.active?.id === row.id ? this.active.progress : null;
    return {
      id: row.id,
      status: row.status,
      position: row.position,
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

function isFinished(status: JobStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

/** SQLite and file-system errors become HistoryErrors with a code (E_DISK_FULL …); anything else is kept. */
function toHistoryErrorOrSelf(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const io = typeof code === 'string' && (code.startsWith('SQLITE_') || typeof (err as { errno?: unknown }).errno === 'number');
  if (!io || !(err instanceof Error)) return err;
  try {
    return toHistoryError(err, 'record the job');
  } catch {
    return err;
  }
}
