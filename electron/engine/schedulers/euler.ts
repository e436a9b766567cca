/**
 * Euler (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models",
 * Algorithm 2 with S_churn = 0), as diffusers' `EulerDiscreteScheduler` (scheduling_euler_discrete.py,
 * sd-onnx-reference §4.3). Works on σ = √((1−ᾱ)/ᾱ): x_σ = x0 + σ·ε.
 */

import type { SamplerName } from '../../shared/generation.js';
import type { SchedulerConfigReader } from './config.js';
import {
  checkSameLength,
  checkStrength,
  checkSteps,
  f32,
  img2imgStart,
  interpOnIndex,
  karrasSigmas,
  makeAlphasCumprod,
  numpyLinspace,
  readBetaConfig,
  sigmaToT,
  StepCursor,
  TIMESTEP_SPACINGS,
  trailingTimesteps,
  trainSigmas,
  ZERO_SNR_LAST_ALPHA_CUMPROD,
  type BetaConfig,
  type TimestepSpacing,
} from './common.js';
import type { PredictionType, Scheduler, SetTimestepsOptions, StepResult } from './types.js';

const FINAL_SIGMAS_TYPES = ['zero', 'sigma_min'] as const;

/** ᾱ of an Euler-family scheduler: with zero terminal SNR, ᾱ[T−1] is 2^−24 instead of 0 so σ stays finite. */
export function eulerAlphasCumprod(betas: BetaConfig): Float32Array {
  const alphasCumprod = makeAlphasCumprod(betas);
  if (betas.rescaleBetasZeroSnr) alphasCumprod[alphasCumprod.length - 1] = ZERO_SNR_LAST_ALPHA_CUMPROD;
  return alphasCumprod;
}

/** The float32 timesteps of EulerDiscrete / EulerAncestralDiscrete `set_timesteps` (descending). */
export function eulerTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  steps: number,
  stepsOffset: number,
): number[] {
  if (spacing === 'linspace') {
    return numpyLinspace(0, numTrainTimesteps - 1, steps).map(f32).reverse();
  }
  if (spacing === 'leading') {
    const stepRatio = Math.floor(numTrainTimesteps / steps);
    return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * stepRatio + stepsOffset);
  }
  return trailingTimesteps(numTrainTimesteps, numTrainTimesteps, steps);
}

/** init_noise_sigma: max σ for linspace / trailing, √(max σ² + 1) for leading. */
export function eulerInitNoiseSigma(sigmas: Float32Array, spacing: TimestepSpacing): number {
  let max = -Infinity;
  for (const s of sigmas) max = Math.max(max, s);
  if (spacing === 'linspace' || spacing === 'trailing') return max;
  return f32(Math.sqrt(f32(f32(max * max) + 1)));
}

/** x / √(σ² + 1): the UNet sees unit-variance input (Karras et al. 2022, c_in of Table 1). */
export function eulerScaleInput(sample: Float32Array, sigma: number): Float32Array {
  const scale = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
  // Plain loops rather than TypedArray.map here and below: the same float32 stores, a third of the time.
  const out = new Float32Array(sample.length);
  for (let i = 0; i < out.length; i++) out[i] = sample[i]! / scale;
  return out;
}

/** x0 from the model output at noise level σ (shared by Euler and Euler ancestral). */
export function eulerPredOriginal(
  predictionType: PredictionType,
  modelOutput: Float32Array,
  sample: Float32Array,
  sigma: number,
): Float32Array {
  if (predictionType === 'epsilon') {
    // x0 = x − σ·ε
    const out = new Float32Array(sample.length);
    for (let i = 0; i < out.length; i++) out[i] = sample[i]! - f32(sigma * modelOutput[i]!);
    return out;
  }
  if (predictionType === 'v_prediction') {
    // x0 = v·(−σ/√(σ²+1)) + x/(σ²+1)  (Salimans & Ho 2022, v-parameterisation in σ form)
    const sigmaSqPlusOne = f32(f32(sigma * sigma) + 1);
    const vCoeff = f32(-sigma / f32(Math.sqrt(sigmaSqPlusOne)));
    return modelOutput.map((v, i) => f32(v * vCoeff) + f32((sample[i] as number) / sigmaSqPlusOne));
  }
  return Float32Array.from(modelOutput);
}

