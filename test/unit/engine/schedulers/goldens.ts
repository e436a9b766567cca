/**
 * Golden values made by native-models/tools/make_scheduler_goldens.py with the real diffusers, and the
 * pipeline loop that replays them through our schedulers (same fake model, same initial latents, the
 * noise diffusers drew fed back through ReplayRng).
 */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { SamplerName } from '../../../../electron/shared/generation.js';
import { createScheduler, type PredictionType, type Scheduler } from '../../../../electron/engine/schedulers/index.js';
import { ReplayRng, type GaussianSource } from '../../../../electron/engine/tensor/rng.js';

const GOLDENS_PATH = fileURLToPath(new URL('../../../fixtures/schedulers/goldens.json', import.meta.url));

/**
 * Largest error allowed, relative to the magnitude of the arrays involved: max(1, max |expected|, max |input|).
 * Our element-wise maths repeats torch's float32 operations one by one; the differences left come from
 * torch's CPU sqrt / exp / log and numpy's float32 log, which are not always correctly rounded (about 1 in 6
 * torch float32 square roots is 1 ulp off), so tables such as σ differ from ours in the last bit now and then.
 * A float32 rounding is 6e-8 relative; 1e-6 allows a few of them, compounded over the steps.
 */
export const RELATIVE_TOLERANCE = 1e-6;

/**
 * Zero-terminal-SNR Euler runs start from latents scaled by σ_max = 4096, and their first step cancels
 * them down to ≈ 20: the float32 rounding of |x| ≈ 16000 (1e-3 absolute) is carried into every later step,
 * in diffusers as here, and torch's σ_max is itself one ulp off the correctly rounded √(2^24 − 1).
 */
export const ZERO_SNR_EULER_TOLERANCE = 2e-5;

export function toleranceFor(c: { sampler: string; config: string }): number {
  const euler = c.sampler === 'euler' || c.sampler === 'euler_a';
  return euler && c.config === 'zero_snr' ? ZERO_SNR_EULER_TOLERANCE : RELATIVE_TOLERANCE;
}

/**
 * Integer timesteps must match exactly. Fractional ones (Euler with Karras sigmas: σ → t by interpolating
 * log σ) may differ in the last float32 bit, because numpy's float32 log is not correctly rounded.
 */
export function assertTimesteps(actual: readonly number[], expected: readonly number[], what: string): void {
  if (expected.every(Number.isInteger)) {
    assert.deepEqual([...actual], [...expected], what);
    return;
  }
  assert.equal(actual.length, expected.length, `${what}: length`);
  expected.forEach((e, i) => {
    const a = actual[i] as number;
    assert.ok(Math.abs(a - e) <= 1e-6 * Math.max(1, Math.abs(e)), `${what}: [${i}] is ${a}, expected ${e}`);
  });
}

interface AddNoiseProbe {
  t: number;
  result: string;
}

export interface GoldenCase {
  sampler: SamplerName;
  config: string;
  predictionType: PredictionType;
  steps: number;
  timesteps: number[];
  initNoiseSigma: number;
  sigmas?: string;
  scaledFirst?: string;
  addNoise?: AddNoiseProbe[];
  samples: string[];
  predOriginal?: string[];
  noise?: string[];
  beginIndexZero?: boolean;
}

export interface GoldenTimestepTable {
  sampler: SamplerName;
  config: string;
  steps: number;
  timesteps?: number[];
  initNoiseSigma?: number;
  /** diffusers raised this (first line of its message). */
  error?: string;
}

export interface GoldenImg2Img {
  sampler: SamplerName;
  config: string;
  predictionType: PredictionType;
  steps: number;
  strength: number;
  timesteps: number[];
  noisedInit: string;
  samples: string[];
  noise?: string[];
}

