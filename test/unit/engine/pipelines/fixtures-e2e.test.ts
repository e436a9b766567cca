/**
 * End to end on every fixture model: generate, determinism (same seed ⇒ same PNG bytes), cancel mid-run,
 * inpaint leaves unmasked pixels identical, img2img at low strength stays close.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../../../electron/engine/engine.js';
import type { GenerateRequest } from '../../../../electron/engine/pipelines/types.js';
import { isCancelled } from '../../../../electron/shared/errors.js';
import { encodePng } from '../../../../electron/history/png.js';
import { FIXTURE_MODELS, meanAbsDiff, modelDir, testPicture, toPng } from '../../../support/engine-fixtures.js';

const W = 64;
const H = 64;
const base = { prompt: 'a red apple', negativePrompt: 'blurry', seed: 1234, steps: 6, width: W, height: H } as const;

/** A mask over the right half (white = repaint), as PNG. */
async function rightHalfMask(): Promise<Buffer> {
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = W / 2; x < W; x++) rgb.fill(255, (y * W + x) * 3, (y * W + x) * 3 + 3);
  return toPng({ width: W, height: H, rgb });
}

describe('every fixture model, end to end', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());
  const picture = testPicture(W, H);

  for (const name of FIXTURE_MODELS) {
    describe(name, () => {
      const dir = modelDir(name);

      test('txt2img gives an image of the asked size that is not flat', async () => {
        const r = await engine.generate(dir, { mode: 'txt2img', ...base });
        assert.equal(r.image.width, W);
        assert.equal(r.image.height, H);
        const values = new Set(r.image.rgb);
        assert.ok(values.size > 20, `only ${values.size} distinct levels`);
        assert.equal(r.timings.stepsRun > 0, true);
        assert.equal(r.provider, 'cpu');
      });

      test('the same seed and parameters give byte-identical PNGs; another seed differs', async () => {
        const a = await engine.generate(dir, { mode: 'txt2img', ...base });
        const b = await engine.generate(dir, { mode: 'txt2img', ...base });
        const c = await engine.generate(dir, { mode: 'txt2img', ...base, seed: base.seed + 1 });
        const [pa, pb, pc] = await Promise.all([encodePng(a.image), encodePng(b.image), encodePng(c.image)]);
        assert.ok(pa.equals(pb), 'same seed gave different bytes');
        assert.ok(!pa.equals(pc), 'another seed gave the same image');
      });

      test('img2img and inpaint are reproducible too', async () => {
        const init = await toPng(picture);
        const mask = await rightHalfMask();
        for (const req of [
          { mode: 'img2img', ...base, initImage: init, strength: 0.6 },
          { mode: 'inpaint', ...base, initImage: init, mask },
        ] satisfies GenerateRequest[]) {
          const a = await engine.generate(dir, req);
          const b = await engine.generate(dir, req);
          assert.deepEqual(a.image.rgb, b.image.rgb, `${req.mode} is not reproducible`);
        }
      });

      test('a cancel mid-run stops between steps, and the engine is ready at once', async () => {
        const controller = new AbortController();
        const seen: number[] = [];
        const run = engine.generate(
          dir,
          { mode: 'txt2img', ...base, steps: 8 },
          {
            signal: controller.signal,
            onProgress: (p) => {
              seen.push(p.step);
              if (p.step === 2) controller.abort();
            },
          },
        );
        await assert.rejects(run, (err) => isCancelled(err));
        assert.deepEqual(seen, [1, 2], 'steps ran after the cancel');
        const next = await engine.generate(dir, { mode: 'txt2img', ...base });
        assert.equal(next.image.width, W);
      });

      test('inpaint keeps every unmasked pixel bit-identical and changes the masked ones', async () => {
        const r = await engine.generate(dir, {
          mode: 'inpaint',
          ...base,
          maskBlur: 4,
          initImage: await toPng(picture),
          mask: await rightHalfMask(),
        });
        let changed = 0;
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            for (let c = 0; c < 3; c++) {
              const i = (y * W + x) * 3 + c;
              if (x < W / 2) assert.equal(r.image.rgb[i], picture.rgb[i], `unmasked pixel (${x},${y}) changed`);
              else if (r.image.rgb[i] !== picture.rgb[i]) changed++;
            }
          }
        }
        assert.ok(changed > (W * H * 3) / 4, `only ${changed} masked values changed`);
      });

      // tiny-sdxl's random U-Net moves the picture as much at low noise as at mid noise (mean distances
      // 35.6, 34.0, 39.8 at strength 0.1, 0.3, 1), so this heuristic says nothing there; its img2img is
      // held to diffusers' by parity instead (sdxl.test.ts, tiny-sdxl-img2img-euler).
      test('img2img stays closer to the input the lower the strength', { skip: name === 'tiny-sdxl' && 'see above' }, async () => {
        const init = await toPng(picture);
        // A random-weight VAE does not reproduce its input, so "close" is measured against what the same
        // pipeline gives with the least noise possible (one step at the low end of a long schedule).
        // Absolute closeness to the input is tested on the trained bundled model.
        // LCM applies strength to its 50-step distillation schedule and runs `steps` of what remains.
        const lcm = name === 'tiny-lcm';
        const img2img = (steps: number, strength: number) =>
          engine.generate(dir, { mode: 'img2img', ...base, steps, strength, initImage: init });
        const reference = await img2img(lcm ? 1 : 50, lcm ? 0.04 : 0.02);
        const d = async (strength: number) => meanAbsDiff((await img2img(lcm ? 2 : 20, strength)).image, reference.image);
        const [low, mid, full] = [await d(0.1), await d(0.3), await d(1)];
        assert.ok(low < mid && mid < full, `distances not increasing with strength: ${low}, ${mid}, ${full}`);
        assert.ok(low < 0.9 * full, `low strength ${low.toFixed(2)} vs full ${full.toFixed(2)}`);
      });
    });
  }
});
