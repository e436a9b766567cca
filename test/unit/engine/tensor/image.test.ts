import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  binarizeMask,
  decodeImage,
  decodeMask,
  featherMask,
  imageToTensor,
  maskToLatent,
  pasteBack,
  tensorToImage,
} from '../../../../electron/engine/tensor/image.js';
import { BadImageError } from '../../../../electron/shared/errors.js';
import { testPicture, toPng } from '../../../support/engine-fixtures.js';

test('image ↔ tensor round-trips every 8-bit value', () => {
  const img = testPicture(16, 8);
  const back = tensorToImage(imageToTensor(img), 16, 8);
  assert.deepEqual(back.rgb, img.rgb);
});

test('feathering fades the inner edge of a square symmetrically and never leaks outside', async () => {
  const w = 40;
  const binary = new Uint8Array(w * w);
  for (let y = 10; y < 30; y++) binary.fill(1, y * w + 10, y * w + 30);
  const alpha = featherMask(binary, w, w, 6);
  for (let i = 0; i < alpha.length; i++) if (!binary[i]) assert.equal(alpha[i], 0);
  assert.equal(alpha[20 * w + 20], 1, 'the centre is fully repainted');
  const edge = alpha[20 * w + 10]!;
  assert.ok(edge > 0.2 && edge < 0.8, `edge alpha ${edge}`);
  // Left/right and top/bottom mirror images: catches a mask read with the wrong channel stride.
  for (let y = 10; y < 30; y++) {
    for (let x = 10; x < 30; x++) {
      assert.ok(Math.abs(alpha[y * w + x]! - alpha[y * w + (39 - x)]!) < 0.02, `asymmetric at ${x},${y}`);
      assert.ok(Math.abs(alpha[y * w + x]! - alpha[(39 - y) * w + x]!) < 0.02, `asymmetric at ${x},${y}`);
    }
  }
});

test('paste-back copies the original where alpha is 0 and blends elsewhere', () => {
  const a = testPicture(4, 1);
  const b = { width: 4, height: 1, rgb: new Uint8Array(12).fill(200) };
  const out = pasteBack(a, b, Float32Array.of(0, 1, 0.5, 0));
  assert.deepEqual([...out.rgb.subarray(0, 3)], [...a.rgb.subarray(0, 3)]);
  assert.deepEqual([...out.rgb.subarray(3, 6)], [200, 200, 200]);
  assert.equal(out.rgb[6], Math.round(a.rgb[6]! * 0.5 + 100));
});

test('masks: white is repaint, binarized at ½, sampled at 8i for the latent grid', async () => {
  const rgb = new Uint8Array(16 * 16 * 3);
  for (let y = 0; y < 16; y++) for (let x = 8; x < 16; x++) rgb.fill(255, (y * 16 + x) * 3, (y * 16 + x) * 3 + 3);
  const mask = await decodeMask(await toPng({ width: 16, height: 16, rgb }), { width: 16, height: 16 });
  assert.equal(mask.data.length, 256);
  const latent = maskToLatent(binarizeMask(mask), 16, 16, 8);
  assert.deepEqual([...latent], [0, 1, 0, 1]);
});

test('a painted layer on transparency is read from its alpha', async () => {
  const sharp = (await import('sharp')).default;
  const rgba = Buffer.alloc(8 * 8 * 4);
  for (let i = 0; i < 64; i++) rgba.set([255, 0, 0, i < 32 ? 0 : 255], i * 4); // red paint, top half transparent
  const png = await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer();
  const mask = await decodeMask(png, { width: 8, height: 8 });
  assert.equal(mask.data[0], 0);
  assert.equal(mask.data[63], 255);
});

test('a corrupt image is a BadImageError naming what it was', async () => {
  await assert.rejects(decodeImage(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), 'init image'), (err: Error) => {
    assert.ok(err instanceof BadImageError);
    assert.match(err.message, /^init image: cannot decode/);
    return true;
  });
});
