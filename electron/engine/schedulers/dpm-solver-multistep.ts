/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
 * Models", Algorithm 2), as diffusers' `DPMSolverMultistepScheduler` with algorithm_type "dpmsolver++" and
 * solver_order 2 (scheduling_dpmsolver_multistep.py, sd-onnx-reference §4.5). The sampler names fix those two;
 * 'dpmpp_2m_karras' also sets use_karras_sigmas, 'dpmpp_2m' clears it.
 *
 * Notation: for noise level σ, α_t = 1/√(σ²+1), σ_t = σ·α_t, λ = log α_t − log σ_t (half log-SNR);
 * the solver works on the data prediction x0_θ.
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
  numpyLinspace,
  readBetaConfig,
  roundHalfEven,
  sigmaToT,
  StepCursor,
  thresholdSample,
  TIMESTEP_SPACINGS,
  trailingTimesteps,
  trainSigmas,
  type BetaSchedule,
  type TimestepSpacing,
} from './common.js';
import { eulerAlphasCumprod } from './euler.js';
import type { PredictionType, Scheduler, SetTimestepsOptions, StepResult } from './types.js';

const PREDICTION_TYPES = ['epsilon', 'v_prediction', 'sample'] as const;
/** diffusers maps the UniPC / DEIS solver types it does not have to "midpoint". */
const SOLVER_TYPES = ['midpoint', 'heun', 'logrho', 'bh1', 'bh2'] as const;
const FINAL_SIGMAS_TYPES = ['zero', 'sigma_min'] as const;
/** "2M": order 2. */
const SOLVER_ORDER = 2;
/** Below this many steps the last steps drop to lower order, for stability (diffusers `lower_order_final`). */
const LOWER_ORDER_FINAL_MAX_STEPS = 15;

/** α_t and σ_t of the VP process at noise level σ (diffusers `_sigma_to_alpha_sigma_t`). */
function alphaSigma(sigma: number): { alpha: number; sigmaT: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return { alpha, sigmaT: f32(sigma * alpha) };
}

/** λ = log α_t − log σ_t (+∞ at σ = 0). */
function halfLogSnr(alpha: number, sigmaT: number): number {
  return f32(f32(Math.log(alpha)) - f32(Math.log(sigmaT)));
}

