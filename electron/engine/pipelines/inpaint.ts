/**
 * Inpainting. White mask = repaint.
 * - 9-channel U-Net (sd-onnx-reference §3.5b): the U-Net sees [scale(z_t) | mask | s·E(x·(mask<½))].
 * - 4-channel U-Net (§3.6b): latent blending; after each step the known region is replaced by the init
 *   latents noised to the next timestep, z = (1−m)·add_noise(z_0, ε, t_{i+1}) + m·z.
 * Both honour strength (1 = start from pure noise). After decoding, the result is pasted back over the
 * input with the (inward-feathered) mask, so every pixel outside the mask is bit-identical to the input.
 * Soft inpainting (params.softInpaint) replaces the 4-channel blend, for both kinds, by differential
 * diffusion on the mask's grey levels (soft-inpaint.ts), and pastes back by those levels (for "only
 * masked", once, at the picture's resolution: only-masked.ts softCrop).
 */
import { createScheduler } from '../schedulers/index.js';
import {
  binarizeMask,
  featherMask,
  imageToTensor,
  maskedImageTensor,
  maskToLatent,
  pasteBack,
  type RgbImage,
} from '../tensor/image.js';
import {
  decodeLatents,
  encodeImage,
  encodeConditioning,
  latentSize,
  predictNoise,
  ProgressReporter,
  throwIfAborted,
} from './components.js';
import { timed, type Job } from './job.js';
import { blendKnown, latentKeepMap, softChangeMap } from './soft-inpaint.js';

export async function inpaint(job: Job): Promise<RgbImage> {
  const { model, params, shape, options } = job;
  const { signal } = options;
  const image = job.initImage!;
  const { width, height } = params;
  const isLcm = params.sampler === 'lcm';
  const nineChannel = model.info.kind === 'inpaint';

  // 1. Mask: binarized at ½, and at latent resolution by nearest sampling.
  const binary = job.mask ? binarizeMask(job.mask) : new Uint8Array(width * height).fill(1);
  const latentMask = maskToLatent(binary, width, height, model.info.vaeScaleFactor);
  // Soft inpainting: the grey levels as a change map, and where each latent pixel keeps the original.
  const soft = params.softInpaint === true && job.mask !== null;
  const change = soft ? softChangeMap(job.mask!, params.maskBlur) : null;
  const keep = change ? latentKeepMap(change, width, height, model.info.vaeScaleFactor) : null;

  // 2. Prompt, init latents z_0 (needed unless a 9-channel model starts from pure noise), masked-image latents.
  const conditioning = await encodeConditioning(job);
  const imageTensor = imageToTensor(image);
  const needInitLatents = !nineChannel || params.strength < 1 || soft;
  const initLatents = needInitLatents
    ? await timed(job, 'vaeEncodeMs', () => encodeImage(model, imageTensor, width, height, job.rng))
    : null;
  const maskedLatents = nineChannel
    ? await timed(job, 'vaeEncodeMs', () => encodeImage(model, maskedImageTensor(imageTensor, binary), width, height, job.rng))
    : null;
  throwIfAborted(signal);

  // 3. Timesteps and the starting latents.
  const scheduler = createScheduler(params.sampler, model.schedulerConfig);
  scheduler.setTimesteps(params.steps, { strength: params.strength });
  const timesteps = scheduler.timesteps;
  let latents: Float32Array;
  if (params.strength >= 1) {
    latents = new Float32Array(job.noise.length);
    for (let i = 0; i < latents.length; i++) latents[i] = job.noise[i]! * scheduler.initNoiseSigma;
  } else {
    latents = scheduler.addNoise(initLatents!, job.noise, timesteps[0]!);
  }

  // 4. Denoising loop.
  const plane = shape.height * shape.width;
  const n = latentSize(shape);
  const inChannels = model.info.unetInChannels;
  const unetInput = nineChannel ? new Float32Array(inChannels * plane) : null;
  if (unetInput) {
    // The mask and masked-image channels are fixed for the whole run; only the latents change.
    unetInput.set(latentMask, n);
    unetInput.set(maskedLatents!, n + plane);
  }
  const progress = new ProgressReporter(timesteps.length, shape, options);
  let denoised: Float32Array | undefined;
  await timed(job, 'denoiseMs', async () => {
    for (const [i, t] of timesteps.entries()) {
      throwIfAborted(signal);
      if (keep) latents = blendKnown(latents, scheduler.addNoise(initLatents!, job.noise, t), keep, i, timesteps.length);
      const scaled = scheduler.scaleModelInput(latents, t);
      let input = scaled;
      if (unetInput) {
        unetInput.set(scaled, 0);
        input = unetInput;
      }
      const noisePred = await predictNoise(model, input, inChannels, shape, t, conditioning);
      const out = scheduler.step(noisePred, t, latents, job.rng);
      latents = out.prevSample;
      denoised = out.predOriginal;
      if (!nineChannel && !keep) {
        // Latent blending: keep the known region on the noise level of the next step.
        const next = timesteps[i + 1];
        const known = next !== undefined ? scheduler.addNoise(initLatents!, job.noise, next) : initLatents!;
        for (let c = 0; c < shape.channels; c++) {
          for (let p = 0; p < plane; p++) {
            const k = c * plane + p;
            const m = latentMask[p]!;
            latents[k] = (1 - m) * known[k]! + m * latents[k]!;
          }
        }
      }
      job.timings.stepsRun = i + 1;
      progress.report(i + 1, denoised ?? latents);
    }
  });
  throwIfAborted(signal);

  // 5. Decode and paste back.
  const final = isLcm && denoised ? denoised : latents;
  const generated = await timed(job, 'vaeDecodeMs', () => decodeLatents(model, final, shape));
  // Soft "only masked": the crop goes back into the picture once, by the picture's own change map (runJob).
  if (change && job.region?.softAlpha) return generated;
  const alpha = change ?? featherMask(binary, width, height, params.maskBlur);
  return pasteBack(image, generated, alpha);
}
