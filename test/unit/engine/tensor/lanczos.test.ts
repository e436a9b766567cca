import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resizeLanczos } from '../../../../electron/engine/tensor/lanczos.js';
import { goldenPixels, RESIZE_GOLDENS, type ResizeCase } from '../../../support/resize-goldens.js';

test("resizeLanczos gives Pillow's Image.resize(LANCZOS) byte for byte (make_resize_goldens.py)", async () => {
  const { cases } = JSON.parse(readFileSync(join(RESIZE_GOLDENS, 'cases.json'), 'utf8')) as { cases: ResizeCase[] };
  assert.ok(cases.length >= 10);
  // (The cases with a crop are A1111's only-masked steps: only-masked.test.ts.)
  for (const c of cases.filter((k) => !k.crop)) {
    const channels = c.mode === 'RGB' ? 3 : 1;
    const input = await goldenPixels(`in-${c.case}.png`, channels);
    const expected = await goldenPixels(`out-${c.case}.png`, channels);
    assert.deepEqual([input.width, input.height], c.from);
    const actual = resizeLanczos(input.data, input, channels, { width: c.to[0], height: c.to[1] });
    let differ = 0;
    for (let i = 0; i < actual.length; i++) if (actual[i] !== expected.data[i]) differ++;
    assert.equal(actual.length, expected.data.length, `case ${c.case}`);
    assert.equal(differ, 0, `case ${c.case} (${c.mode} ${c.from.join('×')} → ${c.to.join('×')}): ${differ} bytes differ`);
  }
});

test('resizeLanczos: the same size is a copy; bad sizes are refused', () => {
  const data = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const same = resizeLanczos(data, { width: 2, height: 1 }, 3, { width: 2, height: 1 });
  assert.deepEqual(same, data);
  assert.notEqual(same, data);
  assert.throws(() => resizeLanczos(data, { width: 3, height: 1 }, 3, { width: 2, height: 1 }), /6 bytes for 3×1×3/);
  assert.throws(() => resizeLanczos(data, { width: 2, height: 1 }, 3, { width: 0, height: 1 }), /target 0×1/);
});

test('resizeLanczos with spans: the pixels asked for are those of the whole resize', () => {
  const from = { width: 37, height: 29 };
  const data = Uint8Array.from({ length: 37 * 29 * 3 }, (_, i) => (i * 97) % 251);
  for (const to of [{ width: 101, height: 77 }, { width: 13, height: 11 }, { width: 37, height: 60 }, { width: 80, height: 29 }]) {
    const whole = resizeLanczos(data, from, 3, to);
    const spans = new Int32Array(to.height * 2);
    for (let y = 0; y < to.height; y++) {
      spans[y * 2] = (y * 7) % to.width;
      spans[y * 2 + 1] = y % 5 === 0 ? 0 : Math.min(to.width, spans[y * 2]! + 1 + ((y * 13) % to.width));
    }
    const some = resizeLanczos(data, from, 3, to, spans);
    for (let y = 0; y < to.height; y++) {
      for (let x = spans[y * 2]!; x < spans[y * 2 + 1]!; x++) {
        const i = (y * to.width + x) * 3;
        assert.deepEqual([...some.subarray(i, i + 3)], [...whole.subarray(i, i + 3)], `${to.width}×${to.height} at (${x}, ${y})`);
      }
    }
  }
});