export class EulerScheduler implements Scheduler {
  readonly order = 1;
  readonly predictionType: PredictionType;
  private readonly numTrainTimesteps: number;
  private readonly timestepSpacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly useKarrasSigmas: boolean;
  private readonly sigmaMin: number | null;
  private readonly sigmaMax: number | null;
  private readonly finalSigmasType: (typeof FINAL_SIGMAS_TYPES)[number];
  private readonly trainSigmas: Float32Array;
  private readonly logSigmas: Float32Array;

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
    const prediction = config.choice('prediction_type', 'epsilon', [
      'epsilon',
      'v_prediction',
      'sample',
      'original_sample',
    ] as const);
    this.predictionType = prediction === 'original_sample' ? 'sample' : prediction;
    config.unsupported('interpolation_type', 'linear', 'only linear interpolation of σ is implemented');
    this.useKarrasSigmas = config.bool('use_karras_sigmas', false, true);
    config.unsupported('use_exponential_sigmas', false, 'only the default and Karras sigma schedules are implemented');
    config.unsupported('use_beta_sigmas', false, 'only the default and Karras sigma schedules are implemented');
    this.sigmaMin = config.optionalNumber('sigma_min', { above: 0 });
    this.sigmaMax = config.optionalNumber('sigma_max', { above: 0 });
    this.timestepSpacing = config.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    config.unsupported('timestep_type', 'discrete', 'only discrete timesteps are implemented');
    this.stepsOffset = config.number('steps_offset', 0, { integer: true, min: 0, below: this.numTrainTimesteps });
    this.finalSigmasType = config.choice('final_sigmas_type', 'zero', FINAL_SIGMAS_TYPES);

    this.trainSigmas = trainSigmas(eulerAlphasCumprod(betas));
    this.logSigmas = this.trainSigmas.map(Math.log);
    // Before setTimesteps diffusers holds the full training schedule; init_noise_sigma reads it.
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
    checkSteps(steps, this.numTrainTimesteps, 'EulerDiscreteScheduler');
    if (opts.strength !== undefined) checkStrength(opts.strength, steps);
    let timesteps = eulerTimesteps(this.timestepSpacing, this.numTrainTimesteps, steps, this.stepsOffset);
    let sigmas = timesteps.map((t) => interpOnIndex(t, this.trainSigmas));
    if (this.useKarrasSigmas) {
      const sigmaMin = this.sigmaMin ?? (sigmas[sigmas.length - 1] as number);
      const sigmaMax = this.sigmaMax ?? (sigmas[0] as number);
      sigmas = karrasSigmas(sigmaMin, sigmaMax, steps);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, this.logSigmas)));
    }
    const sigmaLast = this.finalSigmasType === 'zero' ? 0 : (this.trainSigmas[0] as number);
    this.sigmas = Float32Array.from([...sigmas, sigmaLast]);
    this.schedule = timesteps;
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

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.schedule.length === 0) throw new Error('Euler: setTimesteps must be called before step');
    checkSameLength('Euler step', modelOutput, sample);
    const i = this.cursor.current(t, this.schedule, 'throw');
    if (i + 1 >= this.sigmas.length) throw new Error(`Euler: step ${i} is past the end of the schedule`);
    // 1. σ̂ = σ·(γ + 1) with γ = 0 (no churn)
    const sigma = this.sigmas[i] as number;
    // 2. x0 from the model output (the denoiser D(x; σ))
    const predOriginal = eulerPredOriginal(this.predictionType, modelOutput, sample, sigma);
    // 3. ODE derivative d = (x − D(x; σ))/σ (Karras et al. eq. 3 / Algorithm 2 line 7)
    // 4. Euler step to σ_{i+1}: x' = x + d·(σ_{i+1} − σ)
    const dt = f32((this.sigmas[i + 1] as number) - sigma);
    const prevSample = new Float32Array(sample.length);
    for (let k = 0; k < prevSample.length; k++) {
      const x = sample[k]!;
      prevSample[k] = x + f32(f32(f32(x - predOriginal[k]!) / sigma) * dt);
    }
    this.cursor.advance();
    return { prevSample, predOriginal };
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkSameLength('addNoise', x0, noise);
    const sigma = this.sigmas[this.cursor.noiseIndex(t, this.schedule, 'throw')] as number;
    // x_σ = x0 + σ·ε
    return x0.map((x, k) => x + f32((noise[k] as number) * sigma));
  }
}
