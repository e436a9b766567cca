/**
 * Regional prompts, blended as MultiDiffusion does for region-based generation (Bar-Tal et al. 2023,
 * "MultiDiffusion: Fusing Diffusion Paths for Controlled Image Generation", §4.2): at every step the U-Net
 * predicts the noise once per prompt (the main prompt and each region's), and the predictions are mixed
 * per latent position by the regions' masks. With m_r a region's mask area-averaged to latent resolution
 * (in [0, 1]) and w_r its weight:
 *
 *   a_r = w_r · m_r,   A = Σ_r a_r,   b = max(0, 1 − A)          (the main prompt fills what regions leave)
 *   α_0 = b / (b + A),   α_r = a_r / (b + A)                      (Σ_k α_k = 1 at every position)
 *   ε̂_k = u + g · (c_k − u)                                       (guidance per prompt, one shared negative u)
 *   ε̂ = Σ_k α_k · ε̂_k
 *
 * so a weight of 1 gives a region its own prompt alone inside its mask, a weight below 1 mixes the main
 * prompt in, and where regions overlap the heavier one wins. Without guidance (LCM, cfg ≤ 1) ε̂_k = c_k.
 *
 * Why this and not attention masking: it needs no change to the U-Net graph, so it runs on every SD 1.x,
 * 2.x and SDXL folder the engine opens (fixed or dynamic batch, LoRA-patched, ControlNet, 9-channel), and
 * its maths is a few lines a torch reference reproduces exactly (native-models/tools/make_region_parity.py).
 * The cost is one U-Net batch item per prompt per step. Calls are batched when the U-Net's batch axis is
 * dynamic and the prompts have the same token count.
 */
import sharp from 'sharp';
import { InvalidRequestError } from '../../shared/errors.js';
import { DEFAULT_REGION_WEIGHT } from '../../shared/generation-limits.js';
import type { RegionParams } from '../../shared/generation.js';
import type { LoadedModel } from '../model/model-folder.js';
import type { HostTensor } from '../model/onnx-module.js';
import { decodeMask, type GrayImage } from '../tensor/image.js';
import { fitToUnet, recordTextualInversion, runUnet, type Conditioning, type LatentShape, type PromptEmbeddings } from './components.js';
import type { Job, JobRegion } from './job.js';
import { cropMask, type CropRegion } from './only-masked.js';
import { encodeSdxlPrompts, type AddedConditioning } from './sdxl-conditioning.js';
import { TEXT_EMBEDS_INPUT, TIME_IDS_INPUT } from '../model/sdxl.js';
import type { RegionRequest } from './types.js';

/** U-Net batch items per call at most: a region-heavy job on a large model must not multiply its memory by 10. */
export const MAX_REGION_BATCH = 4;

/** One prompt's conditioning for the blend: [tokens, hidden] states and, for SDXL, its pooled embedding. */
interface PromptRow {
  states: Float32Array;
  tokens: number;
  textEmbeds: Float32Array | null;
  timeIds: Float32Array | null;
}

export interface RegionConditioning {
  /** The regions' prompts, in request order (the main prompt is the conditioning's own `cond`). */
  prompts: PromptRow[];
  /** Blend weights α_0 (main prompt), α_1 … α_R at latent resolution, each [h·w]. */
  weights: Float32Array[];
}

/**
 * Decodes the regions' masks, which must be `picture`'s size (the init image's, or width×height without
 * one), and scales them to `size` as the picture is scaled. A mask of another size or with nothing painted
 * is refused with the region's number, so nothing is silently stretched or ignored.
 */
export async function decodeRegions(
  regions: readonly RegionRequest[],
  picture: { width: number; height: number },
  size: { width: number; height: number },
  maxPixels?: number,
): Promise<JobRegion[]> {
  return Promise.all(
    regions.map(async (r, i) => {
      const which = `region ${i + 1}`;
      const meta = await sharp(r.mask).metadata().catch(() => null);
      if (meta && (meta.width !== picture.width || meta.height !== picture.height)) {
        throw new InvalidRequestError(`${which}'s mask is ${meta.width}×${meta.height}; it must be the picture's size, ${picture.width}×${picture.height}`);
      }
      const mask = await decodeMask(r.mask, size, maxPixels);
      if (!mask.data.some((v) => v > 0)) throw new InvalidRequestError(`${which}'s mask is empty: paint the area its prompt is for`);
      return { prompt: r.prompt, weight: r.weight ?? DEFAULT_REGION_WEIGHT, mask };
    }),
  );
}

