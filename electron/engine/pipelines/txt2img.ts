/**
 * Text-to-image (sd-onnx-reference §3.1; LCM §3.7):
 *   z_T = ε·σ_init;  for t in timesteps: ε̂ = CFG(U-Net(scale(z_t), t, y));  z_{t−1} = step(ε̂, t, z_t);  x = D(z_0 / s)
 */
import { createScheduler } from '../schedulers/index.js';
import type { RgbImage } from '../tensor/image.js';
import { decodeLatents, denoise, encodeConditioning } from './components.js';
import { timed, type Job } from './job.js';

export async function textToImage(job: Job): Promise<RgbImage> {
  const final = await textToLatents(job);
  return timed(job, 'vaeDecodeMs', () => decodeLatents(job.model, final, job.shape));
}

/** Text-to-image up to the final latents (what a hires fix with a latent upscaler takes on). */
export async function textToLatents(job: Job): Promise<Float32Array> {
  const { model, params } = job;

  // 1. Encode the prompt ([uncond, cond] under classifier-free guidance; LCM embeds the scale instead).
  const conditioning = await encodeConditioning(job);

  // 2. Timesteps and initial latents z_T = ε · init_noise_sigma.
  const scheduler = createScheduler(params.sampler, model.schedulerConfig);
  scheduler.setTimesteps(params.steps);
  const latents = new Float32Array(job.noise.length);
  for (let i = 0; i < latents.length; i++) latents[i] = job.noise[i]! * scheduler.initNoiseSigma;

  // 3. Denoising loop (LCM hands back its last `denoised`, §3.7).
  return denoise(job, scheduler, latents, conditioning);
}
