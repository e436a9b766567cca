/**
 * The IPC contract: every channel (invoke: request → response) and every event the host pushes, in
 * one place. Both front doors serve exactly this: Electron IPC (electron/main + electron/preload) and
 * browser mode (`studio serve`, HTTP + WebSocket). The handler table in electron/host/handlers.ts is
 * checked against it, and so is the preload's `window.studio`.
 *
 * Requests are the zod schemas' output types (electron/shared/contract-schemas.ts), so a request type
 * is never written twice. The schemas are imported as types only: a renderer that imports this file
 * for its types pulls no zod at run time.
 *
 * Wire encoding: images are base64 strings of their file bytes (see contract-schemas.ts); every
 * response and event is plain JSON data; errors are `SerializedError` `{name, code, message}`.
 */
import type { z } from 'zod';
import type { RequestSchemas } from './contract-schemas.js';
import type { SerializedError } from './errors.js';
import type { ExecutionProviderName, GenerationMode, GenerationParams, GenerationTimings } from './generation.js';
import type {
  ExportReport,
  HistoryCounts,
  HistoryItem,
  HistoryLineage,
  HistoryPage,
  ImportReport,
} from './history.js';
import type { ModelInfo } from './model.js';
import type { LoraInfo } from './loras.js';
import type { LibraryModel, ModelDownloadProgress } from './model-library.js';

/** Every invoke channel, in the order a reader meets them. A test checks this equals the schema table. */
export const CHANNELS = [
  'generate',
  'cancel',
  'queue.list',
  'queue.reorder',
  'queue.clear',
  'history.page',
  'history.search',
  'history.get',
  'history.lineage',
  'history.counts',
  'history.setFavorite',
  'history.setTags',
  'history.delete',
  'history.restore',
  'history.purge',
  'history.import',
  'history.export',
  'history.image',
  'history.reveal',
  'models.list',
  'models.info',
  'models.import',
  'models.download',
  'models.cancelDownload',
  'models.remove',
  'models.setDefault',
  'models.select',
  'models.convertCommand',
  'loras.list',
  'loras.restore',
  'settings.get',
  'settings.set',
  'app.info',
  'tokenize',
  'embeddings.list',
  'live.frame',
  'live.keep',
  'live.stop',
] as const;
export type ChannelName = (typeof CHANNELS)[number];

/**
 * The raw Electron IPC channels behind the contract: the preload sends every invoke on one channel
 * (after checking the contract channel name) and receives every event on another. Nothing else
 * crosses between the renderer and main.
 */
export const ELECTRON_IPC = {
  invoke: 'studio:invoke',
  event: 'studio:event',
} as const;

/**
 * The desktop app's own origin: main serves the renderer and stored images (`/api/images/<hash>`, the
 * route browser mode has too) on this `app:` protocol.
 */
export const ELECTRON_APP_ORIGIN = 'app://studio';

/** Every event the host pushes to subscribers. */
export const EVENTS = ['job.progress', 'job.preview', 'queue.changed', 'history.changed', 'engine.status', 'models.downloadProgress', 'models.changed'] as const;
export type EventName = (typeof EVENTS)[number];

// ── shapes that responses and events share ───────────────────────────────────────────────────────

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobSummary {
  id: string;
  status: JobStatus;
  /** Queued jobs run in ascending position (queue.reorder rewrites it). */
  position: number;
  mode: GenerationMode;
  prompt: string;
  modelId: string;
  /** Milliseconds since the epoch. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Latest progress of a running job. */
  progress: { step: number; total: number } | null;
  /** The history item of a succeeded job (failed and cancelled jobs are kept here, not in history). */
  historyId: number | null;
  /** Why a job failed or was cancelled. */
  error: SerializedError | null;
  /**
   * What was changed to run it: by the host at enqueue (a mask of another size than the picture was
   * resized), then what the engine said of the run (a prompt cut to a fixed-length U-Net, an fp16 VAE
   * decoded in fp32). Empty when nothing was.
   */
  warnings: string[];
}

