/**
 * The building blocks every pipeline shares: prompt encoding, one guided U-Net prediction, VAE encode and
 * decode, progress. The loops themselves live in txt2img.ts, img2img.ts and inpaint.ts so each reads
 * top to bottom like the diffusers pipeline it mirrors (sd-onnx-reference §3).
 */
import { CancelledError } from '../../shared/errors.js';
import { stripLoraTags } from '../lora/prompt-tags.js';
import type { Residuals } from '../model/controlnet.js';
import type { LoadedModel } from '../model/model-folder.js';
import type { Scheduler } from '../schedulers/index.js';
import { LABEL_MAP_INPUT, timestepTensor } from '../model/unet.js';
import type * as ort from 'onnxruntime-node';
import { PreparedInput, preparedOutput, toOrtTensor, type HostTensor, type OnnxModule } from '../model/onnx-module.js';
import { POSTERIOR_NOISE_INPUT } from '../model/onnx-graph.js';
import type { GaussianSource } from '../tensor/rng.js';
import {
  addedFeeds,
  aestheticOptions,
  encodeSdxlConditioning,
  type AddedConditioning,
  type SdxlPromptOptions,
  type TimeIdOptions,
} from './sdxl-conditioning.js';
import { latentPreview } from '../tensor/preview.js';
import { tensorToImage, type RgbImage } from '../tensor/image.js';
import { timed, type Job } from './job.js';
import type { EncodedPrompt } from '../prompt/conditioning.js';
import { TI_SHORT_HASH_LENGTH, type TextualInversion } from '../prompt/embeddings.js';
import type { GenerateOptions } from './types.js';
import { encodeRegions, predictRegionalNoise, type RegionConditioning } from './regions.js';
import { DEFAULT_EMPHASIS } from '../../shared/generation-limits.js';
import type { GenerationParams } from '../../shared/generation.js';

/** `logvar` clamp of diffusers `DiagonalGaussianDistribution`. */
const LOGVAR_MIN = -30;
const LOGVAR_MAX = 20;

export interface LatentShape {
  channels: number;
  height: number;
  width: number;
}

export function latentSize(s: LatentShape): number {
  return s.channels * s.height * s.width;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}

/**
 * Text embeddings for one job: `cond` always, `uncond` when classifier-free guidance is on. Each is
 * [tokens, hidden] with tokens = 77 × its chunks (A1111 long prompts), so the two may differ in length.
 */
export interface PromptEmbeddings {
  cond: Float32Array;
  uncond: Float32Array | null;
  condTokens: number;
  uncondTokens: number;
  hidden: number;
}

/**
 * Encodes the prompt (and the negative prompt when guidance is on) with A1111's semantics: attention
 * weights, BREAK, 75-token chunks, clip skip, textual-inversion embeddings (prompt/conditioning.ts).
 * A U-Net whose sequence axis is fixed takes only that many tokens: longer conditioning is cut to it,
 * and the job records a warning.
 */
export async function encodePrompts(job: PromptJob, withUncond: boolean): Promise<PromptEmbeddings> {
  const { model, params } = job;
  const clipSkip = params.clipSkip ?? 1;
  const embeddings = await model.embeddingSet(job.embeddingDirs);
  // A1111 cuts extra-network tags out of the prompt before it is parsed (lora/prompt-tags.ts).
  const emphasis = params.emphasis ?? DEFAULT_EMPHASIS;
  let cond = await model.encodePrompt(stripLoraTags(params.prompt), clipSkip, embeddings, emphasis);
  let uncond = withUncond ? await model.encodePrompt(params.negativePrompt, clipSkip, embeddings, emphasis) : null;
  // A1111's "Pad conds" (sd_samplers_cfg_denoiser.py pad_cond_uncond): the shorter gets the empty prompt's
  // 77 states repeated until both are as long, and the run records that it happened.
  if (job.padConds && uncond && cond.chunks !== uncond.chunks) {
    const empty = await model.encodePrompt('', clipSkip, embeddings, emphasis);
    if (cond.chunks < uncond.chunks) cond = padWithEmpty(cond, empty, uncond.chunks);
    else uncond = padWithEmpty(uncond, empty, cond.chunks);
    params.padConds = true;
  }
  recordTextualInversion(job, [...cond.embeddings, ...(uncond?.embeddings ?? [])], [...(cond.skipped ?? []), ...(uncond?.skipped ?? [])]);

  const c = fitToUnet(job, cond, 'prompt');
  const u = uncond ? fitToUnet(job, uncond, 'negative prompt') : null;
  return { cond: c.data, uncond: u?.data ?? null, condTokens: c.tokens, uncondTokens: u?.tokens ?? 0, hidden: cond.width };
}

