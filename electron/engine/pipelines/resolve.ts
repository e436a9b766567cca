/**
 * Turns a request into complete, checked parameters for one model, before any session runs.
 * "Raising concise error messages is preferred to silently correcting erroneous input" (diffusers).
 */
import { InvalidRequestError } from '../../shared/errors.js';
import { GENERATION_MODES, INPAINT_AREAS, SAMPLERS, isLatentUpscaler, type GenerationParams, type HiresParams, type SamplerName } from '../../shared/generation.js';
import {
  DEFAULT_AESTHETIC_SCORE,
  DEFAULT_NEGATIVE_AESTHETIC_SCORE,
  MAX_AESTHETIC_SCORE,
  MIN_AESTHETIC_SCORE,
  DEFAULT_HIRES_SCALE,
  DEFAULT_HIRES_STRENGTH,
  DEFAULT_HIRES_UPSCALER,
  DEFAULT_MASK_BLUR,
  DEFAULT_MASK_PADDING,
  MAX_CFG,
  MAX_CLIP_SKIP,
  DEFAULT_EMPHASIS,
  EMPHASIS_MODES,
  MAX_CONTROL_SCALE,
  MAX_HIRES_SCALE,
  MAX_MASK_BLUR,
  MAX_MASK_PADDING,
  MAX_PROMPT_CHARS,
  MAX_REGION_WEIGHT,
  MAX_REGIONS,
  MIN_REGION_WEIGHT,
  MAX_SEED,
  MAX_SIDE,
  MAX_STEPS,
  MAX_STRENGTH,
  MIN_CFG,
  MIN_HIRES_SCALE,
  MIN_SIDE,
  MIN_STEPS,
  MIN_STRENGTH,
  SIDE_MULTIPLE,
  hiresSize,
  LCM_LORA_CFG,
  LCM_LORA_STEPS,
} from '../../shared/generation-limits.js';
import { checkRequestForModel, effectiveStrength, isLcmLoraName } from '../../shared/model-checks.js';
import { extractLoraTags } from '../lora/prompt-tags.js';
import type { LoadedModel } from '../model/model-folder.js';
import { createScheduler } from '../schedulers/index.js';
import { SchedulerConfigError, SchedulerInputError } from '../schedulers/errors.js';
import type { GenerateRequest } from './types.js';

/**
 * With an LCM-LoRA (latent-consistency/lcm-lora-*): LCMScheduler, 4 steps, guidance 1 (its model card;
 * 1–2 work), as diffusers runs it in StableDiffusionPipeline (plain CFG when above 1: no guidance embedding).
 */
export const LCM_LORA_DEFAULTS = { sampler: 'lcm', steps: LCM_LORA_STEPS, cfg: LCM_LORA_CFG } as const;

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidRequestError(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  }
}

function checkNumber(name: string, v: number, min: number, max: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InvalidRequestError(`${name} must be a number from ${min} to ${max}, got ${v}`);
  }
}

