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
  for (let i = 0; i < plane; i++) {
    let r = 0;
    let g = 0;
    let b = 0;
    if (channels === 4) {
      for (let c = 0; c < 4; c++) {
        const v = latents[c * plane + i]!;
        const k = SD_LATENT_RGB[c]!;
        r += v * k[0];
        g += v * k[1];
        b += v * k[2];
      }
    } else {
      let s = 0;
      for (let c = 0; c < channels; c++) s += latents[c * plane + i]!;
      r = g = b = s / channels / 2;
    }
    rgb[i * 3] = toByte(r);
    rgb[i * 3 + 1] = toByte(g);
    rgb[i * 3 + 2] = toByte(b);
  }
  return { width, height, rgb };
}

function toByte(v: number): number {
  const x = Math.round(((v + 1) / 2) * 255);
  return x < 0 ? 0 : x > 255 ? 255 : x;
}
