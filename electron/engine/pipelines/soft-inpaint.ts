/**
 * Soft inpainting by differential diffusion (Levin & Fried 2023, "Differential Diffusion: Giving Each
 * Pixel Its Strength"; diffusers' community `StableDiffusionDiffImg2ImgPipeline`, InvokeAI's gradient mask).
 *
 * The painted mask's grey levels (brush hardness, mask blur, a gradient) are a change map c ∈ [0, 1]:
 * how much each pixel may change. With N denoising steps and the original's latents z₀:
 *
 *   keep   k = 1 − avgpool_f(c)                      at latent resolution (the mean of each f×f block)
 *   step i (0 … N−1), before the U-Net:
 *     i = 0:  z ← add_noise(z₀, ε, t₀)                 everywhere (the pipeline's `original_with_noise[0]`)
 *     i > 0:  z ← add_noise(z₀, ε, tᵢ)  where k > i/N   (that latent pixel keeps the original for now)
 *
 * so a pixel with change c runs freely for the last ⌈c·N⌉ steps only: c = 1 is repainted from the start,
 * c = 0 follows the original to the end, and a gradient fades between them with no seam. ε is the job's
 * seeded noise, the same that starts the run. After decoding, the picture is pasted back over the
 * original with c itself as the weight, so a pixel with c = 0 stays byte-identical.
 *
 * 9-channel U-Nets keep their conditioning as for a hard mask (the mask binarized at ½ and the picture
 * with that area blanked): they were trained on binary masks, and the blend above is what makes the edge soft.
 */
import { blurMaskU8 } from '../tensor/gauss-blur.js';
import type { GrayImage } from '../tensor/image.js';

/**
 * The change map at pixel resolution: mask / 255, blurred by a Gaussian of `blur` pixels both ways
 * (σ = blur / 2, the same radius rule as the hard mask's feather). No blur: the painted grey levels as they are.
 */
export function softChangeMap(mask: GrayImage, blur: number): Float32Array {
  const { width, height } = mask;
  // libvips' Gaussian (sharp's blur), byte for byte (gauss-blur.ts).
  const data = blur > 0 ? blurMaskU8(mask.data, width, height, blur) : mask.data;
  const change = new Float32Array(width * height);
  for (let i = 0; i < change.length; i++) change[i] = data[i]! / 255;
  return change;
}

/** k = 1 − the mean of c over each f×f block (torch `1 − avg_pool2d(c, f)`), [h, w]. */
export function latentKeepMap(change: Float32Array, width: number, height: number, factor: number): Float32Array {
  const w = Math.floor(width / factor);
  const h = Math.floor(height / factor);
  const keep = new Float32Array(w * h);
  const area = factor * factor;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        const row = (y * factor + dy) * width + x * factor;
        for (let dx = 0; dx < factor; dx++) sum += change[row + dx]!;
      }
      keep[y * w + x] = 1 - sum / area;
    }
  }
  return keep;
}

/**
 * Step i of n: where the keep map is above i/n, the latents become the original's noised to this step's
 * timestep (`known`); step 0 takes `known` everywhere. Returns the latents to feed the U-Net (a new array).
 */
export function blendKnown(latents: Float32Array, known: Float32Array, keep: Float32Array, i: number, n: number): Float32Array {
  if (i === 0) return known;
  const threshold = Math.fround(i / n); // torch: arange(n, dtype=float32) / n
  const plane = keep.length;
  const channels = latents.length / plane;
  // A new array, as torch's `known·m + z·(1 − m)`: a scheduler may still hold the previous one.
  const out = latents.slice();
  for (let p = 0; p < plane; p++) {
    if (!(keep[p]! > threshold)) continue;
    for (let c = 0; c < channels; c++) out[c * plane + p] = known[c * plane + p]!;
  }
  return out;
}
