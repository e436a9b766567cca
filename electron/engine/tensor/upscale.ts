/**
 * Resizing for the hires fix: latents as torch's `F.interpolate(size=…, align_corners=False)` does
 * (A1111's "Latent" upscalers call it on the first pass's samples), pictures by sharp (libvips).
 */
import sharp from 'sharp';
import type { HiresLatentUpscaler } from '../../shared/generation.js';
import type { RgbImage } from './image.js';

export type InterpolateMode = 'nearest' | 'nearest-exact' | 'bilinear' | 'bicubic';

/** A1111's `shared.latent_upscale_modes`: the name shown → torch's interpolate mode (all without antialias). */
export const LATENT_UPSCALE_MODES: Readonly<Record<HiresLatentUpscaler, InterpolateMode>> = {
  Latent: 'bilinear',
  'Latent (bicubic)': 'bicubic',
  'Latent (nearest)': 'nearest',
  'Latent (nearest-exact)': 'nearest-exact',
};

/** torch's cubic convolution constant (`get_cubic_upsample_coefficients`, A = −0.75). */
const CUBIC_A = -0.75;

function cubicWeights(t: number): [number, number, number, number] {
  const A = CUBIC_A;
  const near = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** For one axis: source indices and weights of each output index (align_corners False). */
function axisTaps(inSize: number, outSize: number, mode: InterpolateMode): { index: Int32Array; weight: Float64Array; taps: number } {
  // torch computes the scale in the tensor's precision (float32 for float tensors).
  const scale = Math.fround(inSize / outSize);
  const taps = mode === 'bicubic' ? 4 : mode === 'bilinear' ? 2 : 1;
  const index = new Int32Array(outSize * taps);
  const weight = new Float64Array(outSize * taps);
  const clamp = (i: number): number => (i < 0 ? 0 : i > inSize - 1 ? inSize - 1 : i);
  for (let o = 0; o < outSize; o++) {
    if (mode === 'nearest') {
      // aten nearest_idx: an exact 2× is a shift; otherwise floor(o·scale), clamped.
      index[o] = outSize === 2 * inSize ? o >> 1 : Math.min(Math.floor(Math.fround(o * scale)), inSize - 1);
      weight[o] = 1;
    } else if (mode === 'nearest-exact') {
      index[o] = Math.min(Math.floor(Math.fround((o + 0.5) * scale)), inSize - 1);
      weight[o] = 1;
    } else if (mode === 'bilinear') {
      const src = Math.max(0, Math.fround(scale * (o + 0.5) - 0.5));
      const i0 = Math.floor(src);
      const lambda = src - i0;
      index[o * 2] = i0;
      index[o * 2 + 1] = Math.min(i0 + 1, inSize - 1);
      weight[o * 2] = 1 - lambda;
      weight[o * 2 + 1] = lambda;
    } else {
      const src = Math.fround(scale * (o + 0.5) - 0.5);
      const i0 = Math.floor(src);
      const w = cubicWeights(src - i0);
      for (let k = 0; k < 4; k++) {
        index[o * 4 + k] = clamp(i0 - 1 + k);
        weight[o * 4 + k] = w[k]!;
      }
    }
  }
  return { index, weight, taps };
}

/**
 * [C, h, w] → [C, outH, outW] as `torch.nn.functional.interpolate(x, size=(outH, outW), mode, align_corners=False)`
 * (bilinear and bicubic are separable: rows, then columns).
 */
export function interpolateLatents(
  latents: Float32Array,
  channels: number,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
  mode: InterpolateMode,
): Float32Array {
  const ys = axisTaps(height, outHeight, mode);
  const xs = axisTaps(width, outWidth, mode);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    const src = c * height * width;
    const dst = c * outHeight * outWidth;
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        let sum = 0;
        for (let ty = 0; ty < ys.taps; ty++) {
          const wy = ys.weight[oy * ys.taps + ty]!;
          const row = src + ys.index[oy * ys.taps + ty]! * width;
          let inner = 0;
          for (let tx = 0; tx < xs.taps; tx++) inner += xs.weight[ox * xs.taps + tx]! * latents[row + xs.index[ox * xs.taps + tx]!]!;
          sum += wy * inner;
        }
        out[dst + oy * outWidth + ox] = sum;
      }
    }
  }
  return out;
}

/** The middle [top, top+outH) × [left, left+outW) of [C, h, w] (A1111's hires `truncate_x/y`: ⌊t/2⌋ cut from the start). */
export function cropLatents(latents: Float32Array, channels: number, height: number, width: number, outHeight: number, outWidth: number): Float32Array {
  if (outHeight === height && outWidth === width) return latents;
  const top = Math.floor((height - outHeight) / 2);
  const left = Math.floor((width - outWidth) / 2);
  const out = new Float32Array(channels * outHeight * outWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outHeight; y++) {
      const from = c * height * width + (top + y) * width + left;
      out.set(latents.subarray(from, from + outWidth), c * outHeight * outWidth + y * outWidth);
    }
  }
  return out;
}

/** Resizes a picture to exactly width×height with sharp's Lanczos-3 or nearest kernel. */
export async function resizeImage(img: RgbImage, width: number, height: number, kernel: 'lanczos3' | 'nearest'): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data, info } = await sharp(Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.length), {
    raw: { width: img.width, height: img.height, channels: 3 },
  })
    .resize(width, height, { fit: 'fill', kernel })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/**
 * The middle width×height of a picture, cut at multiples of `factor` pixels so it matches the latent
 * crop of the same size (cropLatents on the latents of the whole picture).
 */
export function cropImage(img: RgbImage, width: number, height: number, factor: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const top = Math.floor((img.height - height) / factor / 2) * factor;
  const left = Math.floor((img.width - width) / factor / 2) * factor;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * 3;
    rgb.set(img.rgb.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, rgb };
}
