/** One generation in flight: the model, checked parameters, RNG, latent shape, inputs and timings. */
import type { GenerationParams, GenerationTimings } from '../../shared/generation.js';
import type { ControlNet } from '../model/controlnet.js';
import type { LoraReport } from '../lora/sessions.js';
import type { LoadedModel } from '../model/model-folder.js';
import type { GrayImage, RgbImage } from '../tensor/image.js';
import type { GaussianSource } from '../tensor/rng.js';
import type { LatentShape } from './components.js';
import type { CropRegion } from './only-masked.js';
import type { GenerateOptions } from './types.js';

export interface Job {
  model: LoadedModel;
  params: GenerationParams;
  /**
   * The job's RNG. Draw order is fixed and documented so a seed means the same thing in every version:
   * 1. the initial noise (unless the request supplied `latents`);
   * 2. VAE posterior samples for the init image, then for the masked image (latent_parameters encoders);
   * 3. ancestral / LCM scheduler noise, one latent-sized draw per step.
   */
  rng: GaussianSource;
  /** The initial noise ε ~ N(0, I), [1, C, h, w]: from the request's `latents` or drawn first from `rng`. */
  noise: Float32Array;
  shape: LatentShape;
  initImage: RgbImage | null;
  mask: GrayImage | null;
  options: GenerateOptions;
  timings: GenerationTimings;
  /**
   * 'masked' inpaint area: the whole picture and mask at their own resolution, and the crop that
   * `initImage`/`mask` (at width×height) were cut from; with soft inpainting, the paste-back weights of
   * the crop (only-masked.ts softCrop). Null for whole-picture jobs.
   */
  region: { picture: RgbImage; pictureMask: GrayImage; crop: CropRegion; softAlpha?: Float32Array } | null;
  /** The request's control: the ControlNet, its image as [3, H, W] in [0, 1] at width×height, and the scale. */
  control: JobControl | null;
  /** layout: the label map at latent resolution, [K, h, w] (tensor/label-map.ts). Null for other modes. */
  labelMap: Float32Array | null;
  /** The prompt's LoRAs (`model` is then a view with patched U-Net / text encoder sessions). */
  loras: LoraReport[];
  /** Folders of textual-inversion embeddings the prompts may use (from the request). */
  embeddingDirs: string[];
  /** The request asked for A1111's "Pad conds" (components.ts encodePrompts). */
  padConds?: boolean;
  /**
   * Regional prompts: each region's prompt, weight and mask at width×height (gray, white = the region).
   * Absent or empty without regions. The masks come to latent resolution when the prompts are encoded.
   */
  regions?: JobRegion[];
  /** A hires fix's ONNX upscaler file (found in the request's upscalerDirs); absent for the built-in upscalers. */
  upscalerFile?: string;
  /** What the run had to change or leave out; returned with the result. */
  warnings: string[];
}

export interface JobRegion {
  prompt: string;
  weight: number;
  mask: GrayImage;
}

export interface JobControl {
  controlNet: ControlNet;
  image: { data: Float32Array; width: number; height: number };
  scale: number;
}

export function emptyTimings(): GenerationTimings {
  return { totalMs: 0, textEncodeMs: 0, vaeEncodeMs: 0, denoiseMs: 0, vaeDecodeMs: 0, stepsRun: 0 };
}

/** Measures an async stage into one of the timing fields. */
export async function timed<T>(job: Job, field: keyof Omit<GenerationTimings, 'stepsRun'>, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    job.timings[field] += performance.now() - t0;
  }
}
