/**
 * The host: everything behind the contract. It owns the history store, the model library (in the
 * history database), the host database (job queue, settings), and the engine process, and answers
 * every channel through one handler table
 * (handlers.ts). Both front doors (Electron IPC in electron/main, `studio serve` in server.ts) call
 * `invoke` and `subscribe`, and nothing else.
 */
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, statfs } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import type {
  AppInfo,
  ChannelName,
  EventListener,
  EventName,
  Events,
  InvokeResult,
  ModelDownloadEntry,
  Responses,
  StudioEvent,
} from '../shared/contract.js';
import { isChannel, parseRequest } from '../shared/contract-schemas.js';
import { InvalidRequestError, isSerializedError, ModelFolderError, serializeError, StudioError } from '../shared/errors.js';
import type { HistoryItem, NewGeneration } from '../shared/history.js';
import type { ModelDownloadProgress, ModelDownloadRequest } from '../shared/model-library.js';
import type { GenerateRequest } from '../engine/pipelines/types.js';
import { maskFromRect, type RawMaskRect } from '../engine/tensor/mask-rect.js';
import { ClipTokenizer } from '../engine/tokenizer/clip-tokenizer.js';
import type { SqliteDatabase } from '../history/database.js';
import { makeFolder } from '../history/folders.js';
import { HistoryStore } from '../history/store.js';
import { EngineClient } from './engine-process/engine-client.js';
import type { EngineLauncher } from './engine-process/launcher.js';
import type { EngineProcessSettings, ImageSource } from './engine-process/protocol.js';
import { BUNDLED_MODEL_NAMES, ModelLibrary } from '../model-library/library.js';
import type { ModelInspection } from '../model-library/inspect.js';
import { assertClientPaths } from './client-paths.js';
import { createHandlers } from './handlers.js';
import { LEGACY_MODELS_TABLE, openHostDatabase } from './host-database.js';
import { JOB_IMAGES_FOLDER } from './job-images.js';
import { JobQueue, type JobRunner } from './job-queue.js';
import { LiveFrames } from './live-frames.js';
import { generationLimits, outputSize } from './request-limits.js';
import { DEFAULT_MAX_INPUT_PIXELS, OUTSIZED_JOB_PIXEL_RATIO } from '../shared/resource-limits.js';
import { SettingsStore } from './settings-store.js';
import { loraFolder } from '../model-library/loras.js';
import { upscalerFolder } from '../model-library/upscalers.js';
import { embeddingFolder } from '../model-library/embeddings.js';

export interface HostOptions {
  /** The data folder: history (images, database) and host.sqlite. Created if needed. */
  dataDir: string;
  frontDoor?: AppInfo['frontDoor'];
  /**
   * The models that ship with the app (read-only in the library; absent folders are left out). Default:
   * `bundledModelDir` and its siblings (BUNDLED_MODEL_NAMES: inpaint, layout and the LCM folders), or none.
   */
  bundledModelDirs?: readonly string[];
  /** The main bundled model (native-models/emoji-ldm); see bundledModelDirs. */
  bundledModelDir?: string | null;
  /** How the engine process is started (default: Node fork with tsx; Electron passes utilityProcess). */
  engineLauncher?: EngineLauncher;
  /** How long the engine process may miss its heartbeat before it is restarted (default DEFAULT_HEARTBEAT_TIMEOUT_MS). */
  engineHeartbeatTimeoutMs?: number;
  /** Overrides the stored provider/thread settings for this run (tests force `cpu`). */
  engineSettings?: EngineProcessSettings;
  /** Send a preview every n steps (0 = never). Default 1. */
  previewEvery?: number;
  version?: string;
  electronVersion?: string | null;
  /** What only the desktop app can do (Electron main passes them; browser mode has none). */
  platform?: PlatformActions;
}

/** Desktop-only actions the host calls when present; without one, a handler answers data the page can use instead. */
export interface PlatformActions {
  /** Shows a file in the OS file manager (Electron: shell.showItemInFolder). */
  revealFile?: (path: string) => void | Promise<void>;
}