/**
 * Records on the job the embeddings its texts used (names and short hashes, A1111's "TI hashes") and a
 * warning for each file a text named but the model can't take (A1111 skips it; the word stayed text).
 */
export function recordTextualInversion(job: Pick<Job, 'params' | 'warnings'>, used: readonly TextualInversion[], skipped: readonly string[]): void {
  const names = new Map((job.params.embeddings ?? []).map((e) => [e.name, e.hash]));
  for (const e of used) names.set(e.name, e.sha256.slice(0, TI_SHORT_HASH_LENGTH));
  if (names.size > 0) job.params.embeddings = [...names].map(([name, hash]) => ({ name, hash }));
  for (const w of skipped) if (!job.warnings.includes(w)) job.warnings.push(w);
}

/**
 * SDXL's conditioning for a job (or a live frame): both encoders, with the embeddings of the job's folders
 * (sdxl-conditioning.ts), recording on the job the embeddings used and those skipped.
 */
export async function encodeSdxlJobConditioning(
  job: Pick<Job, 'model' | 'params' | 'embeddingDirs' | 'warnings'>,
  withUncond: boolean,
  size: { width: number; height: number },
  options: TimeIdOptions & SdxlPromptOptions,
): Promise<Awaited<ReturnType<typeof encodeSdxlConditioning>>> {
  const embeddings = await job.model.embeddingSet(job.embeddingDirs);
  const out = await encodeSdxlConditioning(job.model, stripLoraTags(job.params.prompt), job.params.negativePrompt, withUncond, size, { ...options, embeddings });
  recordTextualInversion(job, out.textualInversion.used, out.textualInversion.skipped);
  return out;
}

/** `e` followed by copies of the empty prompt's one chunk, to `chunks` chunks (A1111's `pad_cond`). */
export function padWithEmpty(e: EncodedPrompt, empty: EncodedPrompt, chunks: number): EncodedPrompt {
  const chunk = empty.tokens * e.width;
  const data = new Float32Array(chunks * chunk);
  data.set(e.data);
  for (let c = e.chunks; c < chunks; c++) data.set(empty.data.subarray(0, chunk), c * chunk);
  return { ...e, data, chunks, tokens: chunks * empty.tokens };
}

/** An encoded prompt as the U-Net takes it: cut to a fixed sequence axis, with a warning on the job. */
export function fitToUnet(job: Pick<Job, 'model' | 'warnings'>, e: EncodedPrompt, which: string): { data: Float32Array; tokens: number } {
  const fixed = job.model.info.unet.sequenceLength;
  if (fixed === null || e.tokens <= fixed) return { data: e.data, tokens: e.tokens };
  job.warnings.push(
    `the ${which} needs ${e.tokens} tokens (${e.chunks} chunks of 77) but this U-Net's sequence axis is fixed at ${fixed}: ` +
      `everything after the first ${fixed} tokens was left out (re-export the U-Net with a dynamic sequence axis for long prompts)`,
  );
  return { data: e.data.subarray(0, fixed * e.width), tokens: fixed };
}

