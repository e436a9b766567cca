/**
 * Live painting: the engine's fast path for repeated inpaint frames of one picture while it is painted.
 *
 * A `LiveSession` belongs to one model and is fed one frame request after another (each a complete
 * inpaint request). Between frames it keeps what did not change:
 * - the encoded prompt (and the CFG batch of [uncond, cond] states), per prompt / negative / LoRA set;
 * - the decoded picture, and the VAE latents of the crop (init and masked image) while the crop and
 *   the mask stay the same (a prompt or weight edit re-runs only the U-Net and the decoder);
 * - the scheduler (its training tables; `setTimesteps` resets its per-run state every frame);
 * - the U-Net's input and output tensors, allocated once per shape and written in place each step.
 * Each frame repaints only the masked area at the model's native size ("only masked",
 * only-masked.ts) and pastes it back. No progress events, no previews and no PNG encoding: the frame
 * comes back as raw RGB.
 *
 * A frame is the same computation as the queued inpaint pipeline with `inpaintArea: 'masked'`, in the
 * same RNG draw order (job.ts), so it gives the very same pixels (test/unit/engine/live.test.ts): Keep
 * stores what was shown, and regenerating it from history gives it again.
 */
import * as ort from 'onnxruntime-node';
import { InvalidRequestError } from '../../shared/errors.js';
import type { ExecutionProviderName, GenerationParams, GenerationTimings } from '../../shared/generation.js';
import { applyPromptLoras, type LoraReport } from '../lora/sessions.js';
import type { LoadedModel } from '../model/model-folder.js';
import { createScheduler, type Scheduler } from '../schedulers/index.js';
import type { StepBuffers } from '../schedulers/types.js';
import {
  binarizeMask,
  decodeImage,
  decodeMask,
  featherMask,
  imageToTensor,
  maskedImageTensor,
  maskToLatent,
  pasteBack,
  tensorToImage,
  type RgbImage,
} from '../tensor/image.js';
import { SeededRng, type GaussianSource } from '../tensor/rng.js';
import {
  decodeLatents,
  encodeImage,
  encodePromptStates,
  guidanceEmbedding,
  latentSize,
  predictNoise,
  throwIfAborted,
  type Conditioning,
  type LatentShape,
  type PromptEmbeddings,
  type PromptJob,
  usesCfg,
} from './components.js';
import { emptyTimings } from './job.js';
import type { AddedConditioning } from './sdxl-conditioning.js';
import { blendCrop, cropAlpha, cropForInpaint, cropRegion, placeCrop, type CropRegion } from './only-masked.js';
import { resolveParams } from './resolve.js';
import type { GenerateRequest } from './types.js';
import { maskFromRect, type RawMaskRect } from '../tensor/mask-rect.js';

export type { RawMaskRect };

/**
 * A live frame's request: an inpaint request whose mask is either `mask` (encoded) or `maskRect`.
 * `reusePicture`: no `initImage`; the picture is the one the engine's previous live frame was sent
 * (Engine.liveFrame keeps it), so a large picture crosses into the engine process once.
 */
export type LiveRequest = GenerateRequest & { maskRect?: RawMaskRect; reusePicture?: boolean };

export interface LiveFrameOptions {
  signal?: AbortSignal;
}

export interface LiveFrame {
  /**
   * The crop of the picture as the frame leaves it (crop.width × crop.height: the picture there with the
   * repaint pasted back); the rest of the picture is unchanged. `composeLiveFrame` puts it back into the
   * picture (Keep): a whole picture per frame would cross to the host and be copied for nothing.
   */
  image: RgbImage;
  /** The picture's size. */
  picture: { width: number; height: number };
  /** The parameters as a queued inpaint would record them (inpaintArea 'masked'). */
  params: GenerationParams;
  timings: GenerationTimings;
  /** Where in the picture the model repainted. */
  crop: CropRegion;
  loras: LoraReport[];
  /** The provider the U-Net ran on. */
  provider: ExecutionProviderName;
  /** Time inside the U-Net's session runs (of `timings.denoiseMs`): the rest is the loop's own overhead. */
  unetMs: number;
  /** The CPU threads of the sessions that ran the frame when they are a live copy of the model (engine.ts liveThreadsFor). */
  threads?: number;
  /** What the prompt encoder warned about (e.g. conditioning cut to a fixed-length U-Net). */
  warnings: string[];
  /** What this frame could reuse from the one before. */
  reused: { prompt: boolean; picture: boolean; latents: boolean };
}

