/**
 * What a generation is, as the engine, the history store, the host and the renderer all see it.
 * Pure types and constants: no node, electron or DOM imports.
 */

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
  /**
   * Regional prompts, in the request's order: each region's prompt, weight and the share of the picture
   * its mask covers (0 to 1, the mask's mean). The masks themselves are inputs (stored like the mask).
   */
  regions?: RegionParams[];
}

/** One regional prompt as it ran (engine/pipelines/regions.ts). */
export interface RegionParams {
  prompt: string;
  weight: number;
  /** The mean of the region's mask over the picture, 0 to 1 (rounded to 3 decimals). */
  area: number;
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
