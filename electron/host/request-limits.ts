/**
 * What one generate request may cost, checked when it is queued and before anything decodes or runs:
 * input images by the pixel count in their headers (a decompression bomb is refused from its first
 * bytes), the output by the model's native size and by the engine's memory estimate.
 */
import { totalmem } from 'node:os';
import type { Requests, StudioSettings } from '../shared/contract.js';
import { BadImageError, InvalidRequestError, StudioError } from '../shared/errors.js';
import { imageHeaderFromBase64 } from '../shared/image-header.js';
import type { LibraryModel } from '../shared/model-library.js';
import {
  DEFAULT_MAX_INPUT_PIXELS,
  DEFAULT_MAX_SIZE_FACTOR,
  estimateJobBytes,
  formatBytes,
  formatMegapixels,
} from '../shared/resource-limits.js';
import { DEFAULT_HIRES_SCALE, hiresSize } from '../shared/generation-limits.js';
import type { StoredSettings } from './settings-store.js';

export type GenerationLimits = Pick<StudioSettings, 'maxInputPixels' | 'maxSizeFactor' | 'maxJobMemoryMb'>;

/** Three quarters of the machine's memory: the engine is its main user, but shares it with the app and the OS. */
export function defaultMaxJobMemoryMb(): number {
  return Math.floor((totalmem() * 0.75) / 1024 / 1024);
}

/** The limits in effect: the stored settings, defaults for those left unset. */
export function generationLimits(stored: StoredSettings): GenerationLimits {
  return {
    maxInputPixels: stored.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS,
    maxSizeFactor: stored.maxSizeFactor ?? DEFAULT_MAX_SIZE_FACTOR,
    maxJobMemoryMb: stored.maxJobMemoryMb ?? defaultMaxJobMemoryMb(),
  };
}

/**
 * The largest size the engine works at: width×height, or a hires fix's target and what it upscales to
 * (rounded to multiples of 8; a model with a larger size multiple rounds further down, never up).
 */
export function outputSize(req: Pick<Requests['generate'], 'mode' | 'width' | 'height' | 'hires'>, model: LibraryModel): { width: number; height: number } {
  const native = model.nativeResolution;
  const width = req.width ?? native.width;
  const height = req.height ?? native.height;
  if (!req.hires || req.mode !== 'txt2img') return { width, height };
  const { upscaleTo, target } = hiresSize(
    width,
    height,
    { scale: req.hires.scale ?? DEFAULT_HIRES_SCALE, resizeWidth: req.hires.resizeWidth ?? 0, resizeHeight: req.hires.resizeHeight ?? 0 },
  );
  return { width: Math.max(upscaleTo.width, target.width), height: Math.max(upscaleTo.height, target.height) };
}

/**
 * Request images (field name, base64 of the file) by their headers alone, before anything decodes them:
 * each must be a PNG, JPEG or WebP of at most maxInputPixels (an image bomb is refused unread).
 */
export function checkInputImages(images: Array<[string, string | undefined]>, limits: Pick<GenerationLimits, 'maxInputPixels'>): void {
  for (const [field, base64] of images) {
    if (base64 === undefined) continue;
    const header = imageHeaderFromBase64(base64);
    if (!header) throw new BadImageError(`${field}: not a PNG, JPEG or WebP image (or its header is cut short).`);
    const pixels = header.width * header.height;
    if (pixels > limits.maxInputPixels) {
      throw new StudioError(
        'E_TOO_LARGE',
        `${field}: the image is ${header.width}×${header.height} (${formatMegapixels(pixels)}); input images may have at most ${formatMegapixels(limits.maxInputPixels)} (setting maxInputPixels).`,
      );
    }
  }
}

/** Throws E_TOO_LARGE (or E_BAD_IMAGE for an image that isn't PNG, JPEG or WebP) before the request is queued. */
export function checkGenerateLimits(req: Requests['generate'], model: LibraryModel, limits: GenerationLimits): void {
  checkInputImages(
    [
      ['initImage', req.initImage],
      ['mask', req.mask],
      ['control.image', req.control?.image],
      ['labelMap', req.labelMap],
      ...(req.regions ?? []).map((r, i): [string, string] => [`regions[${i}].mask`, r.mask]),
    ],
    limits,
  );
  const native = model.nativeResolution;
  const { width, height } = outputSize(req, model);
  const maxWidth = Math.floor(native.width * limits.maxSizeFactor);
  const maxHeight = Math.floor(native.height * limits.maxSizeFactor);
  if (width > maxWidth || height > maxHeight) {
    const what = req.hires ? `Hires fix would make ${width}×${height} (from ${req.width ?? native.width}×${req.height ?? native.height}), which` : `${width}×${height}`;
    throw new InvalidRequestError(
      `${what} is too large for the model "${model.name}": it was trained at ${native.width}×${native.height}, and outputs may be at most ${limits.maxSizeFactor}× that (${maxWidth}×${maxHeight}, setting maxSizeFactor).`,
    );
  }
  const needed = estimateJobBytes(width, height);
  const allowed = limits.maxJobMemoryMb * 1024 * 1024;
  if (needed > allowed) {
    throw new StudioError(
      'E_TOO_LARGE',
      `${width}×${height} would need about ${formatBytes(needed)} of memory in the engine (estimate), more than the ${formatBytes(allowed)} one job may use (setting maxJobMemoryMb).`,
    );
  }
}