export interface Goldens {
  meta: Record<string, unknown>;
  initNoise: string;
  clean: string;
  addNoise: string;
  configs: Record<string, Record<string, unknown>>;
  alphasCumprod: Record<string, string>;
  cases: GoldenCase[];
  timestepTables: GoldenTimestepTable[];
  img2img: GoldenImg2Img[];
}

/** Replays the noise diffusers drew, and counts the draws so a test can check none is missing or extra. */
export class RecordedNoise implements GaussianSource {
  private readonly replay: ReplayRng;
  draws = 0;
  constructor(readonly arrays: readonly Float32Array[]) {
    this.replay = new ReplayRng(arrays);
  }
  fill(out: Float32Array): Float32Array {
    this.draws++;
    return this.replay.fill(out);
  }
  randn(n: number): Float32Array {
    return this.fill(new Float32Array(n));
  }
}

let cached: Goldens | undefined;
export function goldens(): Goldens {
  cached ??= JSON.parse(readFileSync(GOLDENS_PATH, 'utf8')) as Goldens;
  return cached;
}

/** base64 little-endian float32 → Float32Array. */
export function decode(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

/** The script's fake UNet: out[k] = tanh(0.5·x[k]) + 0.1·cos(t/100 + 0.37·k), float64, rounded to float32. */
export function fakeModel(x: Float32Array, t: number): Float32Array {
  return x.map((v, k) => Math.tanh(0.5 * v) + 0.1 * Math.cos(t / 100 + 0.37 * k));
}

/** Max |actual − expected| / max(1, max |expected|, max |input|). */
export function relativeError(actual: Float32Array, expected: Float32Array, input?: Float32Array): number {
  assert.equal(actual.length, expected.length, 'array lengths differ');
  let maxAbs = 1;
  for (const v of input ?? []) maxAbs = Math.max(maxAbs, Math.abs(v));
  let maxErr = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i] as number;
    maxAbs = Math.max(maxAbs, Math.abs(e));
    maxErr = Math.max(maxErr, Math.abs((actual[i] as number) - e));
  }
  return maxErr / maxAbs;
}

export function assertClose(
  actual: Float32Array,
  expected: Float32Array,
  what: string,
  input?: Float32Array,
  tolerance = RELATIVE_TOLERANCE,
): number {
  const err = relativeError(actual, expected, input);
  assert.ok(err <= tolerance, `${what}: relative error ${err.toExponential(2)} > ${tolerance}`);
  return err;
}

export function caseLabel(c: { sampler: string; config: string; predictionType: string; steps: number }): string {
  return `${c.sampler} / ${c.config} / ${c.predictionType} / ${c.steps} steps`;
}

export function schedulerFor(c: { sampler: SamplerName; config: string; predictionType: PredictionType }): Scheduler {
  const config = goldens().configs[c.config];
  assert.ok(config, `no config ${c.config} in the goldens`);
  return createScheduler(c.sampler, { ...config, prediction_type: c.predictionType });
}

/**
 * Runs one text-to-image golden case the way the pipeline does and checks everything recorded.
 * Returns the largest relative error seen.
 */