export class DpmSolverMultistepScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly predictionType: PredictionType;
  private readonly numTrainTimesteps: number;
  private readonly betaSchedule: BetaSchedule;
  private readonly timestepSpacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly solverType: 'midpoint' | 'heun';
  private readonly lowerOrderFinal: boolean;
  private readonly eulerAtFinal: boolean;
  private readonly useKarrasSigmas: boolean;
  private readonly finalSigmasType: (typeof FINAL_SIGMAS_TYPES)[number];
  private readonly lambdaMinClipped: number;
  private readonly thresholding: boolean;
  private readonly dynamicThresholdingRatio: number;
  private readonly sampleMaxValue: number;
  private readonly karrasSigmaMin: number | null;
  private readonly karrasSigmaMax: number | null;
  private readonly alphasCumprod: Float32Array;
  private readonly trainSigmas: Float32Array;
  private readonly logSigmas: Float32Array;

  private schedule: number[] = [];
  private sigmas = new Float32Array(0);
  private active: readonly number[] = [];
  private readonly cursor = new StepCursor();
  // Multistep state: the previous data prediction and how many steps have run (capped at the order).
  private previousModelOutput: Float32Array | null = null;
  private lowerOrderNums = 0;

  constructor(
    readonly name: SamplerName,
    config: SchedulerConfigReader,
  ) {
    const betas = readBetaConfig(config, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, true);
    this.numTrainTimesteps = betas.numTrainTimesteps;
    this.betaSchedule = betas.betaSchedule;
    this.predictionType = config.choice('prediction_type', 'epsilon', PREDICTION_TYPES);
    this.thresholding = config.bool('thresholding', false);
    this.dynamicThresholdingRatio = config.number('dynamic_thresholding_ratio', 0.995, { above: 0, max: 1 });
    this.sampleMaxValue = config.number('sample_max_value', 1, { above: 0 });
    const solverType = config.choice('solver_type', 'midpoint', SOLVER_TYPES);
    this.solverType = solverType === 'heun' ? 'heun' : 'midpoint';
    this.lowerOrderFinal = config.bool('lower_order_final', true);
    this.eulerAtFinal = config.bool('euler_at_final', false);
    this.useKarrasSigmas = config.bool('use_karras_sigmas', false, true);
    const onlyKarras = 'only the default and Karras sigma schedules are implemented';
    config.unsupported('use_exponential_sigmas', false, onlyKarras);
    config.unsupported('use_beta_sigmas', false, onlyKarras);
    config.unsupported('use_lu_lambdas', false, onlyKarras);
    config.unsupported('use_flow_sigmas', false, 'flow-matching models are not supported');
    config.unsupported('variance_type', null, 'models with learned variance are not supported');
    this.finalSigmasType = config.choice('final_sigmas_type', 'zero', FINAL_SIGMAS_TYPES);
    this.lambdaMinClipped = config.number('lambda_min_clipped', -Infinity);
    this.timestepSpacing = config.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = config.number('steps_offset', 0, { integer: true, min: 0, below: this.numTrainTimesteps });
    // DPMSolverMultistepScheduler has no sigma_min / sigma_max parameters, but from_config keeps every key
    // of the folder config on `config`, and `_convert_to_karras` reads them when they are there.
    this.karrasSigmaMin = config.optionalNumber('sigma_min', { above: 0 });
    this.karrasSigmaMax = config.optionalNumber('sigma_max', { above: 0 });

    this.alphasCumprod = eulerAlphasCumprod(betas);
    this.trainSigmas = trainSigmas(this.alphasCumprod);
    this.logSigmas = this.trainSigmas.map(Math.log);
  }

  /** The timesteps the pipeline runs: the schedule from the img2img start on. */
  get timesteps(): readonly number[] {
    return this.active;
  }

  /** The last training timestep the schedule may start from, after lambda_min_clipped. */
  private lastTimestep(): number {
    if (this.lambdaMinClipped === -Infinity) return this.numTrainTimesteps;
    // searchsorted(flip(λ_t), lambda_min_clipped): how many of the smallest λ lie below the clip.
    let clipped = 0;
    for (let t = this.numTrainTimesteps - 1; t >= 0; t--) {
      const a = this.alphasCumprod[t] as number;
      const lambda = halfLogSnr(f32(Math.sqrt(a)), f32(Math.sqrt(f32(1 - a))));
      if (lambda < this.lambdaMinClipped) clipped++;
      else break;
    }
    return this.numTrainTimesteps - clipped;
  }

  setTimesteps(steps: number, opts: SetTimestepsOptions = {}): void {
    const T = this.numTrainTimesteps;
    checkSteps(steps, T, 'DPMSolverMultistepScheduler');
    if (opts.strength !== undefined) checkStrength(opts.strength, steps);
    const last = this.lastTimestep();
    let timesteps: number[];
    if (this.timestepSpacing === 'linspace') {
      timesteps = numpyLinspace(0, last - 1, steps + 1).map(roundHalfEven).reverse().slice(0, -1);
    } else if (this.timestepSpacing === 'leading') {
      const stepRatio = Math.floor(last / (steps + 1));
      timesteps = Array.from({ length: steps }, (_, i) => (steps - i) * stepRatio + this.stepsOffset);
    } else {
      timesteps = trailingTimesteps(last, T, steps);
    }

    let sigmas: number[];
    if (this.useKarrasSigmas) {
      const sigmaMin = this.karrasSigmaMin ?? (this.trainSigmas[0] as number);
      const sigmaMax = this.karrasSigmaMax ?? (this.trainSigmas[T - 1] as number);
      sigmas = karrasSigmas(sigmaMin, sigmaMax, steps);
      // Rounded to the nearest training timestep, except for squaredcos_cap_v2, where the int64 cast truncates.
      const toInt = this.betaSchedule === 'squaredcos_cap_v2' ? Math.trunc : roundHalfEven;
      timesteps = sigmas.map((s) => toInt(sigmaToT(s, this.logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpOnIndex(t, this.trainSigmas));
    }
    const sigmaLast = this.finalSigmasType === 'zero' ? 0 : (this.trainSigmas[0] as number);
    this.sigmas = Float32Array.from([...sigmas, sigmaLast]);
    this.schedule = timesteps;
    const start = opts.strength === undefined ? null : img2imgStart(steps, opts.strength) * this.order;
    this.active = Object.freeze(this.schedule.slice(start ?? 0));
    this.cursor.reset(start);
    this.previousModelOutput = null;
    this.lowerOrderNums = 0;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** The data prediction x0_θ from the model output (diffusers `convert_model_output`, dpmsolver++). */
  private dataPrediction(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    const { alpha, sigmaT } = alphaSigma(sigma);
    let x0: Float32Array;
    if (this.predictionType === 'epsilon') {
      x0 = sample.map((x, i) => f32(x - f32(sigmaT * (modelOutput[i] as number))) / alpha);
    } else if (this.predictionType === 'v_prediction') {
      x0 = sample.map((x, i) => f32(alpha * x) - f32(sigmaT * (modelOutput[i] as number)));
    } else {
      x0 = Float32Array.from(modelOutput);
    }
    return this.thresholding ? thresholdSample(x0, this.dynamicThresholdingRatio, this.sampleMaxValue) : x0;
  }

  /** Keeps no buffers of its own: each step allocates its results. */
  readonly writesInto = false;

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.schedule.length === 0) throw new Error('DPM-Solver: setTimesteps must be called before step');
    checkSameLength('DPM-Solver step', modelOutput, sample);
    const n = this.schedule.length;
    const i = this.cursor.current(t, this.schedule, 'last');
    if (i + 1 >= this.sigmas.length) throw new Error(`DPM-Solver: step ${i} is past the end of the schedule`);

    // 1. lower the order on the last steps: always with a zero final σ, and for short schedules
    const lowerOrderFinal =
      i === n - 1 &&
      (this.eulerAtFinal ||
        (this.lowerOrderFinal && n < LOWER_ORDER_FINAL_MAX_STEPS) ||
        this.finalSigmasType === 'zero');

    // 2. convert the model output to x0_θ and push it on the history
    const m0 = this.dataPrediction(modelOutput, sample, this.sigmas[i] as number);
    const m1 = this.previousModelOutput;
    this.previousModelOutput = m0;

    // 3. the update from λ_s0 = λ(σ_i) to λ_t = λ(σ_{i+1})
    const target = alphaSigma(this.sigmas[i + 1] as number);
    const s0 = alphaSigma(this.sigmas[i] as number);
    const lambdaT = halfLogSnr(target.alpha, target.sigmaT);
    const lambdaS0 = halfLogSnr(s0.alpha, s0.sigmaT);
    const h = f32(lambdaT - lambdaS0);
    const expMinusHMinusOne = f32(f32(Math.exp(-h)) - 1);
    // x_t = (σ_t/σ_s0)·x − α_t·(e^{−h} − 1)·D0 [− ½·α_t·(e^{−h} − 1)·D1]   (DPM-Solver++ eq. 8 / Algorithm 2)
    const sampleCoeff = f32(target.sigmaT / s0.sigmaT);
    const d0Coeff = f32(target.alpha * expMinusHMinusOne);
    let prevSample: Float32Array;
    if (h === 0) {
      // Special case: a zero-length step (Karras sigmas end at σ_min, and final_sigmas_type "sigma_min" appends
      // σ_min again) is the identity. diffusers' second-order heun update computes (e^{−h} − 1)/h = 0/0 there
      // and returns NaN; the first-order and midpoint updates already give x.
      prevSample = Float32Array.from(sample);
    } else if (this.lowerOrderNums < 1 || lowerOrderFinal || m1 === null) {
      // 3a. first order (equivalent to DDIM)
      prevSample = sample.map((x, k) => f32(sampleCoeff * x) - f32(d0Coeff * (m0[k] as number)));
    } else {
      // 3b. second order: D1 = (m0 − m1)/r0 with r0 = h_{i−1}/h_i
      const s1 = alphaSigma(this.sigmas[i - 1] as number);
      const lambdaS1 = halfLogSnr(s1.alpha, s1.sigmaT);
      const r0 = f32(f32(lambdaS0 - lambdaS1) / h);
      const invR0 = f32(1 / r0);
      const d1Coeff =
        this.solverType === 'midpoint'
          ? -f32(0.5 * d0Coeff) // − ½·α_t·(e^{−h} − 1)·D1
          : f32(target.alpha * f32(f32(expMinusHMinusOne / h) + 1)); // + α_t·((e^{−h} − 1)/h + 1)·D1
      prevSample = sample.map((x, k) => {
        const d1 = f32(invR0 * f32((m0[k] as number) - (m1[k] as number)));
        return f32(f32(sampleCoeff * x) - f32(d0Coeff * (m0[k] as number))) + f32(d1Coeff * d1);
      });
    }
    this.lowerOrderNums = Math.min(this.lowerOrderNums + 1, SOLVER_ORDER);
    this.cursor.advance();
    return { prevSample, predOriginal: m0 };
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    checkSameLength('addNoise', x0, noise);
    const sigma = this.sigmas[this.cursor.noiseIndex(t, this.schedule, 'last')] as number;
    // x = α_t·x0 + σ_t·ε
    const { alpha, sigmaT } = alphaSigma(sigma);
    return x0.map((x, k) => f32(alpha * x) + f32(sigmaT * (noise[k] as number)));
  }
}
