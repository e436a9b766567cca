/**
 * Image-to-image with strength, as the torch / optimum pipeline does it (sd-onnx-reference §3.4b):
 *   z_0 = s·E(x);  timesteps = full[t_start:], t_start = n − ⌊n·strength⌋;  z = add_noise(z_0, ε, timesteps[0]);  loop;  decode.
 */
import { createScheduler } from '../schedulers/index.js';
import { imageToTensor, type RgbImage } from '../tensor/image.js';
import {
  decodeLatents,
  denoise,
  encodeConditioning,
  encodeImage,
  throwIfAborted,
} from './components.js';
import { timed, type Job } from './job.js';

/** `latents`: start from these scaled latents z_0 instead of encoding `job.initImage` (a hires fix's upscaled latents). */
export async function imageToImage(job: Job, latents0?: Float32Array): Promise<RgbImage> {
  const { model, params, shape, options } = job;
  const { signal } = options;

  // 1. Prompt and init image latents.
  const conditioning = await encodeConditioning(job);
  const initLatents = latents0 ?? await timed(job, 'vaeEncodeMs', () =>
    encodeImage(model, imageToTensor(job.initImage!), params.width, params.height, job.rng),
  );
  throwIfAborted(signal);

  // 2. The last ⌊n·strength⌋ timesteps; noise the init latents to the first of them.
  const scheduler = createScheduler(params.sampler, model.schedulerConfig);
  scheduler.setTimesteps(params.steps, { strength: params.strength });
  const t0 = scheduler.timesteps[0]!;
  const latents = scheduler.addNoise(initLatents, job.noise, t0);

  // 3. Denoising loop (the same as text-to-image), then decode.
  const final = await denoise(job, scheduler, latents, conditioning);
  return timed(job, 'vaeDecodeMs', () => decodeLatents(model, final, shape));
}