/** Everything that steers the U-Net besides the latents: text embeddings and guidance. */
export interface Conditioning {
  embeddings: PromptEmbeddings;
  /** The guidance scale; classifier-free guidance is on when `embeddings.uncond` is set. */
  cfg: number;
  /** LCM: the guidance-scale embedding fed as `timestep_cond`. */
  timestepCond: Float32Array | null;
  /** A control-ready U-Net: gives the residuals for each U-Net call. Null for a plain U-Net. */
  residuals: ResidualSource | null;
  /**
   * A layout U-Net: the label map for one image, [K, h, w], fed as `label_map` on every call and
   * repeated over the batch (under CFG the same map goes into both halves). Null for other U-Nets.
   */
  labelMap: Float32Array | null;
  /** SDXL: the U-Net's `text_embeds` and `time_ids` for the prompt and the negative (sdxl-conditioning.ts). */
  added: AddedConditioning | null;
  /** Regional prompts: each region's embeddings and the blend weights at latent resolution (regions.ts). */
  regions?: RegionConditioning | null;
}

/**
 * The ControlNet residuals for one U-Net call, from the same `sample` (scaled latents, [batch, Cin, h, w])
 * and `states` the U-Net gets, so under CFG the ControlNet runs on the same [uncond, cond] batch.
 */
export type ResidualSource = (sample: HostTensor, t: number, states: HostTensor) => Promise<Residuals>;

/** What encoding the prompt reads and writes of a job: a live frame (live.ts) builds just this. */
export type PromptJob = Pick<Job, 'model' | 'params' | 'embeddingDirs' | 'padConds' | 'warnings'>;

/**
 * Whether the U-Net runs classifier-free guidance (a [negative, prompt] batch): cfg > 1, except on an LCM
 * model, which embeds the guidance scale; with an LCM-LoRA on another model, guidance is plain CFG (diffusers).
 */
export function usesCfg(model: LoadedModel, params: Pick<GenerationParams, 'cfg' | 'sampler'>): boolean {
  return params.cfg > 1 && !(params.sampler === 'lcm' && model.info.family === 'lcm');
}

/**
 * The prompt's (and under guidance the negative's) U-Net states, and SDXL's added inputs, with every
 * encoding setting of the parameters (clip skip, emphasis, embeddings) and the job's Pad conds; records
 * in the parameters what A1111's infotext says (embeddings used, Pad conds when it padded).
 */
export async function encodePromptStates(job: PromptJob, doCfg: boolean): Promise<{ embeddings: PromptEmbeddings; added: AddedConditioning | null }> {
  const { model, params } = job;
  if (!model.info.sdxl) return { embeddings: await encodePrompts(job, doCfg), added: null };
  const sdxl = await encodeSdxlJobConditioning(job, doCfg, { width: params.width, height: params.height }, {
    emphasis: params.emphasis ?? DEFAULT_EMPHASIS,
    ...(job.padConds ? { padConds: true } : {}),
    ...aestheticOptions(params),
  });
  if (sdxl.padded) params.padConds = true;
  return sdxl;
}

/**
 * Encodes the prompt and sets up guidance: classifier-free when cfg > 1, except LCM, which embeds the
 * guidance scale instead (sd-onnx-reference §3.7, §8.4).
 */
export async function encodeConditioning(job: Job): Promise<Conditioning> {
  const { model, params } = job;
  const condDim = model.info.unet.timestepCondDim;
  const timestepCond = condDim !== null ? guidanceEmbedding(params.cfg, condDim) : null;
  const { embeddings, added } = await timed(job, 'textEncodeMs', () => encodePromptStates(job, usesCfg(model, params)));
  const regions = job.regions?.length ? await timed(job, 'textEncodeMs', () => encodeRegions(job, embeddings, added)) : null;
  // Memory pressure (the releaseTextEncoders setting): the encoders' sessions go until the next prompt.
  if (model.settings.releaseTextEncoders) await releaseTextEncoderSessions(model);
  throwIfAborted(job.options.signal);
  return { embeddings, cfg: params.cfg, timestepCond, residuals: residualSource(job), labelMap: job.labelMap, added, regions };
}

