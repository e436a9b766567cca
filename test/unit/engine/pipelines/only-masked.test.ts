/** "Only masked" inpainting: crop geometry, and a full run on a picture larger than the working size. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../../../electron/engine/engine.js';
import { cropForInpaint, cropRegion, maskBounds, pasteCrop } from '../../../../electron/engine/pipelines/only-masked.js';
import type { GrayImage } from '../../../../electron/engine/tensor/image.js';
import { modelDir, testPicture, toPng } from '../../../support/engine-fixtures.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { goldenPixels, RESIZE_GOLDENS, type ResizeCase } from '../../../support/resize-goldens.js';

function rectMask(width: number, height: number, x0: number, y0: number, x1: number, y1: number): GrayImage {
  const data = new Uint8Array(width * height);
  for (let y = y0; y < y1; y++) data.fill(255, y * width + x0, y * width + x1);
  return { width, height, data };
}

describe('crop region', () => {
  test('is the mask bounds plus padding, widened to the working aspect ratio', () => {
    const mask = rectMask(400, 300, 100, 100, 140, 120); // 40×20 at (100,100)
    assert.deepEqual(maskBounds(mask), { x: 100, y: 100, width: 40, height: 20 });
    const r = cropRegion(mask, 10, 64, 64); // 60×40 padded → square 60×60
    assert.deepEqual(r, { x: 90, y: 80, width: 60, height: 60 });
    const wide = cropRegion(mask, 0, 128, 64); // 40×20 is already 2:1
    assert.deepEqual(wide, { x: 100, y: 100, width: 40, height: 20 });
  });

  test('stays inside the picture near an edge and never exceeds it', () => {
    const corner = cropRegion(rectMask(200, 150, 0, 0, 10, 10), 32, 64, 64);
    // The same amount of context is kept, shifted inside the picture (A1111 would cut it to 42).
    assert.deepEqual(corner, { x: 0, y: 0, width: 74, height: 74 });
    const huge = cropRegion(rectMask(200, 150, 0, 0, 200, 150), 32, 64, 64);
    assert.deepEqual(huge, { x: 0, y: 0, width: 200, height: 150 });
  });

  test('the mask bounds are those of every pixel ≥ ½, whatever the shape', () => {
    let seed = 5;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (let t = 0; t < 200; t++) {
      const width = 1 + next(40);
      const height = 1 + next(30);
      const data = new Uint8Array(width * height);
      for (let k = next(6); k > 0; k--) data[next(data.length)] = 100 + next(156);
      let expected: { x: number; y: number; width: number; height: number } | null = null;
      let [x0, y0, x1, y1] = [width, height, -1, -1];
      data.forEach((v, i) => {
        if (v < 128) return;
        const x = i % width, y = Math.floor(i / width);
        [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      });
      if (x1 >= 0) expected = { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
      assert.deepEqual(maskBounds({ width, height, data }), expected, `case ${t}`);
    }
  });

  test('an empty mask is refused with a clear message', () => {
    assert.throws(() => cropRegion(rectMask(50, 50, 0, 0, 0, 0), 8, 64, 64), /the mask is empty/);
  });
});

describe('the crop and its scaling', () => {
  test("a crop scaled to the working size is A1111's: cut out, then Pillow's LANCZOS, picture and mask (make_resize_goldens.py)", async () => {
    const { cases } = JSON.parse(readFileSync(join(RESIZE_GOLDENS, 'cases.json'), 'utf8')) as { cases: ResizeCase[] };
    const rgbCase = cases.find((c) => c.crop && c.mode === 'RGB')!;
    const maskCase = cases.find((c) => c.crop && c.mode === 'L')!;
    const [left, top, right, bottom] = rgbCase.crop!;
    assert.deepEqual(maskCase.crop, rgbCase.crop);
    const picture = await goldenPixels(`in-${rgbCase.case}.png`, 3);
    const mask = await goldenPixels(`in-${maskCase.case}.png`, 1);
    const region = { x: left!, y: top!, width: right! - left!, height: bottom! - top! };
    const cut = cropForInpaint({ width: picture.width, height: picture.height, rgb: picture.data }, { width: mask.width, height: mask.height, data: mask.data }, region, { width: 128, height: 128 });
    assert.ok(Buffer.from(cut.image.rgb).equals(Buffer.from((await goldenPixels(`out-${rgbCase.case}.png`, 3)).data)), 'picture');
    assert.ok(Buffer.from(cut.mask.data).equals(Buffer.from((await goldenPixels(`out-${maskCase.case}.png`, 1)).data)), 'mask');
  });

  test('a crop already at the working size is a copy of its rows, picture and mask', () => {
    const picture = testPicture(50, 40);
    const mask: GrayImage = { width: 50, height: 40, data: Uint8Array.from({ length: 2000 }, (_, i) => (i * 37) % 256) };
    for (const region of [
      { x: 0, y: 0, width: 50, height: 40 },
      { x: 7, y: 5, width: 24, height: 24 },
      { x: 26, y: 16, width: 24, height: 24 },
    ]) {
      const cut = cropForInpaint(picture, mask, region, { width: region.width, height: region.height });
      for (let y = 0; y < region.height; y++) {
        const at = (region.y + y) * 50 + region.x;
        assert.deepEqual([...cut.image.rgb.subarray(y * region.width * 3, (y + 1) * region.width * 3)], [...picture.rgb.subarray(at * 3, (at + region.width) * 3)]);
        assert.deepEqual([...cut.mask.data.subarray(y * region.width, (y + 1) * region.width)], [...mask.data.subarray(at, at + region.width)]);
      }
    }
  });

  test('a repainted crop of the region size is pasted unscaled', async () => {
    const picture = testPicture(20, 10);
    const region = { x: 4, y: 2, width: 8, height: 6 };
    const repainted = { width: 8, height: 6, rgb: new Uint8Array(8 * 6 * 3).fill(7) };
    const out = pasteCrop(picture, region, repainted, new Float32Array(48).fill(1));
    for (let y = 0; y < 10; y++) {
      for (let x = 0; x < 20; x++) {
        const inside = x >= 4 && x < 12 && y >= 2 && y < 8;
        const i = (y * 20 + x) * 3;
        assert.deepEqual([...out.rgb.subarray(i, i + 3)], inside ? [7, 7, 7] : [...picture.rgb.subarray(i, i + 3)]);
      }
    }
  });
});

describe('inpaint area "masked" end to end', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  for (const name of ['tiny-sd1-inpaint', 'tiny-sd1'] as const) {
    test(`${name}: a 200×150 picture keeps its size and every pixel outside the mask`, async () => {
      const picture = testPicture(200, 150);
      const mask = rectMask(200, 150, 150, 20, 180, 60);
      const maskRgb = new Uint8Array(200 * 150 * 3);
      mask.data.forEach((v, i) => maskRgb.fill(v, i * 3, i * 3 + 3));
      const r = await engine.generate(modelDir(name), {
        mode: 'inpaint',
        prompt: 'a red apple',
        seed: 9,
        steps: 4,
        width: 64,
        height: 64,
        maskBlur: 2,
        inpaintArea: 'masked',
        maskPadding: 16,
        initImage: await toPng(picture),
        mask: await toPng({ width: 200, height: 150, rgb: maskRgb }),
      });
      assert.equal(r.image.width, 200);
      assert.equal(r.image.height, 150);
      assert.equal(r.params.inpaintArea, 'masked');
      let changedInside = 0;
      for (let p = 0; p < 200 * 150; p++) {
        for (let c = 0; c < 3; c++) {
          const i = p * 3 + c;
          if (mask.data[p] === 0) assert.equal(r.image.rgb[i], picture.rgb[i], `pixel ${p % 200},${Math.floor(p / 200)} outside the mask changed`);
          else if (r.image.rgb[i] !== picture.rgb[i]) changedInside++;
        }
      }
      assert.ok(changedInside > 30 * 40 * 3 * 0.5, `only ${changedInside} values changed inside the mask`);
    });
  }
});
