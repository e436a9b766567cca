/**
 * Latent Consistency Model multistep sampling (Luo et al. 2023, "Latent Consistency Models", Algorithm 3),
 * as diffusers' `LCMScheduler` (scheduling_lcm.py, sd-onnx-reference §4.6): each step predicts the clean
 * latents with the consistency function f_θ = c_skip·x + c_out·x0, then re-noises them to the next timestep.
 */

import type { SamplerName } from '../../shared/generation.js';
import type { GaussianSource } from '../tensor/rng.js';
import type { SchedulerConfigReader } from './config.js';
import { SchedulerInputError } from './errors.js';
import {
  addNoiseWithAlpha,
  alphaAt,
  checkSameLength,
  checkSteps,
  f32,
  makeAlphasCumprod,
  numpyLinspace,
  readBetaConfig,
  StepCursor,
  thresholdSample,
  TIMESTEP_SPACINGS,
} from './common.js';
import type { PredictionType, Scheduler, SetTimestepsOptions, StepBuffers, StepResult } from './types.js';

const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;
/** σ_data of the consistency-model boundary condition (Song et al. 2023, "Consistency Models", §5). */
const SIGMA_DATA = 0.5;

export class LcmScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly predictionType: PredictionType;
  private readonly numTrainTimesteps: number;
  private readonly originalInferenceSteps: number;
  private readonly clipSample: boolean;
  private readonly clipSampleRange: number;
  private readonly thresholding: boolean;
  private readonly dynamicThresholdingRatio: number;
  private readonly sampleMaxValue: number;
  private readonly timestepScaling: number;
  private readonly alphasCumprod: Float32Array;
  private readonly finalAlphaCumprod: number;

  private schedule: readonly number[] = [];
  private readonly cursor = new StepCursor();

  constructor(
    readonly name: SamplerName,
    config: SchedulerConfigReader,
  ) {
    const betas = readBetaConfig(config, { betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear' }, true);
    this.numTrainTimesteps = betas.numTrainTimesteps;
    this.originalInferenceSteps = config.number('original_inference_steps', 50, {
      integer: true,
      min: 1,
      max: this.numTrainTimesteps,
    });
    this.clipSample = config.bool('clip_sample', false);
    this.clipSampleRange = config.number('clip_sample_range', 1, { above: 0 });
    const setAlphaToOne = config.bool('set_alpha_to_one', true);
    config.number('steps_offset', 0, { integer: true, min: 0, below: this.numTrainTimesteps });
    this.predictionType = config.choice('prediction_type', 'epsilon', PREDICTION_TYPES);
    this.thresholding = config.bool('thresholding', false);
    this.dynamicThresholdingRatio = config.number('dynamic_thresholding_ratio', 0.995, { above: 0, max: 1 });
    this.sampleMaxValue = config.number('sample_max_value', 1, { above: 0 });
    // Known to the class but unused by its set_timesteps; still checked so a typo is caught.
    config.choice('timestep_spacing', 'leading', TIMESTEP_SPACINGS);
    this.timestepScaling = config.number('timestep_scaling', 10, { above: 0 });
    this.alphasCumprod = makeAlphasCumprod(betas);
    this.finalAlphaCumprod = setAlphaToOne ? 1 : (this.alphasCumprod[0] as number);
  }

  get timesteps(): readonly number[] {
    return this.schedule;
  }

  /**
   * Skipping-step schedule: the distillation timesteps k−1, 2k−1, …, (k = T / original_inference_steps),
   * limited to the first int(original·strength) of them, then `steps` of those, evenly spaced from the top.
   * Strength works here as in diffusers' LCM img2img pipeline: it shortens the list, and the pipeline noises
   * the init latents to timesteps[0] (no get_timesteps truncation).
   */
  setTimesteps(steps: number, opts: SetTimestepsOptions = {}): void {
    const strength = opts.strength ?? 1;
    const original = this.originalInferenceSteps;
    checkSteps(steps, this.numTrainTimesteps, 'LCMScheduler');
    if (steps > original) {
      throw new SchedulerInputError(
        `LCM runs at most original_inference_steps = ${original} steps (its schedule is a subset of those), got ${steps}`,
      );
    }
    if (!(typeof strength === 'number' && strength > 0 && strength <= 1)) {
      throw new SchedulerInputError(`strength must be a number in (0, 1], got ${strength}`);
    }
    const k = Math.floor(this.numTrainTimesteps / original);
    const available = Math.trunc(original * strength);
    if (Math.floor(available / steps) < 1) {
      throw new SchedulerInputError(
        `LCM: strength ${strength} leaves ${available} of the ${original} distillation timesteps, fewer than ${steps} steps; lower the steps or raise the strength`,
      );
    }
    const origin = Array.from({ length: available }, (_, i) => (available - i) * k - 1);
    this.schedule = Object.freeze(
      numpyLinspace(0, available, steps, false).map((x) => origin[Math.floor(x)] as number),
    );
    this.cursor.reset(null);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** c_skip(t) and c_out(t) of the boundary condition f(x, ε) = x (LCM eq. 9, with t scaled by timestep_scaling). */
  private boundaryScalings(t: number): { cSkip: number; cOut: number } {
    const scaled = f32(t * this.timestepScaling);
    const scaledSq = f32(scaled * scaled);
    const sigmaDataSq = SIGMA_DATA * SIGMA_DATA;
    const cSkip = f32(sigmaDataSq / f32(scaledSq + sigmaDataSq));
    const cOut = f32(scaled / f32(Math.sqrt(f32(scaledSq + sigmaDataSq))));
    return { cSkip, cOut };
  }

  readonly writesInto = true;

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: GaussianSource, into?: StepBuffers): StepResult {
    if (this.schedule.length === 0) throw new Error('LCM: setTimesteps must be called before step');
    checkSameLength('LCM step', modelOutput, sample);
    const n = sample.length;
    if (into) for (const b of [into.prevSample, into.predOriginal, into.scratch]) checkSameLength('LCM step buffers', b, sample);
    // 1. the previous step value
    const i = this.cursor.current(t, this.schedule, 'throw');
    const isLast = i === this.schedule.length - 1;
    if (!isLast && !rng) throw new Error('LCM: step needs a GaussianSource (rng) to re-noise between steps');
    const prevT = i + 1 < this.schedule.length ? (this.schedule[i + 1] as number) : t;

    // 2. alphas, betas
    const alphaProdT = alphaAt(this.alphasCumprod, t);
    const alphaProdTPrev = prevT >= 0 ? alphaAt(this.alphasCumprod, prevT) : this.finalAlphaCumprod;
    const sqrtAlpha = f32(Math.sqrt(alphaProdT));
    const sqrtBeta = f32(Math.sqrt(f32(1 - alphaProdT)));

    // 3. boundary-condition scalings
    const { cSkip, cOut } = this.boundaryScalings(t);

    // 4. the predicted original sample x0 (in `scratch` when writing into buffers)
    let predOriginal = into ? into.scratch : new Float32Array(n);
    if (this.predictionType === 'epsilon') {
      for (let k = 0; k < n; k++) predOriginal[k] = f32((sample[k] as number) - f32(sqrtBeta * (modelOutput[k] as number))) / sqrtAlpha;
    } else if (this.predictionType === 'v_prediction') {
      for (let k = 0; k < n; k++) predOriginal[k] = f32(sqrtAlpha * (sample[k] as number)) - f32(sqrtBeta * (modelOutput[k] as number));
    } else {
      predOriginal.set(modelOutput);
    }

    // 5. clip or threshold x0
    if (this.thresholding) {
      predOriginal = thresholdSample(predOriginal, this.dynamicThresholdingRatio, this.sampleMaxValue);
    } else if (this.clipSample) {
      const r = this.clipSampleRange;
      for (let k = 0; k < n; k++) predOriginal[k] = Math.min(Math.max(predOriginal[k] as number, -r), r);
    }

    // 6. the consistency-model output: denoised = c_out·x0 + c_skip·x
    const denoised = into ? into.predOriginal : new Float32Array(n);
    for (let k = 0; k < n; k++) denoised[k] = f32(cOut * (predOriginal[k] as number)) + f32(cSkip * (sample[k] as number));

    // 7. re-noise to the next timestep with fresh noise (multistep consistency sampling), except on the last step
    const prevSample = into ? into.prevSample : new Float32Array(n);
    if (isLast) {
      prevSample.set(denoised);
    } else {
      const noise = (rng as GaussianSource).fill(into ? into.scratch : new Float32Array(n));
      const sqrtAlphaPrev = f32(Math.sqrt(alphaProdTPrev));
      const sqrtBetaPrev = f32(Math.sqrt(f32(1 - alphaProdTPrev)));
      for (let k = 0; k < n; k++) prevSample[k] = f32(sqrtAlphaPrev * (denoised[k] as number)) + f32(sqrtBetaPrev * (noise[k] as number));
    }
    this.cursor.advance();
    return { prevSample, predOriginal: denoised };
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseWithAlpha(x0, noise, alphaAt(this.alphasCumprod, t));
  }
}