/**
 * Releases the text encoders' sessions (both of SDXL's); each is created again from its file when the next
 * prompt is encoded. LoRA-patched sessions (built in memory) are kept.
 */
export async function releaseTextEncoderSessions(model: LoadedModel): Promise<void> {
  for (const module of new Set([model.modules.textEncoder, model.modules.textEncoder2])) await module?.unloadSession();
}

/**
 * Where a control-ready U-Net's residuals come from: the job's ControlNet (one call per U-Net call, on the
 * latent channels only, as diffusers' ControlNet inpaint pipeline feeds it), or zeros without control.
 */
function residualSource(job: Job): ResidualSource | null {
  const { model, control } = job;
  if (!model.info.control) return null;
  if (!control) return (sample) => model.zeroResiduals({ height: sample.dims[2]!, width: sample.dims[3]! }, sample.dims[0]!);
  const channels = control.controlNet.sampleChannels ?? model.info.latentChannels;
  return (sample, t, states) =>
    control.controlNet.run(leadingChannels(sample, channels), t, states, control.image, control.scale);
}

/** The first `channels` channels of each batch item of [batch, C, h, w] (the latents of a 9-channel input). */
function leadingChannels(sample: HostTensor, channels: number): HostTensor {
  const [batch, c, h, w] = sample.dims as [number, number, number, number];
  if (c === channels) return sample;
  const data = sample.data as Float32Array;
  const out = new Float32Array(batch * channels * h * w);
  for (let b = 0; b < batch; b++) out.set(data.subarray(b * c * h * w, (b * c + channels) * h * w), b * channels * h * w);
  return { data: out, dims: [batch, channels, h, w] };
}

/**
 * LCM guidance embedding (`get_guidance_scale_embedding`, sd-onnx-reference §3.7):
 * w·1000, sinusoidal with log(10000)/(half−1) frequency spacing, [sin | cos], zero-padded if dim is odd.
 */
export function guidanceEmbedding(guidanceScale: number, dim: number): Float32Array {
  const w = (guidanceScale - 1) * 1000;
  const half = Math.floor(dim / 2);
  const e = Math.log(10000) / (half - 1);
  const out = new Float32Array(dim);
  for (let i = 0; i < half; i++) {
    const freq = Math.exp(i * -e);
    out[i] = Math.sin(w * freq);
    out[half + i] = Math.cos(w * freq);
  }
  return out;
}

/**
 * One noise prediction with classifier-free guidance: `uncond + g·(cond − uncond)`.
 * `input` is the already-scaled model input for one image, [Cin, h, w] (Cin includes the inpainting
 * mask and masked-image latents; a layout U-Net's label map is its own input, from `conditioning`). Guidance runs as one batch-2 call when the U-Net's batch axis is
 * dynamic, as two calls otherwise, and not at all when `embeddings.uncond` is null. A control-ready
 * U-Net also gets its ControlNet residuals, computed for each U-Net call from that call's own batch.
 */
