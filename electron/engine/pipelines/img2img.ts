/**
 * Image-to-image with strength, as the torch / optimum pipeline does it (sd-onnx-reference §3.4b):
 *   z_0 = s·E(x);  timesteps = full[t_start:], t_start = n − ⌊n·strength⌋;  z = add_noise(z_0, ε, timesteps[0]);  loop;  decode.
 */
import { createScheduler } from '../schedulers/index.js';
import { imageToTensor, type RgbImage } from '../tensor/image.js';
import {
  decodeLatents,
  encodeImage,
  encodeConditioning,
  predictNoise,
  ProgressReporter,
  throwIfAborted,
} from './components.js';
import { timed, type Job } from './job.js';

export async function imageToImage(job: Job): Promise<RgbImage> {
  const { model, params, shape, options } = job;
  const { signal } = options;
  const image = job.initImage!;
  const isLcm = params.sampler === 'lcm';

  // 1. Prompt and init image latents.
  const conditioning = await encodeConditioning(job);
  const initLatents = await timed(job, 'vaeEncodeMs', () =>
    encodeImage(model, imageToTensor(image), params.width, params.height, job.rng),
  );
  throwIfAborted(signal);

  // 2. The last ⌊n·strength⌋ timesteps; noise the init latents to the first of them.
  const scheduler = createScheduler(params.sampler, model.schedulerConfig);
  scheduler.setTimesteps(params.steps, { strength: params.strength });
  const t0 = scheduler.timesteps[0]!;
  let latents: Float32Array = scheduler.addNoise(initLatents, job.noise, t0);

  // 3. Denoising loop (the same body as text-to-image).
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
  const final = isLcm && denoised ? denoised : latents;
  return timed(job, 'vaeDecodeMs', () => decodeLatents(model, final, shape));
}
