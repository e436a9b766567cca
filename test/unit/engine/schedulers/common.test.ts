import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fmaF32,
  karrasSigmas,
  makeAlphasCumprod,
  numpyArange,
  readBetaConfig,
  roundHalfEven,
  sigmaToT,
  thresholdSample,
  torchLinspaceF32,
  trailingTimesteps,
  trainSigmas,
} from '../../../../electron/engine/schedulers/common.js';
import { SchedulerConfigReader } from '../../../../electron/engine/schedulers/config.js';
import { decode, goldens, relativeError } from './goldens.js';

function alphasCumprodOf(configName: string): Float32Array {
  const config = goldens().configs[configName];
  const reader = new SchedulerConfigReader('DDIMScheduler', config);
  return makeAlphasCumprod(readBetaConfig(reader, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' }, true));
}

for (const name of ['sd15', 'linear_trailing', 'cosine']) {
  test(`ᾱ of the ${name} config equals diffusers' alphas_cumprod bit for bit`, () => {
    const ours = alphasCumprodOf(name);
    const theirs = decode(goldens().alphasCumprod[name] as string);
    assert.equal(ours.length, 1000);
    const firstDiff = ours.findIndex((v, i) => v !== theirs[i]);
    assert.equal(firstDiff, -1, `first difference at t=${firstDiff}: ${ours[firstDiff]} vs ${theirs[firstDiff]}`);
  });
}

test('ᾱ rescaled to zero terminal SNR matches diffusers within float32 rounding, and ends at exactly 0', () => {
  // The rescale takes square roots, and torch's CPU sqrt is not always correctly rounded: not bit for bit.
  const ours = alphasCumprodOf('zero_snr');
  const theirs = decode(goldens().alphasCumprod.zero_snr as string);
  assert.ok(relativeError(ours, theirs) < 1e-6);
  assert.equal(ours[999], 0);
});

test('SD 1.x ᾱ and σ have the values of sd-onnx-reference §4.0', () => {
  const ac = alphasCumprodOf('sd15');
  assert.ok(Math.abs((ac[0] as number) - 0.99914998) < 1e-8);
  assert.ok(Math.abs((ac[999] as number) - 0.0046601) < 1e-8);
  const sigmas = trainSigmas(ac);
  assert.ok(Math.abs((sigmas[999] as number) - 14.614647) < 1e-5);
  assert.ok(Math.abs((sigmas[0] as number) - 0.029168) < 1e-6);
});

test('torch float32 linspace: ends exact, symmetric halves, one rounding per value', () => {
  const v = torchLinspaceF32(0.0001, 0.02, 1000);
  assert.equal(v[0], Math.fround(0.0001));
  assert.equal(v[999], Math.fround(0.02));
  assert.deepEqual([...torchLinspaceF32(2, 5, 1)], [2]);
  assert.deepEqual([...torchLinspaceF32(0, 1, 5)], [0, 0.25, 0.5, 0.75, 1]);
});

test('fmaF32 rounds a·b + c once, where rounding through float64 would land on a float32 tie', () => {
  const a = 1 + 2 ** -18;
  const b = 2 ** -24 * (1 - 2 ** -18);
  const c = 1 + 2 ** -23;
  // exact: c + 2^-24 − 2^-60, just below the tie between c and c + 2^-23
  assert.equal(fmaF32(a, b, c), c);
  assert.equal(Math.fround(a * b + c), 1 + 2 ** -22, 'the naive double rounding goes the wrong way');
  assert.equal(fmaF32(3, 0.5, 1), 2.5);
});

test('roundHalfEven rounds halves to the even neighbour, as numpy.round does', () => {
  assert.deepEqual(
    [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 7].map(roundHalfEven),
    [0, 2, 2, 4, -0, -2, -2, 2, 3, 7],
  );
});

test('numpy.arange length quirk: 61 trailing steps make 62 values, the extra one ≈ 0, which trailing spacing drops', () => {
  const raw = numpyArange(1000, 0, -1000 / 61);
  assert.equal(raw.length, 62);
  assert.ok(Math.abs(raw[61] as number) < 1e-9);
  const t = trailingTimesteps(1000, 1000, 61);
  assert.equal(t.length, 61);
  assert.equal(t[0], 999);
  assert.equal(t[60], 15);
  assert.deepEqual(trailingTimesteps(1000, 1000, 10), [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
});

test('sigmaToT inverts the training σ table, and interpolates log σ between entries', () => {
  const sigmas = trainSigmas(alphasCumprodOf('sd15'));
  const logSigmas = sigmas.map(Math.log);
  for (const t of [0, 1, 250, 500, 998, 999]) {
    assert.ok(Math.abs(sigmaToT(sigmas[t] as number, logSigmas) - t) < 1e-4, `t=${t}`);
  }
  const between = Math.exp((Math.log(sigmas[400] as number) + Math.log(sigmas[401] as number)) / 2);
  assert.ok(Math.abs(sigmaToT(between, logSigmas) - 400.5) < 1e-3);
  assert.equal(sigmaToT(1e-6, logSigmas), 0, 'below the table: clipped to t = 0');
});

test('karrasSigmas runs from σ_max to σ_min with ρ = 7 spacing', () => {
  const s = karrasSigmas(0.03, 14.6, 5);
  assert.equal(s.length, 5);
  assert.ok(Math.abs((s[0] as number) - 14.6) < 1e-12);
  assert.ok(Math.abs((s[4] as number) - 0.03) < 1e-12);
  const mid = (14.6 ** (1 / 7) + 0.5 * (0.03 ** (1 / 7) - 14.6 ** (1 / 7))) ** 7;
  assert.ok(Math.abs((s[2] as number) - mid) < 1e-12);
});

test('dynamic thresholding clamps to the ratio-quantile of |x0| (at least 1, at most sample_max_value) and divides by it', () => {
  const x0 = Float32Array.from([-9, -8, -7, -6, -5, 0, 1, 2, 3, 4]);
  // |x0| sorted: 0 1 2 3 4 5 6 7 8 9; the 0.5 quantile is 4.5 (linear interpolation)
  const out = thresholdSample(x0, 0.5, 10);
  assert.deepEqual([...out], [-1, -1, -1, -1, -1, 0, 1 / 4.5, 2 / 4.5, 3 / 4.5, 4 / 4.5].map(Math.fround));
  // sample_max_value caps s: s = 2
  assert.deepEqual([...thresholdSample(x0, 0.5, 2)].slice(5), [0, 0.5, 1, 1, 1]);
  // s is at least 1: plain clipping to [−1, 1]
  assert.deepEqual([...thresholdSample(Float32Array.from([0.1, -3, 0.2]), 0.5, 5)], [0.1, -1, 0.2].map(Math.fround));
});