export async function predictNoise(
  model: LoadedModel,
  input: Float32Array,
  inChannels: number,
  shape: LatentShape,
  t: number,
  conditioning: Conditioning,
): Promise<Float32Array> {
  // Regional prompts blend one guided prediction per prompt by the regions' masks (regions.ts).
  if (conditioning.regions) return predictRegionalNoise(model, input, inChannels, shape, t, conditioning, conditioning.regions);
  const { embeddings, cfg } = conditioning;
  // (No closures here: this runs every step, and a named arrow function per call costs more than it reads.)
  if (!embeddings.uncond) return (await guidanceCall(model, conditioning, input, inChannels, shape, t, 1, embeddings.cond, 'cond')).slice();

  let uncondOut: Float32Array;
  let condOut: Float32Array;
  // Prompt and negative prompt of different lengths (chunk counts) go through the U-Net as two calls, as
  // A1111 does by default; padding the shorter one would change the picture.
  if (model.info.unet.batchDynamic && embeddings.condTokens === embeddings.uncondTokens) {
    const states = batchedStates(embeddings, embeddings.uncond);
    const both = await guidanceCall(model, conditioning, input, inChannels, shape, t, 2, states, 'both');
    const half = both.length / 2;
    uncondOut = both.subarray(0, half);
    condOut = both.subarray(half);
  } else {
    // The prepared call's output is overwritten by its next run only: the two calls have their own.
    uncondOut = await guidanceCall(model, conditioning, input, inChannels, shape, t, 1, embeddings.uncond, 'uncond');
    condOut = await guidanceCall(model, conditioning, input, inChannels, shape, t, 1, embeddings.cond, 'cond');
  }
  const guided = new Float32Array(condOut.length);
  for (let i = 0; i < guided.length; i++) guided[i] = uncondOut[i]! + cfg * (condOut[i]! - uncondOut[i]!);
  return guided;
}

/**
 * One U-Net call of `predictNoise`: `input` repeated `batch` times with `states` (and SDXL's added inputs
 * for `which`). The calls of a job repeat every step with the same shapes and prompt states, so their
 * tensors are built once (PreparedUnetCall), unless ControlNet residuals, new every call, are fed too.
 * A prepared call's result is its output array, overwritten by its next run.
 */
async function guidanceCall(
  model: LoadedModel,
  conditioning: Conditioning,
  input: Float32Array,
  inChannels: number,
  shape: LatentShape,
  t: number,
  batch: number,
  states: Float32Array,
  which: 'cond' | 'uncond' | 'both',
): Promise<Float32Array> {
  const { added } = conditioning;
  const unetBatch = { inChannels, shape, batch, states, added: added ? addedFeeds(added, which) : {} };
  const runner = conditioning.residuals === null ? preparedCall(model, conditioning, which, unetBatch) : null;
  if (runner) {
    for (let b = 0; b < batch; b++) runner.sample.set(input, b * input.length);
    return runner.run(t);
  }
  const sample = new Float32Array(input.length * batch);
  for (let b = 0; b < batch; b++) sample.set(input, b * input.length);
  return runUnet(model, conditioning, { ...unetBatch, t, sample });
}

/**
 * One U-Net call of a job ([negative, prompt] under batched CFG, or either alone) with its tensors made
 * once: the prompt states, SDXL's added inputs, LCM's `timestep_cond` and a layout U-Net's label map are
 * converted to the session's dtypes at the first step; each step writes the sample and the timestep into
 * their tensors in place and onnxruntime writes the prediction into a preallocated output. The same
 * values as runUnet feeds, so the same pictures; no per-step tensors, conversions or output copies.
 */
class PreparedUnetCall {
  readonly sample: Float32Array;
  private readonly sampleInput: PreparedInput;
  private readonly timestep: PreparedInput;
  private readonly feeds: Record<string, ort.Tensor>;
  private readonly outputs: Record<string, ort.Tensor>;
  private readonly read: () => Float32Array;

  private constructor(
    private readonly unet: OnnxModule,
    parts: { sample: PreparedInput; timestep: PreparedInput; feeds: Record<string, ort.Tensor>; outName: string; output: { tensor: ort.Tensor; read: () => Float32Array } },
  ) {
    this.sampleInput = parts.sample;
    this.sample = parts.sample.host;
    this.timestep = parts.timestep;
    this.feeds = parts.feeds;
    this.outputs = { [parts.outName]: parts.output.tensor };
    this.read = parts.output.read;
  }