interface PromptCache {
  key: string;
  model: LoadedModel;
  loras: LoraReport[];
  embeddings: PromptEmbeddings;
  /** SDXL: the U-Net's added inputs (text_embeds, time_ids). */
  added: AddedConditioning | null;
  /** What encoding recorded in the parameters (the embeddings used; Pad conds when it padded), as a job does. */
  recorded: Pick<GenerationParams, 'embeddings' | 'padConds'>;
  warnings: string[];
}

interface LatentCache {
  key: string;
  crop: CropRegion;
  cutMask: Uint8Array;
  cutImage: Uint8Array;
  initLatents: Float32Array | null;
  maskedLatents: Float32Array | null;
  /** How many Gaussian numbers the encoders drew (replayed on a hit so later draws stay the same). */
  draws: number;
}

/** Counts what the VAE encoders draw from the job's RNG. */
class CountingRng implements GaussianSource {
  draws = 0;
  constructor(private readonly inner: GaussianSource) {}
  fill(out: Float32Array): Float32Array {
    this.draws += out.length;
    return this.inner.fill(out);
  }
  randn(n: number): Float32Array {
    return this.fill(new Float32Array(n));
  }
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

export class LiveSession {
  private prompt: PromptCache | null = null;
  private pictureBytes: Uint8Array | null = null;
  private picture: RgbImage | null = null;
  private latents: LatentCache | null = null;
  private schedulers = new Map<string, Scheduler>();
  private unet: PreparedUnet | null = null;
  private vaeDecoder: PreparedDecoder | null = null;
  private buffers: StepBuffers | null = null;

  constructor(readonly model: LoadedModel) {}