export function resolveParams(model: LoadedModel, req: GenerateRequest): GenerationParams {
  const info = model.info;
  if (!GENERATION_MODES.includes(req.mode)) {
    throw new InvalidRequestError(`mode must be one of ${GENERATION_MODES.join(', ')}, got ${String(req.mode)}`);
  }
  if (typeof req.prompt !== 'string') throw new InvalidRequestError('prompt must be a string');
  const negativePrompt = req.negativePrompt ?? '';
  if (typeof negativePrompt !== 'string') throw new InvalidRequestError('negativePrompt must be a string');
  if (req.prompt.length > MAX_PROMPT_CHARS || negativePrompt.length > MAX_PROMPT_CHARS) {
    throw new InvalidRequestError(`prompts are limited to ${MAX_PROMPT_CHARS} characters`);
  }
  checkInt('seed', req.seed, 0, MAX_SEED);
  // An LCM-LoRA in the prompt turns the model into a few-step LCM model: the LCM sampler and its defaults.
  const lcmLora = info.family !== 'lcm' && extractLoraTags(req.prompt).loras.some((t) => isLcmLoraName(t.name) && t.unet !== 0);
  const defaults = lcmLora ? { ...info.defaults, ...LCM_LORA_DEFAULTS } : info.defaults;
  const sampler = req.sampler ?? defaults.sampler;
  if (!SAMPLERS.includes(sampler)) throw new InvalidRequestError(`unknown sampler "${String(sampler)}"; choose one of ${SAMPLERS.join(', ')}`);
  const steps = req.steps ?? defaults.steps;
  checkInt('steps', steps, MIN_STEPS, MAX_STEPS);
  const cfg = req.cfg ?? defaults.cfg;
  checkNumber('cfg', cfg, MIN_CFG, MAX_CFG);

  const width = req.width ?? info.defaults.width;
  const height = req.height ?? info.defaults.height;
  checkInt('width', width, MIN_SIDE, MAX_SIDE);
  checkInt('height', height, MIN_SIDE, MAX_SIDE);
  if (width % SIDE_MULTIPLE !== 0 || height % SIDE_MULTIPLE !== 0) {
    throw new InvalidRequestError(`width and height must be multiples of ${SIDE_MULTIPLE}, got ${width}×${height}`);
  }
  const strength = effectiveStrength(req);
  checkNumber('strength', strength, MIN_STRENGTH, MAX_STRENGTH);
  // Mode, sampler, size and strength against this model: the same check the host runs at enqueue.
  checkRequestForModel(info, {
    mode: req.mode,
    sampler,
    steps,
    width,
    height,
    strength,
    aestheticScore: req.aestheticScore,
    negativeAestheticScore: req.negativeAestheticScore,
  });

  const needsImage = req.mode !== 'txt2img' && req.mode !== 'layout';
  if (needsImage && !(req.initImage instanceof Uint8Array && req.initImage.length > 0)) {
    throw new InvalidRequestError(`${req.mode} needs an init image`);
  }
  if (req.mode === 'inpaint' && !(req.mask instanceof Uint8Array && req.mask.length > 0)) {
    throw new InvalidRequestError('inpaint needs a mask (white = repaint)');
  }
  if (req.mode === 'layout') {
    if (!(req.labelMap instanceof Uint8Array && req.labelMap.length > 0)) {
      throw new InvalidRequestError(`layout needs a label map: an RGB PNG of ${width}×${height} painted in ${info.name}'s label colours`);
    }
    if (req.initImage !== undefined) throw new InvalidRequestError('layout draws from the label map: it takes no init image');
  } else if (req.labelMap !== undefined) {
    throw new InvalidRequestError(`a label map is only for layout, not ${req.mode}`);
  }
  const maskBlur = req.maskBlur ?? DEFAULT_MASK_BLUR;
  checkNumber('maskBlur', maskBlur, 0, MAX_MASK_BLUR);

  // The schedule itself must be possible (e.g. PNDM's leading spacing with steps_offset 1 tops out
  // below num_train_timesteps steps; LCM below its original_inference_steps).
  try {
    createScheduler(sampler, model.schedulerConfig).setTimesteps(steps, needsImage && strength < 1 ? { strength } : {});
  } catch (err) {
    if (err instanceof SchedulerInputError || err instanceof SchedulerConfigError) {
      throw new InvalidRequestError(`${sampler} cannot run ${steps} steps${needsImage && strength < 1 ? ` at strength ${strength}` : ''}: ${err.message}`);
    }
    throw err;
  }

  const inpaintArea = req.inpaintArea ?? 'whole';
  if (!INPAINT_AREAS.includes(inpaintArea)) {
    throw new InvalidRequestError(`inpaintArea must be one of ${INPAINT_AREAS.join(', ')}, got ${String(inpaintArea)}`);
  }
  const maskPadding = req.maskPadding ?? DEFAULT_MASK_PADDING;
  checkInt('maskPadding', maskPadding, 0, MAX_MASK_PADDING);

  if (req.latents !== undefined) {
    const expected = info.latentChannels * (height / info.vaeScaleFactor) * (width / info.vaeScaleFactor);
    if (!(req.latents instanceof Float32Array) || req.latents.length !== expected) {
      throw new InvalidRequestError(
        `latents must be float32 [1, ${info.latentChannels}, ${height / info.vaeScaleFactor}, ${width / info.vaeScaleFactor}] (${expected} values), got ${req.latents instanceof Float32Array ? req.latents.length : typeof req.latents}`,
      );
    }
  }
  checkRegions(req.regions);
  const controlScale = req.control !== undefined ? checkControl(model, req.control) : undefined;
  const clipSkip = req.clipSkip ?? 1;
  checkInt('clipSkip', clipSkip, 1, MAX_CLIP_SKIP);
  const emphasis = req.emphasis ?? DEFAULT_EMPHASIS;
  if (!(EMPHASIS_MODES as readonly string[]).includes(emphasis)) throw new InvalidRequestError(`emphasis must be one of ${EMPHASIS_MODES.join(', ')}`);
  if (req.padConds !== undefined && typeof req.padConds !== 'boolean') throw new InvalidRequestError('padConds must be true or false');
  if (req.embeddingDirs !== undefined && (!Array.isArray(req.embeddingDirs) || req.embeddingDirs.some((d) => typeof d !== 'string' || d === ''))) {
    throw new InvalidRequestError('embeddingDirs must be a list of folder paths');
  }
  const hires = req.hires !== undefined ? checkHires(model, req, { sampler, steps, width, height }) : undefined;
  if (req.softInpaint !== undefined && typeof req.softInpaint !== 'boolean') throw new InvalidRequestError('softInpaint must be true or false');
  if (req.softInpaint === true && req.mode !== 'inpaint') throw new InvalidRequestError(`soft inpainting is an inpaint setting, not for ${req.mode}`);
  // A refiner's run records the scores its time ids carried (the defaults when the request has none).
  const aesthetic =
    info.family === 'sdxl-refiner'
      ? { aestheticScore: req.aestheticScore ?? DEFAULT_AESTHETIC_SCORE, negativeAestheticScore: req.negativeAestheticScore ?? DEFAULT_NEGATIVE_AESTHETIC_SCORE }
      : null;
  if (aesthetic) {
    checkNumber('aestheticScore', aesthetic.aestheticScore, MIN_AESTHETIC_SCORE, MAX_AESTHETIC_SCORE);
    checkNumber('negativeAestheticScore', aesthetic.negativeAestheticScore, MIN_AESTHETIC_SCORE, MAX_AESTHETIC_SCORE);
  }
  return {
    mode: req.mode,
    prompt: req.prompt,
    negativePrompt,
    seed: req.seed,
    steps,
    cfg,
    sampler,
    width,
    height,
    strength: needsImage ? strength : 1,
    maskBlur: req.mode === 'inpaint' ? maskBlur : 0,
    ...(req.mode === 'inpaint' && inpaintArea === 'masked' ? { inpaintArea, maskPadding } : {}),
    ...(controlScale !== undefined ? { controlScale } : {}),
    ...(clipSkip > 1 ? { clipSkip } : {}),
    ...(emphasis !== DEFAULT_EMPHASIS ? { emphasis } : {}),
    ...(hires ? { hires } : {}),
    ...(req.softInpaint === true ? { softInpaint: true } : {}),
    ...(aesthetic ?? {}),
  };
}