  /** Null when the output's dtype can't be preallocated (runUnet then takes the call). */
  static create(model: LoadedModel, conditioning: Conditioning, call: Omit<UnetBatch, 't' | 'sample'>): PreparedUnetCall | null {
    const unet = model.modules.unet;
    const outName = unet.outputName(['out_sample']);
    const { inChannels, shape, batch } = call;
    const { height: h, width: w } = shape;
    const output = preparedOutput(unet.outputs.get(outName)!, [batch, shape.channels, h, w]);
    if (!output) return null;
    const sample = new PreparedInput(unet.requireInput('sample'), [batch, inChannels, h, w], unet.label);
    const timestep = new PreparedInput(unet.requireInput('timestep'), model.info.unet.timestepRank === 0 ? [] : [1], unet.label);
    const constant: Record<string, HostTensor> = { ...unetConstantFeeds(model, conditioning, call), ...call.added };
    const feeds: Record<string, ort.Tensor> = { sample: sample.tensor, timestep: timestep.tensor };
    for (const [name, tensor] of Object.entries(constant)) feeds[name] = toOrtTensor(tensor, unet.requireInput(name), unet.label);
    return new PreparedUnetCall(unet, { sample, timestep, feeds, outName, output });
  }

  /** The prediction for the sample written into `sample`, at t: [batch, C, h, w], overwritten by the next run. */
  async run(t: number): Promise<Float32Array> {
    this.sampleInput.sync();
    this.timestep.host[0] = t;
    this.timestep.sync();
    await this.unet.runPrepared(this.feeds, this.outputs);
    return this.read();
  }
}

/** A job's prepared U-Net calls, by the conditioning they belong to (a job's, or a live frame's). */
const preparedCalls = new WeakMap<Conditioning, PreparedEntry[]>();

interface PreparedEntry {
  unet: OnnxModule;
  which: 'cond' | 'uncond' | 'both';
  batch: number;
  inChannels: number;
  shape: LatentShape;
  call: PreparedUnetCall | null;
}

function preparedCall(
  model: LoadedModel,
  conditioning: Conditioning,
  which: 'cond' | 'uncond' | 'both',
  call: Omit<UnetBatch, 't' | 'sample'>,
): PreparedUnetCall | null {
  let entries = preparedCalls.get(conditioning);
  if (!entries) preparedCalls.set(conditioning, (entries = []));
  const unet = model.modules.unet;
  const { batch, inChannels, shape } = call;
  // One or two entries per job (a hires fix's second pass runs the same conditioning at another size).
  for (const e of entries) {
    if (
      e.unet === unet &&
      e.which === which &&
      e.batch === batch &&
      e.inChannels === inChannels &&
      e.shape.channels === shape.channels &&
      e.shape.height === shape.height &&
      e.shape.width === shape.width
    ) {
      return e.call;
    }
  }
  const entry = { unet, which, batch, inChannels, shape: { ...shape }, call: PreparedUnetCall.create(model, conditioning, call) };
  entries.push(entry);
  return entry.call;
}

/** [negative, prompt] states for a batch-2 call: the same every step, so built once per job's embeddings. */
const batchedStatesCache = new WeakMap<PromptEmbeddings, Float32Array>();
function batchedStates(embeddings: PromptEmbeddings, uncond: Float32Array): Float32Array {
  let states = batchedStatesCache.get(embeddings);
  if (!states) {
    states = new Float32Array(uncond.length * 2);
    states.set(uncond, 0);
    states.set(embeddings.cond, uncond.length);
    batchedStatesCache.set(embeddings, states);
  }
  return states;
}

/** One U-Net call on a batch: `sample` [batch, Cin, h, w], `states` [batch, tokens, hidden] and SDXL's added feeds for that batch. */
export interface UnetBatch {
  inChannels: number;
  shape: LatentShape;
  t: number;
  batch: number;
  sample: Float32Array;
  states: Float32Array;
  added: Record<string, HostTensor>;
}