  async frame(request: LiveRequest, options: LiveFrameOptions = {}): Promise<LiveFrame> {
    const { signal } = options;
    const started = performance.now();
    const timings = emptyTimings();
    if (request.mode !== 'inpaint' || !request.initImage || (!request.mask && !request.maskRect)) {
      throw new InvalidRequestError('a live frame is an inpaint: it needs mode "inpaint", an init image and a mask');
    }
    if (request.control || request.labelMap) throw new InvalidRequestError('live frames take no control image or label map');
    // Frames run at the model's native size whatever the Size setting: the crop is scaled to it.
    const native = this.model.info.nativeResolution;
    // (resolveParams only asks that a mask is there: a raw one stands in for the encoded one.)
    const { maskRect, ...generate } = request;
    const params = resolveParams(this.model, { ...generate, mask: request.mask ?? maskRect?.data, width: native.width, height: native.height, inpaintArea: 'masked' });
    const { width, height } = params;
    const base = this.model;
    const f = base.info.vaeScaleFactor;
    const shape: LatentShape = { channels: base.info.latentChannels, height: height / f, width: width / f };
    const nineChannel = base.info.kind === 'inpaint';
    const doCfg = usesCfg(base, params);

    // 1. The prompt (and its LoRAs), unless it is the one the last frame used.
    // Everything encodePromptStates reads (the parameters' encoding settings, Pad conds, the folders).
    const padConds = request.padConds === true;
    const promptKey = JSON.stringify([width, height, params.prompt, params.negativePrompt, doCfg, params.clipSkip ?? 1, params.emphasis, padConds, request.loraDirs ?? [], request.embeddingDirs ?? [], params.aestheticScore, params.negativeAestheticScore]);
    const reused = { prompt: this.prompt?.key === promptKey, picture: false, latents: false };
    if (!reused.prompt) {
      const applied = await applyPromptLoras(base, params.prompt, request.loraDirs ?? []);
      const encodeJob: PromptJob = { model: applied.model, params, embeddingDirs: request.embeddingDirs ?? [], warnings: [], ...(padConds ? { padConds } : {}) };
      const t0 = performance.now();
      const { embeddings, added } = await encodePromptStates(encodeJob, doCfg);
      timings.textEncodeMs = performance.now() - t0;
      this.prompt = {
        key: promptKey,
        model: applied.model,
        loras: applied.reports,
        embeddings,
        added,
        recorded: { ...(params.embeddings ? { embeddings: params.embeddings } : {}), ...(params.padConds ? { padConds: params.padConds } : {}) },
        warnings: encodeJob.warnings,
      };
    } else {
      Object.assign(params, this.prompt!.recorded);
    }
    const { model, embeddings, added, loras, warnings } = this.prompt!;
    throwIfAborted(signal);

    // 2. The noise, drawn first (job.ts draw order), then the picture, its mask and the crop.
    const rng = new SeededRng(params.seed);
    const noise = request.latents ? new Float32Array(request.latents) : rng.randn(latentSize(shape));
    reused.picture = sameBytes(this.pictureBytes, request.initImage);
    if (!reused.picture) {
      this.picture = await decodeImage(request.initImage, 'init image');
      this.pictureBytes = new Uint8Array(request.initImage);
    }
    const picture = this.picture!;
    // A raw mask at the picture's size is what decodeMask gives for its PNG (resizing to the same size
    // keeps every byte).
    const pictureMask = maskRect ? maskFromRect(maskRect, picture) : await decodeMask(request.mask!, picture);
    const crop = cropRegion(pictureMask, params.maskPadding ?? 0, width, height);
    const cut = cropForInpaint(picture, pictureMask, crop, { width, height });
    const binary = binarizeMask(cut.mask);
    const latentMask = maskToLatent(binary, width, height, f);
    throwIfAborted(signal);

    // 3. Latents of the crop: reused while the crop, its pixels and the mask are unchanged.
    const needInitLatents = !nineChannel || params.strength < 1;
    const latentKey = JSON.stringify([crop, params.seed, width, height, needInitLatents, request.latents ? 'latents' : 'seed']);
    const cache = this.latents;
    reused.latents =
      cache !== null && cache.key === latentKey && sameBytes(cache.cutMask, cut.mask.data) && sameBytes(cache.cutImage, cut.image.rgb);
    if (reused.latents) {
      if (cache!.draws > 0) rng.randn(cache!.draws);
    } else {
      const counting = new CountingRng(rng);
      const t0 = performance.now();
      const imageTensor = imageToTensor(cut.image);
      const initLatents = needInitLatents ? await encodeImage(model, imageTensor, width, height, counting) : null;
      const maskedLatents = nineChannel ? await encodeImage(model, maskedImageTensor(imageTensor, binary), width, height, counting) : null;
      timings.vaeEncodeMs = performance.now() - t0;
      this.latents = {
        key: latentKey,
        crop,
        cutMask: cut.mask.data,
        cutImage: cut.image.rgb,
        initLatents,
        maskedLatents,
        draws: counting.draws,
      };
    }
    const { initLatents, maskedLatents } = this.latents!;
    throwIfAborted(signal);

    // 4. Timesteps (the scheduler object and its tables are kept; setTimesteps resets its run state).
    const schedulerKey = params.sampler;
    let scheduler = this.schedulers.get(schedulerKey);
    if (!scheduler) {
      scheduler = createScheduler(params.sampler, model.schedulerConfig);
      this.schedulers.set(schedulerKey, scheduler);
    }
    scheduler.setTimesteps(params.steps, { strength: params.strength });
    const timesteps = scheduler.timesteps;
    let latents: Float32Array;
    if (params.strength >= 1) {
      latents = new Float32Array(noise.length);
      for (let i = 0; i < latents.length; i++) latents[i] = noise[i]! * scheduler.initNoiseSigma;
    } else {
      latents = scheduler.addNoise(initLatents!, noise, timesteps[0]!);
    }

    // 5. The denoising loop, into the prepared tensors.
    const plane = shape.height * shape.width;
    const n = latentSize(shape);
    const unet = this.preparedUnet(model, shape, embeddings, added, doCfg, params.cfg);
    const fixed = nineChannel ? { mask: latentMask, masked: maskedLatents! } : null;
    let denoised: Float32Array | undefined;
    const buffers = this.stepBuffers(n);
    const t0 = performance.now();
    unet.unetMs = 0;
    for (const [i, t] of timesteps.entries()) {
      throwIfAborted(signal);
      const scaled = scheduler.scaleModelInput(latents, t);
      const noisePred = await unet.predict(scaled, fixed, t);
      const out = scheduler.step(noisePred, t, latents, rng, buffers);
      latents = out.prevSample;
      denoised = out.predOriginal;
      if (!nineChannel) {
        // Latent blending (inpaint.ts): the known region on the noise level of the next step.
        const next = timesteps[i + 1];
        const known = next !== undefined ? scheduler.addNoise(initLatents!, noise, next) : initLatents!;
        for (let k = 0; k < n; k++) {
          const m = latentMask[k % plane]!;
          latents[k] = (1 - m) * known[k]! + m * latents[k]!;
        }
      }
      timings.stepsRun = i + 1;
    }
    timings.denoiseMs = performance.now() - t0;
    throwIfAborted(signal);

    // 6. Decode, paste into the crop, paste the crop into the picture.
    const t1 = performance.now();
    const final = params.sampler === 'lcm' && denoised ? denoised : latents;
    const generated = await this.decoder(model, shape).decode(final);
    timings.vaeDecodeMs = performance.now() - t1;
    // The paste-back weights (on this thread: gauss-blur.ts). A crop of the working size is not scaled,
    // so its two weights (the crop's and the region's) are one computation on the same mask bytes.
    const alpha = featherMask(binary, width, height, params.maskBlur);
    const regionAlpha = crop.width === width && crop.height === height ? alpha : cropAlpha(pictureMask, crop, params.maskBlur);
    const repainted = pasteBack(cut.image, generated, alpha);
    const image = blendCrop(picture, crop, repainted, regionAlpha);
    timings.totalMs = performance.now() - started;
    return { image, picture: { width: picture.width, height: picture.height }, params, timings, crop, loras, warnings: [...warnings], reused, provider: model.sessions.providers['unet'] ?? 'cpu', unetMs: unet.unetMs };
  }

