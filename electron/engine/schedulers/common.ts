/**
 * Shared maths of the schedulers: noise schedules (betas, ᾱ), timestep spacing, sigmas, and the small
 * numpy / torch behaviours the diffusers schedulers rely on, reproduced exactly so the timesteps match
 * diffusers to the integer and the tables to the float32 bit.
 *
 * Precision rule (sd-onnx-reference §4.0): diffusers keeps betas, ᾱ, sigmas and tensors in float32, and does
 * its timestep / sigma bookkeeping in numpy float64. Here scalars are float64 JS numbers, and `f32()` marks
 * each place where torch rounds to float32 (a Float32Array store rounds too): torch's +, −, ×, ÷ on float32
 * tensors and 0-d tensors are each one correctly rounded float32 operation, so the same sequence of
 * operations reproduces them bit for bit. torch's CPU sqrt, exp and log (and numpy's float32 log) are not
 * always correctly rounded (about 1 in 6 torch float32 square roots is 1 ulp off); ours are, so results
 * can differ from diffusers by a few float32 ulps.
 */

import type { SchedulerConfigReader } from './config.js';
import { SchedulerConfigError, SchedulerInputError } from './errors.js';

/** Rounds to the nearest float32: one float32 operation in torch. */
export const f32 = Math.fround;

export const BETA_SCHEDULES = ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const;
export type BetaSchedule = (typeof BETA_SCHEDULES)[number];

export const TIMESTEP_SPACINGS = ['leading', 'trailing', 'linspace'] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/** `betas_for_alpha_bar` cap on each beta (diffusers `max_beta=0.999`). */
const MAX_BETA = 0.999;
/** Offset s of the cosine schedule, ᾱ(t) = cos((t + s)/(1 + s)·π/2)² (Nichol & Dhariwal 2021, eq. 17). */
const COSINE_S = 0.008;
/** ᾱ of the last timestep after the zero-terminal-SNR rescale, in Euler / EulerA / DPM ("so that σ is finite"). */
export const ZERO_SNR_LAST_ALPHA_CUMPROD = 2 ** -24;

// ---------------------------------------------------------------------------------------------------
// numpy / torch primitives

/**
 * fma(a, b, c) rounded once to float32, for float32 a, b, c. The product of two float32 numbers is exact in
 * float64; the sum is rounded to float64 and then to float32, which is wrong only when the float64 sum
 * lands exactly halfway between two float32 numbers. The TwoSum error term settles that case.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const r = f32(s);
  if (r === s) return r;
  const sc = s - p;
  const err = p - (s - sc) + (c - sc);
  if (err === 0) return r;
  const other = 2 * s - r;
  const isMidpoint = f32(other) === other && other !== r && s - r === other - s;
  if (!isMidpoint) return r;
  return err > 0 === other > r ? other : r;
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on CPU (ATen RangeFactoriesKernel.cpp `linspace_kernel`):
 * step = (end − start)/(steps − 1) in float32; the first half counts up from start, the second half down
 * from end, each value one fused multiply-add (verified bit for bit against torch 2.11).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const s = f32(start);
  const e = f32(end);
  if (steps === 1) {
    out[0] = s;
    return out;
  }
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? fmaF32(step, i, s) : fmaF32(-step, steps - i - 1, e);
  }
  return out;
}

/** numpy.linspace(start, stop, num, endpoint) in float64: y[i] = i·step + start, and y[-1] = stop. */
export function numpyLinspace(start: number, stop: number, num: number, endpoint = true): number[] {
  if (num === 1) return [start];
  const div = endpoint ? num - 1 : num;
  const step = (stop - start) / div;
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  if (endpoint) out[num - 1] = stop;
  return out;
}

/**
 * numpy.arange(start, stop, step) for a float step: length ceil((stop − start)/step), a[1] = start + step,
 * then a[i] = start + i·(a[1] − start) (numpy's DOUBLE_fill).
 */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const length = Math.ceil((stop - start) / step);
  if (!(length > 0)) return [];
  const out = [start];
  if (length === 1) return out;
  const next = start + step;
  out.push(next);
  const delta = next - start;
  for (let i = 2; i < length; i++) out.push(start + i * delta);
  return out;
}

/** numpy.round / rint: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.interp(x, arange(len(fp)), fp), in float64 (compiled_base.c `arr_interp`). */
export function interpOnIndex(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (Number.isNaN(x)) return x;
  if (x <= 0) return fp[0] as number;
  if (x >= last) return fp[last] as number;
  const j = Math.floor(x);
  const yj = fp[j] as number;
  if (x === j) return yj;
  const slope = (fp[j + 1] as number) - yj; // (dy[j+1] − dy[j]) / (dx[j+1] − dx[j]), dx step 1
  return slope * (x - j) + yj;
}

