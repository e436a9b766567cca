/**
 * Regional prompts (MultiDiffusion-style blend of guided noise predictions by region masks) against a
 * torch reference of the same maths on the fixtures' own weights (native-models/tools/make_region_parity.py,
 * test/fixtures/parity/region-*): SD 1.x txt2img, img2img and 9-channel inpaint, SDXL txt2img, from the same
 * latents and posterior noise, within 2/255 per pixel. Plus the blend weights, the checks on bad regions,
 * and LoRA tags in a region's prompt.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { blendWeights, maskToLatentArea } from '../../../../electron/engine/pipelines/regions.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import { InvalidRequestError } from '../../../../electron/shared/errors.js';
import { MAX_REGIONS } from '../../../../electron/shared/generation-limits.js';
import {
  FIXTURES,
  MODELS,
  PARITY,
  type ReferenceCase,
  assertMatchesReference,
  caseRequest,
  maxAbsDiff,
  readCases,
  readParityNpy,
  readRgb,
} from '../../../support/engine-fixtures.js';

interface RegionCase extends ReferenceCase {
  mode: 'txt2img' | 'img2img' | 'inpaint';
  regions: { prompt: string; mask: string; weight: number }[];
  strength?: number;
  init_image?: string;
  mask?: string;
  posterior_noise?: string;
}

const cases = readCases<RegionCase>('region-cases.json');
/** The bar: within 2/255 per pixel. */
const MAX_LEVELS = 2;

function regionsOf(c: RegionCase) {
  return c.regions.map((r) => ({ prompt: r.prompt, weight: r.weight, mask: readFileSync(join(PARITY, r.mask)) }));
}

async function grayPng(width: number, height: number, paint: (x: number, y: number) => number): Promise<Buffer> {
  const data = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = paint(x, y);
  return sharp(data, { raw: { width, height, channels: 1 } }).png().toBuffer();
}

describe('regional prompts: parity with a torch reference of the same blend', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  for (const c of cases) {
    test(`${c.name}: ${c.mode}, ${c.regions.length} regions, ${c.sampler}, cfg ${c.cfg}`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      const request = {
        mode: c.mode,
        ...caseRequest(c),
        regions: regionsOf(c),
        ...(c.init_image ? { initImage: readFileSync(join(PARITY, c.init_image)) } : {}),
        ...(c.mask ? { mask: readFileSync(join(PARITY, c.mask)), maskBlur: 0 } : {}),
        ...(c.strength !== undefined ? { strength: c.strength } : {}),
      };
      const rng = c.posterior_noise ? new ReplayRng([readParityNpy(c.posterior_noise).slice(0, request.latents.length)]) : undefined;
      const job = await prepareJob(model, request, {}, rng);
      const image = await runJob(job);
      assert.deepEqual(job.params.regions?.map((r) => [r.prompt, r.weight]), c.regions.map((r) => [r.prompt, r.weight]));
      if (c.mode !== 'inpaint') return assertMatchesReference(t, image, c, MAX_LEVELS);
      // Inpaint: the masked pixels match the reference, every other pixel is the init picture's own.
      const [init, mask, reference] = await Promise.all([readRgb(join(PARITY, c.init_image!)), readRgb(join(PARITY, c.mask!)), readRgb(join(PARITY, c.reference))]);
      let masked = 0;
      let kept = 0;
      for (let i = 0; i < image.rgb.length; i++) {
        if (mask.rgb[i]! >= 128) masked = Math.max(masked, Math.abs(image.rgb[i]! - reference.rgb[i]!));
        else kept = Math.max(kept, Math.abs(image.rgb[i]! - init.rgb[i]!));
      }
      t.diagnostic(`masked pixels: max diff ${masked}/255 vs reference; unmasked: ${kept}/255 vs the init picture`);
      assert.ok(masked <= MAX_LEVELS, `masked pixels differ by ${masked}/255`);
      assert.equal(kept, 0, "unmasked pixels must be the init picture's own");
    });
  }

  test('a region covering everything at weight 1 gives the picture of its prompt as the main prompt (≤ 1/255)', async () => {
    const dir = join(MODELS, 'tiny-sd1');
    const base = { mode: 'txt2img' as const, seed: 5, steps: 4, width: 64, height: 64, negativePrompt: 'blurry' };
    const full = await grayPng(64, 64, () => 255);
    const regional = await engine.generate(dir, { ...base, prompt: 'a red apple', regions: [{ prompt: 'a green leaf', mask: full }] });
    const plain = await engine.generate(dir, { ...base, prompt: 'a green leaf' });
    assert.ok(maxAbsDiff(regional.image, plain.image) <= 1, `differs by ${maxAbsDiff(regional.image, plain.image)}/255`);
    assert.deepEqual(regional.params.regions, [{ prompt: 'a green leaf', weight: 1, area: 1 }]);
  });

  test('a hires fix carries the regions into its second pass (masks scaled with the picture)', async () => {
    const dir = join(MODELS, 'tiny-sd1');
    const base = { mode: 'txt2img' as const, prompt: 'a red apple', seed: 4, steps: 2, width: 64, height: 64, hires: { scale: 2, upscaler: 'Latent', strength: 0.6 } };
    const region = await grayPng(64, 64, (x) => (x < 32 ? 255 : 0));
    const regional = await engine.generate(dir, { ...base, regions: [{ prompt: 'a green leaf', mask: region }] });
    const plain = await engine.generate(dir, base);
    assert.deepEqual([regional.image.width, regional.image.height], [128, 128]);
    assert.ok(maxAbsDiff(regional.image, plain.image) > 0);
    assert.equal(regional.params.regions?.[0]?.area, 0.5);
  });

  test('inpaint "only masked" crops the region masks with the picture, and a region changes the repaint', async () => {
    const dir = join(MODELS, 'tiny-sd1-inpaint');
    const picture = await sharp({ create: { width: 96, height: 96, channels: 3, background: '#808080' } }).png().toBuffer();
    const mask = await grayPng(96, 96, (x, y) => (x >= 40 && x < 72 && y >= 40 && y < 72 ? 255 : 0));
    const base = { mode: 'inpaint' as const, prompt: 'a red apple', seed: 3, steps: 3, width: 64, height: 64, initImage: picture, mask, inpaintArea: 'masked' as const };
    const plain = await engine.generate(dir, base);
    const region = await grayPng(96, 96, (x) => (x >= 56 ? 255 : 0));
    const regional = await engine.generate(dir, { ...base, regions: [{ prompt: 'a blue plate', mask: region }] });
    assert.equal(regional.image.width, 96);
    assert.ok(maxAbsDiff(regional.image, plain.image) > 0, 'the region changes the repainted area');
    assert.equal(regional.params.regions![0]!.area, Math.round((40 / 96) * 1000) / 1000);
  });
});

