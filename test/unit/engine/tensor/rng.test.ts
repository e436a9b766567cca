import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayRng, SeededRng } from '../../../../electron/engine/tensor/rng.js';

describe('SeededRng', () => {
  test('the same seed gives the same sequence, another seed another one', () => {
    const a = new SeededRng(1234).randn(1000);
    const b = new SeededRng(1234).randn(1000);
    const c = new SeededRng(1235).randn(1000);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test('seeds above 2^32 are distinct from their low word', () => {
    const lo = new SeededRng(7).randn(16);
    const hi = new SeededRng(7 + 2 ** 32).randn(16);
    assert.notDeepEqual(lo, hi);
  });

  test('pins the first values of seed 0 so the documented algorithm cannot drift', () => {
    const r = new SeededRng(0);
    const first = [r.nextUint32(), r.nextUint32(), r.nextUint32()];
    const again = new SeededRng(0);
    assert.deepEqual(first, [again.nextUint32(), again.nextUint32(), again.nextUint32()]);
    // Values recorded from this implementation; a change here changes every user's seeds.
    assert.deepEqual(first, PINNED_SEED0);
  });

  test('samples are standard normal: mean ≈ 0, variance ≈ 1, tails as expected', () => {
    const n = 200_000;
    const x = new SeededRng(42).randn(n);
    let sum = 0;
    let sq = 0;
    let beyond2 = 0;
    for (const v of x) {
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 2) beyond2++;
    }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.02, `variance ${variance}`);
    // P(|z| > 2) = 0.0455
    assert.ok(Math.abs(beyond2 / n - 0.0455) < 0.003, `tail ${beyond2 / n}`);
  });

  test('rejects seeds that are not non-negative safe integers', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => new SeededRng(bad), /seed must be an integer/);
    }
  });
});

describe('ReplayRng', () => {
  test('replays the given arrays in order and refuses a wrong length', () => {
    const r = new ReplayRng([Float32Array.of(1, 2), Float32Array.of(3, 4)]);
    assert.deepEqual(r.randn(2), Float32Array.of(1, 2));
    assert.deepEqual(r.randn(2), Float32Array.of(3, 4));
    assert.throws(() => r.randn(2), /no array of length 2/);
  });
});

const PINNED_SEED0 = [3809008728, 1133695204, 53579671];
