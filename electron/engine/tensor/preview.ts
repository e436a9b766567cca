/**
 * A cheap live preview: latents → RGB by a fixed linear map, with no VAE. For SD's 4-channel latent
 * space the coefficients are the widely used least-squares fit of VAE-decoded colours to latents
 * (the "latent2rgb" factors of the SD 1.x VAE, as used by ComfyUI and A1111's approximate preview).
 * Other latent spaces get a neutral map: channel means to gray. One pixel per latent cell.
 */
import type { RgbImage } from './image.js';

/** rows: latent channel; columns: R, G, B. */
const SD_LATENT_RGB: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.3250, 0.4974, 0.2350],
  [-0.2829, 0.1762, 0.2721],
  [-0.2120, -0.2616, -0.7177],
];

export function latentPreview(latents: Float32Array, channels: number, width: number, height: number): RgbImage {
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  if (channels === 4) {
    // Made on every step for the progress preview: the coefficients in locals, the sums in the same order.
    const [[r0, g0, b0], [r1, g1, b1], [r2, g2, b2], [r3, g3, b3]] = SD_LATENT_RGB as [LatentRgb, LatentRgb, LatentRgb, LatentRgb];
    for (let i = 0; i < plane; i++) {
      const v0 = latents[i]!;
      const v1 = latents[plane + i]!;
      const v2 = latents[2 * plane + i]!;
      const v3 = latents[3 * plane + i]!;
      rgb[i * 3] = toByte(v0 * r0 + v1 * r1 + v2 * r2 + v3 * r3);
      rgb[i * 3 + 1] = toByte(v0 * g0 + v1 * g1 + v2 * g2 + v3 * g3);
      rgb[i * 3 + 2] = toByte(v0 * b0 + v1 * b1 + v2 * b2 + v3 * b3);
    }
    return { width, height, rgb };
  }
  for (let i = 0; i < plane; i++) {
    let s = 0;
    for (let c = 0; c < channels; c++) s += latents[c * plane + i]!;
    const v = toByte(s / channels / 2);
    rgb[i * 3] = v;
    rgb[i * 3 + 1] = v;
    rgb[i * 3 + 2] = v;
  }
  return { width, height, rgb };
}

type LatentRgb = readonly [number, number, number];

function toByte(v: number): number {
  const x = Math.round(((v + 1) / 2) * 255);
  return x < 0 ? 0 : x > 255 ? 255 : x;
}
