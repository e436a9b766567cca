/**
 * DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models"), deterministic (η = 0), as diffusers'
 * `DDIMScheduler` (scheduling_ddim.py, sd-onnx-reference §4.2).
 */

import type { SamplerName } from '../../shared/generation.js';
import type { SchedulerConfigReader } from './config.js';
import {
  addNoiseWithAlpha,
  alphaAt,
  checkSameLength,
  checkStrength,
  checkSteps,
  f32,
  img2imgStart,
  makeAlphasCumprod,
  readBetaConfig,
  spacedTimesteps,
  thresholdSample,
  TIMESTEP_SPACINGS,
  type TimestepSpacing,
} from './common.js';
import type { PredictionType, Scheduler, SetTimestepsOptions, StepResult } from './types.js';

const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;

export class DdimScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly predictionType: PredictionType;
  private readonly numTrainTimesteps: number;
  private readonly timestepSpacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly clipSample: boolean;
  private readonly clipSampleRange: number;
  private readonly thresholding: boolean;
  private readonly dynamicThresholdingRatio: number;
  private readonly sampleMaxValue: number;
  private readonly alphasCumprod: Float32Array;
  private readonly finalAlphaCumprod: number;

  private numInferenceSteps: number | null = null;
  private schedule: number[] = [];
  private active: readonly number[] = [];

  constructor(
    readonly name: SamplerName,
    config: SchedulerConfigReader,
  ) {
    const betas = readBetaConfig(config, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, true);
    this.numTrainTimesteps = betas.numTrainTimesteps;
    this.clipSample = config.bool('clip_sample', true);
    const setAlphaToOne = config.bool('set_alpha_to_one', true);
    this.stepsOffset = config.number('steps_offset', 0, { integer: true, min: 0, below: this.numTrainTimesteps });
    this.predictionType = config.choice('prediction_type', 'epsilon', PREDICTION_TYPES);
    this.thresholding = config.bool('thresholding', false);
    this.dynamicThresholdingRatio = config.number('dynamic_thresholding_ratio', 0.995, { above: 0, max: 1 });
    this.clipSampleRange = config.number('clip_sample_range', 1, { above: 0 });
    this.sampleMaxValue = config.number('sample_max_value', 1, { above: 0 });
    this.timestepSpacing = config.choice('timestep_spacing', 'leading', TIMESTEP_SPACINGS);
    this.alphasCumprod = makeAlphasCumprod(betas);
    this.finalAlphaCumprod = setAlphaToOne ? 1 : (this.alphasCumprod[0] as number);
  }

  /** The timesteps the pipeline runs: the schedule from the img2img start on. */
  get timesteps(): readonly number[] {
    return this.active;
  }

  setTimesteps(steps: number, opts: SetTimestepsOptions = {}): void {
    const T = this.numTrainTimesteps;
    checkSteps(steps, T, 'DDIMScheduler');
    if (opts.strength !== undefined) checkStrength(opts.strength, steps);
    this.numInferenceSteps = steps;
    this.schedule = spacedTimesteps(this.timestepSpacing, T, steps, this.stepsOffset, 'DDIMScheduler');
    const start = opts.strength === undefined ? 0 : img2imgStart(steps, opts.strength) * this.order;
    this.active = Object.freeze(this.schedule.slice(start));
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** Keeps no buffers of its own: each step allocates its results. */
  readonly writesInto = false;

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.numInferenceSteps === null) throw new Error('DDIM: setTimesteps must be called before step');
    checkSameLength('DDIM step', modelOutput, sample);
    // 1. previous step value (=t−1 in the paper's notation): always t − T/n, whatever the spacing
    const prevT = t - Math.floor(this.numTrainTimesteps / this.numInferenceSteps);

    // 2. alphas, betas
    const alphaProdT = alphaAt(this.alphasCumprod, t);
    const alphaProdTPrev = prevT >= 0 ? alphaAt(this.alphasCumprod, prevT) : this.finalAlphaCumprod;
    const betaProdT = f32(1 - alphaProdT);
    const sqrtAlpha = f32(Math.sqrt(alphaProdT));
    const sqrtBeta = f32(Math.sqrt(betaProdT));

    // 3. predicted original sample x0 ("predicted x_0" of formula (12)) and predicted noise ε
    let predOriginal: Float32Array;
    let predEpsilon: Float32Array;
    if (this.predictionType === 'epsilon') {
      predOriginal = sample.map((x, i) => f32(x - f32(sqrtBeta * (modelOutput[i] as number))) / sqrtAlpha);
      predEpsilon = modelOutput;
    } else if (this.predictionType === 'sample') {
      predOriginal = Float32Array.from(modelOutput);
      predEpsilon = sample.map((x, i) => f32(x - f32(sqrtAlpha * (modelOutput[i] as number))) / sqrtBeta);
    } else {
      predOriginal = sample.map((x, i) => f32(sqrtAlpha * x) - f32(sqrtBeta * (modelOutput[i] as number)));
      predEpsilon = modelOutput.map((v, i) => f32(sqrtAlpha * v) + f32(sqrtBeta * (sample[i] as number)));
    }

    // 4. clip or threshold x0
    if (this.thresholding) {
      predOriginal = thresholdSample(predOriginal, this.dynamicThresholdingRatio, this.sampleMaxValue);
    } else if (this.clipSample) {
      const r = this.clipSampleRange;
      predOriginal = predOriginal.map((v) => Math.min(Math.max(v, -r), r));
    }

    // 5. σ_t(η) of formula (16) is 0 for η = 0; 6. "direction pointing to x_t" of formula (12)
    const directionCoeff = f32(Math.sqrt(f32(1 - alphaProdTPrev)));
    // 7. x_{t−1} without the random noise term of formula (12)
    const sqrtAlphaPrev = f32(Math.sqrt(alphaProdTPrev));
    const prevSample = predOriginal.map(
      (x0, i) => f32(sqrtAlphaPrev * x0) + f32(directionCoeff * (predEpsilon[i] as number)),
    );
    return { prevSample, predOriginal };
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseWithAlpha(x0, noise, alphaAt(this.alphasCumprod, t));
  }
}