// ---------------------------------------------------------------------------------------------------
// Noise schedule: betas and ᾱ

export interface BetaConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  trainedBetas: number[] | null;
  rescaleBetasZeroSnr: boolean;
}

/** Reads the noise-schedule keys every scheduler class knows; `defaults` are the class's own. */
export function readBetaConfig(
  reader: SchedulerConfigReader,
  defaults: { betaStart: number; betaEnd: number; betaSchedule: BetaSchedule },
  knowsRescale: boolean,
): BetaConfig {
  const numTrainTimesteps = reader.number('num_train_timesteps', 1000, { integer: true, min: 2 });
  const betaStart = reader.number('beta_start', defaults.betaStart, { min: 0, below: 1 });
  const betaEnd = reader.number('beta_end', defaults.betaEnd, { min: 0, below: 1 });
  const betaSchedule = reader.choice('beta_schedule', defaults.betaSchedule, BETA_SCHEDULES);
  const trainedBetas = reader.optionalNumberArray('trained_betas');
  if (trainedBetas) {
    if (trainedBetas.length !== numTrainTimesteps) {
      throw new SchedulerConfigError(
        `scheduler config: trained_betas has ${trainedBetas.length} values but num_train_timesteps is ${numTrainTimesteps} (${reader.className})`,
      );
    }
    if (!trainedBetas.every((b) => b >= 0 && b < 1)) {
      throw new SchedulerConfigError(`scheduler config: trained_betas must all be in [0, 1) (${reader.className})`);
    }
  }
  const rescaleBetasZeroSnr = knowsRescale ? reader.bool('rescale_betas_zero_snr', false) : false;
  return { numTrainTimesteps, betaStart, betaEnd, betaSchedule, trainedBetas, rescaleBetasZeroSnr };
}

/** squaredcos_cap_v2: β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), 0.999), computed in float64 (diffusers `betas_for_alpha_bar`). */
function cosineBetas(numTrainTimesteps: number): Float32Array {
  const alphaBar = (t: number): number => {
    const c = Math.cos((((t + COSINE_S) / (1 + COSINE_S)) * Math.PI) / 2);
    return c * c;
  };
  const betas = new Float32Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    betas[i] = Math.min(1 - alphaBar((i + 1) / numTrainTimesteps) / alphaBar(i / numTrainTimesteps), MAX_BETA);
  }
  return betas;
}

/** Running product accumulated in float64, each prefix rounded to float32 (torch CPU cumprod on float32). */
export function cumprodF32(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  let acc = 1;
  for (let i = 0; i < values.length; i++) {
    acc *= values[i] as number;
    out[i] = acc;
  }
  return out;
}

/**
 * Rescales betas to zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps
 * are Flawed", Algorithm 1), in float32 as diffusers' `rescale_zero_terminal_snr` does.
 */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const alphas = betas.map((b) => f32(1 - b));
  const sqrtAlphaBar = cumprodF32(alphas).map(Math.sqrt);
  const first = sqrtAlphaBar[0] as number;
  const last = sqrtAlphaBar[sqrtAlphaBar.length - 1] as number;
  const scale = f32(first / f32(first - last));
  for (let i = 0; i < sqrtAlphaBar.length; i++) {
    sqrtAlphaBar[i] = f32(f32((sqrtAlphaBar[i] as number) - last) * scale);
  }
  const alphaBar = sqrtAlphaBar.map((x) => x * x);
  const out = new Float32Array(betas.length);
  for (let i = 0; i < out.length; i++) {
    const alpha = i === 0 ? (alphaBar[0] as number) : f32((alphaBar[i] as number) / (alphaBar[i - 1] as number));
    out[i] = f32(1 - alpha);
  }
  return out;
}

export function makeBetas(config: BetaConfig): Float32Array {
  const T = config.numTrainTimesteps;
  let betas: Float32Array;
  if (config.trainedBetas) {
    betas = Float32Array.from(config.trainedBetas);
  } else if (config.betaSchedule === 'linear') {
    betas = torchLinspaceF32(config.betaStart, config.betaEnd, T);
  } else if (config.betaSchedule === 'scaled_linear') {
    // linspace(√β_start, √β_end, T)², the schedule of the original latent diffusion code.
    betas = torchLinspaceF32(Math.sqrt(config.betaStart), Math.sqrt(config.betaEnd), T).map((b) => b * b);
  } else {
    betas = cosineBetas(T);
  }
  return config.rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** ᾱ_t = Π_{s≤t} (1 − β_s): float32 values, float64 accumulation (§4.0). */
export function makeAlphasCumprod(config: BetaConfig): Float32Array {
  return cumprodF32(makeBetas(config).map((b) => f32(1 - b)));
}

/** σ_t = √((1 − ᾱ_t)/ᾱ_t), in float32 (ascending in t). */
export function trainSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => Math.sqrt(f32(f32(1 - a) / a)));
}

