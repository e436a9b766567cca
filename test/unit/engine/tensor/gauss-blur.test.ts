import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { gaussBlurU8, gaussMask } from '../../../../electron/engine/tensor/gauss-blur.js';

/** A seeded stream of integers in [0, n) (mulberry32). */
function seeded(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

async function sharpBlur(src: Uint8Array, width: number, height: number, sigma: number): Promise<Uint8Array> {
  const out = await sharp(Buffer.from(src), { raw: { width, height, channels: 1 } }).blur(sigma).extractChannel(0).raw().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

test("gaussBlurU8 gives sharp's blur byte for byte: binary, grey and sparse masks, sizes 1–160, σ 0.3–32", async () => {
  const rnd = seeded(16);
  const sigmas = [0.3, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 8, 12.5, 16, 32];
  for (let t = 0; t < 240; t++) {
    const width = 1 + rnd(160);
    const height = 1 + rnd(160);
    const src = new Uint8Array(width * height);
    if (t % 3 === 0) for (let i = 0; i < src.length; i++) src[i] = rnd(2) * 255;
    else if (t % 3 === 1) for (let i = 0; i < src.length; i++) src[i] = rnd(256);
    else {
      // A disc on an empty mask, as a brush dab: most rows and windows of one value (the fast paths).
      const cx = rnd(width);
      const cy = rnd(height);
      const r = rnd(40);
      for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) src[y * width + x] = (x - cx) ** 2 + (y - cy) ** 2 < r * r ? 255 : 0;
    }
    const sigma = sigmas[t % sigmas.length]! + (t % 7 === 0 ? rnd(1000) / 1000 : 0);
    const expected = await sharpBlur(src, width, height, sigma);
    const actual = gaussBlurU8(src, width, height, sigma);
    assert.ok(Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0, `${width}×${height}, σ ${sigma}, case ${t % 3}`);
  }
});

test('gaussBlurU8: below σ 0.2 a copy; the mask is libvips’ (σ 2: 7 taps summing to 2^8)', () => {
  const src = Uint8Array.from([0, 255, 7, 9]);
  const out = gaussBlurU8(src, 2, 2, 0.1);
  assert.deepEqual(out, src);
  assert.notEqual(out, src);
  const { mant, exp } = gaussMask(2);
  assert.deepEqual([...mant], [17, 33, 50, 56, 50, 33, 17]);
  assert.equal(exp, 8);
  assert.throws(() => gaussBlurU8(src, 3, 2, 1), /4 bytes for 3×2/);
});
