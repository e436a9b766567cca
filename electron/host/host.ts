/**
 * The host: everything behind the contract. It owns the history store, the host database (job queue,
 * settings, models), and the engine process, and answers every channel through one handler table
 * (handlers.ts). Both front doors (Electron IPC in electron/main, `studio serve` in server.ts) call
 * `invoke` and `subscribe`, and nothing else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import type {
  AppInfo,
  ChannelName,
  EventListener,
  EventName,
  Events,
  InvokeResult,
  StudioEvent,
} from '../shared/contract.js';
import { isChannel, parseRequest } from '../shared/contract-schemas.js';
import { InvalidRequestError, serializeError, StudioError } from '../shared/errors.js';
import type { HistoryItem } from '../shared/history.js';
import type { GenerateRequest } from '../engine/pipelines/types.js';
import { ClipTokenizer } from '../engine/tokenizer/clip-tokenizer.js';
import type { SqliteDatabase } from '../history/database.js';
import { isPng } from '../history/png.js';
import { HistoryStore } from '../history/store.js';
import { EngineClient } from './engine-process/engine-client.js';
import type { EngineLauncher } from './engine-process/launcher.js';
import type { EngineProcessSettings } from './engine-process/protocol.js';
import { createHandlers } from './handlers.js';
import { openHostDatabase } from './host-database.js';
import { JobQueue, type JobRunner } from './job-queue.js';
import { ModelHashes, ModelRegistry } from './model-registry.js';
import { SettingsStore } from './settings-store.js';

export interface HostOptions {
  /** The data folder: history (images, database) and host.sqlite. Created if needed. */
  dataDir: string;
  frontDoor?: AppInfo['frontDoor'];
  /** The model that ships with the app, if any (listed first, selected when nothing else is). */
  bundledModelDir?: string | null;
  /** How the engine process is started (default: Node fork with tsx; Electron passes utilityProcess). */
  engineLauncher?: EngineLauncher;
  /** Overrides the stored provider/thread settings for this run (tests force `cpu`). */
  engineSettings?: EngineProcessSettings;
  /** Send a preview every n steps (0 = never). Default 1. */
  previewEvery?: number;
  version?: string;
  electronVersion?: string | null;
}

const APP_NAME = 'Latent Studio';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Input images may be PNG, JPEG or WebP; the history store keeps PNG. */
async function asPng(bytes: Uint8Array): Promise<Uint8Array> {
  return isPng(bytes) ? bytes : sharp(bytes).png().toBuffer();
}

function rgbToPngBase64(image: { rgb: Uint8Array; width: number; height: number }): Promise<string> {
  return sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer()
    .then((b) => b.toString('base64'));
}

export class Host {
  private readonly listeners = new Set<EventListener>();
  private readonly tokenizers = new Map<string, Promise<ClipTokenizer>>();
  private readonly handlers: ReturnType<typeof createHandlers>;
  private closed = false;
  readonly queue: JobQueue;
  readonly engine: EngineClient;
  readonly models: ModelRegistry;
  readonly modelHashes: ModelHashes;
  readonly settings: SettingsStore;
  readonly appInfo: Omit<AppInfo, 'engine'>;
  private readonly previewEvery: number;