/**
 * Runs the U-Net once with everything the conditioning adds to each call: LCM's `timestep_cond`, a layout
 * U-Net's label map and ControlNet residuals, each repeated or computed for the whole batch. Returns the
 * predicted noise, [batch, C, h, w].
 */
export async function runUnet(model: LoadedModel, conditioning: Conditioning, call: UnetBatch): Promise<Float32Array> {
  const { residuals } = conditioning;
  const { inChannels, shape, t, batch, sample } = call;
  const residualInputs = model.info.control ? [...model.info.control.downInputs, model.info.control.midInput] : [];
  const unet = model.modules.unet;
  const outName = unet.outputName(['out_sample']);
  const { height: h, width: w } = shape;
  const feeds: Record<string, HostTensor> = {
    sample: { data: sample, dims: [batch, inChannels, h, w] },
    timestep: timestepTensor(t, model.info.unet.timestepRank),
    ...unetConstantFeeds(model, conditioning, call),
    ...call.added,
  };
  if (residuals) {
    const fromControl = await residuals(feeds['sample']!, t, feeds['encoder_hidden_states']!);
    residualInputs.forEach((name, i) => (feeds[name] = fromControl[i]!));
  }
  const out = await unet.run(feeds, [outName]);
  return out[outName]!.data as Float32Array;
}

/**
 * The feeds of a U-Net call that are the same every step: the prompt states (converted once: `constant`),
 * LCM's `timestep_cond` and a layout U-Net's label map, each repeated over the batch.
 */
function unetConstantFeeds(model: LoadedModel, conditioning: Conditioning, call: Omit<UnetBatch, 't' | 'sample'>): Record<string, HostTensor> {
  const { timestepCond, labelMap } = conditioning;
  const { shape, batch, states } = call;
  const { height: h, width: w } = shape;
  const hidden = conditioning.embeddings.hidden;
  const tokens = states.length / (batch * hidden);
  const feeds: Record<string, HostTensor> = {
    // The same arrays every step of a job (prompt states, SDXL's added conditioning): converted once.
    encoder_hidden_states: { data: states, dims: [batch, tokens, hidden], constant: true },
  };
  if (timestepCond) {
    const dim = timestepCond.length;
    const cond = new Float32Array(batch * dim);
    for (let b = 0; b < batch; b++) cond.set(timestepCond, b * dim);
    feeds['timestep_cond'] = { data: cond, dims: [batch, dim] };
  }
  if (labelMap) {
    const plane = labelMap.length;
    const maps = new Float32Array(batch * plane);
    for (let b = 0; b < batch; b++) maps.set(labelMap, b * plane);
    feeds[LABEL_MAP_INPUT] = { data: maps, dims: [batch, plane / (h * w), h, w] };
  }
  return feeds;
}

/** Decodes `latents / scaling_factor` with the VAE decoder to RGB (§3.1 step 6). */
export async function decodeLatents(model: LoadedModel, latents: Float32Array, shape: LatentShape): Promise<RgbImage> {
  const dec = model.modules.vaeDecoder;
  const outName = dec.outputName(['sample']);
  const scaled = new Float32Array(latents.length);
  const inv = 1 / model.info.vaeScalingFactor;
  for (let i = 0; i < scaled.length; i++) scaled[i] = latents[i]! * inv;
  const out = await dec.run({ latent_sample: { data: scaled, dims: [1, shape.channels, shape.height, shape.width] } }, [outName]);
  const t = out[outName]!;
  return tensorToImage(t.data as Float32Array, t.dims[3]!, t.dims[2]!);
}

/**
 * Encodes an image tensor [3, H, W] in [-1, 1] to scaled latents. A `latent_parameters` encoder
 * (optimum) gives mean ‖ logvar and we sample `mean + exp(½·clamp(logvar))·z` with the job's RNG, as
 * the torch pipelines' `latent_dist.sample()` does; a `latent_sample` encoder (diffusers script) samples
 * inside its graph. Either way the result is multiplied by the scaling factor (§8.7).
 */
