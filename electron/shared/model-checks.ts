/**
 * What a request must satisfy for one model: the mode, the sampler, the size and the strength. The
 * engine checks it before any session runs (engine/pipelines/resolve.ts) and the host checks it at
 * enqueue against the model's stored info, so a request that can never run is answered at once,
 * without a job id. One definition, so both answer with the same words.
 */
import { InvalidRequestError } from './errors.js';
import type { GenerationMode, SamplerName } from './generation.js';
import { DEFAULT_IMG2IMG_STRENGTH } from './generation-limits.js';
import type { ModelInfo } from './model.js';

export type ModelRequirements = Pick<ModelInfo, 'name' | 'family' | 'supports' | 'sizeMultiple' | 'fixedSize' | 'defaults'>;

export interface RequestAgainstModel {
  mode: GenerationMode;
  sampler?: SamplerName | undefined;
  steps?: number | undefined;
  width?: number | undefined;
  height?: number | undefined;
  strength?: number | undefined;
  /** Only an SDXL refiner's time ids carry aesthetic scores. */
  aestheticScore?: number | undefined;
  negativeAestheticScore?: number | undefined;
}

/** LCM-LoRA files (latent-consistency/lcm-lora-sdv1-5, …) are known by name: `lcm` as a word in it. */
export function isLcmLoraName(name: string): boolean {
  return /(^|[-_ .])lcm([-_ .]|$)/i.test(name);
}

/** The strength a request runs at: its own, or the mode's default (img2img 0.75; inpaint repaints fully). */
export function effectiveStrength(req: Pick<RequestAgainstModel, 'mode' | 'strength'>): number {
  return req.strength ?? (req.mode === 'img2img' ? DEFAULT_IMG2IMG_STRENGTH : 1);
}

/**
 * Throws InvalidRequestError when the model cannot run the request: a mode it lacks, a size that is not a
 * multiple of what its VAE and U-Net need (or not its fixed size), or an img2img/inpaint strength that runs
 * no step. The lcm sampler runs on any model, as in A1111 and ComfyUI: an LCM-LoRA makes a plain SD model a
 * few-step one whatever its file is called (latent-consistency ships `pytorch_lora_weights.safetensors`).
 */
export function checkRequestForModel(info: ModelRequirements, req: RequestAgainstModel): void {
  if (info.family === 'sdxl-refiner' && !info.supports.includes(req.mode)) {
    throw new InvalidRequestError(
      `${info.name} is an SDXL refiner (unet/model.onnx takes the aesthetic-score time_ids, and there is no text_encoder/): ` +
        `it refines a picture (${info.supports.join(', ') || 'nothing without vae_encoder/model.onnx'}) and cannot do ${req.mode}; use an SDXL base model for ${req.mode}`,
    );
  }
  if (!info.supports.includes(req.mode)) {
    throw new InvalidRequestError(`${info.name} cannot do ${req.mode} (it supports ${info.supports.join(', ')})`);
  }
  if ((req.aestheticScore !== undefined || req.negativeAestheticScore !== undefined) && info.family !== 'sdxl-refiner') {
    throw new InvalidRequestError(
      `aesthetic scores condition an SDXL refiner (its time_ids end with the score); ${info.name} is ${info.family}, whose U-Net takes none`,
    );
  }
  const sampler = req.sampler ?? info.defaults.sampler;
  const width = req.width ?? info.defaults.width;
  const height = req.height ?? info.defaults.height;
  if (width % info.sizeMultiple !== 0 || height % info.sizeMultiple !== 0) {
    throw new InvalidRequestError(`${info.name} needs width and height that are multiples of ${info.sizeMultiple}, got ${width}×${height}`);
  }
  if (info.fixedSize && (info.fixedSize.width !== width || info.fixedSize.height !== height)) {
    throw new InvalidRequestError(`${info.name} only accepts ${info.fixedSize.width}×${info.fixedSize.height}, got ${width}×${height}`);
  }
  if (req.mode !== 'img2img' && req.mode !== 'inpaint') return;
  const strength = effectiveStrength(req);
  if (strength <= 0) {
    throw new InvalidRequestError(`${req.mode} at strength 0 would hand back the init image unchanged; give a strength above 0`);
  }
  const steps = req.steps ?? info.defaults.steps;
  // LCM applies strength to its distillation schedule instead (its scheduler checks that case).
  if (sampler !== 'lcm' && Math.floor(steps * strength) < 1) {
    throw new InvalidRequestError(`strength × steps must be at least 1 step (got ${strength} × ${steps})`);
  }
}