  /** The scheduler's output arrays, one set per latent size, written in place by each step. */
  private stepBuffers(n: number): StepBuffers {
    if (this.buffers?.prevSample.length !== n) {
      this.buffers = { prevSample: new Float32Array(n), predOriginal: new Float32Array(n), scratch: new Float32Array(n) };
    }
    return this.buffers;
  }

  /** The VAE decoder's tensors for this latent shape. */
  private decoder(model: LoadedModel, shape: LatentShape): PreparedDecoder {
    const d = this.vaeDecoder;
    if (d && d.model === model && d.sameShape(shape)) return d;
    this.vaeDecoder = new PreparedDecoder(model, shape);
    return this.vaeDecoder;
  }

  /** The U-Net's tensors for this shape, guidance and prompt: rebuilt only when one of them changes. */
  private preparedUnet(
    model: LoadedModel,
    shape: LatentShape,
    embeddings: PromptEmbeddings,
    added: AddedConditioning | null,
    doCfg: boolean,
    cfg: number,
  ): PreparedUnet {
    const u = this.unet;
    if (u && u.model === model && u.embeddings === embeddings && u.doCfg === doCfg && u.cfg === cfg && u.sameShape(shape)) return u;
    this.unet = new PreparedUnet(model, shape, embeddings, added, doCfg, cfg);
    return this.unet;
  }
}

/**
 * One guided noise prediction per call, like components.ts `predictNoise`, but on tensors built once:
 * the sample (the [uncond, cond] batch under CFG), the text states, the timestep and its LCM guidance
 * embedding, and the output. A U-Net whose inputs are not float32 (an fp16 export) or that takes
 * ControlNet residuals, a label map or SDXL's added inputs goes through `predictNoise` instead.
 */
class PreparedUnet {
  private readonly inChannels: number;
  private readonly batch: number;
  private readonly sample: Float32Array;
  private readonly feeds: Record<string, ort.Tensor>[];
  private readonly outputs: Record<string, ort.Tensor>[];
  private readonly outData: Float32Array[];
  private readonly setTimestep: ((t: number) => void) | null;
  private readonly guided: Float32Array;
  private readonly conditioning: Conditioning;
  private readonly fast: boolean;
  /** Time spent in session runs since the frame began. */
  unetMs = 0;