export async function encodeImage(
  model: LoadedModel,
  image: Float32Array,
  width: number,
  height: number,
  rng: GaussianSource,
): Promise<Float32Array> {
  const enc = model.modules.vaeEncoder;
  if (!enc || !model.info.vaeEncoder) throw new Error('encodeImage called on a model without a VAE encoder');
  const outName = model.info.vaeEncoder.output;
  const feeds: Record<string, HostTensor> = { sample: { data: image, dims: [1, 3, height, width] } };
  if (enc.input(POSTERIOR_NOISE_INPUT)) {
    // The patched diffusers-script encoder: z comes from the job's RNG (draw order: see job.ts).
    const f = model.info.vaeScaleFactor;
    const dims = [1, model.info.latentChannels, height / f, width / f];
    feeds[POSTERIOR_NOISE_INPUT] = { data: rng.randn(dims.reduce((a, b) => a * b, 1)), dims };
  }
  const out = await enc.run(feeds, [outName]);
  const t = out[outName]!;
  const data = t.data as Float32Array;
  const scaling = model.info.vaeScalingFactor;
  if (outName === 'latent_sample') {
    const latents = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) latents[i] = data[i]! * scaling;
    return latents;
  }
  const half = data.length / 2;
  const z = rng.randn(half);
  const latents = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const mean = data[i]!;
    const logvar = Math.min(LOGVAR_MAX, Math.max(LOGVAR_MIN, data[half + i]!));
    latents[i] = (mean + Math.exp(0.5 * logvar) * z[i]!) * scaling;
  }
  return latents;
}

/**
 * The denoising loop shared by text-to-image and image-to-image (§3.1 step 5):
 *   for t in timesteps: z ← step(CFG(U-Net(scale(z), t, y)), t, z)
 * with progress after each step and cancellation between steps. Returns what to decode: LCM's last
 * `denoised` (§3.7, equal to the latents after the final step), else the final latents.
 * Inpainting has its own loop (extra U-Net channels, latent blending).
 */
export async function denoise(job: Job, scheduler: Scheduler, start: Float32Array, conditioning: Conditioning): Promise<Float32Array> {
  const { model, shape, options } = job;
  const progress = new ProgressReporter(scheduler.timesteps.length, shape, options);
  let latents = start;
  let denoised: Float32Array | undefined;
  await timed(job, 'denoiseMs', async () => {
    for (const [i, t] of scheduler.timesteps.entries()) {
      throwIfAborted(options.signal);
      const input = scheduler.scaleModelInput(latents, t);
      const noisePred = await predictNoise(model, input, shape.channels, shape, t, conditioning);
      const out = scheduler.step(noisePred, t, latents, job.rng);
      latents = out.prevSample;
      denoised = out.predOriginal;
      job.timings.stepsRun = i + 1;
      progress.report(i + 1, denoised ?? latents);
    }
  });
  throwIfAborted(options.signal);
  return job.params.sampler === 'lcm' && denoised ? denoised : latents;
}

/** Step timing, ETA and previews for the progress callback. */
export class ProgressReporter {
  private readonly start = performance.now();
  private readonly every: number;

  constructor(
    private readonly total: number,
    private readonly shape: LatentShape,
    private readonly options: GenerateOptions,
  ) {
    this.every = options.previewEvery ?? 1;
  }

  report(step: number, latents: Float32Array): void {
    const cb = this.options.onProgress;
    if (!cb) return;
    const elapsedMs = performance.now() - this.start;
    const etaMs = step > 0 ? (elapsedMs / step) * (this.total - step) : 0;
    const wantPreview = this.every > 0 && (step % this.every === 0 || step === this.total);
    const preview = wantPreview ? latentPreview(latents, this.shape.channels, this.shape.width, this.shape.height) : undefined;
    cb({ step, total: this.total, elapsedMs, etaMs, ...(preview ? { preview } : {}) });
  }
}
