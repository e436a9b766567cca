/** Label maps: nearest palette colour, one-hot and the area average to latent resolution, exactly. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeLabelMap, labelMapTensor, labelsToLatent, nearestLabels } from '../../../../electron/engine/tensor/label-map.js';
import type { RgbImage } from '../../../../electron/engine/tensor/image.js';
import { BadImageError, InvalidRequestError } from '../../../../electron/shared/errors.js';
import type { LayoutLabel } from '../../../../electron/shared/model.js';
import { toPng } from '../../../support/engine-fixtures.js';

const LABELS: LayoutLabel[] = [
  { id: 0, name: 'background', color: [255, 255, 255] },
  { id: 1, name: 'outline', color: [0, 0, 0] },
  { id: 2, name: 'red', color: [200, 0, 0] },
  { id: 3, name: 'blue', color: [0, 0, 200] },
];

function image(width: number, height: number, pixels: Array<[number, number, number]>): RgbImage {
  assert.equal(pixels.length, width * height);
  return { width, height, rgb: Uint8Array.from(pixels.flat()) };
}

test('each pixel takes the nearest palette colour by squared RGB distance; a tie goes to the lower id', () => {
  const pixels: Array<[number, number, number]> = [
    [255, 255, 255], // exact: background
    [0, 0, 0], // exact: outline
    [200, 0, 0], // exact: red
    [0, 0, 200], // exact: blue
    [250, 240, 245], // near white
    [30, 10, 20], // near black
    [150, 20, 30], // 150,20,30 → red (50²+20²+30² = 3800) beats black (22500+400+900)
    [100, 0, 100], // red and blue both at 100²+0+100² = 20000, black at 20000 too: black (id 1) is lowest
    [100, 0, 101], // black 20201, red 100²+101² = 20201, blue 100²+99² = 19801: blue
    [140, 140, 140], // white 3·115² = 39675, red 60²+140²+140² = 42800, black 3·140² = 58800: white
  ];
  const ids = nearestLabels(image(pixels.length, 1, pixels), LABELS);
  assert.deepEqual([...ids], [0, 1, 2, 3, 0, 1, 2, 1, 3, 0]);
});

test('a tie between two labels goes to the lower id, whichever comes first in the palette colours', () => {
  // (100, 0, 100) is 20000 from both red and blue; black is excluded here by moving it away.
  const labels: LayoutLabel[] = [
    { id: 0, name: 'white', color: [255, 255, 255] },
    { id: 1, name: 'blue', color: [0, 0, 200] },
    { id: 2, name: 'red', color: [200, 0, 0] },
  ];
  assert.deepEqual([...nearestLabels(image(1, 1, [[100, 0, 100]]), labels)], [1]);
  const swapped: LayoutLabel[] = [labels[0]!, { ...labels[1]!, color: [200, 0, 0] }, { ...labels[2]!, color: [0, 0, 200] }];
  assert.deepEqual([...nearestLabels(image(1, 1, [[100, 0, 100]]), swapped)], [1]);
});

test('one-hot, then the mean over each f×f block: exact fractions, K channels, row-major [K, h, w]', () => {
  // 4×2 pixels, factor 2 → 2×1 latent cells. Left block: 3 × label 2, 1 × label 0. Right block: 2 × 1, 2 × 3.
  const ids = Uint8Array.from([2, 2, 1, 3, 0, 2, 3, 1]);
  const out = labelsToLatent(ids, 4, 2, 4, 2);
  assert.deepEqual([...out], [
    0.25, 0, // label 0: left, right
    0, 0.5, // label 1
    0.75, 0, // label 2
    0, 0.5, // label 3
  ]);
});

test('a 16×16 map at factor 8: each cell sums to 1 and holds the share of each label', () => {
  const w = 16;
  const h = 16;
  const ids = new Uint8Array(w * h);
  // Rows 0-4 outline (id 1) over the whole width, the rest red (2), and a 3×3 blue (3) square at 9..11.
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) ids[y * w + x] = y < 5 ? 1 : 2;
  for (let y = 9; y < 12; y++) for (let x = 9; x < 12; x++) ids[y * w + x] = 3;
  const out = labelsToLatent(ids, w, h, 4, 8);
  const cell = (k: number, cy: number, cx: number): number => out[k * 4 + cy * 2 + cx]!;
  // Top cells: 5 of 8 rows outline, 3 red.
  assert.deepEqual([cell(0, 0, 0), cell(1, 0, 0), cell(2, 0, 0), cell(3, 0, 0)], [0, 40 / 64, 24 / 64, 0]);
  assert.deepEqual([cell(1, 0, 1), cell(2, 0, 1)], [40 / 64, 24 / 64]);
  // Bottom right: 9 blue pixels, the rest red.
  assert.deepEqual([cell(2, 1, 1), cell(3, 1, 1)], [55 / 64, 9 / 64]);
  assert.deepEqual([cell(2, 1, 0), cell(3, 1, 0)], [1, 0]);
  for (let p = 0; p < 4; p++) {
    let sum = 0;
    for (let k = 0; k < 4; k++) sum += out[k * 4 + p]!;
    assert.equal(sum, 1);
  }
});

test('labelMapTensor composes both steps; sizes that are not a multiple of the factor are refused', () => {
  const px = (c: [number, number, number]): [number, number, number] => c;
  const img = image(2, 2, [px([0, 0, 0]), px([210, 10, 5]), px([250, 250, 250]), px([205, 0, 0])]);
  assert.deepEqual([...labelMapTensor(img, LABELS, 2)], [0.25, 0.25, 0.5, 0]);
  assert.throws(() => labelsToLatent(new Uint8Array(6), 3, 2, 4, 2), RangeError);
  assert.throws(() => labelsToLatent(Uint8Array.from([4, 0, 0, 0]), 2, 2, 4, 2), /label 4 .* not below K = 4/);
});

test('decodeLabelMap: a PNG of the picture size decodes as is; other sizes, JPEGs and broken bytes are refused clearly', async () => {
  const map = image(2, 1, [[200, 0, 0], [0, 0, 200]]);
  const png = await toPng(map);
  assert.deepEqual(await decodeLabelMap(png, { width: 2, height: 1 }), map);
  await assert.rejects(
    decodeLabelMap(png, { width: 4, height: 1 }),
    (err) => err instanceof InvalidRequestError && /label map is 2×1 but the picture is 4×1/.test(err.message),
  );
  const jpeg = await sharp(Buffer.from(map.rgb), { raw: { width: 2, height: 1, channels: 3 } }).jpeg().toBuffer();
  await assert.rejects(decodeLabelMap(jpeg, { width: 2, height: 1 }), (err) => err instanceof BadImageError && /label map: not a PNG/.test(err.message));
  const truncated = png.subarray(0, 40);
  await assert.rejects(decodeLabelMap(truncated, { width: 2, height: 1 }), (err) => err instanceof BadImageError && /label map: cannot decode/.test(err.message));
});