  constructor(
    readonly model: LoadedModel,
    private readonly shape: LatentShape,
    readonly embeddings: PromptEmbeddings,
    added: AddedConditioning | null,
    readonly doCfg: boolean,
    readonly cfg: number,
  ) {
    const { info } = model;
    const unet = model.modules.unet;
    const condDim = info.unet.timestepCondDim;
    const timestepCond = condDim !== null ? guidanceEmbedding(cfg, condDim) : null;
    this.conditioning = { embeddings, cfg, timestepCond, residuals: null, labelMap: null, added };
    this.inChannels = info.unetInChannels;
    const plane = shape.height * shape.width;
    const { hidden } = embeddings;
    const floatInput = (name: string): boolean => unet.input(name)?.type === 'float32';
    const outName = unet.outputName(['out_sample']);
    const timestepType = unet.input('timestep')?.type;
    this.fast =
      !info.control &&
      !info.layout &&
      added === null &&
      floatInput('sample') &&
      floatInput('encoder_hidden_states') &&
      (timestepCond === null || floatInput('timestep_cond')) &&
      (timestepType === 'float32' || timestepType === 'int64') &&
      unet.outputs.get(outName)?.type === 'float32';
    // Under CFG: one batch-2 call when the batch axis is dynamic and prompt and negative have the same
    // length (chunk count), else two batch-1 calls (components.ts predictNoise).
    this.batch = doCfg && info.unet.batchDynamic && embeddings.condTokens === embeddings.uncondTokens ? 2 : 1;
    const calls = doCfg && this.batch === 1 ? 2 : 1;
    const n = latentSize(shape);
    this.sample = new Float32Array(this.batch * this.inChannels * plane);
    this.guided = new Float32Array(n);
    this.feeds = [];
    this.outputs = [];
    this.outData = [];
    if (!this.fast) {
      this.setTimestep = null;
      return;
    }
    const timestepDims = info.unet.timestepRank === 0 ? [] : [1];
    const timestepData = timestepType === 'int64' ? new BigInt64Array(1) : new Float32Array(1);
    this.setTimestep =
      timestepData instanceof BigInt64Array
        ? (t) => (timestepData[0] = BigInt(Math.trunc(t)))
        : (t) => (timestepData[0] = t);
    const timestep = new ort.Tensor(timestepData instanceof BigInt64Array ? 'int64' : 'float32', timestepData, timestepDims);
    const sampleTensor = new ort.Tensor('float32', this.sample, [this.batch, this.inChannels, shape.height, shape.width]);
    const statesFor = (parts: Float32Array[]): ort.Tensor => {
      const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of parts) {
        data.set(p, o);
        o += p.length;
      }
      return new ort.Tensor('float32', data, [parts.length, parts[0]!.length / hidden, hidden]);
    };
    const stateSets =
      !doCfg ? [[embeddings.cond]] : this.batch === 2 ? [[embeddings.uncond!, embeddings.cond]] : [[embeddings.uncond!], [embeddings.cond]];
    const condTensor =
      timestepCond === null
        ? null
        : new ort.Tensor('float32', Float32Array.from({ length: this.batch * timestepCond.length }, (_, i) => timestepCond[i % timestepCond.length]!), [
            this.batch,
            timestepCond.length,
          ]);
    for (let c = 0; c < calls; c++) {
      const feeds: Record<string, ort.Tensor> = {
        sample: sampleTensor,
        timestep,
        encoder_hidden_states: statesFor(stateSets[c]!),
      };
      if (condTensor) feeds['timestep_cond'] = condTensor;
      const data = new Float32Array(this.batch * n);
      this.feeds.push(feeds);
      this.outData.push(data);
      this.outputs.push({ [outName]: new ort.Tensor('float32', data, [this.batch, shape.channels, shape.height, shape.width]) });
    }
  }

  sameShape(s: LatentShape): boolean {
    return s.channels === this.shape.channels && s.height === this.shape.height && s.width === this.shape.width;
  }

