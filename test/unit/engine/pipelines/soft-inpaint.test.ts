/**
 * Soft inpainting (differential diffusion, pipelines/soft-inpaint.ts) against a torch reference of the
 * same maths on the fixtures' own weights (native-models/tools/make_soft_inpaint_parity.py,
 * test/fixtures/parity/soft-*): 4-channel tiny-sd1 and 9-channel tiny-sd1-inpaint, a gradient mask, from
 * the same latents and posterior noise, within 2/255 per pixel. And the hard path: with soft inpainting
 * off, a 0/255 mask gives the same bytes as before soft inpainting existed. With "Only masked", the crop
 * is pasted back by the soft mask's full weight, as the whole-picture path pastes.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { cropRegion, softCrop } from '../../../../electron/engine/pipelines/only-masked.js';
import { blendKnown, latentKeepMap, softChangeMap } from '../../../../electron/engine/pipelines/soft-inpaint.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import { FIXTURES, MODELS, PARITY, type ReferenceCase, caseRequest, readCases, readParityNpy, readRgb, testPicture, toPng } from '../../../support/engine-fixtures.js';

interface SoftCase extends ReferenceCase {
  init_image: string;
  mask: string;
  posterior_noise: string;
  posterior_draws: number;
}

const cases = readCases<SoftCase>('soft-cases.json');
/** The bar: within 2/255 per pixel. */
const MAX_LEVELS = 2;

describe('soft inpainting: parity with a torch reference of the same maths', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  for (const c of cases) {
    test(`${c.name}: ${c.model.split('/')[1]}, ${c.sampler}, gradient mask`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      const request = {
        mode: 'inpaint' as const,
        ...caseRequest(c),
        initImage: readFileSync(join(PARITY, c.init_image)),
        mask: readFileSync(join(PARITY, c.mask)),
        maskBlur: 0,
        softInpaint: true,
      };
      const posterior = readParityNpy(c.posterior_noise);
      const n = request.latents.length;
      const draws = Array.from({ length: c.posterior_draws }, (_, k) => posterior.slice(k * n, (k + 1) * n));
      const job = await prepareJob(model, request, {}, new ReplayRng(draws));
      const image = await runJob(job);
      assert.equal(job.params.softInpaint, true);
      const [reference, init, mask] = await Promise.all([readRgb(join(PARITY, c.reference)), readRgb(join(PARITY, c.init_image)), readRgb(join(PARITY, c.mask))]);
      let worst = 0;
      let kept = 0;
      for (let i = 0; i < image.rgb.length; i++) {
        worst = Math.max(worst, Math.abs(image.rgb[i]! - reference.rgb[i]!));
        if (mask.rgb[i] === 0) kept = Math.max(kept, Math.abs(image.rgb[i]! - init.rgb[i]!));
      }
      t.diagnostic(`max diff ${worst}/255 vs the torch reference; pixels with change 0: ${kept}/255 vs the picture`);
      assert.ok(worst <= MAX_LEVELS, `differs from the reference by ${worst}/255`);
      assert.equal(kept, 0, 'a pixel the mask does not touch keeps its bytes');
    });
  }
});

describe('soft inpainting: the pieces', () => {
  test('keep map: 1 − the mean change of each f×f block', () => {
    const change = Float32Array.from([0, 0, 1, 1, 0, 0, 1, 0.5].map(Math.fround));
    assert.deepEqual([...latentKeepMap(change, 4, 2, 2)], [1, 1 - 3.5 / 4]);
  });

  test('step i keeps the original where keep > i/n; step 0 everywhere; a new array each time', () => {
    const keep = Float32Array.from([1, 0.5, 0]);
    const known = Float32Array.from([9, 9, 9, 8, 8, 8]);
    const z = Float32Array.from([1, 2, 3, 4, 5, 6]);
    assert.equal(blendKnown(z, known, keep, 0, 4), known);
    const at1 = blendKnown(z, known, keep, 1, 4); // threshold 0.25: pixels 0 and 1 kept
    assert.deepEqual([...at1], [9, 9, 3, 8, 8, 6]);
    assert.notEqual(at1, z);
    assert.deepEqual([...blendKnown(z, known, keep, 2, 4)], [9, 2, 3, 8, 5, 6], 'threshold 0.5: 0.5 is no longer above it');
  });

  test('change map: the grey levels, blurred both ways by mask blur', async () => {
    const data = new Uint8Array(32 * 8);
    for (let y = 0; y < 8; y++) data.fill(255, y * 32 + 16, y * 32 + 32);
    const sharpEdge = softChangeMap({ width: 32, height: 8, data }, 0);
    assert.deepEqual([sharpEdge[15], sharpEdge[16]], [0, 1]);
    const soft = softChangeMap({ width: 32, height: 8, data }, 8);
    assert.ok(soft[14]! > 0 && soft[14]! < 0.5 && soft[17]! > 0.5 && soft[17]! < 1, 'the edge is spread to both sides');
    assert.equal(soft[0], 0);
    assert.equal(soft[31], 1);
  });
});

