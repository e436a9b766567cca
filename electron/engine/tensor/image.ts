/**
 * Images in and out of the engine. Pixels are 8-bit RGB, row-major (`rgb[(y*w + x)*3 + c]`).
 * Decoding and resizing use sharp (libvips); the mask blur (gauss-blur.ts) and the tensor maths are plain loops.
 */
import sharp from 'sharp';
import { blurMaskU8 } from './gauss-blur.js';
import { BadImageError } from '../../shared/errors.js';
import { DEFAULT_MAX_INPUT_PIXELS } from '../../shared/resource-limits.js';

import type { RgbImage } from '../../shared/history.js';
export type { RgbImage };

export interface GrayImage {
  width: number;
  height: number;
  /** width*height bytes. */
  data: Uint8Array;
}

/**
 * Decodes PNG/JPEG/WebP bytes to RGB (alpha flattened onto white), resized to width×height if given.
 * An image of more than `maxPixels` pixels is refused before its pixels are decoded (a decompression bomb).
 */
export async function decodeImage(bytes: Uint8Array, what: string, size?: { width: number; height: number }, maxPixels = DEFAULT_MAX_INPUT_PIXELS): Promise<RgbImage> {
  try {
    let img = sharp(bytes, { failOn: 'error', limitInputPixels: maxPixels }).rotate().flatten({ background: '#ffffff' }).removeAlpha();
    if (size) img = img.resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' });
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
    return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    throw new BadImageError(`${what}: cannot decode the image (${(err as Error).message})`, { cause: err });
  }
}

/**
 * Decodes a mask to 8-bit gray at width×height. White = repaint. A mask with transparency is read
 * from its alpha where its colour channels are flat (a painted layer on transparent), else from its
 * luminance over black.
 */
export async function decodeMask(bytes: Uint8Array, size: { width: number; height: number }, maxPixels = DEFAULT_MAX_INPUT_PIXELS): Promise<GrayImage> {
  try {
    const options = { failOn: 'error', limitInputPixels: maxPixels } as const;
    const meta = await sharp(bytes, options).metadata();
    if ((meta.width ?? 0) * (meta.height ?? 0) > maxPixels) throw new Error(`${meta.width}×${meta.height} is more than ${maxPixels} pixels`);
    let img = sharp(bytes, options).rotate();
    if (meta.hasAlpha) {
      const stats = await sharp(bytes, options).stats();
      const colour = stats.channels.slice(0, Math.max(1, (meta.channels ?? 4) - 1));
      const flat = colour.every((c) => c.max === c.min);
      img = flat ? img.extractChannel('alpha') : img.flatten({ background: '#000000' }).grayscale();
    } else {
      img = img.grayscale();
    }
    const { data, info } = await img
      .resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const out = new Uint8Array(info.width * info.height);
    // grayscale() may still leave 3 identical channels on some inputs; take the first.
    for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels]!;
    return { width: info.width, height: info.height, data: out };
  } catch (err) {
    throw new BadImageError(`mask: cannot decode the image (${(err as Error).message})`, { cause: err });
  }
}

/** RGB bytes → NCHW float in [-1, 1] (`2x − 1`, diffusers `VaeImageProcessor.normalize`). */
export function imageToTensor(img: RgbImage): Float32Array {
  const { width, height, rgb } = img;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = (rgb[i * 3]! / 255) * 2 - 1;
    out[plane + i] = (rgb[i * 3 + 1]! / 255) * 2 - 1;
    out[2 * plane + i] = (rgb[i * 3 + 2]! / 255) * 2 - 1;
  }
  return out;
}

/** NCHW float in ≈[-1, 1] → RGB bytes: `round(clip(x/2 + 0.5, 0, 1) · 255)` (diffusers `numpy_to_pil`). */
export function tensorToImage(data: Float32Array, width: number, height: number): RgbImage {
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = data[c * plane + i]! / 2 + 0.5;
      rgb[i * 3 + c] = Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255);
    }
  }
  return { width, height, rgb };
}

/** Binarized repaint mask: 1 where mask ≥ 0.5 (white), else 0 (diffusers `binarize`). */
export function binarizeMask(mask: GrayImage): Uint8Array {
  const out = new Uint8Array(mask.data.length);
  for (let i = 0; i < out.length; i++) out[i] = mask.data[i]! >= 128 ? 1 : 0;
  return out;
}

/** The masked image for 9-channel inpainting: `image · (mask < 0.5)` in [-1, 1] space (repaint area → 0). */
export function maskedImageTensor(image: Float32Array, binary: Uint8Array): Float32Array {
  const plane = binary.length;
  const out = new Float32Array(image.length);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) out[c * plane + i] = binary[i] ? 0 : image[c * plane + i]!;
  }
  return out;
}

/**
 * Mask at latent resolution by nearest sampling of source pixel `floor(i·f)` — torch
 * `F.interpolate(mode='nearest')`, as the torch inpaint pipeline does (sd-onnx-reference §3.5b).
 */
export function maskToLatent(binary: Uint8Array, width: number, height: number, factor: number): Float32Array {
  const w = Math.floor(width / factor);
  const h = Math.floor(height / factor);
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) out[y * w + x] = binary[y * factor * width + x * factor]!;
  }
  return out;
}

/**
 * The paste-back weight of each pixel: the painted mask feathered *inward* by a Gaussian of `blur` pixels.
 * alpha = min(mask, blur(mask)) so that every pixel outside the painted mask keeps weight 0 and stays
 * bit-identical to the input, and the seam fades over the inner edge instead.
 */
export function featherMask(binary: Uint8Array, width: number, height: number, blur: number): Float32Array {
  const alpha = new Float32Array(binary.length);
  if (blur <= 0) {
    for (let i = 0; i < alpha.length; i++) alpha[i] = binary[i]!;
    return alpha;
  }
  const src = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) src[i] = binary[i] ? 255 : 0;
  // libvips' Gaussian (sharp's blur), byte for byte, on this thread (gauss-blur.ts).
  const blurred = blurMaskU8(src, width, height, blur);
  for (let i = 0; i < alpha.length; i++) alpha[i] = binary[i] ? Math.min(1, blurred[i]! / 255) : 0;
  return alpha;
}

/**
 * Paste-back after decoding: out = original where alpha = 0 (byte copy, so unmasked pixels are identical),
 * the generated pixel where alpha = 1, a rounded blend in between.
 */
export function pasteBack(original: RgbImage, generated: RgbImage, alpha: Float32Array): RgbImage {
  const rgb = new Uint8Array(original.rgb.length);
  for (let i = 0; i < alpha.length; i++) {
    const a = alpha[i]!;
    for (let c = 0; c < 3; c++) {
      const k = i * 3 + c;
      if (a <= 0) rgb[k] = original.rgb[k]!;
      else if (a >= 1) rgb[k] = generated.rgb[k]!;
      else rgb[k] = Math.round(original.rgb[k]! * (1 - a) + generated.rgb[k]! * a);
    }
  }
  return { width: original.width, height: original.height, rgb };
}

/** Encodes RGB to PNG (plain, no metadata): for previews and tests. */
export async function encodePlainPng(img: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.length), {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .png()
    .toBuffer();
}
