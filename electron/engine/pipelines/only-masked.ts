/**
 * Inpainting of the masked area only (AUTOMATIC1111's "Inpaint area: Only masked"): the model repaints a
 * crop around the mask at its working size, so a small edit on a large picture gets full detail, and the
 * result is pasted back into the picture at its own resolution. Pixels outside the mask never change.
 *
 * The crop is the mask's bounding box plus `padding` pixels of context, widened to the working size's
 * aspect ratio and kept inside the picture. With soft inpainting the box is that of every pixel the soft
 * mask lets change, and the paste-back weight is the soft mask's own (softCrop).
 */
import { InvalidRequestError } from '../../shared/errors.js';
import { maskBoundsAtLeast } from '../../shared/mask-bounds.js';
import { binarizeMask, featherMask, type GrayImage, type RgbImage } from '../tensor/image.js';
import { resizeLanczos } from '../tensor/lanczos.js';
import { softChangeMap } from './soft-inpaint.js';

export interface CropRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Bounding box of the mask (pixels ≥ ½), or null when nothing is masked. */
export function maskBounds(mask: GrayImage): CropRegion | null {
  return maskBoundsAtLeast(mask.data, mask.width, mask.height, 128);
}

/** Grows [start, start+size) to `want` around its centre, shifted to stay within [0, limit). */
function grow(start: number, size: number, want: number, limit: number): [number, number] {
  const target = Math.min(limit, Math.max(size, want));
  let s = Math.round(start + size / 2 - target / 2);
  s = Math.max(0, Math.min(s, limit - target));
  return [s, target];
}

/** The crop to repaint: bounds + padding, widened to the aspect ratio of width×height, inside the picture. */
export function cropRegion(mask: GrayImage, padding: number, width: number, height: number, bounds = maskBounds(mask)): CropRegion {
  if (!bounds) throw new InvalidRequestError('the mask is empty: paint the area to repaint (white = repaint)');
  let [x, w] = grow(bounds.x, bounds.width, bounds.width + 2 * padding, mask.width);
  let [y, h] = grow(bounds.y, bounds.height, bounds.height + 2 * padding, mask.height);
  const aspect = width / height;
  if (w / h < aspect) [x, w] = grow(x, w, Math.ceil(h * aspect), mask.width);
  else [y, h] = grow(y, h, Math.ceil(w / aspect), mask.height);
  return { x, y, width: w, height: h };
}

/**
 * The region of an interleaved 8-bit image scaled to `to` as A1111 does it: cut out, then Pillow's
 * LANCZOS (tensor/lanczos.ts). A region of the target size is a copy of its rows.
 */
function resizeRaw(
  data: Uint8Array,
  from: { width: number; height: number },
  channels: 1 | 3,
  region: CropRegion | null,
  to: { width: number; height: number },
  spans?: Int32Array,
): Uint8Array {
  const box = region ?? { x: 0, y: 0, width: from.width, height: from.height };
  const cut = region ? copyRegion(data, from.width, channels, box) : data;
  return box.width === to.width && box.height === to.height ? cut : resizeLanczos(cut, box, channels, to, spans);
}

/** The rows of `region` from an image `width` pixels wide, `channels` bytes a pixel. */
function copyRegion(data: Uint8Array, width: number, channels: number, region: CropRegion): Uint8Array {
  const row = region.width * channels;
  const out = new Uint8Array(row * region.height);
  for (let y = 0; y < region.height; y++) {
    const from = ((region.y + y) * width + region.x) * channels;
    out.set(data.subarray(from, from + row), y * row);
  }
  return out;
}

/** The picture and mask cut to the region and scaled to the working size. */
export function cropForInpaint(
  image: RgbImage,
  mask: GrayImage,
  region: CropRegion,
  size: { width: number; height: number },
): { image: RgbImage; mask: GrayImage } {
  return { image: { ...size, rgb: resizeRaw(image.rgb, image, 3, region, size) }, mask: { ...size, data: resizeRaw(mask.data, mask, 1, region, size) } };
}

/** A mask (e.g. a regional prompt's) cut to the region and scaled to the working size, as cropForInpaint cuts the picture's. */
export function cropMask(mask: GrayImage, region: CropRegion, size: { width: number; height: number }): GrayImage {
  return { ...size, data: resizeRaw(mask.data, mask, 1, region, size) };
}

