/**
 * What a generation is, as the engine, the history store, the host and the renderer all see it.
 * Pure types and constants: no node, electron or DOM imports.
 */
import { HIRES_LATENT_UPSCALERS } from './generation-limits.js';
import type { EmphasisMode } from './generation-limits.js';

export const SAMPLERS = [
  'euler',
  'euler_a',
  'ddim',
  'pndm',
  'dpmpp_2m',
  'dpmpp_2m_karras',
  'lcm',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** 'layout': semantic synthesis from a label map (needs a layout model, ModelInfo.kind 'layout'). */
export const GENERATION_MODES = ['txt2img', 'img2img', 'inpaint', 'layout'] as const;
export type GenerationMode = (typeof GENERATION_MODES)[number];

/** Parameters of one generation, everything needed to reproduce it with the same model. */
export interface GenerationParams {
  mode: GenerationMode;
  prompt: string;
  negativePrompt: string;
  seed: number;
  steps: number;
  cfg: number;
  sampler: SamplerName;
  width: number;
  height: number;
  /** img2img / inpaint: how much of the schedule runs (1 = from pure noise). */
  strength: number;
  /** inpaint: Gaussian feather radius of the mask edge, in image pixels. */
  maskBlur: number;
  /**
   * inpaint: 'whole' repaints at width×height over the whole picture; 'masked' (A1111's "only masked")
   * crops around the mask plus `maskPadding`, repaints that crop at width×height and pastes it back into
   * the picture at its own resolution. Absent = 'whole'.
   */
  inpaintArea?: InpaintArea;
  /** inpaint, 'masked' area: pixels of context kept around the mask's bounding box. */
  maskPadding?: number;
  /** Set when a ControlNet guided the run: its conditioning scale (0 to 2). */
  controlScale?: number;
  /** A1111's "Clip skip": the text encoder's hidden state N − 1 layers before the last. Absent = 1. */
  clipSkip?: number;
  /** Textual-inversion embeddings the prompts used: name and the first 12 hex digits of the file's sha256 (A1111 "TI hashes"). */
  embeddings?: EmbeddingUse[];
  /** A1111's "Emphasis" when not `Original` (absent = Original). */
  emphasis?: EmphasisMode;
  /**
   * A1111's "Pad conds": set when the run asked for it and the prompt and negative had different chunk
   * counts, so the shorter was padded with empty-prompt chunks and both went through the U-Net as one batch.
   */
  padConds?: true;
  /**
   * Regional prompts, in the request's order: each region's prompt, weight and the share of the picture
   * its mask covers (0 to 1, the mask's mean). The masks themselves are inputs (stored like the mask).
   */
  regions?: RegionParams[];
  /** txt2img: A1111's hires fix, a second img2img pass at a larger size (absent = off). */
  hires?: HiresParams;
  /**
   * SDXL refiner runs: the aesthetic scores its time ids ended with, for the prompt and the negative
   * (diffusers' `aesthetic_score` / `negative_aesthetic_score`). Absent for every other model.
   */
  aestheticScore?: number;
  negativeAestheticScore?: number;
  /**
   * inpaint: soft inpainting by differential diffusion (pipelines/soft-inpaint.ts): the mask's grey levels
   * (brush hardness, mask blur) say how much each pixel may change. Absent = the hard mask (binarized at ½).
   */
  softInpaint?: boolean;
}

/** One regional prompt as it ran (engine/pipelines/regions.ts). */
export interface RegionParams {
  prompt: string;
  weight: number;
  /** The mean of the region's mask over the picture, 0 to 1 (rounded to 3 decimals). */
  area: number;
}

// The upscaler names live with the other generation defaults (the renderer's panel lists them).
export { HIRES_LATENT_UPSCALERS, HIRES_PIXEL_UPSCALERS } from './generation-limits.js';
export type HiresLatentUpscaler = (typeof HIRES_LATENT_UPSCALERS)[number];

export function isLatentUpscaler(name: string): name is HiresLatentUpscaler {
  return (HIRES_LATENT_UPSCALERS as readonly string[]).includes(name);
}

/**
 * Hires fix, as A1111 runs it: the first pass at width×height, upscaled (latents, or the decoded picture
 * by Lanczos, Nearest or an ONNX upscaler model named by its file stem), then img2img at `strength`
 * for `steps` (0 = the first pass's steps) at the target size.
 */
export interface HiresParams {
  /** A1111 "Hires upscaler": one of HIRES_LATENT_UPSCALERS / HIRES_PIXEL_UPSCALERS, or an ONNX upscaler's name. */
  upscaler: string;
  /** A1111 "Hires upscale" (used when no resize is given). */
  scale: number;
  /** A1111 "Hires resize": the target size; 0 = derived from the other side (both 0 = use `scale`). */
  resizeWidth: number;
  resizeHeight: number;
  /** A1111 "Hires steps": the second pass's steps; 0 = the same as the first pass. */
  steps: number;
  /** A1111 "Denoising strength" of the second pass. */
  strength: number;
}

export interface EmbeddingUse {
  name: string;
  hash: string;
}


export const INPAINT_AREAS = ['whole', 'masked'] as const;
export type InpaintArea = (typeof INPAINT_AREAS)[number];

/** Timings of one run, in milliseconds. */
export interface GenerationTimings {
  totalMs: number;
  textEncodeMs: number;
  vaeEncodeMs: number;
  denoiseMs: number;
  vaeDecodeMs: number;
  stepsRun: number;
}

export type ExecutionProviderName = 'webgpu' | 'cuda' | 'dml' | 'coreml' | 'cpu';