/** "Only masked" inpaint: each region's mask cut to the crop and scaled to the working size, as the picture is. */
export function cropRegions(regions: readonly JobRegion[], crop: CropRegion, size: { width: number; height: number }): JobRegion[] {
  return regions.map((r) => ({ ...r, mask: cropMask(r.mask, crop, size) }));
}

/** What history and the infotext keep of each region: prompt, weight and the share of the picture its mask covers. */
export function regionParams(regions: readonly JobRegion[]): RegionParams[] {
  return regions.map((r) => {
    let sum = 0;
    for (const v of r.mask.data) sum += v;
    return { prompt: r.prompt, weight: r.weight, area: Math.round((sum / 255 / r.mask.data.length) * 1000) / 1000 };
  });
}

/** A mask as values in [0, 1] at latent resolution: the mean of each factor×factor block (torch `avg_pool2d`). */
export async function maskToLatentArea(mask: GrayImage, shape: LatentShape, factor: number): Promise<Float32Array> {
  const width = shape.width * factor;
  const height = shape.height * factor;
  let data = mask.data;
  if (mask.width !== width || mask.height !== height) {
    // A pass at another size than the masks were painted for (a hires pass): the masks follow the picture.
    const out = await sharp(Buffer.from(data), { raw: { width: mask.width, height: mask.height, channels: 1 } })
      .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
      .extractChannel(0)
      .raw()
      .toBuffer();
    data = new Uint8Array(out.buffer, out.byteOffset, out.length);
  }
  const out = new Float32Array(shape.width * shape.height);
  const scale = 1 / (255 * factor * factor);
  for (let y = 0; y < shape.height; y++) {
    for (let x = 0; x < shape.width; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        const row = (y * factor + dy) * width + x * factor;
        for (let dx = 0; dx < factor; dx++) sum += data[row + dx]!;
      }
      out[y * shape.width + x] = sum * scale;
    }
  }
  return out;
}

/** α_0 … α_R from the regions' latent masks and weights (the formula at the top of this file). */
export function blendWeights(masks: readonly Float32Array[], weights: readonly number[]): Float32Array[] {
  const plane = masks[0]!.length;
  const alphas = [new Float32Array(plane), ...masks.map(() => new Float32Array(plane))];
  for (let p = 0; p < plane; p++) {
    let total = 0;
    for (let r = 0; r < masks.length; r++) total += weights[r]! * masks[r]![p]!;
    const base = Math.max(0, 1 - total);
    const norm = base + total;
    alphas[0]![p] = base / norm;
    for (let r = 0; r < masks.length; r++) alphas[r + 1]![p] = (weights[r]! * masks[r]![p]!) / norm;
  }
  return alphas;
}

/** Encodes each region's prompt as the main prompt is encoded, and the blend weights at the job's latent size. */
export async function encodeRegions(job: Job, main: PromptEmbeddings, added: AddedConditioning | null): Promise<RegionConditioning> {
  const { model } = job;
  const regions = job.regions ?? [];
  const prompts: PromptRow[] = [];
  for (const [i, r] of regions.entries()) prompts.push(await encodeRegionPrompt(job, model, r.prompt, i, added));
  for (const [i, p] of prompts.entries()) {
    if (p.states.length / p.tokens !== main.hidden) throw new Error(`region ${i + 1}'s embeddings are ${p.states.length / p.tokens} wide, not ${main.hidden}`);
  }
  const masks = await Promise.all(regions.map((r) => maskToLatentArea(r.mask, job.shape, model.info.vaeScaleFactor)));
  return { prompts, weights: blendWeights(masks, regions.map((r) => r.weight)) };
}

async function encodeRegionPrompt(job: Job, model: LoadedModel, prompt: string, index: number, added: AddedConditioning | null): Promise<PromptRow> {
  if (model.info.sdxl) {
    // The region's own pooled embedding; its time ids are the main prompt's (the same picture).
    const { embeddings, pooled, textualInversion } = await encodeSdxlPrompts(model, prompt, '', false, { embeddings: await model.embeddingSet(job.embeddingDirs) });
    recordTextualInversion(job, textualInversion.used, textualInversion.skipped);
    return { states: embeddings.cond, tokens: embeddings.condTokens, textEmbeds: pooled.cond, timeIds: added!.timeIds.cond };
  }
  const encoded = await model.encodePrompt(prompt, job.params.clipSkip ?? 1, await model.embeddingSet(job.embeddingDirs));
  recordTextualInversion(job, encoded.embeddings, encoded.skipped ?? []);
  const fitted = fitToUnet(job, encoded, `prompt of region ${index + 1}`);
  return { states: fitted.data, tokens: fitted.tokens, textEmbeds: null, timeIds: null };
}

