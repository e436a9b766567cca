/**
 * Label maps for layout models (semantic synthesis). On the wire a label map is an RGB PNG at the
 * picture's size painted in the palette colours of the model's labels.json. The U-Net gets it as
 * `label_map` float32 [K, H/f, W/f] per image:
 *   1. each pixel → the label of the nearest palette colour (squared RGB distance; a tie goes to the
 *      lower id), so anti-aliased or slightly off colours still land on a label;
 *   2. one-hot over the K labels;
 *   3. the mean over each f×f pixel block (f = the VAE scale factor), i.e. the fraction of the block
 *      each label covers.
 * native-models/training/labels.py computes the training maps the same way (one-hot, avg-pool by f).
 */
import { BadImageError, InvalidRequestError } from '../../shared/errors.js';
import type { LayoutLabel } from '../../shared/model.js';
import { decodeImage, type RgbImage } from './image.js';

/** The 8 bytes every PNG starts with (PNG spec §5.2). */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Each pixel's label id: the nearest palette colour by squared RGB distance, ties to the lower id. */
export function nearestLabels(image: RgbImage, labels: readonly LayoutLabel[]): Uint8Array {
  if (labels.length === 0 || labels.length > 256) throw new RangeError(`nearestLabels: 1 to 256 labels, got ${labels.length}`);
  const { rgb } = image;
  const out = new Uint8Array(image.width * image.height);
  // A painted map holds few distinct colours: remember each one's answer.
  const known = new Map<number, number>();
  for (let p = 0; p < out.length; p++) {
    const r = rgb[p * 3]!;
    const g = rgb[p * 3 + 1]!;
    const b = rgb[p * 3 + 2]!;
    const key = (r << 16) | (g << 8) | b;
    let id = known.get(key);
    if (id === undefined) {
      let best = Infinity;
      id = 0;
      for (const label of labels) {
        const [lr, lg, lb] = label.color;
        const d = (r - lr) ** 2 + (g - lg) ** 2 + (b - lb) ** 2;
        // Strictly less: on a tie the label met first (the lower id) stays.
        if (d < best) {
          best = d;
          id = label.id;
        }
      }
      known.set(key, id);
    }
    out[p] = id;
  }
  return out;
}

/**
 * Label ids [H, W] → the area average of their one-hot vectors over f×f blocks: float32 [K, H/f, W/f]
 * (row-major), each cell's K values summing to 1. Width and height must be multiples of f.
 */
export function labelsToLatent(ids: Uint8Array, width: number, height: number, k: number, factor: number): Float32Array {
  if (width % factor !== 0 || height % factor !== 0) {
    throw new RangeError(`labelsToLatent: ${width}×${height} is not a multiple of the factor ${factor}`);
  }
  if (ids.length !== width * height) throw new RangeError(`labelsToLatent: expected ${width * height} ids, got ${ids.length}`);
  const w = width / factor;
  const h = height / factor;
  const plane = w * h;
  const counts = new Uint32Array(k * plane);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / factor) * w;
    for (let x = 0; x < width; x++) {
      const id = ids[y * width + x]!;
      if (id >= k) throw new RangeError(`labelsToLatent: label ${id} at ${x},${y} is not below K = ${k}`);
      counts[id * plane + row + Math.floor(x / factor)]!++;
    }
  }
  const out = new Float32Array(k * plane);
  const area = factor * factor;
  for (let i = 0; i < out.length; i++) out[i] = counts[i]! / area;
  return out;
}

/** An RGB label map at the picture's size → the U-Net's `label_map` for one image, [K, H/f, W/f]. */
export function labelMapTensor(image: RgbImage, labels: readonly LayoutLabel[], factor: number): Float32Array {
  return labelsToLatent(nearestLabels(image, labels), image.width, image.height, labels.length, factor);
}

/**
 * Decodes a label map: it must be a PNG (lossy formats smear the colours across label edges) of exactly
 * width×height (it is not resized: resampling would invent mixed colours at every edge).
 */
export async function decodeLabelMap(bytes: Uint8Array, size: { width: number; height: number }, maxPixels?: number): Promise<RgbImage> {
  if (bytes.length < PNG_SIGNATURE.length || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new BadImageError('label map: not a PNG (a label map is an RGB PNG painted in the model\'s label colours)');
  }
  const image = await decodeImage(bytes, 'label map', undefined, maxPixels);
  if (image.width !== size.width || image.height !== size.height) {
    throw new InvalidRequestError(
      `the label map is ${image.width}×${image.height} but the picture is ${size.width}×${size.height}: they must be the same size`,
    );
  }
  return image;
}