export interface QueueSnapshot {
  /** The revision of the last `queue.changed` delta this snapshot includes. */
  revision: number;
  running: JobSummary | null;
  /** In the order they will run. */
  queued: JobSummary[];
  /** The latest finished jobs, newest first. */
  recent: JobSummary[];
}

/**
 * What changed in the queue (the `queue.changed` event): only the jobs that changed, never the whole
 * queue, so a long queue costs each client one small message per change. A client holds the jobs of a
 * `queue.list` snapshot and applies each delta in revision order: `added` and `changed` replace a job
 * by id, `removed` drops it (a finished job that fell off the recent list; a job can be in `changed`
 * and `removed` of the same delta, so its final state is still seen). A revision that is not the
 * previous one plus one means a delta was missed: load `queue.list` again.
 */
export interface QueueDelta {
  revision: number;
  /** Jobs just queued. */
  added: JobSummary[];
  /** Jobs whose status, position or result changed (started, finished, cancelled, reordered). */
  changed: JobSummary[];
  /** Ids of jobs no longer shown (finished, beyond the recent list). */
  removed: string[];
}

export const ENGINE_STATES = ['stopped', 'starting', 'ready', 'busy', 'crashed'] as const;
export type EngineState = (typeof ENGINE_STATES)[number];

export interface EngineStatus {
  state: EngineState;
  /** The engine process's id while it runs. */
  pid: number | null;
  /** How many times the engine process was restarted after dying. */
  restarts: number;
  /** Why it crashed, for `crashed`. */
  message: string | null;
}

/** @deprecated The library's `LibraryModel` replaced it (`bundled` is now `origin === 'bundled'`). */
export type ModelEntry = LibraryModel;

/** A download that is running, or stopped and resumable (it resumes at the next start). */
export interface ModelDownloadEntry {
  downloadId: string;
  name: string;
  /** False: interrupted (e.g. the server kept failing); the bytes so far are kept. */
  running: boolean;
  receivedBytes: number;
  /** Null while some file's size is unknown. */
  totalBytes: number | null;
  /** The latest progress event of a running download (null before the first one, and when stopped). */
  progress: ModelDownloadProgress | null;
}

export interface StudioSettings {
  /** Execution providers in the order to try. */
  providers: ExecutionProviderName[];
  /** CPU intra-op threads; 0 lets onnxruntime decide. */
  threads: number;
  /** Release the text encoders' sessions after each job's prompts are encoded (memory for SDXL); default false. */
  releaseTextEncoders: boolean;
  /** Where each result is also written as a PNG; null: only the history folder. */
  outputFolder: string | null;
  /** The library's default model (read-only here: set it with models.setDefault). */
  selectedModelId: string | null;
  /** Largest input image (init image, mask, control image, label map) in pixels, read from its header before decoding. */
  maxInputPixels: number;
  /** Largest output side: the model's native size times this. */
  maxSizeFactor: number;
  /** Most memory the engine may need for one job (its estimate, checked before running), in MiB. */
  maxJobMemoryMb: number;
  /** The canvas's undo history budget in MiB: past it the oldest steps are dropped. */
  undoMemoryMb: number;
}

export interface AppInfo {
  name: string;
  version: string;
  /** 'electron': the desktop app; 'serve': `studio serve` (browser mode); 'embedded': tests and tools. */
  frontDoor: 'electron' | 'serve' | 'embedded';
  dataDir: string;
  platform: string;
  arch: string;
  versions: { node: string; electron: string | null };
  engine: EngineStatus;
}

// ── requests and responses ───────────────────────────────────────────────────────────────────────

/** What each channel accepts (after parsing: defaults applied). */
export type Requests = { [C in ChannelName]: z.output<RequestSchemas[C]> };
/** What a caller may send (before parsing). */
export type RequestInputs = { [C in ChannelName]: z.input<RequestSchemas[C]> };