/**
 * SHA-256 of the RGB bytes these hard-mask runs gave before soft inpainting was added (the engine at
 * commit cd969d5, the same request run on that tree): soft inpainting off must leave them byte for byte.
 */
const HARD_MASK_BYTES: Array<[string, 'euler' | 'dpmpp_2m' | 'ddim' | 'euler_a', number, number, string]> = [
  // [model, sampler, strength, mask blur, sha256]
  ['tiny-sd1', 'euler', 1, 4, 'bd376d9de246071656cae80af5b2091d8ec0bcb20112ba8cd764e029023c1ecd'],
  ['tiny-sd1', 'dpmpp_2m', 0.7, 0, '301badbb01f2adb17fd425d05395ed13d5db04015812d9e4e862ff75ecd4a8c0'],
  ['tiny-sd1-inpaint', 'ddim', 1, 4, '9a04610575b2da833dd0c94c040004d48c3439257393d72f8b3e631109f24376'],
  ['tiny-sd1-inpaint', 'euler_a', 0.6, 2, 'bb85e3ebd39f9e4e037da577a8406f9aeb94e7b782a86a5d8ab8f2d3b33d0e0b'],
];

describe('soft inpainting off: the hard-mask path is unchanged', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  async function inputs(): Promise<{ init: Buffer; mask: Buffer }> {
    const W = 64;
    const pic = Buffer.alloc(W * W * 3);
    for (let y = 0; y < W; y++) {
      for (let x = 0; x < W; x++) {
        const i = (y * W + x) * 3;
        pic[i] = x * 4;
        pic[i + 1] = y * 4;
        pic[i + 2] = (x + y) * 2;
      }
    }
    const m = Buffer.alloc(W * W);
    for (let y = 12; y < 44; y++) for (let x = 20; x < 52; x++) m[y * W + x] = 255;
    return {
      init: await sharp(pic, { raw: { width: W, height: W, channels: 3 } }).png().toBuffer(),
      mask: await sharp(m, { raw: { width: W, height: W, channels: 1 } }).png().toBuffer(),
    };
  }

  for (const [model, sampler, strength, maskBlur, sha256] of HARD_MASK_BYTES) {
    test(`${model}, ${sampler}, strength ${strength}, mask blur ${maskBlur}: the same bytes as before`, async () => {
      const { init, mask } = await inputs();
      const r = await engine.generate(join(MODELS, model), {
        mode: 'inpaint', prompt: 'a red apple', negativePrompt: 'blurry', seed: 77, steps: 6, sampler, strength, maskBlur, width: 64, height: 64, initImage: init, mask,
      });
      assert.equal(r.params.softInpaint, undefined);
      assert.equal(createHash('sha256').update(r.image.rgb).digest('hex'), sha256);
    });
  }

  test('soft inpainting is refused outside inpaint', async () => {
    await assert.rejects(engine.generate(join(MODELS, 'tiny-sd1'), { mode: 'txt2img', prompt: 'x', seed: 1, steps: 1, softInpaint: true }), /soft inpainting is an inpaint setting/);
  });
});

/** A disc whose edge falls linearly from 255 to 0 over its outer `soft` pixels (a soft brush's dab), as RGB for the request. */
function softDisc(width: number, height: number, cx: number, cy: number, radius: number, soft: number): { grey: Uint8Array; rgb: Uint8Array } {
  const grey = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
      grey[y * width + x] = Math.round(255 * Math.min(1, Math.max(0, (radius - d) / soft)));
    }
  }
  const rgb = new Uint8Array(width * height * 3);
  grey.forEach((v, i) => rgb.fill(v, i * 3, i * 3 + 3));
  return { grey, rgb };
}

