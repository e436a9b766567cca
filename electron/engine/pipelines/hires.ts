/**
 * Hires fix, as A1111's `StableDiffusionProcessingTxt2Img.sample_hr_pass` does it:
 *   1. the first pass: txt2img at width×height;
 *   2. upscale to the hires size: the latents by `F.interpolate` (the "Latent" upscalers), or the decoded
 *      picture by Lanczos / Nearest / an ONNX upscaler model (then Lanczos to the exact size); a target
 *      of another aspect ratio is reached by upscaling to cover it and cutting the middle;
 *   3. the second pass: img2img on that at the hires denoising strength for the hires steps (0 = the
 *      first pass's), with noise drawn afresh from the job's seed at the new size.
 * Step 3 is exactly an img2img job: the same seed, strength, steps and size on the upscaled picture
 * give the same bytes (test/unit/engine/pipelines/hires.test.ts).
 */
import type { GenerationParams, HiresParams } from '../../shared/generation.js';
import { isLatentUpscaler } from '../../shared/generation.js';
import { hiresSize, SIDE_MULTIPLE } from '../../shared/generation-limits.js';
import { OnnxUpscaler } from '../model/upscaler.js';
import { createScheduler } from '../schedulers/index.js';
import type { RgbImage } from '../tensor/image.js';
import { SeededRng } from '../tensor/rng.js';
import { cropImage, cropLatents, interpolateLatents, LATENT_UPSCALE_MODES, resizeImage } from '../tensor/upscale.js';
import { throwIfAborted } from './components.js';
import { imageToImage } from './img2img.js';
import { emptyTimings, type Job } from './job.js';
import { textToLatents } from './txt2img.js';
import type { GenerateOptions, GenerateProgress } from './types.js';

/** An ONNX upscaler is run again while its output is still smaller than this share of the size wanted (A1111 runs its upscalers up to 3 times). */
const MAX_UPSCALER_PASSES = 3;

/** Runs a job without a hires fix (engine.ts `runJob`): passed in so this module needn't import the engine. */
export type PassRunner = (job: Job) => Promise<RgbImage>;

export async function hiresFix(job: Job, runPass: PassRunner): Promise<RgbImage> {
  const { model, params } = job;
  const hires = params.hires!;
  const f = model.info.vaeScaleFactor;
  const size = hiresSize(params.width, params.height, hires, Math.max(SIDE_MULTIPLE, model.info.sizeMultiple));
  const secondSteps = hires.steps === 0 ? params.steps : hires.steps;

  // Progress counts both passes as one run.
  const secondScheduler = createScheduler(params.sampler, model.schedulerConfig);
  secondScheduler.setTimesteps(secondSteps, hires.strength < 1 ? { strength: hires.strength } : {});
  const secondTotal = secondScheduler.timesteps.length;
  let firstTotal = 0;
  const first: Job = {
    ...job,
    params: withoutHires(params),
    options: withProgress(job.options, (p) => {
      firstTotal = p.total;
      return { ...p, total: p.total + secondTotal };
    }),
  };
  const second = secondPassJob(job, hires, size.target, secondSteps, (p) => ({ ...p, step: firstTotal + p.step, total: firstTotal + p.total }));

  let image: RgbImage;
  if (isLatentUpscaler(hires.upscaler)) {
    // 1–2. Latent: interpolate the first pass's latents (never decoded), cut to the target.
    const latents = await textToLatents(first);
    const { channels, height, width } = job.shape;
    const up = interpolateLatents(latents, channels, height, width, size.upscaleTo.height / f, size.upscaleTo.width / f, LATENT_UPSCALE_MODES[hires.upscaler]);
    const init = cropLatents(up, channels, size.upscaleTo.height / f, size.upscaleTo.width / f, size.target.height / f, size.target.width / f);
    throwIfAborted(job.options.signal);
    image = await imageToImage(second, init);
  } else {
    // 1–2. Pixel: decode, upscale, cut to the target.
    const firstImage = await runPass(first);
    throwIfAborted(job.options.signal);
    const upscaled = await upscalePicture(job, firstImage, hires.upscaler, size.upscaleTo);
    throwIfAborted(job.options.signal);
    image = await runPass({ ...second, initImage: cropImage(upscaled, size.target.width, size.target.height, f) });
  }
  addTimings(job, second);
  return image;
}

/** The picture at exactly `to`: by sharp's kernel for Lanczos / Nearest, else by the job's ONNX upscaler (then Lanczos to the exact size). */
export async function upscalePicture(job: Pick<Job, 'upscalerFile' | 'model'>, img: RgbImage, upscaler: string, to: { width: number; height: number }): Promise<RgbImage> {
  if (upscaler === 'Lanczos') return resizeImage(img, to.width, to.height, 'lanczos3');
  if (upscaler === 'Nearest') return resizeImage(img, to.width, to.height, 'nearest');
  if (!job.upscalerFile) throw new Error(`hires fix: no file was found for the upscaler "${upscaler}"`);
  const model = await OnnxUpscaler.open(job.upscalerFile, job.model.settings);
  try {
    let out = img;
    for (let pass = 0; pass < MAX_UPSCALER_PASSES && (out.width < to.width || out.height < to.height); pass++) out = await model.upscale(out);
    return resizeImage(out, to.width, to.height, 'lanczos3');
  } finally {
    await model.release();
  }
}

function withoutHires(params: GenerationParams): GenerationParams {
  const rest = { ...params };
  delete rest.hires;
  return rest;
}

function withProgress(options: GenerateOptions, map: (p: GenerateProgress) => GenerateProgress): GenerateOptions {
  const cb = options.onProgress;
  return cb ? { ...options, onProgress: (p) => cb(map(p)) } : options;
}

/**
 * The second pass as the img2img job the same request would make (engine.ts `prepareJob`): the seed's
 * RNG from the start, the initial noise drawn first at the target size, then the VAE's posterior draws.
 */
function secondPassJob(
  job: Job,
  hires: HiresParams,
  target: { width: number; height: number },
  steps: number,
  progress: (p: GenerateProgress) => GenerateProgress,
): Job {
  const f = job.model.info.vaeScaleFactor;
  const shape = { channels: job.model.info.latentChannels, height: target.height / f, width: target.width / f };
  const rng = new SeededRng(job.params.seed);
  const noise = rng.randn(shape.channels * shape.height * shape.width);
  return {
    ...job,
    params: { ...withoutHires(job.params), mode: 'img2img', ...target, steps, strength: hires.strength, maskBlur: 0 },
    rng,
    noise,
    shape,
    initImage: null,
    mask: null,
    region: null,
    options: withProgress(job.options, progress),
    timings: emptyTimings(),
  };
}

function addTimings(job: Job, pass: Job): void {
  const t = job.timings;
  t.textEncodeMs += pass.timings.textEncodeMs;
  t.vaeEncodeMs += pass.timings.vaeEncodeMs;
  t.denoiseMs += pass.timings.denoiseMs;
  t.vaeDecodeMs += pass.timings.vaeDecodeMs;
  t.stepsRun += pass.timings.stepsRun;
}