  /**
   * ε (or v) for the scaled latents at t; `fixed` holds a 9-channel U-Net's mask and masked-image
   * latents. The returned array is reused by the next call.
   */
  async predict(scaled: Float32Array, fixed: { mask: Float32Array; masked: Float32Array } | null, t: number): Promise<Float32Array> {
    const n = scaled.length;
    const plane = this.shape.height * this.shape.width;
    const per = this.inChannels * plane;
    for (let b = 0; b < this.batch; b++) {
      this.sample.set(scaled, b * per);
      if (fixed) {
        this.sample.set(fixed.mask, b * per + n);
        this.sample.set(fixed.masked, b * per + n + plane);
      }
    }
    const t0 = performance.now();
    if (!this.fast) {
      const out = await predictNoise(this.model, this.sample.subarray(0, per), this.inChannels, this.shape, t, this.conditioning);
      this.unetMs += performance.now() - t0;
      return out;
    }
    this.setTimestep!(t);
    const unet = this.model.modules.unet;
    for (let c = 0; c < this.feeds.length; c++) await unet.runPrepared(this.feeds[c]!, this.outputs[c]!);
    this.unetMs += performance.now() - t0;
    if (!this.doCfg) return this.outData[0]!;
    const g = this.cfg;
    const [uncond, cond] = this.batch === 2 ? [this.outData[0]!.subarray(0, n), this.outData[0]!.subarray(n)] : [this.outData[0]!, this.outData[1]!];
    const out = this.guided;
    for (let i = 0; i < n; i++) out[i] = uncond[i]! + g * (cond[i]! - uncond[i]!);
    return out;
  }
}

/**
 * The VAE decoder on tensors built once per latent shape (components.ts `decodeLatents` allocates its
 * input and output every call): the latents are scaled into the input tensor and onnxruntime writes the
 * pixels into a preallocated output. A decoder whose input or output is not float32 goes through
 * `decodeLatents`.
 */
class PreparedDecoder {
  private readonly input: Float32Array;
  private readonly output: Float32Array;
  private readonly feeds: Record<string, ort.Tensor> | null = null;
  private readonly outputs: Record<string, ort.Tensor> | null = null;
  private readonly outSize: { width: number; height: number } | null = null;

  constructor(
    readonly model: LoadedModel,
    private readonly shape: LatentShape,
  ) {
    const dec = model.modules.vaeDecoder;
    const outName = dec.outputName(['sample']);
    const outSpec = dec.outputs.get(outName);
    this.input = new Float32Array(latentSize(shape));
    this.output = new Float32Array(0);
    // The output's height and width: from the graph when it names them, else the VAE's factor.
    const dims = outSpec?.shape ?? [];
    const f = model.info.vaeScaleFactor;
    const height = typeof dims[2] === 'number' ? dims[2] : shape.height * f;
    const width = typeof dims[3] === 'number' ? dims[3] : shape.width * f;
    if (dec.input('latent_sample')?.type !== 'float32' || outSpec?.type !== 'float32') return;
    this.output = new Float32Array(3 * height * width);
    this.outSize = { width, height };
    this.feeds = { latent_sample: new ort.Tensor('float32', this.input, [1, shape.channels, shape.height, shape.width]) };
    this.outputs = { [outName]: new ort.Tensor('float32', this.output, [1, 3, height, width]) };
  }

  sameShape(s: LatentShape): boolean {
    return s.channels === this.shape.channels && s.height === this.shape.height && s.width === this.shape.width;
  }

  async decode(latents: Float32Array): Promise<RgbImage> {
    if (!this.feeds || !this.outputs || !this.outSize) return decodeLatents(this.model, latents, this.shape);
    const inv = 1 / this.model.info.vaeScalingFactor;
    for (let i = 0; i < latents.length; i++) this.input[i] = latents[i]! * inv;
    await this.model.modules.vaeDecoder.runPrepared(this.feeds, this.outputs);
    return tensorToImage(this.output, this.outSize.width, this.outSize.height);
  }
}

/**
 * A live frame's whole picture (what Keep stores): the picture (its file bytes, as the frame's request
 * sent them) with the frame's crop put back at `crop`.
 */
export async function composeLiveFrame(pictureBytes: Uint8Array, crop: CropRegion, image: RgbImage): Promise<RgbImage> {
  return placeCrop(await decodeImage(pictureBytes, 'init image'), crop, image);
}
