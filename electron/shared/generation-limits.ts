/**
 * A generation request's limits and defaults, defined once. The contract's schema
 * (contract-schemas.ts `generateRequestSchema`) is built from these constants, the engine's
 * `resolveParams` checks the same ones again (a request can reach the engine without the host: CLI,
 * tests), and the renderer's prompt panel bounds its fields and explains Generate's problems with them.
 *
 * This module imports nothing, so the renderer may import its values: it is the one electron/shared
 * module it may import more than types from (eslint.config.js). test/unit/shared/generation-limits.test.ts
 * fails when one of these names is declared again elsewhere.
 */

/** Prompt and negative prompt, each. */
export const MAX_PROMPT_CHARS = 10_000;
export const MIN_STEPS = 1;
export const MAX_STEPS = 1000;
export const MIN_CFG = 0;
export const MAX_CFG = 50;
/** Width and height: multiples of 8 (the VAE's factor; a model may need a larger multiple, ModelInfo.sizeMultiple). */
export const MIN_SIDE = 8;
export const MAX_SIDE = 4096;
export const SIDE_MULTIPLE = 8;
/** img2img / inpaint: the share of the schedule that runs (1 = from pure noise). */
export const MIN_STRENGTH = 0;
export const MAX_STRENGTH = 1;
/** inpaint: Gaussian feather radius of the mask edge, in image pixels. */
export const MAX_MASK_BLUR = 256;
/** inpaint, only masked: pixels of context kept around the mask. */
export const MAX_MASK_PADDING = 1024;
/** The conditioning scale range of A1111's and diffusers' ControlNet UIs ("Control Weight" 0–2). */
export const MAX_CONTROL_SCALE = 2;
/**
 * Regional prompts: at most this many regions in one generation. Each distinct prompt adds one U-Net pass
 * per step (engine/pipelines/regions.ts), so the cap bounds a job's time and memory.
 */
export const MAX_REGIONS = 8;
/** A region's weight: 1 = its prompt alone inside its mask; below 1 mixes in the main prompt; above 1 wins where regions overlap. */
export const MIN_REGION_WEIGHT = 0.05;
export const MAX_REGION_WEIGHT = 2;
export const DEFAULT_REGION_WEIGHT = 1;
/** Seeds are integers in [0, 2^53 − 1] (the engine's RNG takes any safe integer). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/** img2img's strength when a request has none (A1111's and diffusers' default). */
export const DEFAULT_IMG2IMG_STRENGTH = 0.75;
/** A1111's default "Mask blur". */
export const DEFAULT_MASK_BLUR = 4;
/** A1111's default "Only masked padding, pixels". */
export const DEFAULT_MASK_PADDING = 32;
/** diffusers' `controlnet_conditioning_scale` default. */
export const DEFAULT_CONTROL_SCALE = 1;
/** Steps and guidance scale of an SD 1.x/2.x model without its own (diffusers' and A1111's defaults). */
export const DEFAULT_STEPS = 20;
export const DEFAULT_CFG = 7.5;
/** An LCM model's: a consistency-distilled U-Net needs few steps (the LCM paper's 4-step setting, diffusers' LCM guidance 8). */
export const DEFAULT_LCM_STEPS = 4;
export const DEFAULT_LCM_CFG = 8;
/** With an LCM-LoRA on a plain model: 4 steps, guidance 1 (its model card; 1–2 work), plain CFG above 1. */
export const LCM_LORA_STEPS = 4;
export const LCM_LORA_CFG = 1;

/** A1111's "Clip skip" slider range (`CLIP_stop_at_last_layers`, 1 to 12). */
export const MAX_CLIP_SKIP = 12;
/**
 * A1111's "Emphasis" option (modules/sd_emphasis.py), its infotext values: `Original` (the default) weights
 * each token and restores the chunk's mean, `No norm` weights without restoring, `Ignore` parses the
 * brackets but applies no weight, `None` reads brackets (and BREAK) as plain text.
 */