export function checkTextToImageCase(c: GoldenCase): number {
  const g = goldens();
  const label = caseLabel(c);
  let worst = 0;
  const note = (err: number): void => {
    worst = Math.max(worst, err);
  };

  const tolerance = toleranceFor(c);
  const scheduler = schedulerFor(c);
  scheduler.setTimesteps(c.steps);
  assertTimesteps(scheduler.timesteps, c.timesteps, `${label}: timesteps`);
  note(Math.abs(scheduler.initNoiseSigma - c.initNoiseSigma) / Math.max(1, c.initNoiseSigma));

  if (c.addNoise) {
    for (const probe of c.addNoise) {
      // The same position in our schedule (fractional timesteps may differ in the last bit).
      const t = scheduler.timesteps[c.timesteps.indexOf(probe.t)] as number;
      const noisy = scheduler.addNoise(decode(g.clean), decode(g.addNoise), t);
      note(assertClose(noisy, decode(probe.result), `${label}: addNoise at t=${probe.t}`));
    }
  }

  const rng = new RecordedNoise((c.noise ?? []).map(decode));
  const initNoise = decode(g.initNoise);
  let latents: Float32Array = initNoise.map((z) => z * scheduler.initNoiseSigma);
  scheduler.timesteps.forEach((t, i) => {
    const modelInput = scheduler.scaleModelInput(latents, t);
    if (i === 0 && c.scaledFirst) note(assertClose(modelInput, decode(c.scaledFirst), `${label}: scaleModelInput`));
    const out = scheduler.step(fakeModel(modelInput, t), t, latents, rng);
    note(
      assertClose(out.prevSample, decode(c.samples[i] as string), `${label}: prevSample of step ${i}`, latents, tolerance),
    );
    if (c.predOriginal) {
      assert.ok(out.predOriginal, `${label}: step ${i} returns predOriginal`);
      note(
        assertClose(
          out.predOriginal,
          decode(c.predOriginal[i] as string),
          `${label}: predOriginal of step ${i}`,
          latents,
          tolerance,
        ),
      );
    }
    latents = out.prevSample;
  });
  assert.equal(scheduler.timesteps.length, c.samples.length, `${label}: number of steps`);
  assert.equal(rng.draws, rng.arrays.length, `${label}: noise draws`);
  return worst;
}

/** Runs one img2img golden case: truncated timesteps, addNoise at timesteps[0], then the loop. */
export function checkImageToImageCase(c: GoldenImg2Img): number {
  const g = goldens();
  const label = `img2img ${caseLabel(c)} strength ${c.strength}`;
  let worst = 0;
  const scheduler = schedulerFor(c);
  scheduler.setTimesteps(c.steps, { strength: c.strength });
  assertTimesteps(scheduler.timesteps, c.timesteps, `${label}: timesteps`);
  let latents = scheduler.addNoise(decode(g.clean), decode(g.addNoise), scheduler.timesteps[0] as number);
  worst = Math.max(worst, assertClose(latents, decode(c.noisedInit), `${label}: noised init latents`));
  const rng = new RecordedNoise((c.noise ?? []).map(decode));
  scheduler.timesteps.forEach((t, i) => {
    const modelInput = scheduler.scaleModelInput(latents, t);
    const out = scheduler.step(fakeModel(modelInput, t), t, latents, rng);
    worst = Math.max(
      worst,
      assertClose(out.prevSample, decode(c.samples[i] as string), `${label}: step ${i}`, latents),
    );
    latents = out.prevSample;
  });
  assert.equal(rng.draws, rng.arrays.length, `${label}: noise draws`);
  return worst;
}

/**
 * Checks one row of the timestep tables. Where diffusers' trailing spacing has the spurious extra
 * timestep −1 (np.arange float length), ours leaves it out; everything else must match.
 */
export function checkTimestepTable(row: GoldenTimestepTable): void {
  const label = `${row.sampler} / ${row.config} / ${row.steps} steps`;
  const scheduler = createScheduler(row.sampler, { ...goldens().configs[row.config], prediction_type: 'epsilon' });
  if (row.error !== undefined) {
    assert.throws(() => scheduler.setTimesteps(row.steps), /steps/, `${label}: diffusers raised "${row.error}"`);
    return;
  }
  scheduler.setTimesteps(row.steps);
  const expected = (row.timesteps ?? []).filter((t) => t !== -1);
  assertTimesteps(scheduler.timesteps, expected, `${label}: timesteps`);
  const sigma = row.initNoiseSigma ?? Number.NaN;
  assert.ok(
    Math.abs(scheduler.initNoiseSigma - sigma) <= 1e-6 * Math.max(1, sigma),
    `${label}: initNoiseSigma ${scheduler.initNoiseSigma}, expected ${sigma}`,
  );
}