/**
 * Regional prompts: a list of at most MAX_REGIONS, each with a prompt, a mask and a weight in range. A
 * LoRA patches the whole U-Net, so it cannot act on one region: its tag is refused in a region's prompt.
 * The masks' sizes and contents are checked when they are decoded (engine.ts prepareJob).
 */
function checkRegions(regions: GenerateRequest['regions']): void {
  if (regions === undefined) return;
  if (!Array.isArray(regions)) throw new InvalidRequestError('regions must be a list of { prompt, mask, weight? }');
  if (regions.length > MAX_REGIONS) throw new InvalidRequestError(`at most ${MAX_REGIONS} regions, got ${regions.length}`);
  regions.forEach((r, i) => {
    const which = `region ${i + 1}`;
    if (typeof r !== 'object' || r === null) throw new InvalidRequestError(`${which} must be { prompt, mask, weight? }`);
    if (typeof r.prompt !== 'string' || r.prompt.trim() === '') throw new InvalidRequestError(`${which} has no prompt`);
    if (r.prompt.length > MAX_PROMPT_CHARS) throw new InvalidRequestError(`${which}'s prompt is longer than ${MAX_PROMPT_CHARS} characters`);
    const tags = extractLoraTags(r.prompt).loras;
    if (tags.length > 0) {
      throw new InvalidRequestError(
        `${which}'s prompt has <lora:${tags[0]!.name}:…>: a LoRA changes the whole model, so it can only go in the main prompt`,
      );
    }
    if (!(r.mask instanceof Uint8Array) || r.mask.length === 0) throw new InvalidRequestError(`${which} needs a mask (white = the region)`);
    if (r.weight !== undefined) checkNumber(`${which}'s weight`, r.weight, MIN_REGION_WEIGHT, MAX_REGION_WEIGHT);
  });
}

