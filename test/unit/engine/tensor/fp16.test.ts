import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  fromFloat16Array,
  toFloat16Array,
} from '../../../../electron/engine/tensor/fp16.js';

test('known half-precision bit patterns', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest half
    [6.103515625e-5, 0x0400], // smallest normal
    [5.960464477539063e-8, 0x0001], // smallest subnormal
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1e6, 0x7c00], // overflow
    [1e-9, 0x0000], // underflow
  ];
  for (const [value, bits] of cases) {
    assert.equal(float32ToFloat16Bits(value), bits, `encode ${value}`);
    if (Math.abs(value) <= 65504 && (value === 0 || Math.abs(value) >= 5.960464477539063e-8)) {
      assert.equal(float16BitsToFloat32(bits), value, `decode ${bits.toString(16)}`);
    }
  }
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(Number.NaN))));
});

test('rounds to nearest even', () => {
  // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to even (1).
  assert.equal(float32ToFloat16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3·2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even): rounds up.
  assert.equal(float32ToFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
});

test('every half value survives a round trip through float32', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const exp = (bits >>> 10) & 0x1f;
    if (exp === 0x1f && bits & 0x3ff) continue; // NaN payloads are not preserved
    assert.equal(float32ToFloat16Bits(float16BitsToFloat32(bits)), bits);
  }
});

test('array conversions keep values within half precision', () => {
  const src = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10);
  const back = fromFloat16Array(toFloat16Array(src));
  for (let i = 0; i < src.length; i++) assert.ok(Math.abs(back[i]! - src[i]!) <= Math.abs(src[i]!) * 2 ** -11 + 1e-7);
});
