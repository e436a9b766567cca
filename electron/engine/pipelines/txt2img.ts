/**
 * Text-to-image (sd-onnx-reference §3.1; LCM §3.7):
 *   z_T = ε·σ_init;  for t in timesteps: ε̂ = CFG(U-Net(scale(z_t), t, y));  z_{t−1} = step(ε̂, t, z_t);  x = D(z_0 / s)
 */
import { createScheduler } from '../schedulers/index.js';
import type { RgbImage } from '../tensor/image.js';
import {
  decodeLatents,
  encodeConditioning,
  predictNoise,
  ProgressReporter,
  throwIfAborted,
} from './components.js';
import { timed, type Job } from './job.js';

export async function textToImage(job: Job): Promise<RgbImage> {
  const { model, params, shape, options } = job;
  const { signal } = options;
  const isLcm = params.sampler === 'lcm';

  // 1. Encode the prompt ([uncond, cond] under classifier-free guidance; LCM embeds the scale instead).
  const conditioning = await encodeConditioning(job);

  // 2. Timesteps and initial latents z_T = ε · init_noise_sigma.
  const scheduler = createScheduler(params.sampler, model.schedulerConfig);
  scheduler.setTimesteps(params.steps);
  let latents: Float32Array = new Float32Array(job.noise.length);
  for (let i = 0; i < latents.length; i++) latents[i] = job.noise[i]! * scheduler.initNoiseSigma;

  // 3. Denoising loop.
  const progress = new ProgressReporter(scheduler.timesteps.length, shape, options);
  let denoised: Float32Array | undefined;
  await timed(job, 'denoiseMs', async () => {
    for (const [i, t] of scheduler.timesteps.entries()) {
      throwIfAborted(signal);
      const input = scheduler.scaleModelInput(latents, t);
      const noisePred = await predictNoise(model, input, shape.channels, shape, t, conditioning);
      const out = scheduler.step(noisePred, t, latents, job.rng);
      latents = out.prevSample;
      denoised = out.predOriginal;
      job.timings.stepsRun = i + 1;
      progress.report(i + 1, denoised ?? latents);
    }
  });
  throwIfAborted(signal);

  // 4. Decode. LCM decodes its last `denoised` (§3.7), which equals prevSample on the final step.
  const final = isLcm && denoised ? denoised : latents;
  return timed(job, 'vaeDecodeMs', () => decodeLatents(model, final, shape));
}