describe('regional prompts: blend weights', () => {
  test('weights sum to 1; the main prompt fills what the regions leave; heavier regions win overlaps', () => {
    const a = Float32Array.from([1, 0.5, 0, 1]);
    const b = Float32Array.from([0, 0.25, 0, 1]);
    const [main, ra, rb] = blendWeights([a, b], [1, 2]);
    for (let p = 0; p < 4; p++) assert.ok(Math.abs(main![p]! + ra![p]! + rb![p]! - 1) < 1e-6);
    assert.deepEqual([...main!], [0, 0, 1, 0]);
    assert.deepEqual([...ra!], [1, 0.5, 0, 1 / 3].map(Math.fround));
    assert.deepEqual([...rb!], [0, 0.5, 0, 2 / 3].map(Math.fround));
    const [m2, r2] = blendWeights([Float32Array.from([1])], [0.6]);
    assert.ok(Math.abs(m2![0]! - 0.4) < 1e-6 && Math.abs(r2![0]! - 0.6) < 1e-6, 'weight < 1 mixes the main prompt in');
  });

  test('masks come to latent resolution as the mean of each 8×8 block', async () => {
    const data = new Uint8Array(16 * 8).fill(0);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 12; x++) data[y * 16 + x] = 255;
    const latent = await maskToLatentArea({ width: 16, height: 8, data }, { channels: 4, width: 2, height: 1 }, 8);
    assert.deepEqual([...latent], [1, 0.5]);
  });
});

describe('regional prompts: bad regions get clear errors', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());
  const dir = join(MODELS, 'tiny-sd1');
  const base = { mode: 'txt2img' as const, prompt: 'a red apple', seed: 1, steps: 1, width: 64, height: 64 };
  const refused = (pattern: RegExp) => (err: unknown) => err instanceof InvalidRequestError && pattern.test(err.message);

  test('empty mask, wrong size, too many, no prompt, weight out of range, a LoRA tag', async () => {
    const empty = await grayPng(64, 64, () => 0);
    const ok = await grayPng(64, 64, (x) => (x < 32 ? 255 : 0));
    const small = await grayPng(32, 32, () => 255);
    await assert.rejects(engine.generate(dir, { ...base, regions: [{ prompt: 'a', mask: ok }, { prompt: 'b', mask: empty }] }), refused(/region 2's mask is empty/));
    await assert.rejects(engine.generate(dir, { ...base, regions: [{ prompt: 'a', mask: small }] }), refused(/region 1's mask is 32×32; it must be the picture's size, 64×64/));
    const many = Array.from({ length: MAX_REGIONS + 1 }, () => ({ prompt: 'a', mask: ok }));
    await assert.rejects(engine.generate(dir, { ...base, regions: many }), refused(new RegExp(`at most ${MAX_REGIONS} regions, got ${MAX_REGIONS + 1}`)));
    await assert.rejects(engine.generate(dir, { ...base, regions: [{ prompt: '  ', mask: ok }] }), refused(/region 1 has no prompt/));
    await assert.rejects(engine.generate(dir, { ...base, regions: [{ prompt: 'a', mask: ok, weight: 3 }] }), refused(/region 1's weight must be a number from 0.05 to 2, got 3/));
    await assert.rejects(
      engine.generate(dir, { ...base, regions: [{ prompt: 'a leaf <lora:style:0.8>', mask: ok }] }),
      refused(/region 1's prompt has <lora:style:…>: a LoRA changes the whole model, so it can only go in the main prompt/),
    );
    // Nothing was lost: the engine still runs the same request without the bad region.
    const fine = await engine.generate(dir, { ...base, regions: [{ prompt: 'a', mask: ok }] });
    assert.equal(fine.params.regions?.length, 1);
  });
});