/** A hires fix's settings with A1111's defaults, checked against the model and the first pass (pipelines/hires.ts). */
function checkHires(
  model: LoadedModel,
  req: GenerateRequest,
  first: { sampler: SamplerName; steps: number; width: number; height: number },
): HiresParams {
  const h = req.hires;
  if (typeof h !== 'object' || h === null) throw new InvalidRequestError('hires must be an object { upscaler, scale, resizeWidth, resizeHeight, steps, strength }');
  if (req.mode !== 'txt2img') throw new InvalidRequestError(`hires fix is a txt2img setting (a second img2img pass), not for ${req.mode}`);
  if (req.control !== undefined) throw new InvalidRequestError('hires fix with a ControlNet is not supported yet: the control image would have to follow the upscale');
  const upscaler = h.upscaler ?? DEFAULT_HIRES_UPSCALER;
  if (typeof upscaler !== 'string' || upscaler.trim() === '') throw new InvalidRequestError('hires upscaler must be a name');
  const scale = h.scale ?? DEFAULT_HIRES_SCALE;
  checkNumber('hires scale', scale, MIN_HIRES_SCALE, MAX_HIRES_SCALE);
  const resizeWidth = h.resizeWidth ?? 0;
  const resizeHeight = h.resizeHeight ?? 0;
  checkInt('hires resizeWidth', resizeWidth, 0, MAX_SIDE);
  checkInt('hires resizeHeight', resizeHeight, 0, MAX_SIDE);
  const steps = h.steps ?? 0;
  checkInt('hires steps', steps, 0, MAX_STEPS);
  const strength = h.strength ?? DEFAULT_HIRES_STRENGTH;
  checkNumber('hires strength', strength, MIN_STRENGTH, MAX_STRENGTH);
  const size = hiresSize(first.width, first.height, { scale, resizeWidth, resizeHeight }, Math.max(SIDE_MULTIPLE, model.info.sizeMultiple));
  for (const s of [size.upscaleTo, size.target]) {
    if (s.width < MIN_SIDE || s.height < MIN_SIDE || s.width > MAX_SIDE || s.height > MAX_SIDE) {
      throw new InvalidRequestError(`hires fix would work at ${s.width}×${s.height}; sides must be from ${MIN_SIDE} to ${MAX_SIDE}`);
    }
  }
  if (isLatentUpscaler(upscaler) && model.info.kind === 'inpaint') {
    throw new InvalidRequestError(`${model.info.name} is an inpainting model: its first pass ends as a picture, so hires fix needs a pixel upscaler (Lanczos, Nearest or an ONNX upscaler), not ${upscaler}`);
  }
  // The second pass is an img2img run at the target size: the same checks as one.
  const secondSteps = steps === 0 ? first.steps : steps;
  checkRequestForModel(model.info, { mode: 'img2img', sampler: first.sampler, steps: secondSteps, ...size.target, strength });
  if (strength < 1) {
    try {
      createScheduler(first.sampler, model.schedulerConfig).setTimesteps(secondSteps, { strength });
    } catch (err) {
      if (err instanceof SchedulerInputError || err instanceof SchedulerConfigError) {
        throw new InvalidRequestError(`hires fix: ${first.sampler} cannot run ${secondSteps} steps at strength ${strength}: ${err.message}`);
      }
      throw err;
    }
  }
  return { upscaler, scale, resizeWidth, resizeHeight, steps, strength };
}

/** Checks a request's control against the model; returns the conditioning scale. */
function checkControl(model: LoadedModel, control: GenerateRequest['control']): number {
  const info = model.info;
  if (typeof control !== 'object' || control === null) throw new InvalidRequestError('control must be an object { image, scale, model? }');
  if (!info.control) {
    throw new InvalidRequestError(
      `${info.name} cannot use a ControlNet: its U-Net has no ControlNet residual inputs ` +
        `(it needs a U-Net exported with down_block_* and mid_block_additional_residual inputs)`,
    );
  }
  if (!(control.image instanceof Uint8Array) || control.image.length === 0) throw new InvalidRequestError('control needs an image');
  checkNumber('control scale', control.scale, 0, MAX_CONTROL_SCALE);
  if (control.model !== undefined && (typeof control.model !== 'string' || control.model.trim() === '')) {
    throw new InvalidRequestError('control.model must be a folder path');
  }
  if (control.model === undefined && !info.control.folderControlNet) {
    throw new InvalidRequestError(`${info.name} has no controlnet/ folder: name a ControlNet folder in control.model`);
  }
  return control.scale;
}
