/**
 * The host's handle on the engine process: starts it, sends requests and matches replies, forwards
 * progress, cancels through AbortSignal, and restarts the process when it dies. A request that was in
 * flight when the process died fails with EngineCrashedError (E_ENGINE_CRASHED); the next one runs on
 * a fresh process.
 */
import type { EngineStatus } from '../../shared/contract.js';
import { CancelledError, NO_LIVE_PICTURE, StudioError } from '../../shared/errors.js';
import type { ExecutionProviderName } from '../../shared/generation.js';
import type { LiveFrame, LiveRequest } from '../../engine/pipelines/live.js';
import type { CropRegion } from '../../engine/pipelines/only-masked.js';
import type { RgbImage } from '../../engine/tensor/image.js';
import type { GenerateOptions, GenerateRequest, GenerateResult } from '../../engine/pipelines/types.js';
import { forkEngine, type EngineExit, type EngineLauncher, type EngineProcess } from './launcher.js';
import type { JobImageFiles } from '../job-images.js';
import type { EngineMessage, EngineProcessSettings, EngineReplies, HostMessage, ImageSource } from './protocol.js';

/** The engine process died (native crash, out of memory, killed) while a request was in flight. */
export class EngineCrashedError extends StudioError {
  override name = 'EngineCrashedError';
  constructor(message: string) {
    super('E_ENGINE_CRASHED', message);
  }
}

/** The client was closed (the app is shutting down). */
export class EngineClosedError extends StudioError {
  override name = 'EngineClosedError';
  constructor() {
    super('E_ENGINE_CLOSED', 'The engine has been shut down.');
  }
}

/** The engine process showed no sign of life for too long (frozen: SIGSTOP, a stalled machine); it was ended and restarted. */
export class EngineUnresponsiveError extends StudioError {
  override name = 'EngineUnresponsiveError';
  constructor(message: string) {
    super('E_ENGINE_UNRESPONSIVE', message);
  }
}

/**
 * A cancelled job whose engine process had to be ended and restarted to stop it. Still a cancellation
 * (E_CANCELLED); the job queue puts this message after the user's reason, so the restart is not hidden.
 */
export class EngineRestartedError extends CancelledError {
  override name = 'EngineRestartedError';
}

/** How long a cancelled generation may take to stop before its engine process is ended. */
export const DEFAULT_CANCEL_GRACE_MS = 15_000;
/**
 * How long the engine process may miss its heartbeat (protocol.ts) before it counts as frozen and is
 * ended. Generous: the beat comes from a worker thread, which nothing in a healthy engine blocks, but a
 * loaded machine may not schedule it for a while.
 */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 10_000;
/** While a cancel waits, silence this many heartbeats long already means frozen (no need to wait for the full timeout). */
const CANCEL_SILENT_BEATS = 5;

export interface EngineClientOptions {
  launcher?: EngineLauncher;
  /** See DEFAULT_CANCEL_GRACE_MS. */
  cancelGraceMs?: number;
  /** See DEFAULT_HEARTBEAT_TIMEOUT_MS. */
  heartbeatTimeoutMs?: number;
  settings?: EngineProcessSettings;
  onStatus?: (status: EngineStatus) => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  onProgress?: GenerateOptions['onProgress'];
}

type RequestMessage = Extract<HostMessage, { id: number }>;
type RequestType = Exclude<RequestMessage['type'], 'cancel'>;
/** Distributes Omit over the union so each variant keeps its own fields. */
type WithoutId<M> = M extends unknown ? Omit<M, 'id'> : never;

function describeExit(exit: EngineExit): string {
  if (exit.signal) return `killed by ${exit.signal}`;
  if (exit.code !== null) return `exit code ${exit.code}`;
  return 'it could not be started';
}