/**
 * The blended, guided noise prediction for one step. `input` is one image's scaled U-Net input [Cin, h, w],
 * as for predictNoise. Rows are [negative?, main, region 1 … R]; rows with the same token count go through
 * the U-Net together (at most MAX_REGION_BATCH at a time) when its batch axis is dynamic, else one by one.
 */
export async function predictRegionalNoise(
  model: LoadedModel,
  input: Float32Array,
  inChannels: number,
  shape: LatentShape,
  t: number,
  conditioning: Conditioning,
  regions: RegionConditioning,
): Promise<Float32Array> {
  const { embeddings, cfg, added } = conditioning;
  const main: PromptRow = {
    states: embeddings.cond,
    tokens: embeddings.condTokens,
    textEmbeds: added?.textEmbeds.cond ?? null,
    timeIds: added?.timeIds.cond ?? null,
  };
  const uncond: PromptRow | null = embeddings.uncond
    ? { states: embeddings.uncond, tokens: embeddings.uncondTokens, textEmbeds: added?.textEmbeds.uncond ?? null, timeIds: added?.timeIds.uncond ?? null }
    : null;
  const rows = [...(uncond ? [uncond] : []), main, ...regions.prompts];
  const outputs = await runRows(model, conditioning, input, inChannels, shape, t, rows);
  const n = outputs[0]!.length;
  const plane = shape.height * shape.width;
  const u = uncond ? outputs[0]! : null;
  const conds = uncond ? outputs.slice(1) : outputs;
  const out = new Float32Array(n);
  conds.forEach((c, k) => {
    const alpha = regions.weights[k]!;
    for (let i = 0; i < n; i++) {
      const guided = u ? u[i]! + cfg * (c[i]! - u[i]!) : c[i]!;
      out[i] = out[i]! + alpha[i % plane]! * guided;
    }
  });
  return out;
}

/** One noise prediction [C, h, w] per row, in row order. */
async function runRows(
  model: LoadedModel,
  conditioning: Conditioning,
  input: Float32Array,
  inChannels: number,
  shape: LatentShape,
  t: number,
  rows: PromptRow[],
): Promise<Float32Array[]> {
  const perBatch = model.info.unet.batchDynamic ? MAX_REGION_BATCH : 1;
  const results: Float32Array[] = new Array<Float32Array>(rows.length);
  // Consecutive rows with the same token count share a call.
  let start = 0;
  while (start < rows.length) {
    let end = start + 1;
    while (end < rows.length && end - start < perBatch && rows[end]!.tokens === rows[start]!.tokens) end++;
    const group = rows.slice(start, end);
    const batch = group.length;
    const sample = new Float32Array(input.length * batch);
    const states = new Float32Array(group.reduce((a, r) => a + r.states.length, 0));
    let o = 0;
    group.forEach((r, b) => {
      sample.set(input, b * input.length);
      states.set(r.states, o);
      o += r.states.length;
    });
    const out = await runUnet(model, conditioning, { inChannels, shape, t, batch, sample, states, added: addedFor(group) });
    const per = out.length / batch;
    for (let b = 0; b < batch; b++) results[start + b] = out.subarray(b * per, (b + 1) * per);
    start = end;
  }
  return results;
}

/** SDXL's `text_embeds` and `time_ids` for a group of rows, stacked in row order. */
function addedFor(group: PromptRow[]): Record<string, HostTensor> {
  if (!group[0]!.textEmbeds) return {};
  const stack = (parts: Float32Array[]): HostTensor => {
    const width = parts[0]!.length;
    const data = new Float32Array(parts.length * width);
    parts.forEach((p, i) => data.set(p, i * width));
    return { data, dims: [parts.length, width] };
  };
  return { [TEXT_EMBEDS_INPUT]: stack(group.map((r) => r.textEmbeds!)), [TIME_IDS_INPUT]: stack(group.map((r) => r.timeIds!)) };
}
