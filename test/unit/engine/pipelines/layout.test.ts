/**
 * Layout mode end to end on test/fixtures/models/tiny-sd1-layout: parity with the torch reference loop
 * (native-models/tools/fixtures_lib/layout.py), determinism, the map steering the picture, sizes, and
 * clear errors for requests that cannot work.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import type { GenerateRequest } from '../../../../electron/engine/pipelines/types.js';
import { encodePng } from '../../../../electron/history/png.js';
import { BadImageError, InvalidRequestError } from '../../../../electron/shared/errors.js';
import type { RgbImage } from '../../../../electron/engine/tensor/image.js';
import { FIXTURES, MODELS, PARITY, type ReferenceCase, assertMatchesReference, caseRequest, meanAbsDiff, modelDir, readCases, readRgb, toPng } from '../../../support/engine-fixtures.js';

interface LayoutCase extends ReferenceCase {
  label_map: string;
  label_tensor: number[];
}

const DIR = join(MODELS, 'tiny-sd1-layout');
const cases = readCases<LayoutCase>('layout-cases.json');
const labelMap = readFileSync(join(PARITY, 'layout-label-map.png'));
const W = 64;
const H = 64;
const base = { mode: 'layout', prompt: 'a red apple', negativePrompt: 'blurry', seed: 77, steps: 4, width: W, height: H } as const;
const WHITE: [number, number, number] = [255, 255, 255];

/** A map in one colour, or with a rectangle of a second colour. */
function flatMap(width: number, height: number, color: [number, number, number], rect?: { x0: number; y0: number; x1: number; y1: number; color: [number, number, number] }): RgbImage {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inRect = rect && x >= rect.x0 && x < rect.x1 && y >= rect.y0 && y < rect.y1;
      rgb.set(inRect ? rect.color : color, (y * width + x) * 3);
    }
  }
  return { width, height, rgb };
}

describe('layout mode', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(() => engine.unloadAll());

  for (const c of cases) {
    test(`parity with the torch reference: ${c.name}, ${c.sampler}, ${c.steps} steps, cfg ${c.cfg}`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      const job = await prepareJob(model, { mode: 'layout', ...caseRequest(c), labelMap: readFileSync(join(PARITY, c.label_map)) });
      // The map at latent resolution is the reference's, value for value (fractions of 64: exact).
      assert.equal(job.labelMap?.length, c.label_tensor.length);
      c.label_tensor.forEach((v, i) => assert.ok(Math.abs(job.labelMap![i]! - v) < 1e-6, `label tensor [${i}]: ${job.labelMap![i]} vs ${v}`));
      await assertMatchesReference(t, await runJob(job), c, 1);
    });
  }

  test('the same seed and label map give byte-identical PNGs', async () => {
    const req: GenerateRequest = { ...base, labelMap };
    const [a, b] = [await engine.generate(DIR, req), await engine.generate(DIR, req)];
    assert.ok((await encodePng(a.image)).equals(await encodePng(b.image)), 'same request gave different bytes');
    assert.equal(a.params.mode, 'layout');
    assert.deepEqual([a.params.strength, a.params.maskBlur], [1, 0]);
  });

  test('a different map gives a different picture; off-palette colours snap to the nearest label', async () => {
    const painted = await engine.generate(DIR, { ...base, labelMap });
    const blank = await engine.generate(DIR, { ...base, labelMap: await toPng(flatMap(W, H, WHITE)) });
    const change = meanAbsDiff(painted.image, blank.image);
    assert.ok(change > 2, `the label map changed the picture by only ${change.toFixed(2)}/255 on average`);
    const moved = await engine.generate(DIR, { ...base, labelMap: await toPng(flatMap(W, H, WHITE, { x0: 8, y0: 8, x1: 40, y1: 40, color: [221, 46, 68] })) });
    assert.ok(meanAbsDiff(blank.image, moved.image) > 0.5, 'one accent square changed nothing');

    // The same map with every colour nudged (as anti-aliasing or a colour-managed editor would): same labels, same bytes.
    const clean = await readRgb(labelMap);
    const nudged = { ...clean, rgb: clean.rgb.map((v, i) => (v > 127 ? v - 1 - (i % 9) : v + 1 + (i % 9))) };
    const again = await engine.generate(DIR, { ...base, labelMap: await toPng(nudged) });
    assert.ok((await encodePng(painted.image)).equals(await encodePng(again.image)), 'a nudged map did not map to the same labels');
  });

  test('other sizes: a 96×64 map gives a 96×64 picture (label map [4, 8, 12]); without guidance too', async () => {
    const model = await engine.loadModel(DIR);
    const map = await toPng(flatMap(96, 64, WHITE, { x0: 10, y0: 3, x1: 70, y1: 50, color: [0, 0, 0] }));
    const job = await prepareJob(model, { ...base, width: 96, height: 64, labelMap: map });
    assert.equal(job.labelMap?.length, 4 * 8 * 12);
    const image = await runJob(job);
    assert.deepEqual([image.width, image.height], [96, 64]);
    const unguided = await engine.generate(DIR, { ...base, width: 96, height: 64, cfg: 1, labelMap: map });
    assert.deepEqual([unguided.image.width, unguided.image.height], [96, 64]);
    assert.ok(meanAbsDiff(image, unguided.image) > 0.5, 'cfg 1 and cfg 7.5 gave the same picture');
  });

  test('requests that cannot work are refused with clear errors', async () => {
    const refuses = (req: GenerateRequest, type: typeof InvalidRequestError | typeof BadImageError, pattern: RegExp, dir = DIR) =>
      assert.rejects(engine.generate(dir, req), (err) => err instanceof type && pattern.test(err.message), pattern.source);
    await refuses({ ...base }, InvalidRequestError, /layout needs a label map: an RGB PNG of 64×64 painted in tiny-sd1-layout's label colours/);
    await refuses({ ...base, labelMap: await toPng(flatMap(32, 32, WHITE)) }, InvalidRequestError, /label map is 32×32 but the picture is 64×64/);
    await refuses({ ...base, labelMap: Buffer.from('not a png at all') }, BadImageError, /label map: not a PNG/);
    await refuses({ ...base, labelMap, initImage: labelMap }, InvalidRequestError, /layout draws from the label map: it takes no init image/);
    await refuses({ ...base, mode: 'txt2img' }, InvalidRequestError, /tiny-sd1-layout cannot do txt2img \(it supports layout\)/);
    await refuses({ ...base, labelMap }, InvalidRequestError, /tiny-sd1 cannot do layout/, modelDir('tiny-sd1'));
    await refuses({ ...base, mode: 'txt2img', labelMap }, InvalidRequestError, /a label map is only for layout, not txt2img/, modelDir('tiny-sd1'));
    // The engine is still usable afterwards.
    const ok = await engine.generate(DIR, { ...base, steps: 1, labelMap });
    assert.equal(ok.image.width, W);
  });
});