/** What each channel answers. */
export interface Responses {
  /** `warnings`: what the host changed to run the request (e.g. a mask resized to the picture); also on the job. */
  generate: { jobId: string; seed: number; position: number; warnings: string[] };
  cancel: { jobId: string; status: JobStatus };
  'queue.list': QueueSnapshot;
  'queue.reorder': QueueSnapshot;
  'queue.clear': { cancelled: string[] };
  'history.page': HistoryPage;
  'history.search': HistoryPage;
  'history.get': HistoryItem;
  'history.lineage': HistoryLineage;
  'history.counts': HistoryCounts;
  'history.setFavorite': { updated: number };
  'history.setTags': HistoryItem;
  'history.delete': { deleted: number };
  'history.restore': { restored: number };
  'history.purge': { purged: number[]; filesRemoved: number };
  'history.import': ImportReport;
  'history.export': ExportReport;
  'history.image': { hash: string; mime: 'image/png' | 'image/webp'; data: string };
  /**
   * The item's image file on disk (absolute). `revealed`: the desktop app showed it in the file manager;
   * false in browser mode, which has none (the page shows the path to copy instead).
   */
  'history.reveal': { path: string; revealed: boolean };
  'models.list': {
    models: LibraryModel[];
    /** The model a request without `modelId` uses; null when there is none. */
    defaultId: string | null;
    /** @deprecated Same as defaultId, while the renderer still reads it. */
    selectedId: string | null;
    downloads: ModelDownloadEntry[];
  };
  /** What the engine detected when the model was added (its `dir` is where the model is now). */
  'models.info': { model: LibraryModel; info: ModelInfo };
  'models.import': LibraryModel;
  'models.download': { downloadId: string };
  'models.cancelDownload': { downloadId: string; cancelled: true };
  /** `failedJobs`: the queued jobs of the model, failed at once with E_MODEL_REMOVED (they could never run). */
  'models.remove': { removed: string; defaultId: string | null; failedJobs: string[] };
  'models.setDefault': { defaultId: string };
  /** @deprecated models.setDefault. */
  'models.select': { selectedId: string };
  /** How to turn a single-file `.safetensors` checkpoint into a folder this app imports (it bundles no Python). */
  'models.convertCommand': { command: string; argv: string[]; out: string };
  /**
   * The LoRAs of the library (`<data>/loras`) with their records and, when a model is named, why each can't
   * be applied to it (`problem`, null when it can); files that can't be read, by name, with the reason.
   */
  'loras.list': { loras: (LoraInfo & { problem: string | null })[]; broken: { name: string; error: string }[] };
  /**
   * Reuse: the prompt with each `<lora:NAME…>` whose recorded hash is a library LoRA of another name
   * renamed to it (A1111's infotext paste); `missing`: names found neither by name nor by hash.
   */
  'loras.restore': { prompt: string; missing: string[] };
  'settings.get': StudioSettings;
  'settings.set': StudioSettings;
  'app.info': AppInfo;
  /** A1111's counter: `count` tokens of `maxTokens` = 75 × the chunks the prompt needs (e.g. 82/150). */
  tokenize: { count: number; maxTokens: number; truncated: boolean };
  /** The textual-inversion embeddings a prompt word can name (the library's embeddings folder), sorted: the prompt box's completions. */
  'embeddings.list': { names: string[] };
  'live.frame': LiveFrameAnswer;
  /** The history item the kept frame became, and its picture (the renderer puts it on the canvas). */
  'live.keep': { historyId: number; output: { hash: string; width: number; height: number } };
  /** `stopped`: a frame was in flight and is cancelled. */
  'live.stop': { stopped: boolean };
}

/**
 * A live frame: only the repainted crop of the picture crosses, as raw RGBA (no PNG encode), to be
 * drawn over the canvas at (x, y). 'superseded': a newer frame (or live.stop) replaced it.
 */
