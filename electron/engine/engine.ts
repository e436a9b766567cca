/**
 * The diffusion engine: opens model folders (sessions cached per model), runs one job at a time per
 * device, and reports progress and cancellation. Plain Node; never imports electron.
 */
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { InvalidRequestError, NO_LIVE_PICTURE } from '../shared/errors.js';
import { HIRES_PIXEL_UPSCALERS, isLatentUpscaler, type ExecutionProviderName } from '../shared/generation.js';
import type { ModelInfo, SessionReport } from '../shared/model.js';
import { applyPromptLoras, releaseLoraSessions } from './lora/sessions.js';
import { openModelFolder, type LoadedModel } from './model/model-folder.js';
import type { SessionSettings } from './model/onnx-module.js';
import { throwIfAborted } from './pipelines/components.js';
import { emptyTimings, type Job, type JobControl } from './pipelines/job.js';
import type { RgbImage } from './tensor/image.js';
import { hiresFix } from './pipelines/hires.js';
import { imageToImage } from './pipelines/img2img.js';
import { inpaint } from './pipelines/inpaint.js';
import { composeLiveFrame, LiveSession, type LiveFrame, type LiveFrameOptions, type LiveRequest } from './pipelines/live.js';
import { layoutToImage } from './pipelines/layout.js';
import { resolveParams } from './pipelines/resolve.js';
import { cropAlpha, cropForInpaint, cropRegion, pasteCrop, softCrop, type CropRegion } from './pipelines/only-masked.js';
import { cropRegions, decodeRegions, regionParams } from './pipelines/regions.js';
import { textToImage } from './pipelines/txt2img.js';
import type { GenerateOptions, GenerateRequest, GenerateResult } from './pipelines/types.js';
import { findUpscaler } from './model/upscaler.js';
import { decodeImage, decodeMask } from './tensor/image.js';
import { decodeLabelMap, labelMapTensor } from './tensor/label-map.js';
import { SeededRng, type GaussianSource } from './tensor/rng.js';

export const DEFAULT_PROVIDERS: readonly ExecutionProviderName[] = ['webgpu', 'cuda', 'dml', 'coreml', 'cpu'];
const PROVIDERS_BY_PLATFORM: Record<string, readonly ExecutionProviderName[]> = {
  // onnxruntime-node bundles cpu + webgpu on Linux (cuda only with its optional install), dml on
  // Windows, coreml on macOS. Trying one that isn't in the build costs only a failed create.
  linux: ['webgpu', 'cuda', 'cpu'],
  win32: ['dml', 'webgpu', 'cuda', 'cpu'],
  darwin: ['coreml', 'webgpu', 'cpu'],
};

export interface EngineSettings {
  /** Execution providers in the order to try; default: the platform's GPU providers, then cpu. */
  providers?: readonly ExecutionProviderName[];
  /** CPU intra-op threads (0 = onnxruntime decides). */
  threads?: number;
  /** Release the text encoders' sessions after each job's prompts are encoded (SessionSettings). */
  releaseTextEncoders?: boolean;
  /** The machine's cores as live painting's thread rule (liveThreadsFor) sees them; default os.availableParallelism(). */
  cores?: number;
  /** false: live frames always run on the model's own sessions, never a copy with fewer threads (liveThreadsFor). */
  liveCopy?: boolean;
}

export class Engine {
  private readonly models = new Map<string, Promise<LoadedModel>>();
  /** One job per device at a time: jobs chain on this promise. */
  private queue: Promise<unknown> = Promise.resolve();
  private settings: SessionSettings;
  private readonly cores: number;
  private readonly allowLiveCopy: boolean;
  /** The live-painting session (pipelines/live.ts): one at a time, for the model last painted with. */
  private live: { key: string; session: LiveSession } | null = null;
  /** The live copy of a model (liveThreadsFor): sessions with fewer CPU threads, for live frames only. */
  private liveCopy: { key: string; threads: number; model: Promise<LoadedModel> } | null = null;
  /** liveThreadsFor's answer for each loaded model (null: its own sessions). */
  private readonly liveThreads = new WeakMap<LoadedModel, number | null>();