/**
 * The paste-back weight of each pixel of the region: the full-resolution mask cut to the region and
 * feathered inward (featherMask), so pixels outside the mask get weight 0.
 */
export function cropAlpha(mask: GrayImage, region: CropRegion, maskBlur: number): Float32Array {
  const regionMask = new Uint8Array(region.width * region.height);
  for (let y = 0; y < region.height; y++) {
    const from = (region.y + y) * mask.width + region.x;
    regionMask.set(mask.data.subarray(from, from + region.width), y * region.width);
  }
  return featherMask(binarizeMask({ ...region, data: regionMask }), region.width, region.height, maskBlur);
}

/**
 * Soft inpainting's crop and paste-back weights. The change map (softChangeMap: the mask's grey levels
 * blurred by mask blur) is made at the picture's resolution; the crop holds every pixel it lets change
 * (c > 0, not only the mask's inner half ≥ ½), and the weights are c itself cut to the crop, so the
 * picture is pasted back as the whole-picture soft path pastes it (inpaint() then returns the crop
 * unblended: one blend, at the picture's resolution).
 */
export function softCrop(
  mask: GrayImage,
  padding: number,
  width: number,
  height: number,
  maskBlur: number,
): { crop: CropRegion; alpha: Float32Array } {
  const change = softChangeMap(mask, maskBlur);
  const crop = cropRegion(mask, padding, width, height, maskBoundsAtLeast(change, mask.width, mask.height, Number.MIN_VALUE));
  const alpha = new Float32Array(crop.width * crop.height);
  for (let y = 0; y < crop.height; y++) {
    const from = (crop.y + y) * mask.width + crop.x;
    alpha.set(change.subarray(from, from + crop.width), y * crop.width);
  }
  return { crop, alpha };
}

/**
 * Scales the repainted crop back to the region's size and pastes it into the picture with the region's
 * paste-back weights (cropAlpha), so pixels outside the mask stay byte-identical.
 */
export function pasteCrop(image: RgbImage, region: CropRegion, repainted: RgbImage, alpha: Float32Array): RgbImage {
  return placeCrop(image, region, blendCrop(image, region, repainted, alpha));
}

/**
 * The region of the picture as pasteCrop leaves it (region-sized): the repainted crop scaled back to the
 * region and blended over the picture's pixels there with the paste-back weights.
 */
export function blendCrop(image: RgbImage, region: CropRegion, repainted: RgbImage, alpha: Float32Array): RgbImage {
  // Only the pixels with a weight are scaled back (a stroke is a small part of its crop).
  const spans = new Int32Array(region.height * 2);
  for (let y = 0; y < region.height; y++) {
    const row = y * region.width;
    let x0 = 0;
    while (x0 < region.width && !(alpha[row + x0]! > 0)) x0++;
    let x1 = region.width;
    while (x1 > x0 && !(alpha[row + x1 - 1]! > 0)) x1--;
    spans[y * 2] = x0;
    spans[y * 2 + 1] = x1;
  }
  const scaled = resizeRaw(repainted.rgb, repainted, 3, null, region, spans);
  const rgb = copyRegion(image.rgb, image.width, 3, region);
  for (let i = 0; i < region.width * region.height; i++) {
    const a = alpha[i]!;
    if (a <= 0) continue;
    for (let c = 0; c < 3; c++) {
      const k = i * 3 + c;
      rgb[k] = a >= 1 ? scaled[k]! : Math.round(rgb[k]! * (1 - a) + scaled[k]! * a);
    }
  }
  return { width: region.width, height: region.height, rgb };
}

/** A copy of the picture with the region's pixels replaced by `crop` (region-sized). */
export function placeCrop(image: RgbImage, region: CropRegion, crop: RgbImage): RgbImage {
  if (crop.width !== region.width || crop.height !== region.height || region.x + region.width > image.width || region.y + region.height > image.height) {
    throw new InvalidRequestError(`a ${crop.width}×${crop.height} crop does not fit at (${region.x}, ${region.y}) of a ${image.width}×${image.height} picture`);
  }
  const rgb = new Uint8Array(image.rgb);
  const row = region.width * 3;
  for (let y = 0; y < region.height; y++) rgb.set(crop.rgb.subarray(y * row, (y + 1) * row), ((region.y + y) * image.width + region.x) * 3);
  return { width: image.width, height: image.height, rgb };
}
