/**
 * PNDM (Liu et al. 2022, "Pseudo Numerical Methods for Diffusion Models on Manifolds"), as diffusers'
 * `PNDMScheduler` (scheduling_pndm.py, sd-onnx-reference §4.1). Stable Diffusion runs it with
 * skip_prk_steps = true: pure PLMS (linear multistep), whose second call re-evaluates the first interval.
 * With skip_prk_steps = false (the class default) it first runs the Runge-Kutta warm-up (12 calls).
 */

import type { SamplerName } from '../../shared/generation.js';
import type { SchedulerConfigReader } from './config.js';
import { SchedulerInputError } from './errors.js';
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
  TIMESTEP_SPACINGS,
  type TimestepSpacing,
} from './common.js';
import type { PredictionType, Scheduler, SetTimestepsOptions, StepResult } from './types.js';

const PREDICTION_TYPES = ['epsilon', 'v_prediction'] as const;
/** Model outputs a 4th-order linear multistep step needs (diffusers `pndm_order`). */
const PNDM_ORDER = 4;
/** Runge-Kutta weights of the 4 evaluations: 1/6, 1/3, 1/3, 1/6 (float32, as torch applies them). */
const RK_SIXTH = f32(1 / 6);
const RK_THIRD = f32(1 / 3);
const ADAMS_BASHFORTH_4_SCALE = f32(1 / 24);