  constructor(settings: EngineSettings = {}) {
    this.settings = {
      providers: settings.providers ?? PROVIDERS_BY_PLATFORM[process.platform] ?? DEFAULT_PROVIDERS,
      threads: settings.threads ?? 0,
      releaseTextEncoders: settings.releaseTextEncoders ?? false,
    };
    this.cores = settings.cores ?? availableParallelism();
    this.allowLiveCopy = settings.liveCopy ?? true;
  }

  get sessionSettings(): Readonly<SessionSettings> {
    return this.settings;
  }

  /** Changing providers, threads or releaseTextEncoders unloads every model so the next job opens fresh sessions. */
  async configure(settings: EngineSettings): Promise<void> {
    this.settings = {
      providers: settings.providers ?? this.settings.providers,
      threads: settings.threads ?? this.settings.threads,
      releaseTextEncoders: settings.releaseTextEncoders ?? this.settings.releaseTextEncoders ?? false,
    };
    await this.unloadAll();
  }

  /** Opens (or returns the cached) model. A failed open is not cached. */
  loadModel(dir: string): Promise<LoadedModel> {
    const key = resolve(dir);
    let p = this.models.get(key);
    if (!p) {
      p = openModelFolder(key, this.settings);
      this.models.set(key, p);
      p.catch(() => this.models.delete(key));
    }
    return p;
  }

  async info(dir: string): Promise<{ info: ModelInfo; sessions: SessionReport }> {
    const m = await this.loadModel(dir);
    return { info: m.info, sessions: m.sessions };
  }

  /** Frees a model's sessions (memory is returned when onnxruntime releases them). */
  async unload(dir: string): Promise<boolean> {
    const key = resolve(dir);
    const p = this.models.get(key);
    if (!p) return false;
    this.models.delete(key);
    if (this.live?.key === key) this.live = null;
    if (this.liveCopy?.key === key) await this.releaseLiveCopy();
    // Wait for running work so a session isn't released under a job.
    await this.queue.catch(() => undefined);
    const m = await p.catch(() => null);
    if (m) await releaseLoraSessions(m);
    await m?.release();
    return true;
  }

  async unloadAll(): Promise<void> {
    for (const key of [...this.models.keys()]) await this.unload(key);
  }

  loadedModels(): string[] {
    return [...this.models.keys()];
  }

