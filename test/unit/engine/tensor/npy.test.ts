import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readNpyFloat32, writeNpyFloat32 } from '../../../../electron/engine/tensor/npy.js';

test('float32 arrays round-trip with their shape, and the header is 64-byte aligned', () => {
  const data = Float32Array.from({ length: 4 * 8 * 8 }, (_, i) => i / 7 - 3);
  const bytes = writeNpyFloat32(data, [1, 4, 8, 8]);
  const headerLen = bytes.readUInt16LE(8);
  assert.equal((10 + headerLen) % 64, 0);
  const back = readNpyFloat32(bytes);
  assert.deepEqual(back.shape, [1, 4, 8, 8]);
  assert.deepEqual(back.data, data);
});

test('rejects other dtypes, Fortran order, truncated data and non-npy bytes with clear errors', () => {
  const good = writeNpyFloat32(Float32Array.of(1, 2, 3), [3]);
  const f8 = Buffer.from(good.toString('latin1').replace("'<f4'", "'<f8'"), 'latin1');
  assert.throws(() => readNpyFloat32(f8), /expected float32/);
  const fortran = Buffer.from(good.toString('latin1').replace('False', 'True '), 'latin1');
  assert.throws(() => readNpyFloat32(fortran), /Fortran order/);
  assert.throws(() => readNpyFloat32(good.subarray(0, good.length - 2)), /needs 12 bytes/);
  assert.throws(() => readNpyFloat32(Buffer.from('hello world')), /not a NumPy/);
});