export class EngineClient {
  private readonly launcher: EngineLauncher;
  private settings: EngineProcessSettings;
  private readonly onStatus: (status: EngineStatus) => void;
  private readonly cancelGraceMs: number;
  private readonly heartbeatTimeoutMs: number;
  /** Cancels waiting for the engine to stop: while there are any, the watchdog's patience is short. */
  private cancelsWaiting = 0;
  /** The process the watchdog ended as frozen (its exit is reported as such). */
  private frozen: EngineProcess | null = null;
  private proc: EngineProcess | null = null;
  /** The picture the engine process was sent with the last live frame (the host's bytes object). */
  private livePicture: Uint8Array | null = null;
  private starting: Promise<void> | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private generating = 0;
  private closed = false;
  private current: EngineStatus = { state: 'stopped', pid: null, restarts: 0, message: null };
  /** What the engine process reported it uses (its defaults fill what settings leave out). */
  private effective: { providers: ExecutionProviderName[]; threads: number } | null = null;
  private readonly exited = new Set<Promise<void>>();

  constructor(options: EngineClientOptions = {}) {
    this.launcher = options.launcher ?? forkEngine;
    this.settings = { ...(options.settings ?? {}) };
    this.onStatus = options.onStatus ?? (() => undefined);
    this.cancelGraceMs = options.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS;
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
  }

  /**
   * Ends `proc` when its heartbeat stops for heartbeatTimeoutMs (or for a few beats while a cancel
   * waits). Armed at the first beat, so a slow start is not mistaken for a hang.
   */
  private watch(proc: EngineProcess): () => void {
    const intervalMs = proc.heartbeatMs;
    if (!proc.onHeartbeat || !intervalMs) return () => undefined;
    let last = 0;
    proc.onHeartbeat(() => (last = performance.now()));
    const check = setInterval(() => {
      if (last === 0 || this.proc !== proc) return;
      const silentMs = performance.now() - last;
      const patience = this.cancelsWaiting > 0 ? Math.min(this.heartbeatTimeoutMs, CANCEL_SILENT_BEATS * intervalMs) : this.heartbeatTimeoutMs;
      if (silentMs <= patience) return;
      this.frozen = proc;
      proc.kill();
    }, Math.max(10, Math.min(intervalMs, this.heartbeatTimeoutMs / 4)));
    check.unref();
    return () => clearInterval(check);
  }

  get status(): EngineStatus {
    return { ...this.current };
  }

  /** The engine process's id, while one runs. */
  get pid(): number | null {
    return this.current.pid;
  }

