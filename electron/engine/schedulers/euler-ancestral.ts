/**
 * Euler ancestral (k-diffusion `sample_euler_ancestral`, η = 1), as diffusers'
 * `EulerAncestralDiscreteScheduler` (scheduling_euler_ancestral_discrete.py, sd-onnx-reference §4.4):
 * an Euler step down to σ_down, then fresh noise of size σ_up, with σ_down² + σ_up² = σ_{i+1}².
 */

import type { SamplerName } from '../../shared/generation.js';
import type { GaussianSource } from '../tensor/rng.js';
import type { SchedulerConfigReader } from './config.js';
import {
  checkSameLength,
  checkStrength,
  checkSteps,
  f32,
  img2imgStart,
  interpOnIndex,
  readBetaConfig,
  StepCursor,
  TIMESTEP_SPACINGS,
  trainSigmas,
  type TimestepSpacing,
} from './common.js';
import {
  eulerAlphasCumprod,
  eulerInitNoiseSigma,
  eulerPredOriginal,
  eulerScaleInput,
  eulerTimesteps,
} from './euler.js';
import type { PredictionType, Scheduler, SetTimestepsOptions, StepResult } from './types.js';

const PREDICTION_TYPES = ['epsilon', 'v_prediction'] as const;

export class EulerAncestralScheduler implements Scheduler {
  readonly order = 1;
  readonly predictionType: PredictionType;
  private readonly numTrainTimesteps: number;
  private readonly timestepSpacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly trainSigmas: Float32Array;

  private schedule: number[] = [];
  private sigmas: Float32Array;
  private active: readonly number[] = [];
  private readonly cursor = new StepCursor();

  constructor(
    readonly name: SamplerName,
    config: SchedulerConfigReader,
  ) {
    const betas = readBetaConfig(config, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, true);
    this.numTrainTimesteps = betas.numTrainTimesteps;
    this.predictionType = config.choice('prediction_type', 'epsilon', PREDICTION_TYPES);
    this.timestepSpacing = config.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = config.number('steps_offset', 0, { integer: true, min: 0, below: this.numTrainTimesteps });
    this.trainSigmas = trainSigmas(eulerAlphasCumprod(betas));
    this.sigmas = Float32Array.from([...this.trainSigmas].reverse().concat(0));
  }

  /** The timesteps the pipeline runs: the schedule from the img2img start on. */
  get timesteps(): readonly number[] {
    return this.active;
  }

  get initNoiseSigma(): number {
    return eulerInitNoiseSigma(this.sigmas, this.timestepSpacing);
  }

  setTimesteps(steps: number, opts: SetTimestepsOptions = {}): void {
    checkSteps(steps, this.numTrainTimesteps, 'EulerAncestralDiscreteScheduler');
    if (opts.strength !== undefined) checkStrength(opts.strength, steps);
    this.schedule = eulerTimesteps(this.timestepSpacing, this.numTrainTimesteps, steps, this.stepsOffset);
    const sigmas = this.schedule.map((t) => interpOnIndex(t, this.trainSigmas));
    this.sigmas = Float32Array.from([...sigmas, 0]);
    const start = opts.strength === undefined ? null : img2imgStart(steps, opts.strength) * this.order;
    this.active = Object.freeze(this.schedule.slice(start ?? 0));
    this.cursor.reset(start);
  }

  scaleModelInput(sample: Float32Array, t: number): Float32Array {
    const i = this.cursor.current(t, this.schedule, 'throw');
    return eulerScaleInput(sample, this.sigmas[i] as number);
  }

  /** Keeps no buffers of its own: each step allocates its results. */
  readonly writesInto = false;

  step(modelOutput: Float32Array, t: number, sample: Float32Array, rng?: GaussianSource): StepResult {
    if (this.schedule.length === 0) throw new Error('Euler ancestral: setTimesteps must be called before step');
    if (!rng) throw new Error('Euler ancestral: step needs a GaussianSource (rng) for the ancestral noise');
    checkSameLength('Euler ancestral step', modelOutput, sample);
    const i = this.cursor.current(t, this.schedule, 'throw');
    if (i + 1 >= this.sigmas.length) throw new Error(`Euler ancestral: step ${i} is past the end of the schedule`);
    const sigma = this.sigmas[i] as number;

    // 1. x0 from the model output
    const predOriginal = eulerPredOriginal(this.predictionType, modelOutput, sample, sigma);

    // 2. split σ_{i+1} into the deterministic part σ_down and the noise σ_up
    //    σ_up = √(σ_to²·(σ_from² − σ_to²)/σ_from²),  σ_down = √(σ_to² − σ_up²)
    const sigmaFromSq = f32(sigma * sigma);
    const sigmaTo = this.sigmas[i + 1] as number;
    const sigmaToSq = f32(sigmaTo * sigmaTo);
    const sigmaUp = f32(Math.sqrt(f32(f32(sigmaToSq * f32(sigmaFromSq - sigmaToSq)) / sigmaFromSq)));
    const sigmaDown = f32(Math.sqrt(f32(sigmaToSq - f32(sigmaUp * sigmaUp))));

    // 3. Euler step to σ_down: d = (x − x0)/σ, x' = x + d·(σ_down − σ)
    const dt = f32(sigmaDown - sigma);
    const deterministic = sample.map((x, k) => x + f32(f32(f32(x - (predOriginal[k] as number)) / sigma) * dt));

    // 4. add fresh noise z·σ_up (drawn on every step, the last one included, as diffusers does)
    const noise = rng.randn(sample.length);
    const prevSample = deterministic.map((x, k) => x + f32((noise[k] as number) * sigmaUp));
    this.cursor.advance();
    return { prevSample, predOriginal };
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkSameLength('addNoise', x0, noise);
    const sigma = this.sigmas[this.cursor.noiseIndex(t, this.schedule, 'throw')] as number;
    return x0.map((x, k) => x + f32((noise[k] as number) * sigma));
  }
}