export class PndmScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly predictionType: PredictionType;
  private readonly numTrainTimesteps: number;
  private readonly skipPrkSteps: boolean;
  private readonly timestepSpacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly alphasCumprod: Float32Array;
  private readonly finalAlphaCumprod: number;

  private numInferenceSteps: number | null = null;
  private prkTimesteps: number[] = [];
  private schedule: number[] = [];
  private active: readonly number[] = [];
  // Multistep state: past model outputs e_θ, the call counter, the sample kept across the repeated step.
  private ets: Float32Array[] = [];
  private counter = 0;
  private curSample: Float32Array | null = null;
  private curModelOutput: Float32Array | null = null;

  constructor(
    readonly name: SamplerName,
    config: SchedulerConfigReader,
  ) {
    const betas = readBetaConfig(config, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, false);
    this.numTrainTimesteps = betas.numTrainTimesteps;
    this.skipPrkSteps = config.bool('skip_prk_steps', false);
    const setAlphaToOne = config.bool('set_alpha_to_one', false);
    this.predictionType = config.choice('prediction_type', 'epsilon', PREDICTION_TYPES);
    this.timestepSpacing = config.choice('timestep_spacing', 'leading', TIMESTEP_SPACINGS);
    this.stepsOffset = config.number('steps_offset', 0, { integer: true, min: 0, below: this.numTrainTimesteps });
    this.alphasCumprod = makeAlphasCumprod(betas);
    this.finalAlphaCumprod = setAlphaToOne ? 1 : (this.alphasCumprod[0] as number);
  }

  /** The timesteps the pipeline runs: the schedule from the img2img start on. */
  get timesteps(): readonly number[] {
    return this.active;
  }

  setTimesteps(steps: number, opts: SetTimestepsOptions = {}): void {
    const T = this.numTrainTimesteps;
    checkSteps(steps, T, 'PNDMScheduler');
    if (!this.skipPrkSteps && steps < PNDM_ORDER) {
      throw new SchedulerInputError(
        `PNDM with Runge-Kutta warm-up (skip_prk_steps false) needs at least ${PNDM_ORDER} steps, got ${steps}`,
      );
    }
    if (opts.strength !== undefined) checkStrength(opts.strength, steps);
    this.numInferenceSteps = steps;

    // Ascending training timesteps (`_timesteps`).
    const ascending = spacedTimesteps(this.timestepSpacing, T, steps, this.stepsOffset, 'PNDMScheduler').reverse();

    let plms: number[];
    if (this.skipPrkSteps) {
      // concat(_ts[:-1], _ts[-2:-1], _ts[-1:])[::-1]: n + 1 calls, the second timestep repeated.
      plms = [...ascending.slice(0, -1), ...ascending.slice(-2, -1), ...ascending.slice(-1)].reverse();
      this.prkTimesteps = [];
    } else {
      // prk = _ts[-4:].repeat(2) + tile([0, T//n//2], 4); prk_timesteps = prk[:-1].repeat(2)[1:-1][::-1]
      const half = Math.floor(Math.floor(T / steps) / 2);
      const prk = ascending.slice(-PNDM_ORDER).flatMap((t) => [t, t + half]);
      this.prkTimesteps = prk
        .slice(0, -1)
        .flatMap((t) => [t, t])
        .slice(1, -1)
        .reverse();
      plms = ascending.slice(0, -3).reverse();
    }
    this.schedule = [...this.prkTimesteps, ...plms];
    const start = opts.strength === undefined ? 0 : img2imgStart(steps, opts.strength) * this.order;
    this.active = Object.freeze(this.schedule.slice(start));
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.curModelOutput = null;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** Keeps no buffers of its own: each step allocates its results. */
  readonly writesInto = false;

  step(modelOutput: Float32Array, t: number, sample: Float32Array): StepResult {
    if (this.numInferenceSteps === null) throw new Error('PNDM: setTimesteps must be called before step');
    checkSameLength('PNDM step', modelOutput, sample);
    if (this.counter < this.prkTimesteps.length && !this.skipPrkSteps) {
      return { prevSample: this.stepPrk(modelOutput, t, sample, this.numInferenceSteps) };
    }
    return { prevSample: this.stepPlms(modelOutput, t, sample, this.numInferenceSteps) };
  }

  /** Runge-Kutta warm-up: four model evaluations per interval, combined with weights 1/6, 1/3, 1/3, 1/6. */
  private stepPrk(modelOutput: Float32Array, t: number, sample: Float32Array, n: number): Float32Array {
    // 1. the interval: half steps on the even calls
    const diffToPrev = this.counter % 2 ? 0 : Math.floor(Math.floor(this.numTrainTimesteps / n) / 2);
    const prevT = t - diffToPrev;
    const intervalT = this.prkTimesteps[Math.floor(this.counter / 4) * 4] as number;
    // 2. accumulate the RK combination
    let e = modelOutput;
    const phase = this.counter % 4;
    const acc = this.curModelOutput;
    if (phase === 0) {
      this.curModelOutput = modelOutput.map((v, i) => (acc ? (acc[i] as number) : 0) + f32(RK_SIXTH * v));
      this.ets.push(Float32Array.from(modelOutput));
      this.curSample = Float32Array.from(sample);
    } else if (phase === 1 || phase === 2) {
      this.curModelOutput = modelOutput.map((v, i) => (acc ? (acc[i] as number) : 0) + f32(RK_THIRD * v));
    } else {
      e = modelOutput.map((v, i) => (acc ? (acc[i] as number) : 0) + f32(RK_SIXTH * v));
      this.curModelOutput = null;
    }
    // 3. step from the sample at the start of the interval
    const prevSample = this.prevSample(this.curSample ?? sample, intervalT, prevT, e);
    this.counter++;
    return prevSample;
  }

  /** Pseudo linear multistep (Adams-Bashforth on e_θ), PNDM paper eq. 12. */
  private stepPlms(modelOutput: Float32Array, t: number, sample: Float32Array, n: number): Float32Array {
    if (!this.skipPrkSteps && this.ets.length < 3) {
      throw new Error('PNDM: linear multistep steps need the 12 Runge-Kutta warm-up calls first');
    }
    // 1. previous timestep; the second call re-evaluates the first interval from t + δ
    const delta = Math.floor(this.numTrainTimesteps / n);
    let prevT = t - delta;
    let curT = t;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(Float32Array.from(modelOutput));
    } else {
      prevT = t;
      curT = t + delta;
    }
    // 2. combine past model outputs (Adams-Bashforth coefficients of orders 1-4)
    const ets = this.ets;
    const e1 = ets[ets.length - 1] as Float32Array;
    let e: Float32Array;
    let x = sample;
    if (ets.length === 1 && this.counter === 0) {
      e = modelOutput;
      this.curSample = Float32Array.from(sample);
    } else if (ets.length === 1 && this.counter === 1) {
      e = modelOutput.map((v, i) => f32(v + (e1[i] as number)) / 2);
      x = this.curSample as Float32Array;
      this.curSample = null;
    } else if (ets.length === 2) {
      const e2 = ets[0] as Float32Array;
      e = e1.map((v, i) => f32(f32(3 * v) - (e2[i] as number)) / 2);
    } else if (ets.length === 3) {
      const [e3, e2] = ets as [Float32Array, Float32Array, Float32Array];
      e = e1.map((v, i) => f32(f32(f32(23 * v) - f32(16 * (e2[i] as number))) + f32(5 * (e3[i] as number))) / 12);
    } else {
      const [e4, e3, e2] = ets as [Float32Array, Float32Array, Float32Array, Float32Array];
      e = e1.map(
        (v, i) =>
          ADAMS_BASHFORTH_4_SCALE *
          f32(
            f32(f32(f32(55 * v) - f32(59 * (e2[i] as number))) + f32(37 * (e3[i] as number))) -
              f32(9 * (e4[i] as number)),
          ),
      );
    }
    // 3. step
    const prevSample = this.prevSample(x, curT, prevT, e);
    this.counter++;
    return prevSample;
  }

  /** x_{t−δ} from x_t and e_θ, PNDM paper eq. 9 (diffusers `_get_prev_sample`). */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float32Array): Float32Array {
    const alphaProdT = alphaAt(this.alphasCumprod, t);
    const alphaProdTPrev = prevT >= 0 ? alphaAt(this.alphasCumprod, prevT) : this.finalAlphaCumprod;
    const betaProdT = f32(1 - alphaProdT);
    const betaProdTPrev = f32(1 - alphaProdTPrev);
    let e = modelOutput;
    if (this.predictionType === 'v_prediction') {
      // ε = √ᾱ_t·v + √(1−ᾱ_t)·x_t
      const sa = f32(Math.sqrt(alphaProdT));
      const sb = f32(Math.sqrt(betaProdT));
      e = modelOutput.map((v, i) => f32(sa * v) + f32(sb * (sample[i] as number)));
    }
    // x_prev = √(ᾱ'/ᾱ)·x − (ᾱ' − ᾱ)·e / (ᾱ·√(1−ᾱ') + √(ᾱ·(1−ᾱ)·ᾱ'))
    const sampleCoeff = f32(Math.sqrt(f32(alphaProdTPrev / alphaProdT)));
    const denom = f32(
      f32(alphaProdT * f32(Math.sqrt(betaProdTPrev))) +
        f32(Math.sqrt(f32(f32(alphaProdT * betaProdT) * alphaProdTPrev))),
    );
    const alphaDiff = f32(alphaProdTPrev - alphaProdT);
    return sample.map((x, i) => f32(sampleCoeff * x) - f32(f32(alphaDiff * (e[i] as number)) / denom));
  }

  addNoise(x0: Float32Array, noise: Float32Array, t: number): Float32Array {
    return addNoiseWithAlpha(x0, noise, alphaAt(this.alphasCumprod, t));
  }
}