const APP_NAME = 'Latent Studio';
/**
 * Free space the data folder's disk must have for the studio to start: its databases' write-ahead
 * logs and the first results. On a full disk it says so and stops, rather than serving a studio whose
 * every write fails.
 */
export const MIN_FREE_BYTES_TO_START = 4 * 1024 * 1024;

async function assertRoomToStart(dataDir: string): Promise<void> {
  const fs = await statfs(dataDir);
  const free = fs.bavail * fs.bsize;
  if (free < MIN_FREE_BYTES_TO_START) {
    throw new StudioError(
      'E_DISK_FULL',
      `The disk holding the data folder ${dataDir} is full (${Math.floor(free / 1024)} KB free; the studio needs at least ${MIN_FREE_BYTES_TO_START / 1024 / 1024} MB to start). Free some space and start again.`,
    );
  }
}

function bundledDirsFrom(options: HostOptions): string[] {
  if (options.bundledModelDirs) return [...options.bundledModelDirs];
  if (!options.bundledModelDir) return [];
  const parent = dirname(options.bundledModelDir);
  // The other bundled models ship next to the main one (native-models/ or the app's resources).
  return [options.bundledModelDir, ...BUNDLED_MODEL_NAMES.slice(1).map((name) => join(parent, name))];
}

/** Errors from the engine process arrive as plain data; the library and the handlers want StudioErrors. */
function fromEngine(err: unknown): unknown {
  if (err instanceof Error || !isSerializedError(err)) return err;
  if (err.code === 'E_MODEL_FOLDER') return new ModelFolderError(err.message);
  const revived = new StudioError(err.code, err.message);
  revived.name = err.name;
  return revived;
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep);
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** An image as bytes, or a file the engine process reads (a queued job's, job-images.ts). */
type ImageBytesOrFile = Uint8Array | string;

function imageSource(image: ImageBytesOrFile, what: string): ImageSource {
  return typeof image === 'string' ? { path: image, what } : { bytes: image, what };
}

/** A placeholder the engine process replaces with a file's bytes (EngineClient.generate's `files`). */
const NO_BYTES = new Uint8Array(0);

function rgbToPngBase64(image: { rgb: Uint8Array; width: number; height: number }): Promise<string> {
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer()
    .then((b) => b.toString('base64'));
}

export class Host {
  private readonly listeners = new Set<EventListener>();
  private readonly tokenizers = new Map<string, Promise<ClipTokenizer>>();
  private handlers!: ReturnType<typeof createHandlers>;
  private closed = false;
  /** Downloads running in this session, with their latest progress (null before the first event). */
  private readonly activeDownloads = new Map<string, { name: string; progress: ModelDownloadProgress | null }>();
  readonly queue: JobQueue;
  readonly engine: EngineClient;
  /** Live painting: frames beside the queue (live-frames.ts). */
  readonly live: LiveFrames;
  private openedLibrary: ModelLibrary | null = null;
  /** Where the library keeps copied and downloaded models. */
  readonly modelsDir: string;
  readonly settings: SettingsStore;
  readonly appInfo: Omit<AppInfo, 'engine'>;
  readonly platform: PlatformActions;
  /** native-models/ beside the bundled model (for the convert command); null: the source tree's. */
  readonly nativeModelsDir: string | null;
  private readonly previewEvery: number;

  private constructor(
    readonly dataDir: string,
    readonly history: HistoryStore,
    private readonly db: SqliteDatabase,
    options: HostOptions,
  ) {
    this.settings = new SettingsStore(db);
    this.modelsDir = join(dataDir, 'models');
    this.previewEvery = options.previewEvery ?? 1;
    this.platform = options.platform ?? {};
    this.nativeModelsDir = options.bundledModelDir ? dirname(options.bundledModelDir) : null;
    const stored = this.settings.read();
    const engineSettings: EngineProcessSettings = {
      ...(stored.providers ? { providers: stored.providers } : {}),
      ...(stored.threads !== null ? { threads: stored.threads } : {}),
      ...(stored.releaseTextEncoders !== null ? { releaseTextEncoders: stored.releaseTextEncoders } : {}),
      ...options.engineSettings,
    };
    this.engine = new EngineClient({
      ...(options.engineLauncher ? { launcher: options.engineLauncher } : {}),
      ...(options.engineHeartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: options.engineHeartbeatTimeoutMs } : {}),
      settings: engineSettings,
      onStatus: (status) => this.emit('engine.status', status),
    });
    this.live = new LiveFrames(
      (dir, request, signal) => this.engine.liveFrame(dir, request, { signal }),
      () => this.engine.endLive(),
    );
    this.queue = new JobQueue(db, {
      run: this.runJob,
      imagesDir: join(dataDir, JOB_IMAGES_FOLDER),
      onChange: (delta) => this.emit('queue.changed', delta),
    });
    this.appInfo = {
      name: APP_NAME,
      version: options.version ?? packageVersion(),
      frontDoor: options.frontDoor ?? 'embedded',
      dataDir,
      platform: process.platform,
      arch: process.arch,
      versions: { node: process.versions.node, electron: options.electronVersion ?? null },
    };
  }

  /** The model library (opened by open() before anything is served). */
  get library(): ModelLibrary {
    if (!this.openedLibrary) throw new Error('the model library is not open yet');
    return this.openedLibrary;
  }

  /**
   * Opens the data folder, starts the engine process, opens the model library (importing an older
   * version's models once), resumes unfinished downloads and then the queue.
   */
  static async open(options: HostOptions): Promise<Host> {
    const dataDir = resolve(options.dataDir);
    try {
      await mkdir(dataDir, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') await assertRoomToStart(dirname(dataDir));
      throw err;
    }
    await assertRoomToStart(dataDir);
    // Imported files are decoded in the engine process too (the host never decodes a user's image);
    // the store opens before the engine client exists, so the decoder finds it when an import runs.
    let engine: EngineClient | null = null;
    const history = await HistoryStore.open(join(dataDir, 'history'), {
      decodeUserImage: async (bytes, what) => {
        if (!engine) throw new StudioError('E_ENGINE_CLOSED', 'The engine is not running.');
        let prepared;
        try {
          [prepared] = await engine.prepareImages([{ bytes, what }], DEFAULT_MAX_INPUT_PIXELS);
        } catch (err) {
          throw fromEngine(err);
        }
        return { width: prepared!.width, height: prepared!.height, thumbnail: prepared!.thumbnail };
      },
      // Missing thumbnails are made by the engine process too, once it exists (below).
      thumbnailsAtOpen: false,
    });
    let db: SqliteDatabase;
    try {
      db = openHostDatabase(dataDir);
    } catch (err) {
      history.close();
      throw err;
    }
    const host = new Host(dataDir, history, db, options);
    engine = host.engine;
    host.engine.start().catch(() => undefined);
    // In the background: the studio serves meanwhile (a missing thumbnail only shows as a placeholder).
    // The files are already in history, checked when stored: no pixel limit.
    host.history
      .rebuildThumbnails(async (path) => {
        const [prepared] = await host.engine.prepareImages([{ path, what: 'history image' }], 0);
        return prepared!.thumbnail;
      })
      .then(
        (made) => {
          if (made > 0) console.error(`studio host: made ${made} missing thumbnail(s) again.`);
        },
        (err: unknown) => console.error(`studio host: missing thumbnails could not be made: ${serializeError(err).message}`),
      );
    try {
      host.openedLibrary = await ModelLibrary.openInDataDir(join(dataDir, 'history'), {
        modelsDir: host.modelsDir,
        bundledDirs: bundledDirsFrom(options),
        inspect: (dir) => host.inspectModel(dir),
      });
      for (const problem of host.library.bundledProblems) {
        console.error(`studio host: the bundled model ${problem.dir} can't be used: ${problem.error}`);
      }
      await host.importLegacyModels();
    } catch (err) {
      await host.openedLibrary?.close();
      await host.engine.close();
      db.close();
      history.close();
      throw err;
    }
    host.handlers = createHandlers(host);
    await host.resumeDownloads();
    await host.queue.start();
    return host;
  }

  /**
   * The library's validator: the engine process opens the folder (where generation happens, so a
   * referenced model's sessions are ready for its first job). A folder being assembled in the models
   * folder (a download) is released again, since the model will run from where it is moved to.
   */
  private async inspectModel(dir: string): Promise<ModelInspection> {
    let inspection: ModelInspection;
    try {
      inspection = await this.engine.info(dir);
    } catch (err) {
      throw fromEngine(err);
    }
    if (isInside(this.modelsDir, resolve(dir))) this.releaseModel(dir);
    return inspection;
  }

  /** Frees a folder's engine sessions in the background (they wait for a running job to finish). */
  releaseModel(dir: string): void {
    this.tokenizers.delete(dir);
    this.engine.unload(dir).catch(() => undefined);
  }

  /**
   * Moves the models an older version registered in host.sqlite (migration 2 renamed the table) into
   * the library, referenced in place, and its selected model to the library's default; then drops the
   * old table. A folder that is gone or broken can't be imported: it is named in the log and left out.
   */
  private async importLegacyModels(): Promise<void> {
    const hasTable = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(LEGACY_MODELS_TABLE);
    if (hasTable) {
      const rows = this.db.prepare(`SELECT id, dir FROM ${LEGACY_MODELS_TABLE} ORDER BY added_at, id`).all() as Array<{ id: string; dir: string }>;
      // A folder that is gone or broken (E_MODEL_FOLDER) will not get better; anything else (the
      // engine process not starting, a read error) is tried again at the next start.
      let retry = false;
      for (const row of rows) {
        try {
          const model = await this.library.importFolder({ path: row.dir, copy: false });
          if (model.id !== row.id) console.error(`studio host: the model "${row.id}" is now "${model.id}" in the model library.`);
        } catch (err) {
          const error = serializeError(err);
          if (error.code === 'E_DUPLICATE') continue; // already moved (an earlier start stopped midway)
          const transient = error.code !== 'E_MODEL_FOLDER';
          retry ||= transient;
          console.error(`studio host: the model "${row.id}" (${row.dir}) could not be moved to the model library${transient ? ' (tried again at the next start)' : ''}: ${error.message}`);
        }
      }
      // The old selection waits with the table, so it can name a model that is only imported later.
      if (retry) return;
      this.db.exec(`DROP TABLE ${LEGACY_MODELS_TABLE}`);
    }
    const selected = this.settings.takeLegacySelectedModelId();
    if (selected && this.library.find(selected)) this.library.setDefault(selected);
  }

  /** Downloads that an earlier run left unfinished continue now. */
  private async resumeDownloads(): Promise<void> {
    const pending = await this.library.pendingDownloads();
    if (pending.length === 0) return;
    console.error(`studio host: resuming ${pending.length} unfinished model download(s): ${pending.map((p) => `"${p.name}"`).join(', ')}`);
    for (const p of pending) {
      try {
        this.library.resumeDownload(p.downloadId, this.onDownloadProgress);
        this.activeDownloads.set(p.downloadId, { name: p.name, progress: null });
      } catch (err) {
        console.error(`studio host: the download "${p.name}" could not be resumed: ${serializeError(err).message}`);
      }
    }
  }

  /** Starts a download (or returns the running one for the same request). */
  startDownload(request: ModelDownloadRequest): string {
    const { downloadId } = this.library.startDownload(request, this.onDownloadProgress);
    if (!this.activeDownloads.has(downloadId)) this.activeDownloads.set(downloadId, { name: request.name.trim(), progress: null });
    return downloadId;
  }

  private readonly onDownloadProgress = (progress: ModelDownloadProgress): void => {
    const final = progress.phase === 'done' || progress.phase === 'failed' || progress.phase === 'cancelled';
    if (final) this.activeDownloads.delete(progress.downloadId);
    else this.activeDownloads.set(progress.downloadId, { name: progress.name, progress });
    this.emit('models.downloadProgress', progress);
    if (progress.phase === 'done' && progress.modelId !== undefined) {
      this.emit('models.changed', { kind: 'downloaded', modelId: progress.modelId, defaultId: this.library.defaultModel()?.id ?? null });
    }
  };

  /** Running downloads, then the stopped ones that can be resumed. */
  async downloads(): Promise<ModelDownloadEntry[]> {
    const running = [...this.activeDownloads.entries()].map(([downloadId, d]) => ({
      downloadId,
      name: d.name,
      running: true,
      receivedBytes: d.progress?.receivedBytes ?? 0,
      totalBytes: d.progress?.totalBytes ?? null,
      progress: d.progress,
    }));
    const stopped = (await this.library.pendingDownloads())
      .filter((p) => !this.activeDownloads.has(p.downloadId))
      .map((p) => ({ downloadId: p.downloadId, name: p.name, running: false, receivedBytes: p.receivedBytes, totalBytes: p.totalBytes, progress: null }));
    return [...running, ...stopped];
  }

  /**
   * Answers one request: validates the channel and the payload, runs the handler, and returns the
   * result or the error as data. Never throws.
   */
  async invoke(channel: unknown, payload: unknown): Promise<InvokeResult<ChannelName>> {
    try {
      if (!isChannel(channel)) {
        const name = typeof channel === 'string' ? JSON.stringify(channel.slice(0, 64)) : typeof channel;
        throw new InvalidRequestError(`unknown channel ${name}`);
      }
      if (this.closed) throw new StudioError('E_CLOSED', 'The studio is shutting down.');
      const request = parseRequest(channel, payload);
      assertClientPaths(channel, request);
      const handler = this.handlers[channel] as (req: unknown) => Promise<unknown>;
      return { ok: true, result: (await handler(request)) as never };
    } catch (err) {
      const error = serializeError(err);
      if (error.code === 'E_INTERNAL') console.error(`studio host: ${String(channel)} failed with a bug:`, err);
      return { ok: false, error };
    }
  }

  /** Every event goes to every subscriber. Returns the unsubscribe. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit<E extends EventName>(event: E, payload: Events[E]): void {
    const message = { event, payload } as StudioEvent<E>;
    for (const listener of [...this.listeners]) {
      try {
        listener(message as Parameters<EventListener>[0]);
      } catch (err) {
        console.error(`studio host: a ${event} listener threw:`, err);
      }
    }
  }

  /**
   * Graceful shutdown: cancel the running job (queued ones stay for next time), pause the downloads
   * (they resume at the next start), stop the engine, close the databases.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.live.stop();
    await this.queue.close();
    // Before the engine: a download being verified still needs it.
    await this.library.close();
    this.activeDownloads.clear();
    await this.engine.close();
    this.db.close();
    this.history.close();
    this.listeners.clear();
  }

  /** The model a request without `modelId` uses: the library's default. */
  defaultModelId(): string {
    const model = this.library.defaultModel();
    if (!model) throw new StudioError('E_NOT_FOUND', 'No model is available; import a model folder first (models.import).');
    return model.id;
  }

  tokenizer(modelDir: string): Promise<ClipTokenizer> {
    let t = this.tokenizers.get(modelDir);
    if (!t) {
      t = ClipTokenizer.fromFolder(join(modelDir, 'tokenizer'));
      this.tokenizers.set(modelDir, t);
      t.catch(() => this.tokenizers.delete(modelDir));
    }
    return t;
  }

  private readonly runJob: JobRunner = async (job, { signal, onProgress, addWarnings }) => {
    const model = this.library.get(job.modelId);
    const req = job.request;
    // The request's own images are files the engine process reads (job.images: job-images.ts); this
    // process never holds them. An init image from history is read here (it is checked for being purged).
    const files = job.images;
    const historyImage = req.initImageHash !== undefined ? await this.readHistoryImage(req.initImageHash) : undefined;
    // <lora:name:…> tags in the prompt are looked up in the library's LoRA folder.
    // Embedding names (A1111 textual inversion) are looked up in the library's embeddings folder.
    const engineRequest: GenerateRequest = {
      mode: req.mode,
      prompt: req.prompt,
      seed: req.seed,
      loraDirs: [loraFolder(this.dataDir)],
      embeddingDirs: [embeddingFolder(this.dataDir)],
      // A hires fix may name an ONNX upscaler in the data folder's upscalers/.
      upscalerDirs: [upscalerFolder(this.dataDir)],
    };
    for (const key of ['negativePrompt', 'steps', 'cfg', 'sampler', 'width', 'height', 'strength', 'maskBlur', 'inpaintArea', 'maskPadding', 'clipSkip', 'emphasis', 'padConds', 'hires', 'softInpaint', 'aestheticScore', 'negativeAestheticScore'] as const) {
      if (req[key] !== undefined) (engineRequest as unknown as Record<string, unknown>)[key] = req[key];
    }
    // control.image and the regions' masks are placeholders here, filled from `files` by the engine process.
    if (req.control) {
      engineRequest.control = {
        image: NO_BYTES,
        scale: req.control.scale,
        ...(req.control.controlnetPath !== undefined ? { model: req.control.controlnetPath } : {}),
      };
    }
    if (historyImage) engineRequest.initImage = historyImage;
    if (req.regions && req.regions.length > 0) {
      engineRequest.regions = req.regions.map((r) => ({ prompt: r.prompt, mask: NO_BYTES, ...(r.weight !== undefined ? { weight: r.weight } : {}) }));
    }
    const limits = generationLimits(this.settings.read());
    engineRequest.maxInputPixels = limits.maxInputPixels;

    // An outsized job (far more pixels than the model's native size, allowed by a raised maxSizeFactor)
    // leaves gigabytes in the sessions' memory arenas: its sessions are released after it.
    const native = model.nativeResolution;
    const out = outputSize(req, model);
    const pixels = out.width * out.height;
    const outsized = pixels > native.width * native.height * OUTSIZED_JOB_PIXEL_RATIO;
    const result = await this.engine.generate(model.dir, engineRequest, {
      files,
      signal,
      previewEvery: this.previewEvery,
      onProgress: (p) => {
        onProgress({ step: p.step, total: p.total });
        this.emit('job.progress', { jobId: job.id, step: p.step, total: p.total, elapsedMs: p.elapsedMs, etaMs: p.etaMs });
        if (p.preview) {
          const { width, height } = p.preview;
          rgbToPngBase64(p.preview).then(
            (png) => this.emit('job.preview', { jobId: job.id, step: p.step, width, height, png }),
            () => undefined,
          );
        }
      },
    }).finally(() => {
      if (outsized) this.releaseModel(model.dir);
    });
    // What the engine changed or left out (a prompt cut to the U-Net's length, an fp16 VAE run in fp32)
    // stays with the job, beside what the host said at enqueue.
    addWarnings(result.warnings);
    this.library.recordProviders(model.id, Object.values(result.providers));
    const item: HistoryItem = await this.history.add({
      params: result.params,
      model: { id: model.id, hash: model.contentHash },
      output: result.image,
      ...(req.initImageHash !== undefined ? { initImage: { hash: req.initImageHash } } : {}),
      ...(await this.storedInputs({ initImage: files.initImage, mask: files.mask, labelMap: files.labelMap, regionMasks: files.regions ?? [] }, limits.maxInputPixels)),
      parentId: req.parentId ?? null,
      executionProvider: result.provider,
      timings: result.timings,
      ...loraRecord(result.loras),
    });
    this.emit('history.changed', { kind: 'added', ids: [item.id] });
    await this.copyToOutputFolder(item);
    return item.id;
  };

  /**
   * Live painting's Keep: the shown frame goes into history as the inpaint it is (its picture, mask and
   * every parameter), like a queued job's result.
   */
  async keepLiveFrame(frameId: string): Promise<Responses['live.keep']> {
    const { modelId, request, frame, parentId } = this.live.shownFrame(frameId);
    const model = this.library.get(modelId);
    // A frame carries only its crop: the engine process puts it back into the picture (never the host).
    let output;
    try {
      output = await this.engine.composeLiveFrame(request.initImage!, frame.crop, frame.image);
    } catch (err) {
      throw fromEngine(err);
    }
    const item = await this.history.add({
      params: frame.params,
      model: { id: model.id, hash: model.contentHash },
      output,
      ...(await this.storedInputs(
        { initImage: request.initImage, mask: request.mask ?? (await rawMaskPng(request.maskRect!, frame.picture)) },
        generationLimits(this.settings.read()).maxInputPixels,
      )),
      parentId,
      executionProvider: frame.provider,
      timings: frame.timings,
      ...loraRecord(frame.loras),
    });
    this.emit('history.changed', { kind: 'added', ids: [item.id] });
    await this.copyToOutputFolder(item);
    const { hash, width, height } = item.output!;
    return { historyId: item.id, output: { hash, width, height } };
  }

  /**
   * A job's user-supplied images as history stores them. The engine process decodes, checks and
   * thumbnails them (engine/tensor/stored-image.ts): the host never decodes a user's image bytes, so a
   * bomb that passed the header check, or a file that decodes badly, can't cost the process that serves
   * every client.
   */
  private async storedInputs(
    images: { initImage?: ImageBytesOrFile | undefined; mask?: ImageBytesOrFile | undefined; labelMap?: ImageBytesOrFile | undefined; regionMasks?: ImageBytesOrFile[] },
    maxPixels: number,
  ): Promise<Pick<NewGeneration, 'initImage' | 'mask' | 'labelMap' | 'regionMasks'>> {
    const what = { initImage: 'init image', mask: 'mask', labelMap: 'label map' } as const;
    const given = (Object.keys(what) as Array<keyof typeof what>).flatMap((key) => {
      const image = images[key];
      return image !== undefined ? [{ key, image }] : [];
    });
    // Regional prompts' masks go with them, after the named inputs.
    const regions = (images.regionMasks ?? []).map((image, i) => imageSource(image, `mask of region ${i + 1}`));
    let prepared;
    try {
      prepared = await this.engine.prepareImages([...given.map(({ key, image }) => imageSource(image, what[key])), ...regions], maxPixels);
    } catch (err) {
      throw fromEngine(err);
    }
    const named = Object.fromEntries(given.map(({ key }, i) => [key, { prepared: prepared[i]! }]));
    return regions.length > 0 ? { ...named, regionMasks: prepared.slice(given.length).map((p) => ({ prepared: p })) } : named;
  }

  /** An init image named by hash, read when its job starts: it may have been purged while the job waited. */
  private async readHistoryImage(hash: string): Promise<Buffer> {
    try {
      return await readFile(this.history.imagePath(hash));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      throw new StudioError(
        'E_NOT_FOUND',
        `The init image of this job is no longer in history (it was purged while the job waited); pick the picture again and generate.`,
      );
    }
  }

  /** With an output folder set, each result is also written there as `<id>-<seed>.png`. */
  private async copyToOutputFolder(item: HistoryItem): Promise<void> {
    const folder = this.settings.read().outputFolder;
    if (!folder || !item.output) return;
    try {
      await makeFolder(folder, 'outputFolder');
      await copyFile(this.history.imagePath(item.output.hash), join(folder, `${item.id}-${item.params.seed ?? 'x'}.png`));
    } catch (err) {
      // The result is safe in history; a bad output folder must not fail the job.
      console.error(`studio host: could not copy result ${item.id} to the output folder ${folder}:`, (err as Error).message);
    }
  }
}

/** The LoRAs a result was made with, as history records them (name and hash: what Reuse looks them up by). */
function loraRecord(loras: ReadonlyArray<{ name: string; hash: string }>): Pick<NewGeneration, 'loras'> {
  return loras.length > 0 ? { loras: loras.map(({ name, hash }) => ({ name, hash })) } : {};
}

/** A live frame's raw mask rectangle as the grey PNG at the picture's size that history stores. */
async function rawMaskPng(rect: RawMaskRect, size: { width: number; height: number }): Promise<Buffer> {
  const { width, height, data } = maskFromRect(rect, size);
  return sharp(Buffer.from(data.buffer, data.byteOffset, data.length), { raw: { width, height, channels: 1 } }).png().toBuffer();
}
