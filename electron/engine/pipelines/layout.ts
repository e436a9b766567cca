/**
 * Layout (semantic synthesis): text-to-image whose U-Net also sees a label map (sd-onnx-reference §3.1
 * plus one input):
 *   z_T = ε·σ_init;  for t in timesteps: ε̂ = CFG(U-Net(scale(z_t), t, y, L));  z_{t−1} = step(ε̂, t, z_t);  x = D(z_0 / s)
 * L = the label map at latent resolution ([K, h, w], tensor/label-map.ts), which prepareJob puts on the
 * job; encodeConditioning hands it to every U-Net call (the same map in both guidance halves) and the
 * graph concatenates it to the latents. The loop is text-to-image's.
 */
import type { RgbImage } from '../tensor/image.js';
import type { Job } from './job.js';
import { textToImage } from './txt2img.js';

export async function layoutToImage(job: Job): Promise<RgbImage> {
  // resolveParams and prepareJob guarantee the map for a layout job; its absence here is a bug.
  if (!job.labelMap) throw new Error('layoutToImage: a layout job without a label map');
  return textToImage(job);
}