// ---------------------------------------------------------------------------------------------------
// Timesteps

/** "leading": (arange(n)·(T // n)) reversed, plus steps_offset (integers). */
export function leadingTimesteps(n: number, stepRatio: number, stepsOffset: number): number[] {
  const out: number[] = [];
  for (let i = n - 1; i >= 0; i--) out.push(i * stepRatio + stepsOffset);
  return out;
}

/**
 * "trailing": round(arange(start, 0, −T/n)) − 1, descending.
 * Special case: np.arange's length is ceil(start / (T/n)), which float rounding makes n + 1 for some n
 * (61, 103, 121, … with T = 1000); the extra value is ≈ 1e-12, so diffusers appends timestep −1 (which
 * then indexes ᾱ[−1] = ᾱ[T−1]). Values that round to 0 only come from that, and are dropped.
 */
export function trailingTimesteps(start: number, numTrainTimesteps: number, n: number): number[] {
  return numpyArange(start, 0, -numTrainTimesteps / n)
    .map(roundHalfEven)
    .filter((t) => t > 0)
    .map((t) => t - 1);
}

/**
 * The schedule of DDIMScheduler and PNDMScheduler (PNDM's `_timesteps` reversed), descending, spaced
 * over the T training timesteps as timestep_spacing says ("leading" shifted by steps_offset), and
 * checked to stay below T.
 */
export function spacedTimesteps(spacing: TimestepSpacing, T: number, steps: number, stepsOffset: number, className: string): number[] {
  let schedule: number[];
  if (spacing === 'linspace') {
    schedule = numpyLinspace(0, T - 1, steps).map(roundHalfEven).reverse();
  } else if (spacing === 'leading') {
    schedule = leadingTimesteps(steps, Math.floor(T / steps), stepsOffset);
  } else {
    schedule = trailingTimesteps(T, T, steps);
  }
  checkTimestepsInRange(schedule, T, className, (n) => (n - 1) * Math.floor(T / n) + stepsOffset < T);
  return schedule;
}

/** The img2img start index of torch `get_timesteps`: t_start = n − min(int(n·strength), n). */
export function img2imgStart(steps: number, strength: number): number {
  const initTimestep = Math.min(Math.trunc(steps * strength), steps);
  return Math.max(steps - initTimestep, 0);
}

export function checkSteps(steps: number, numTrainTimesteps: number, className: string): void {
  if (!Number.isSafeInteger(steps) || steps < 1 || steps > numTrainTimesteps) {
    throw new SchedulerInputError(
      `steps must be an integer from 1 to ${numTrainTimesteps} (num_train_timesteps of ${className}), got ${steps}`,
    );
  }
}

/**
 * Every timestep must index ᾱ: "leading" spacing plus steps_offset can overshoot (SD's PNDM/DDIM config,
 * offset 1, at 1000 steps gives timestep 1000). diffusers fails there with an IndexError mid-run; we
 * refuse up front and say how many steps do fit.
 */
export function checkTimestepsInRange(timesteps: readonly number[], numTrainTimesteps: number, className: string, fits: (n: number) => boolean): void {
  const max = Math.max(...timesteps);
  if (max < numTrainTimesteps) return;
  let most = timesteps.length;
  while (most > 1 && !fits(most)) most--;
  throw new SchedulerInputError(
    `${className}: ${timesteps.length} steps reach timestep ${max}, past the ${numTrainTimesteps} training timesteps; use at most ${most} steps`,
  );
}