  /** Starts the engine process (once; again after a crash). Resolves when it is ready. */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new EngineClosedError());
    this.starting ??= this.spawn();
    return this.starting;
  }

  /** The providers and threads in effect (starting the engine if needed). */
  async effectiveSettings(): Promise<{ providers: ExecutionProviderName[]; threads: number }> {
    await this.start();
    if (!this.effective) throw new EngineClosedError();
    return { providers: [...this.effective.providers], threads: this.effective.threads };
  }

  private setStatus(patch: Partial<EngineStatus>): void {
    this.current = { ...this.current, ...patch };
    this.onStatus(this.status);
  }

  private spawn(): Promise<void> {
    this.setStatus({ state: 'starting', pid: null });
    const proc = this.launcher();
    this.proc = proc;
    const unwatch = this.watch(proc);
    let exitDone!: () => void;
    const exitPromise = new Promise<void>((resolve) => (exitDone = resolve));
    this.exited.add(exitPromise);
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      proc.onMessage((message) => {
        if (message.type === 'ready') {
          ready = true;
          this.effective = message.settings;
          this.setStatus({ state: this.generating > 0 ? 'busy' : 'ready', pid: message.pid, message: null });
          resolve();
          return;
        }
        this.dispatch(message);
      });
      proc.onExit((exit) => {
        this.exited.delete(exitPromise);
        exitDone();
        unwatch();
        if (this.proc !== proc) return;
        this.proc = null;
        this.starting = null;
        this.livePicture = null;
        const reason = describeExit(exit);
        const frozen = this.frozen === proc;
        if (frozen) this.frozen = null;
        const error = this.closed
          ? new EngineClosedError()
          : frozen
            ? new EngineUnresponsiveError(`The engine stopped responding (no sign of life for ${this.heartbeatTimeoutMs / 1000} s) and was restarted; what it was doing did not finish.`)
            : new EngineCrashedError(`The engine process stopped unexpectedly (${reason}); it is being restarted.`);
        for (const pending of this.pending.values()) pending.reject(error);
        this.pending.clear();
        if (!ready) reject(this.closed ? error : new EngineCrashedError(`The engine process failed to start (${reason}).`));
        if (this.closed) {
          this.setStatus({ state: 'stopped', pid: null });
          return;
        }
        this.setStatus({ state: 'crashed', pid: null, restarts: this.current.restarts + 1, message: error.message });
        // Restart now so the next job doesn't wait; a process that never got ready isn't retried in a
        // loop: the next request tries again.
        if (ready) this.start().catch(() => undefined);
      });
      proc.send({ type: 'init', settings: this.settings });
    });
  }

  private dispatch(message: EngineMessage): void {
    if (message.type === 'ready') return;
    const pending = this.pending.get(message.id);
    if (!pending) return;
    if (message.type === 'progress') {
      const { type: _type, id: _id, ...progress } = message;
      pending.onProgress?.(progress);
      return;
    }
    this.pending.delete(message.id);
    if (message.type === 'result') pending.resolve(message.value);
    else pending.reject(message.error);
  }

  private async request<T extends RequestType>(
    message: WithoutId<Extract<RequestMessage, { type: T }>>,
    onProgress?: GenerateOptions['onProgress'],
    onSent?: (id: number) => void,
  ): Promise<EngineReplies[T]> {
    await this.start();
    const proc = this.proc;
    if (!proc) throw new EngineCrashedError('The engine process stopped before the request could be sent.');
    const id = this.nextId++;
    return new Promise<EngineReplies[T]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, ...(onProgress ? { onProgress } : {}) });
      proc.send({ ...message, id } as HostMessage);
      onSent?.(id);
    });
  }

  /**
   * Runs one generation in the engine process. The signal cancels it between steps. `files`: images the
   * engine process reads itself (a queued job's, job-images.ts) into the request's fields.
   */
  async generate(modelDir: string, request: GenerateRequest, options: GenerateOptions & { files?: JobImageFiles } = {}): Promise<GenerateResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    this.generating++;
    if (this.current.state === 'ready') this.setStatus({ state: 'busy' });
    let sentId: number | null = null;
    let forced = false;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    let waiting = false;
    const onAbort = (): void => {
      if (sentId === null || graceTimer !== undefined) return;
      const proc = this.proc;
      waiting = true;
      this.cancelsWaiting++;
      proc?.send({ type: 'cancel', id: sentId });
      // The engine checks for cancellation between steps; a stage that doesn't come back (a huge VAE
      // decode, a hung provider) is ended with its process, which then restarts.
      graceTimer = setTimeout(() => {
        forced = true;
        proc?.kill();
      }, this.cancelGraceMs);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.request<'generate'>(
        { type: 'generate', modelDir, request, previewEvery: options.previewEvery ?? 1, ...(options.files ? { files: options.files } : {}) },
        options.onProgress,
        (id) => {
          sentId = id;
          if (signal?.aborted) onAbort();
        },
      );
    } catch (err) {
      if (forced) throw new EngineRestartedError(`The engine did not stop within ${this.cancelGraceMs} ms and was restarted.`);
      // Cancelled, and the engine had frozen: still a cancellation, and it says what happened.
      if (waiting && (err as { code?: unknown }).code === 'E_ENGINE_UNRESPONSIVE') {
        throw new EngineRestartedError('The engine had stopped responding and was restarted.');
      }
      throw err;
    } finally {
      if (waiting) this.cancelsWaiting--;
      clearTimeout(graceTimer);
      signal?.removeEventListener('abort', onAbort);
      this.generating--;
      if (this.generating === 0 && this.current.state === 'busy') this.setStatus({ state: 'ready' });
    }
  }

  /**
   * One live-painting frame (engine/pipelines/live.ts). The signal cancels it in the engine between
   * steps; like a job, a frame that does not stop within the grace ends the process.
   */
  async liveFrame(modelDir: string, request: LiveRequest, options: { signal?: AbortSignal } = {}): Promise<LiveFrame> {
    // A picture the engine process was sent for the frame before (the same bytes object: the host keeps
    // one per live session) is not sent again; a process that no longer holds it says so, and gets it.
    const picture = request.initImage;
    if (picture !== undefined && picture === this.livePicture) {
      try {
        return await this.sendLiveFrame(modelDir, { ...request, initImage: undefined, reusePicture: true }, options);
      } catch (err) {
        // (Errors cross from the engine process as data: { name, code, message }.)
        if (!String((err as { message?: unknown }).message).includes(NO_LIVE_PICTURE)) throw err;
      }
    }
    this.livePicture = picture ?? null;
    return this.sendLiveFrame(modelDir, request, options);
  }

  private async sendLiveFrame(modelDir: string, request: LiveRequest, options: { signal?: AbortSignal }): Promise<LiveFrame> {
    const { signal } = options;
    signal?.throwIfAborted();
    let sentId: number | null = null;
    let graceTimer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      if (sentId === null || graceTimer !== undefined) return;
      const proc = this.proc;
      proc?.send({ type: 'cancel', id: sentId });
      graceTimer = setTimeout(() => proc?.kill(), this.cancelGraceMs);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.request<'live'>({ type: 'live', modelDir, request }, undefined, (id) => {
        sentId = id;
        if (signal?.aborted) onAbort();
      });
    } finally {
      clearTimeout(graceTimer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Frees the engine's live session (its cached prompt, latents and tensors); no process, no session. */
  async endLive(): Promise<EngineReplies['liveEnd']> {
    this.livePicture = null;
    if (!this.proc || this.closed) return { ended: true };
    return this.request<'liveEnd'>({ type: 'liveEnd' });
  }

  /** A live frame's whole picture for Keep (the picture with the frame's crop put back), made in the engine process. */
  composeLiveFrame(picture: Uint8Array, crop: CropRegion, image: RgbImage): Promise<EngineReplies['liveCompose']> {
    return this.request<'liveCompose'>({ type: 'liveCompose', picture, crop, image });
  }

  /**
   * User images as history stores them (PNG, thumbnail, size), decoded in the engine process with at
   * most `maxPixels` pixels each: the host never decodes a user's image bytes itself.
   */
  prepareImages(images: ImageSource[], maxPixels: number): Promise<EngineReplies['prepareImages']> {
    if (images.length === 0) return Promise.resolve([]);
    return this.request<'prepareImages'>({ type: 'prepareImages', images, maxPixels });
  }

  info(modelDir: string): Promise<EngineReplies['info']> {
    return this.request<'info'>({ type: 'info', modelDir });
  }

  /** Changes providers/threads; remembered, so a restarted engine gets them too. */
  async configure(settings: EngineProcessSettings): Promise<EngineReplies['configure']> {
    this.settings = { ...this.settings, ...settings };
    const applied = await this.request<'configure'>({ type: 'configure', settings });
    this.effective = applied;
    return applied;
  }

  unload(modelDir: string | null): Promise<EngineReplies['unload']> {
    return this.request<'unload'>({ type: 'unload', modelDir });
  }

  /** Stops the engine process; pending requests fail with EngineClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    this.proc?.kill();
    await Promise.all([...this.exited]);
    if (this.current.state !== 'stopped') this.setStatus({ state: 'stopped', pid: null });
  }
}
