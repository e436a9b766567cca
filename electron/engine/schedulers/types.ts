import type { SamplerName } from '../../shared/generation.js';
import type { GaussianSource } from '../tensor/rng.js';

/** What the UNet predicts (diffusers `prediction_type`). */
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

export interface SetTimestepsOptions {
  /**
   * img2img / inpaint: the fraction of the schedule to run, in (0, 1]. Implements the torch img2img
   * pipeline's `get_timesteps` (LCM: its own `set_timesteps(strength=)`), so `timesteps[0]` is the
   * timestep at which the pipeline noises the init latents with `addNoise`.
   */
  strength?: number;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The model's estimate of the clean latents (diffusers `pred_original_sample`; LCM `denoised`). */
  predOriginal?: Float32Array;
}

/**
 * Latent-sized arrays a step writes its results into instead of allocating new ones (the live path's
 * loop: no allocation per step). `prevSample` may be the very array passed as `sample`: the maths is
 * element-wise, and a step reads each element of `sample` before it writes that element of `prevSample`.
 */
export interface StepBuffers {
  prevSample: Float32Array;
  predOriginal: Float32Array;
  /** Room for intermediate values and an ancestral step's fresh noise. */
  scratch: Float32Array;
}

/**
 * A diffusion scheduler, mirroring diffusers so reference values carry over. The pipeline owns the loop:
 * `scaleModelInput → UNet → guidance → step`. One object per job: it holds the multistep state.
 * Tensors are flat Float32Arrays (the maths is element-wise, so any shape works).
 */
export interface Scheduler {
  readonly name: SamplerName;
  readonly predictionType: PredictionType;
  /** diffusers `scheduler.order` (1 for every scheduler here). */
  readonly order: number;
  /** After setTimesteps: the timesteps the pipeline runs, in order. */
  readonly timesteps: readonly number[];
  /** Multiply the initial Gaussian latents by this (text-to-image). */
  readonly initNoiseSigma: number;
  setTimesteps(steps: number, opts?: SetTimestepsOptions): void;
  /** The UNet input for timestep t. May return `sample` itself when the scaling is the identity. */
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  /**
   * One denoising step from t. `rng` is required by the ancestral samplers (euler_a, lcm). With `into`,
   * a scheduler that keeps no history between steps (lcm) returns those arrays, filled; the others
   * allocate and ignore it (check `writesInto`).
   */
  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: GaussianSource, into?: StepBuffers): StepResult;
  /** Whether `step` honours `into`. */
  readonly writesInto: boolean;
  /** The forward process: clean latents x0 noised to timestep t. */
  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array;
}