/** Strength is in (0, 1]; it must leave at least one step to run. */
export function checkStrength(strength: number, steps: number): void {
  if (!(typeof strength === 'number' && strength > 0 && strength <= 1)) {
    throw new SchedulerInputError(`strength must be a number in (0, 1], got ${strength}`);
  }
  if (Math.trunc(steps * strength) < 1) {
    throw new SchedulerInputError(
      `strength ${strength} × ${steps} steps leaves no denoising step (int(steps × strength) must be ≥ 1)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Sigmas (Euler, DPM-Solver)

/** σ → continuous t by interpolating log σ over the training sigmas (diffusers `_sigma_to_t`). */
export function sigmaToT(sigma: number, logSigmas: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // low = the last index with log σ_i ≤ log σ (np.cumsum(dists >= 0).argmax()), 0 if none, at most T − 2.
  let count = 0;
  let best = 0;
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) {
    if (logSigma >= (logSigmas[i] as number)) count++;
    if (count > best) {
      best = count;
      low = i;
    }
  }
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low] as number;
  const hi = logSigmas[low + 1] as number;
  let w = (lo - logSigma) / f32(lo - hi); // numpy: float32 − float32 stays float32
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** ρ of the Karras et al. (2022) schedule, eq. 5: "ρ = 7 ... used for all experiments". */
const KARRAS_RHO = 7;

/** σ_i = (σ_max^(1/ρ) + i/(n−1)·(σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, float64 (Karras et al. 2022, eq. 5). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const minInvRho = sigmaMin ** (1 / KARRAS_RHO);
  const maxInvRho = sigmaMax ** (1 / KARRAS_RHO);
  return numpyLinspace(0, 1, n).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** KARRAS_RHO);
}

/** diffusers `index_for_timestep`: the position of t, or the second one if t occurs more than once; −1 if absent. */
export function indexForTimestep(schedule: readonly number[], t: number): number {
  const first = schedule.indexOf(t);
  if (first < 0) return -1;
  const second = schedule.indexOf(t, first + 1);
  return second >= 0 ? second : first;
}

/**
 * The step index of the schedulers that walk a sigma table (Euler, EulerA, DPM, LCM): diffusers'
 * `_step_index` / `_begin_index` pair.
 */
export class StepCursor {
  private begin: number | null = null;
  private index: number | null = null;

  reset(beginIndex: number | null): void {
    this.begin = beginIndex;
    this.index = null;
  }

  get stepIndex(): number | null {
    return this.index;
  }

  /**
   * diffusers `_init_step_index` on the first call, then the running index. Special case: with no begin
   * index, a call at timesteps[0] starts at 0 even if that timestep repeats (DPM-Solver Karras on a cosine
   * schedule gives [998, 998, …]), where diffusers takes the second occurrence and runs off the end.
   */
  current(t: number, schedule: readonly number[], missing: 'throw' | 'last'): number {
    if (this.index === null) {
      if (this.begin !== null) this.index = this.begin;
      else if (schedule[0] === t) this.index = 0;
      else this.index = this.lookup(t, schedule, missing);
    }
    return this.index;
  }

  advance(): void {
    if (this.index !== null) this.index++;
  }

  /** The index add_noise uses: from t when no begin index is set, else the step (or begin) index. */
  noiseIndex(t: number, schedule: readonly number[], missing: 'throw' | 'last'): number {
    if (this.begin === null) return this.lookup(t, schedule, missing);
    return this.index ?? this.begin;
  }

  private lookup(t: number, schedule: readonly number[], missing: 'throw' | 'last'): number {
    const i = indexForTimestep(schedule, t);
    if (i >= 0) return i;
    if (missing === 'last') return schedule.length - 1;
    throw new Error(`timestep ${t} is not in this schedule (${schedule.length} timesteps)`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Element-wise helpers

export function checkSameLength(what: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length) {
    throw new Error(`${what}: arrays differ in length (${a.length} vs ${b.length})`);
  }
}

/** Dynamic thresholding (Imagen, Saharia et al. 2022 §2.3), diffusers `_threshold_sample`.
 * The whole array is one batch item: the pipeline steps one latent at a time. */
export function thresholdSample(x0: Float32Array, ratio: number, maxValue: number): Float32Array {
  const sorted = Float32Array.from(x0, Math.abs).sort();
  // torch.quantile, "linear": rank = q·(n − 1) in float32, lerp between the neighbours.
  const rank = f32(f32(ratio) * (sorted.length - 1));
  const below = sorted[Math.floor(rank)] as number;
  const above = sorted[Math.ceil(rank)] as number;
  const weight = f32(rank - Math.floor(rank));
  const quantile =
    weight < 0.5
      ? f32(below + f32(weight * f32(above - below)))
      : f32(above - f32(f32(above - below) * f32(1 - weight)));
  // clamp(s, min=1, max=sample_max_value): max wins when min > max.
  const s = Math.min(Math.max(quantile, 1), maxValue);
  return x0.map((v) => f32(Math.min(Math.max(v, -s), s) / s));
}

/** √ᾱ_t·x0 + √(1 − ᾱ_t)·ε (DDPM eq. 4), as PNDM / DDIM / LCM `add_noise` do. */
export function addNoiseWithAlpha(x0: Float32Array, noise: Float32Array, alphaCumprod: number): Float32Array {
  checkSameLength('addNoise', x0, noise);
  const sqrtAlpha = f32(Math.sqrt(alphaCumprod));
  const sqrtOneMinusAlpha = f32(Math.sqrt(f32(1 - alphaCumprod)));
  return x0.map((x, i) => f32(x * sqrtAlpha) + f32((noise[i] as number) * sqrtOneMinusAlpha));
}

/** ᾱ at an integer training timestep, for the schedulers that index ᾱ by t. */
export function alphaAt(alphasCumprod: Float32Array, t: number): number {
  const a = Number.isInteger(t) ? alphasCumprod[t] : undefined;
  if (a === undefined) {
    throw new Error(`timestep ${t} is not an integer in [0, ${alphasCumprod.length})`);
  }
  return a;
}