describe('soft inpainting with "Only masked": pasted back by the soft mask, as the whole-picture path', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  test('the crop holds every pixel the soft mask lets change, and its weights are that change map', async () => {
    const { grey } = softDisc(200, 150, 100, 60, 20, 16);
    const mask = { width: 200, height: 150, data: grey };
    const { crop, alpha } = softCrop(mask, 0, 64, 64, 4);
    const change = softChangeMap(mask, 4);
    for (let y = 0; y < 150; y++) {
      for (let x = 0; x < 200; x++) {
        const inside = x >= crop.x && x < crop.x + crop.width && y >= crop.y && y < crop.y + crop.height;
        const c = change[y * 200 + x]!;
        if (!inside) assert.equal(c, 0, `(${x}, ${y}) may change (${c}) but lies outside the crop ${JSON.stringify(crop)}`);
        else assert.equal(alpha[(y - crop.y) * crop.width + (x - crop.x)], c);
      }
    }
    // Wider than the hard crop, which only holds the inner half (≥ ½).
    const hard = cropRegion(mask, 0, 64, 64);
    assert.ok(crop.width > hard.width && crop.height > hard.height, `${JSON.stringify(crop)} vs hard ${JSON.stringify(hard)}`);
  });

  for (const [model, sampler] of [['tiny-sd1', 'euler'], ['tiny-sd1-inpaint', 'ddim']] as const) {
    test(`${model}: a crop that is the whole picture gives the whole-picture soft result (within 2/255), outer half of the edge included`, async (t) => {
      const W = 64;
      const picture = testPicture(W, W);
      const { grey, rgb } = softDisc(W, W, 34, 30, 18, 14);
      const base = {
        mode: 'inpaint' as const, prompt: 'a red apple', negativePrompt: 'blurry', seed: 21, steps: 6, sampler, strength: 1, maskBlur: 2,
        width: W, height: W, initImage: await toPng(picture), mask: await toPng({ width: W, height: W, rgb }), softInpaint: true,
      };
      const whole = await engine.generate(join(MODELS, model), base);
      // Padding wider than the picture: the crop is the whole picture at the working size.
      const masked = await engine.generate(join(MODELS, model), { ...base, inpaintArea: 'masked', maskPadding: 64 });
      assert.equal(masked.params.inpaintArea, 'masked');
      const change = softChangeMap({ width: W, height: W, data: grey }, 2);
      let worst = 0;
      let outerChanged = 0;
      let outerPixels = 0;
      for (let p = 0; p < W * W; p++) {
        const outer = change[p]! > 0 && change[p]! < 0.5;
        if (outer) outerPixels++;
        let moved = false;
        for (let c = 0; c < 3; c++) {
          const i = p * 3 + c;
          worst = Math.max(worst, Math.abs(masked.image.rgb[i]! - whole.image.rgb[i]!));
          if (change[p] === 0) assert.equal(masked.image.rgb[i], picture.rgb[i], `pixel ${p % W},${Math.floor(p / W)} has change 0 but moved`);
          if (masked.image.rgb[i] !== picture.rgb[i]) moved = true;
        }
        if (outer && moved) outerChanged++;
      }
      t.diagnostic(`max diff ${worst}/255 vs the whole-picture soft result; outer half of the edge: ${outerChanged} of ${outerPixels} pixels changed`);
      assert.ok(worst <= MAX_LEVELS, `only-masked differs from the whole-picture soft result by ${worst}/255`);
      assert.ok(outerPixels > 100 && outerChanged > outerPixels / 2, `the outer half of the soft edge was dropped (${outerChanged} of ${outerPixels} changed)`);
    });
  }

  test('a crop of a larger picture: pixels the soft mask does not touch keep their bytes, its outer half is repainted', async () => {
    const picture = testPicture(200, 150);
    const { grey, rgb } = softDisc(200, 150, 120, 50, 22, 16);
    const r = await engine.generate(join(MODELS, 'tiny-sd1'), {
      mode: 'inpaint', prompt: 'a red apple', seed: 5, steps: 4, width: 64, height: 64, maskBlur: 2, softInpaint: true,
      inpaintArea: 'masked', maskPadding: 8, initImage: await toPng(picture), mask: await toPng({ width: 200, height: 150, rgb }),
    });
    assert.equal(r.image.width, 200);
    const change = softChangeMap({ width: 200, height: 150, data: grey }, 2);
    let outerChanged = 0;
    let outerPixels = 0;
    for (let p = 0; p < 200 * 150; p++) {
      const same = [0, 1, 2].every((c) => r.image.rgb[p * 3 + c] === picture.rgb[p * 3 + c]);
      if (change[p] === 0) assert.ok(same, `pixel ${p % 200},${Math.floor(p / 200)} has change 0 but moved`);
      else if (change[p]! < 0.5) {
        outerPixels++;
        if (!same) outerChanged++;
      }
    }
    assert.ok(outerChanged > outerPixels / 2, `the outer half of the soft edge was dropped (${outerChanged} of ${outerPixels} changed)`);
  });
});
