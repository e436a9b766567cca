/**
 * SDXL against diffusers' torch SDXL pipelines on the same weights (references and the script that made
 * them: test/fixtures/parity/sdxl-*, native-models/tools/fixtures_lib/sdxl.py): from the same initial
 * latents and VAE posterior noise, each image within 2/255 per pixel. The conditioning is also checked on
 * its own: prompt embeds (both encoders' penultimate hidden states, concatenated), pooled embeds and
 * time ids, as the pipeline's encode_prompt and _get_add_time_ids give them.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { encodeSdxlPrompts, sdxlTimeIds } from '../../../../electron/engine/pipelines/sdxl-conditioning.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import { InvalidRequestError } from '../../../../electron/shared/errors.js';
import { FIXTURES, MODELS, PARITY, type ReferenceCase, assertMatchesReference, caseRequest, readCases, readParityNpy, readRgb } from '../../../support/engine-fixtures.js';

interface SdxlCase extends ReferenceCase {
  mode: 'txt2img' | 'img2img' | 'inpaint';
  strength?: number;
  init_image?: string;
  mask?: string;
  posterior_noise?: string;
}

const cases = readCases<SdxlCase>('sdxl-cases.json');
/** The issue's bar: within 2/255 per pixel. */
const MAX_LEVELS = 2;
const PROMPT = 'a red apple on a wooden table';
const NEGATIVE = 'blurry, low quality';

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('SDXL parity with diffusers from the same latents', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  for (const c of cases) {
    test(`${c.name}: ${c.mode}, ${c.sampler}, ${c.steps} step(s), cfg ${c.cfg}${c.strength !== undefined ? `, strength ${c.strength}` : ''}`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      const request = {
        mode: c.mode,
        ...caseRequest(c),
        ...(c.init_image ? { initImage: readFileSync(join(PARITY, c.init_image)) } : {}),
        ...(c.mask ? { mask: readFileSync(join(PARITY, c.mask)) } : {}),
        ...(c.strength !== undefined ? { strength: c.strength } : {}),
        // diffusers does not paste back; with a hard edge the masked pixels are the decoded ones.
        ...(c.mode === 'inpaint' ? { maskBlur: 0 } : {}),
      };
      // The VAE posterior draw comes from the reference's noise (one latent for the init or masked image).
      const rng = c.posterior_noise ? new ReplayRng([readParityNpy(c.posterior_noise).slice(0, request.latents.length)]) : undefined;
      const job = await prepareJob(model, request, {}, rng);
      const image = await runJob(job);
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
      assert.equal(kept, 0, 'unmasked pixels must be the init picture\'s own');
    });
  }

  test("prompt embeds and pooled embeds equal the pipeline's encode_prompt (written negative; empty negative gives zeros)", async () => {
    const model = await engine.loadModel(join(MODELS, 'tiny-sdxl'));
    const written = await encodeSdxlPrompts(model, PROMPT, NEGATIVE, true);
    const embeds = readParityNpy('sdxl-prompt-embeds.npy');
    const pooled = readParityNpy('sdxl-pooled.npy');
    const half = embeds.length / 2;
    assert.equal(written.embeddings.hidden, 80, '32 + 48: both encoders, concatenated per token');
    assert.ok(maxDiff(written.embeddings.uncond!, embeds.subarray(0, half)) < 1e-4, 'negative embeds');
    assert.ok(maxDiff(written.embeddings.cond, embeds.subarray(half)) < 1e-4, 'prompt embeds');
    assert.ok(maxDiff(written.pooled.uncond!, pooled.subarray(0, 40)) < 1e-4, 'negative pooled');
    assert.ok(maxDiff(written.pooled.cond, pooled.subarray(40)) < 1e-4, 'prompt pooled');
    const empty = await encodeSdxlPrompts(model, PROMPT, '', true);
    assert.ok(empty.embeddings.uncond!.every((v) => v === 0) && empty.pooled.uncond!.every((v) => v === 0), 'force_zeros_for_empty_prompt');
    assert.deepEqual(empty.embeddings.cond, written.embeddings.cond);
  });

  test("time ids equal the pipeline's _get_add_time_ids; the refiner's carry the aesthetic scores", () => {
    const reference = readParityNpy('sdxl-time-ids.npy');
    const size = { width: 64, height: 64 };
    assert.deepEqual([...sdxlTimeIds({ timeIds: 6 }, size).cond], [...reference.subarray(0, 6)]);
    const custom = sdxlTimeIds({ timeIds: 6 }, size, { originalSize: { width: 80, height: 96 }, cropTopLeft: { top: 8, left: 4 } });
    assert.deepEqual([...custom.cond], [...reference.subarray(6, 12)]);
    assert.deepEqual([...custom.uncond], [...custom.cond], 'the base negative uses the same ids');
    const refiner = sdxlTimeIds({ timeIds: 5 }, size);
    assert.deepEqual([...refiner.cond], [64, 64, 0, 0, 6]);
    assert.deepEqual([...refiner.uncond], [64, 64, 0, 0, 2.5]);
  });

  test('a refiner refines a picture and refuses text-to-image with an error naming what it is', async () => {
    const dir = join(MODELS, 'tiny-sdxl-refiner');
    await assert.rejects(
      engine.generate(dir, { mode: 'txt2img', prompt: 'x', seed: 1, steps: 2, width: 64, height: 64 }),
      (err) => err instanceof InvalidRequestError && /is an SDXL refiner \(unet\/model\.onnx takes the aesthetic-score time_ids/.test(err.message),
    );
  });
});