  private constructor(
    readonly dataDir: string,
    readonly history: HistoryStore,
    private readonly db: SqliteDatabase,
    options: HostOptions,
  ) {
    this.models = new ModelRegistry(db, options.bundledModelDir && existsSync(options.bundledModelDir) ? options.bundledModelDir : null);
    this.modelHashes = new ModelHashes(db);
    this.settings = new SettingsStore(db);
    this.previewEvery = options.previewEvery ?? 1;
    const stored = this.settings.read();
    const engineSettings: EngineProcessSettings = {
      ...(stored.providers ? { providers: stored.providers } : {}),
      ...(stored.threads !== null ? { threads: stored.threads } : {}),
      ...options.engineSettings,
    };
    this.engine = new EngineClient({
      ...(options.engineLauncher ? { launcher: options.engineLauncher } : {}),
      settings: engineSettings,
      onStatus: (status) => this.emit('engine.status', status),
    });
    this.queue = new JobQueue(db, {
      run: this.runJob,
      onChange: (snapshot) => this.emit('queue.changed', snapshot),
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
    this.handlers = createHandlers(this);
  }

  /** Opens the data folder, starts the engine process and resumes the queue. */
  static async open(options: HostOptions): Promise<Host> {
    const dataDir = resolve(options.dataDir);
    await mkdir(dataDir, { recursive: true });
    const history = await HistoryStore.open(join(dataDir, 'history'));
    let db: SqliteDatabase;
    try {
      db = openHostDatabase(dataDir);
    } catch (err) {
      history.close();
      throw err;
    }
    const host = new Host(dataDir, history, db, options);
    host.engine.start().catch(() => undefined);
    host.queue.start();
    return host;
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

  /** Graceful shutdown: cancel the running job (queued ones stay for next time), stop the engine, close the databases. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.close();
    await this.engine.close();
    this.db.close();
    this.history.close();
    this.listeners.clear();
  }

  /** The model a request without `modelId` uses: the selected one, else the first known. */
  defaultModelId(): string {
    const selected = this.settings.read().selectedModelId;
    if (selected && this.models.find(selected)) return selected;
    const first = this.models.list()[0];
    if (!first) throw new StudioError('E_NOT_FOUND', 'No model is available; import a model folder first (models.import).');
    return first.id;
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

  private readonly runJob: JobRunner = async (job, { signal, onProgress }) => {
    const model = this.models.get(job.modelId);
    const req = job.request;
    const initImage = req.initImage !== undefined
      ? Buffer.from(req.initImage, 'base64')
      : req.initImageHash !== undefined
        ? await readFile(this.history.imagePath(req.initImageHash))
        : undefined;
    const mask = req.mask !== undefined ? Buffer.from(req.mask, 'base64') : undefined;
    const engineRequest: GenerateRequest = { mode: req.mode, prompt: req.prompt, seed: req.seed };
    for (const key of ['negativePrompt', 'steps', 'cfg', 'sampler', 'width', 'height', 'strength', 'maskBlur', 'inpaintArea', 'maskPadding'] as const) {
      if (req[key] !== undefined) (engineRequest as unknown as Record<string, unknown>)[key] = req[key];
    }
    if (req.control) {
      engineRequest.control = {
        image: Buffer.from(req.control.image, 'base64'),
        scale: req.control.scale,
        ...(req.control.controlnetPath !== undefined ? { model: req.control.controlnetPath } : {}),
      };
    }
    if (initImage) engineRequest.initImage = initImage;
    if (mask) engineRequest.mask = mask;

    const [result, modelHash] = await Promise.all([
      this.engine.generate(model.dir, engineRequest, {
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
      }),
      this.modelHashes.hashOf(model.dir),
    ]);
    const item: HistoryItem = await this.history.add({
      params: result.params,
      model: { id: model.id, hash: modelHash },
      output: result.image,
      ...(req.initImageHash !== undefined ? { initImage: { hash: req.initImageHash } } : initImage ? { initImage: { png: await asPng(initImage) } } : {}),
      ...(mask ? { mask: { png: await asPng(mask) } } : {}),
      parentId: req.parentId ?? null,
      executionProvider: result.provider,
      timings: result.timings,
    });
    this.emit('history.changed', { kind: 'added', ids: [item.id] });
    await this.copyToOutputFolder(item);
    return item.id;
  };

  /** With an output folder set, each result is also written there as `<id>-<seed>.png`. */
  private async copyToOutputFolder(item: HistoryItem): Promise<void> {
    const folder = this.settings.read().outputFolder;
    if (!folder || !item.output) return;
    try {
      await mkdir(folder, { recursive: true });
      await copyFile(this.history.imagePath(item.output.hash), join(folder, `${item.id}-${item.params.seed ?? 'x'}.png`));
    } catch (err) {
      // The result is safe in history; a bad output folder must not fail the job.
      console.error(`studio host: could not copy result ${item.id} to the output folder ${folder}:`, (err as Error).message);
    }
  }
}