export type LiveFrameAnswer =
  | {
      status: 'done';
      /** Names the frame for live.keep (the host keeps the newest frame only). */
      frameId: string;
      crop: { x: number; y: number; width: number; height: number };
      /** base64 of crop.width × crop.height × 4 bytes. */
      rgba: string;
      params: GenerationParams;
      timings: GenerationTimings;
      provider: ExecutionProviderName;
      /** The CPU threads live frames run on when the engine keeps a copy of the model for them with fewer threads than queued jobs. */
      threads?: number;
      /**
       * Where the frame's time went in the host, in ms: `hostMs` from the request's arrival to the
       * answer (decoding the request, the engine call, building the RGBA); `engineCallMs` the engine
       * call alone (the engine process's round trip: `timings.totalMs` plus the messages).
       */
      hostTimings?: { hostMs: number; engineCallMs: number };
      /** Names the picture the host now holds: the next frames send `samePicture` with it instead of the picture. */
      pictureId?: string;
    }
  | { status: 'superseded' };

/** The answer to every invoke, at both front doors: errors are data, never a thrown Error. */
export type InvokeResult<C extends ChannelName> =
  | { ok: true; result: Responses[C] }
  | { ok: false; error: SerializedError };

// ── events ───────────────────────────────────────────────────────────────────────────────────────

export interface Events {
  'job.progress': { jobId: string; step: number; total: number; elapsedMs: number; etaMs: number };
  /** A small preview of the current latents (one pixel per latent cell), as base64 PNG. */
  'job.preview': { jobId: string; step: number; width: number; height: number; png: string };
  'queue.changed': QueueDelta;
  'history.changed': { kind: 'added' | 'updated' | 'deleted' | 'restored' | 'purged' | 'imported'; ids: number[] };
  'engine.status': EngineStatus;
  /** A model download's progress (throttled), and once more with its final phase (done, failed, cancelled). */
  'models.downloadProgress': ModelDownloadProgress;
  /** The library changed (import, remove, default, a finished download): model pickers reload models.list. */
  'models.changed': { kind: 'imported' | 'removed' | 'default' | 'downloaded'; modelId: string; defaultId: string | null };
}

export interface StudioEvent<E extends EventName = EventName> {
  event: E;
  payload: Events[E];
}

export type EventListener = (event: { [E in EventName]: StudioEvent<E> }[EventName]) => void;

/** A handler table: exactly one async handler per channel (a missing or extra key is a type error). */
export type Handlers = { [C in ChannelName]: (request: Requests[C]) => Promise<Responses[C]> };

/**
 * The API the renderer sees (`window.studio` in Electron, the WebSocket client in a browser): one
 * method per channel, and `on` for events, which returns its unsubscribe.
 */
export interface StudioApi {
  invoke<C extends ChannelName>(channel: C, request: RequestInputs[C]): Promise<InvokeResult<C>>;
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void;
  /**
   * Electron only: the file system path of a dropped or picked DOM `File` ('' when it has none). A page
   * in a browser never learns where a file is, so browser mode has no such function.
   */
  pathForFile?(file: unknown): string;
  /**
   * Electron only: the origin that serves `/api/images/<hash>` (ELECTRON_APP_ORIGIN). It is the page's
   * own origin except when the renderer is loaded from a dev server; browser mode serves images on the
   * page's origin and has no such field.
   */
  readonly imageOrigin?: string;
}

// ── compile-time checks: the lists above and the type maps agree ─────────────────────────────────

type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails to compile when CHANNELS and the schema table name different channels. */
export const CHANNELS_MATCH_SCHEMAS: Exactly<ChannelName, keyof RequestSchemas> = true;
/** Fails to compile when Responses has a channel too many or too few. */
export const RESPONSES_MATCH_CHANNELS: Exactly<keyof Responses, ChannelName> = true;
/** Fails to compile when Events and EVENTS disagree. */
export const EVENTS_MATCH: Exactly<keyof Events, EventName> = true;
