/** "Only masked" inpainting: crop geometry, and a full run on a picture larger than the working size. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../../../electron/engine/engine.js';
import sharp from 'sharp';
import { cropForInpaint, cropRegion, maskBounds, pasteCrop } from '../../../../electron/engine/pipelines/only-masked.js';
import type { GrayImage } from '../../../../electron/engine/tensor/image.js';
import { modelDir, testPicture, toPng } from '../../../support/engine-fixtures.js';

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

  test('an empty mask is refused with a clear message', () => {
    assert.throws(() => cropRegion(rectMask(50, 50, 0, 0, 0, 0), 8, 64, 64), /the mask is empty/);
  });
});

describe('a crop already at the working size', () => {
  /** libvips' own answer: extract the region, Lanczos-resize it to its own size. */
  async function viaSharp(data: Uint8Array, width: number, height: number, channels: 1 | 3, r: { x: number; y: number; width: number; height: number }): Promise<Buffer> {
    let img = sharp(Buffer.from(data), { raw: { width, height, channels } })
      .extract({ left: r.x, top: r.y, width: r.width, height: r.height })
      .resize(r.width, r.height, { fit: 'fill', kernel: 'lanczos3' });
    if (channels === 1) img = img.extractChannel(0);
    return img.raw().toBuffer();
  }

  test('is cut by copying its rows: the same bytes as libvips scaling it by 1, picture and mask', async () => {
    const picture = testPicture(50, 40);
    const mask: GrayImage = { width: 50, height: 40, data: Uint8Array.from({ length: 2000 }, (_, i) => (i * 37) % 256) };
    for (const region of [
      { x: 0, y: 0, width: 50, height: 40 },
      { x: 7, y: 5, width: 24, height: 24 },
      { x: 26, y: 16, width: 24, height: 24 },
    ]) {
      const cut = await cropForInpaint(picture, mask, region, { width: region.width, height: region.height });
      assert.ok(Buffer.from(cut.image.rgb).equals(await viaSharp(picture.rgb, 50, 40, 3, region)), `picture ${JSON.stringify(region)}`);
      assert.ok(Buffer.from(cut.mask.data).equals(await viaSharp(mask.data, 50, 40, 1, region)), `mask ${JSON.stringify(region)}`);
    }
  });

  test('a repainted crop of the region size is pasted unscaled', async () => {
    const picture = testPicture(20, 10);
    const region = { x: 4, y: 2, width: 8, height: 6 };
    const repainted = { width: 8, height: 6, rgb: new Uint8Array(8 * 6 * 3).fill(7) };
    const out = await pasteCrop(picture, region, repainted, new Float32Array(48).fill(1));
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