  /** Runs one generation; jobs run one at a time in call order. */
  generate(modelDir: string, request: GenerateRequest, options: GenerateOptions = {}): Promise<GenerateResult> {
    const run = this.queue.then(() => this.run(modelDir, request, options));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The picture the last live frame was sent (its file bytes). */
  private livePicture: Uint8Array | null = null;

  /**
   * One live-painting frame (pipelines/live.ts): an inpaint of the masked area that reuses what the
   * previous frame of the same model computed. Frames share the job chain, so a frame and a queued job
   * never run at the same time and each waits for at most the one in front of it.
   */
  liveFrame(modelDir: string, request: LiveRequest, options: LiveFrameOptions = {}): Promise<LiveFrame> {
    // The picture of a live session is kept here (not per model): a frame may say reusePicture instead.
    if (request.reusePicture) {
      if (!this.livePicture) return Promise.reject(new InvalidRequestError(NO_LIVE_PICTURE));
      request = { ...request, initImage: this.livePicture };
    } else if (request.initImage) {
      this.livePicture = request.initImage;
    }
    const run = this.queue.then(async () => {
      throwIfAborted(options.signal);
      const key = resolve(modelDir);
      const { model, threads } = await this.liveModel(key);
      if (this.live?.key !== key || this.live.session.model !== model) this.live = { key, session: new LiveSession(model) };
      const frame = await this.live.session.frame(request, options);
      return threads === null ? frame : { ...frame, threads };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A live frame's whole picture for Keep: the picture with the frame's crop put back (live.ts). */
  composeLiveFrame(pictureBytes: Uint8Array, crop: CropRegion, image: RgbImage): Promise<RgbImage> {
    return composeLiveFrame(pictureBytes, crop, image);
  }

  /** Forgets the live session's caches and picture (Live turned off) and frees a live copy's sessions. */
  endLive(): void {
    this.live = null;
    this.livePicture = null;
    void this.releaseLiveCopy();
  }

  /**
   * The model live frames run on: the loaded model itself, or a copy of it whose CPU sessions use fewer
   * threads (liveThreadsFor), opened on the first frame and kept until Live ends or the model is unloaded;
   * `threads`: the copy's, or null for the model itself.
   */
  private async liveModel(key: string): Promise<{ model: LoadedModel; threads: number | null }> {
    const shared = await this.loadModel(key);
    let threads = this.liveThreads.get(shared);
    if (threads === undefined) {
      // Once per loaded model (a new one after configure or unload), not per frame.
      threads = this.allowLiveCopy
        ? liveThreadsFor({
            cores: this.cores,
            provider: shared.sessions.providers['unet'] ?? 'cpu',
            threads: this.settings.threads,
            unetBytes: folderBytes(dirname(shared.modules.unet.file)),
          })
        : null;
      this.liveThreads.set(shared, threads);
    }
    if (threads === null) {
      await this.releaseLiveCopy(false);
      return { model: shared, threads: null };
    }
    if (this.liveCopy?.key !== key || this.liveCopy.threads !== threads) {
      await this.releaseLiveCopy(false);
      this.liveCopy = { key, threads, model: openModelFolder(key, { ...this.settings, providers: ['cpu'], threads }) };
    }
    try {
      return { model: await this.liveCopy.model, threads };
    } catch {
      // The copy is an optimisation: if it cannot be opened (memory), frames run on the model itself.
      this.liveCopy = null;
      this.liveThreads.set(shared, null);
      return { model: shared, threads: null };
    }
  }

  /** The CPU threads of the live copy of a model that live frames now run on, or null (the model's own sessions). */
  liveCopyThreads(): number | null {
    return this.liveCopy?.threads ?? null;
  }

  /** `waitForQueue`: called from outside the job chain, so wait for a running frame first (not from inside it). */
  private async releaseLiveCopy(waitForQueue = true): Promise<void> {
    const copy = this.liveCopy;
    if (!copy) return;
    this.liveCopy = null;
    if (this.live?.key === copy.key) this.live = null;
    if (waitForQueue) await this.queue.catch(() => undefined);
    const m = await copy.model.catch(() => null);
    if (m) await releaseLoraSessions(m);
    await m?.release();
  }

  private async run(modelDir: string, request: GenerateRequest, options: GenerateOptions): Promise<GenerateResult> {
    throwIfAborted(options.signal);
    const started = performance.now();
    const model = await this.loadModel(modelDir);
    const job = await prepareJob(model, request, options);
    const image = await runJob(job);
    job.timings.totalMs = performance.now() - started;
    return {
      image,
      params: job.params,
      timings: job.timings,
      provider: model.sessions.providers['unet'] ?? 'cpu',
      providers: model.sessions.providers,
      loras: job.loras,
      warnings: [...decoderWarnings(model), ...job.warnings],
    };
  }
}

/** The largest U-Net (its folder's bytes: graph and external weights) that liveThreadsFor copies. */
export const LIVE_COPY_MAX_UNET_BYTES = 256 * 2 ** 20;

/**
 * The CPU threads of live frames' own sessions, or null when live frames run on the model's sessions.
 * On a machine of two cores the canvas, the host and the engine share them while painting, and a live
 * frame on both cores waits for them: bench:live (2 cores, the bundled LCM inpainting model, 3 interleaved
 * runs each) gave 16.0–16.3 FPS and p95 latency 137–152 ms with the engine on 2 threads, 17.5–17.7 FPS and
 * 120–129 ms on 1, with the engine's own frame time lower too (47 against 51 ms). Queued jobs keep every
 * core (one thread is ~1.3× slower alone), so live frames get a copy of the model with one thread less. Only
 * where measured (≤ 2 cores), on the CPU provider, and for a small U-Net: a copy of a large one would
 * double gigabytes of memory for frames that take seconds either way.
 */
export function liveThreadsFor(o: { cores: number; provider: ExecutionProviderName; threads: number; unetBytes: number }): number | null {
  if (o.provider !== 'cpu' || o.cores > 2 || o.unetBytes > LIVE_COPY_MAX_UNET_BYTES) return null;
  const live = Math.max(1, o.cores - 1);
  const generate = o.threads > 0 ? o.threads : o.cores;
  return live < generate ? live : null;
}

/** Bytes of the files directly in a folder (a U-Net's graph and its external weights). */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isFile()) total += statSync(join(dir, entry.name)).size;
  return total;
}

/**
 * What the model's loading said about its VAE decoder (fp16 upcast to fp32, or left in fp16 at the risk
 * of a black picture): true of every picture it decodes, so each result carries it.
 */
function decoderWarnings(model: LoadedModel): string[] {
  return model.info.warnings.filter((w) => w.startsWith('vae_decoder:'));
}

/**
 * Checks the request against the model and builds the job: parameters, RNG, initial noise (drawn first,
 * unless the request supplies `latents`), decoded init image and mask, and a layout job's label map. `replayRng` may replace the RNG to replay
 * a reference implementation's noise.
 */
export async function prepareJob(
  model: LoadedModel,
  request: GenerateRequest,
  options: GenerateOptions = {},
  replayRng?: GaussianSource,
): Promise<Job> {
  const params = resolveParams(model, request);
  // <lora:…> tags: the job runs on a view of the model with patched sessions (lora/sessions.ts).
  const applied = await applyPromptLoras(model, params.prompt, request.loraDirs ?? []);
  model = applied.model;
  const rng = replayRng ?? new SeededRng(params.seed);
  const f = model.info.vaeScaleFactor;
  const shape = { channels: model.info.latentChannels, height: params.height / f, width: params.width / f };
  const noise = request.latents ? new Float32Array(request.latents) : rng.randn(shape.channels * shape.height * shape.width);
  const size = { width: params.width, height: params.height };
  const limit = request.maxInputPixels;
  const job: Job = {
    model,
    params,
    rng,
    noise,
    shape,
    initImage: null,
    mask: null,
    options,
    timings: emptyTimings(),
    region: null,
    control: null,
    labelMap: null,
    loras: applied.reports,
    embeddingDirs: request.embeddingDirs ?? [],
    ...(request.padConds === true ? { padConds: true } : {}),
    warnings: [],
  };
  const upscaler = params.hires?.upscaler;
  if (upscaler !== undefined && !isLatentUpscaler(upscaler) && !(HIRES_PIXEL_UPSCALERS as readonly string[]).includes(upscaler)) {
    job.upscalerFile = findUpscaler(request.upscalerDirs ?? [], upscaler);
  }
  if (params.inpaintArea === 'masked' && request.initImage && request.mask) {
    // Only masked: keep the picture at its own size and repaint a crop of it at width×height.
    const picture = await decodeImage(request.initImage, 'init image', undefined, limit);
    const pictureMask = await decodeMask(request.mask, picture, limit);
    const soft = params.softInpaint === true ? softCrop(pictureMask, params.maskPadding ?? 0, params.width, params.height, params.maskBlur) : null;
    const crop = soft?.crop ?? cropRegion(pictureMask, params.maskPadding ?? 0, params.width, params.height);
    const cut = cropForInpaint(picture, pictureMask, crop, size);
    let control: JobControl | null = null;
    if (request.control) {
      // The control image covers the whole picture: cut the same crop out of it.
      const full = await decodeImage(request.control.image, 'control image', { width: picture.width, height: picture.height }, limit);
      control = await prepareControl(model, request.control, cropForInpaint(full, pictureMask, crop, size).image);
    }
    const regions = request.regions?.length ? await decodeRegions(request.regions, picture, picture, limit) : [];
    if (regions.length > 0) params.regions = regionParams(regions);
    const region = { picture, pictureMask, crop, ...(soft ? { softAlpha: soft.alpha } : {}) };
    return { ...job, initImage: cut.image, mask: cut.mask, region, control, regions: cropRegions(regions, crop, size) };
  }
  if (params.mode === 'layout' && request.labelMap) {
    const labels = model.info.layout?.labels;
    if (!labels) throw new Error(`prepareJob: ${model.info.name} has no labels but was given a layout job`);
    job.labelMap = labelMapTensor(await decodeLabelMap(request.labelMap, size, limit), labels, f);
  }
  job.initImage = request.initImage ? await decodeImage(request.initImage, 'init image', size, limit) : null;
  job.mask = params.mode === 'inpaint' && request.mask ? await decodeMask(request.mask, size, limit) : null;
  if (request.control) {
    job.control = await prepareControl(model, request.control, await decodeImage(request.control.image, 'control image', size, limit));
  }
  if (request.regions?.length) {
    // Masks are painted over the picture: the init image's size when there is one (it is scaled to width×height).
    const meta = request.initImage ? await sharp(request.initImage).metadata().catch(() => null) : null;
    const picture = meta?.width && meta.height ? { width: meta.width, height: meta.height } : size;
    job.regions = await decodeRegions(request.regions, picture, size, limit);
    params.regions = regionParams(job.regions);
  }
  return job;
}

/** Opens (or reuses) the ControlNet and turns the control image into [3, H, W] in [0, 1], as diffusers' control processor does (no [−1, 1] normalization). */
async function prepareControl(model: LoadedModel, control: NonNullable<GenerateRequest['control']>, image: RgbImage): Promise<JobControl> {
  const controlNet = await model.controlNetFor(control.model);
  const plane = image.width * image.height;
  const data = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) data[c * plane + p] = image.rgb[p * 3 + c]! / 255;
  return { controlNet, image: { data, width: image.width, height: image.height }, scale: control.scale };
}

/** Runs the pipeline that fits the mode and the model (4- or 9-channel U-Net). */
export async function runJob(job: Job): Promise<RgbImage> {
  const { model, params } = job;
  const nineChannel = model.info.kind === 'inpaint';
  if (params.hires) return hiresFix(job, runJob);
  switch (params.mode) {
    case 'txt2img':
      if (!nineChannel) return textToImage(job);
      // A 9-channel model draws from text with everything masked (the masked image is then all zero).
      return inpaint({ ...job, initImage: blankImage(params.width, params.height), mask: null });
    case 'img2img':
      if (!nineChannel) return imageToImage(job);
      // A 9-channel model has no plain img2img: repaint everything (full mask) from the init image.
      return inpaint({ ...job, mask: null });
    case 'layout':
      return layoutToImage(job);
    case 'inpaint': {
      const repainted = await inpaint(job);
      if (!job.region) return repainted;
      const { picture, pictureMask, crop, softAlpha } = job.region;
      return pasteCrop(picture, crop, repainted, softAlpha ?? cropAlpha(pictureMask, crop, params.maskBlur));
    }
    default:
      throw new InvalidRequestError(`unknown mode ${String(params.mode)}`);
  }
}

function blankImage(width: number, height: number): RgbImage {
  return { width, height, rgb: new Uint8Array(width * height * 3).fill(128) };
}