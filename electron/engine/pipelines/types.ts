/** The engine's request, result and progress types (plain data; the host maps IPC payloads onto these). */
import type { ExecutionProviderName, GenerationMode, InpaintArea, GenerationParams, GenerationTimings, SamplerName } from '../../shared/generation.js';
import type { LoraReport } from '../lora/sessions.js';
import type { RgbImage } from '../tensor/image.js';
import type { EmphasisMode } from '../../shared/generation-limits.js';

export interface GenerateRequest {
  mode: GenerationMode;
  prompt: string;
  negativePrompt?: string;
  /** Integer in [0, 2^53). */
  seed: number;
  /** Input images with more pixels are refused before decoding (sharp's limitInputPixels); default DEFAULT_MAX_INPUT_PIXELS. */
  maxInputPixels?: number;
  steps?: number;
  cfg?: number;
  sampler?: SamplerName;
  width?: number;
  height?: number;
  /** img2img / inpaint: 0 < strength ≤ 1 (default 0.75 for img2img, 1 for inpaint). */
  strength?: number;
  /** inpaint: inward feather of the mask edge in pixels (default 4); with softInpaint, the change map's blur. */
  maskBlur?: number;
  /** inpaint: soft inpainting by differential diffusion on the mask's grey levels (pipelines/soft-inpaint.ts). */
  softInpaint?: boolean;
  /** inpaint: 'whole' (default) or 'masked' — repaint only a crop around the mask (see only-masked.ts). */
  inpaintArea?: InpaintArea;
  /** inpaint, 'masked' area: context pixels around the mask (default 32). */
  maskPadding?: number;
  /** img2img / inpaint: the input image, encoded (PNG, JPEG, WebP). */
  initImage?: Uint8Array;
  /** inpaint: the mask, encoded; white = repaint. */
  mask?: Uint8Array;
  /**
   * Caller-supplied initial noise, like diffusers' `latents=`: float32, shape [1, C, H/f, W/f].
   * Used instead of drawing from the seed, so a run can be compared with the reference implementation.
   */
  latents?: Float32Array;
  /** ControlNet guidance; needs a U-Net exported with ControlNet residual inputs (ModelInfo.control). */
  control?: ControlRequest;
  /**
   * layout: the label map, an RGB PNG of exactly width×height painted in the model's label colours
   * (ModelInfo.layout.labels); see tensor/label-map.ts for how it becomes the U-Net's `label_map`.
   */
  labelMap?: Uint8Array;
  /**
   * Folders where the prompt's `<lora:name:weight>` names are looked up (`<dir>/<name>.safetensors`), first
   * first. The tags stay in the prompt (history keeps them) and are removed from the encoded text.
   */
  loraDirs?: readonly string[];
  /** A1111's "Clip skip" (1 to 12, default 1): condition on the text encoder's hidden state N − 1 layers before the last. */
  clipSkip?: number;
  /** A1111's "Emphasis" (default Original): see EMPHASIS_MODES. */
  emphasis?: EmphasisMode;
  /** A1111's "Pad conds": when prompt and negative differ in chunks, pad the shorter with empty-prompt chunks (one U-Net batch). */
  padConds?: boolean;
  /** Folders of textual-inversion embeddings (.pt, .bin, .safetensors); a prompt word equal to a file stem uses its vectors. */
  embeddingDirs?: string[];
  /**
   * Regional prompts (txt2img, img2img, inpaint): each region's prompt conditions the picture inside its
   * mask, the main prompt the rest (pipelines/regions.ts). At most MAX_REGIONS.
   */
  regions?: RegionRequest[];
  /** txt2img: A1111's hires fix (pipelines/hires.ts); every field has A1111's default. */
  hires?: HiresRequest;
  /**
   * SDXL refiner only: the aesthetic scores its time ids end with, for the prompt and the negative
   * (diffusers' `aesthetic_score` / `negative_aesthetic_score`; defaults 6 and 2.5, 0 to 10).
   */
  aestheticScore?: number;
  negativeAestheticScore?: number;
  /** Folders of ONNX upscaler models (`<dir>/<name>.onnx`, ESRGAN-style) a hires fix may name as its upscaler. */
  upscalerDirs?: readonly string[];
}

export interface RegionRequest {
  /** The region's prompt (A1111 syntax; `<lora:…>` tags belong in the main prompt). */
  prompt: string;
  /** The region's mask, encoded (PNG, JPEG, WebP) at the picture's size: white = this region, grey = partly. */
  mask: Uint8Array;
  /** MIN_REGION_WEIGHT to MAX_REGION_WEIGHT, default 1. */
  weight?: number;
}

export interface HiresRequest {
  upscaler?: string;
  scale?: number;
  resizeWidth?: number;
  resizeHeight?: number;
  steps?: number;
  strength?: number;
}

export interface ControlRequest {
  /** The control image, encoded (PNG, JPEG, WebP); resized to width×height and fed in [0, 1]. */
  image: Uint8Array;
  /** diffusers' `controlnet_conditioning_scale`, 0 to 2 (0 = the same image as without control). */
  scale: number;
  /**
   * A folder with `controlnet/model.onnx`, or a ControlNet export folder with `model.onnx`.
   * Default: the model folder's own `controlnet/`.
   */
  model?: string;
}

export interface GenerateProgress {
  step: number;
  total: number;
  elapsedMs: number;
  etaMs: number;
  /** A small RGB preview (one pixel per latent cell), projected from the latents without the VAE. */
  preview?: RgbImage;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  onProgress?: (p: GenerateProgress) => void;
  /** Emit a preview every n steps (0 = never). Default 1. */
  previewEvery?: number;
}

export interface GenerateResult {
  image: RgbImage;
  params: GenerationParams;
  timings: GenerationTimings;
  /** The provider the U-Net ran on. */
  provider: ExecutionProviderName;
  /** Per-submodel providers. */
  providers: Record<string, ExecutionProviderName>;
  /** The LoRAs the prompt applied: hashes and how many of their modules were found (and not found). */
  loras: LoraReport[];
  /**
   * What the run had to change or leave out (e.g. a long prompt cut to 77 tokens for a fixed-length
   * U-Net), and what the model's loading said about the VAE decoder that made the picture.
   */
  warnings: string[];
}