export const EMPHASIS_MODES = ['Original', 'No norm', 'Ignore', 'None'] as const;
export type EmphasisMode = (typeof EMPHASIS_MODES)[number];
export const DEFAULT_EMPHASIS: EmphasisMode = 'Original';
/** An SDXL base's (Stability's and diffusers' SDXL examples use 5–7 at 25–50 steps). */
export const DEFAULT_SDXL_STEPS = 25;
export const DEFAULT_SDXL_CFG = 5;
/** SDXL-Turbo: one step without guidance (diffusers sdxl_turbo.md: guidance_scale 0.0). */
export const DEFAULT_SDXL_TURBO_STEPS = 1;
/** SDXL-Lightning-style few-step folders: 4 steps without guidance (the Lightning card's 4-step checkpoint). */
export const DEFAULT_SDXL_LIGHTNING_STEPS = 4;
/** Guidance off: Turbo and Lightning are distilled without classifier-free guidance. */
export const DEFAULT_DISTILLED_CFG = 0;
/**
 * The SDXL refiner's aesthetic conditioning (its time ids end with a score; the training data's LAION
 * aesthetic scores run 0 to 10): diffusers' `aesthetic_score` / `negative_aesthetic_score` defaults, the
 * same as A1111's "SDXL high / low aesthetic score" options.
 */
export const DEFAULT_AESTHETIC_SCORE = 6;
export const DEFAULT_NEGATIVE_AESTHETIC_SCORE = 2.5;
export const MIN_AESTHETIC_SCORE = 0;
export const MAX_AESTHETIC_SCORE = 10;

/**
 * A1111's "Latent" hires upscalers: the first pass's latents interpolated as torch `F.interpolate` does
 * (A1111 `shared.latent_upscale_modes`, align_corners False, no antialias).
 */
export const HIRES_LATENT_UPSCALERS = ['Latent', 'Latent (bicubic)', 'Latent (nearest)', 'Latent (nearest-exact)'] as const;
/** Pixel upscalers built in: the decoded first pass resized (A1111's "Lanczos" and "Nearest"). */
export const HIRES_PIXEL_UPSCALERS = ['Lanczos', 'Nearest'] as const;
/** Hires fix (A1111's UI defaults: Latent, upscale by 2, denoising strength 0.7, hires steps 0 = same as the first pass). */
export const DEFAULT_HIRES_UPSCALER = 'Latent';
export const DEFAULT_HIRES_SCALE = 2;
export const DEFAULT_HIRES_STRENGTH = 0.7;
/** A1111's "Upscale by" slider range. */
export const MIN_HIRES_SCALE = 1;
export const MAX_HIRES_SCALE = 4;

/** The sizes a hires fix works at: `upscaleTo` is what the first pass is upscaled to, `target` what comes out (a centred crop of it). */
export interface HiresSize {
  upscaleTo: { width: number; height: number };
  target: { width: number; height: number };
}

/**
 * A1111's `StableDiffusionProcessingTxt2Img.init` size rules, with every side rounded down to a multiple
 * of `multiple` (SIDE_MULTIPLE as A1111, or the model's own larger ModelInfo.sizeMultiple): no resize → width·scale × height·scale; one side given → the other keeps the aspect
 * ratio; both given → upscale to cover them, then crop the middle (A1111's `truncate_x/y`).
 */
export function hiresSize(
  width: number,
  height: number,
  hires: { scale: number; resizeWidth: number; resizeHeight: number },
  multiple: number = SIDE_MULTIPLE,
): HiresSize {
  const floor8 = (v: number): number => Math.floor(v / multiple) * multiple;
  const { scale, resizeWidth: rx, resizeHeight: ry } = hires;
  if (rx === 0 && ry === 0) {
    const size = { width: floor8(width * scale), height: floor8(height * scale) };
    return { upscaleTo: size, target: size };
  }
  if (ry === 0) {
    const size = { width: floor8(rx), height: floor8(Math.floor((rx * height) / width)) };
    return { upscaleTo: size, target: size };
  }
  if (rx === 0) {
    const size = { width: floor8(Math.floor((ry * width) / height)), height: floor8(ry) };
    return { upscaleTo: size, target: size };
  }
  const target = { width: floor8(rx), height: floor8(ry) };
  const upscaleTo = width / height < rx / ry
    ? { width: floor8(rx), height: floor8(Math.floor((rx * height) / width)) }
    : { width: floor8(Math.floor((ry * width) / height)), height: floor8(ry) };
  return { upscaleTo, target };
}
