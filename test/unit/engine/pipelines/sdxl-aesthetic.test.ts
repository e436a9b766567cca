/**
 * The SDXL refiner's aesthetic scores as request parameters, against diffusers' StableDiffusionXLImg2ImgPipeline
 * (requires_aesthetics_score) on the tiny refiner's weights, from the same latents and posterior noise
 * (references and the script: test/fixtures/parity/sdxl-aesthetic-cases.json,
 * native-models/tools/make_sdxl_aesthetic_parity.py): within 2/255, with diffusers' defaults and with others.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { resolveParams } from '../../../../electron/engine/pipelines/resolve.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import { InvalidRequestError } from '../../../../electron/shared/errors.js';
import { MODELS, PARITY, type ReferenceCase, assertMatchesReference, caseRequest, maxAbsDiff, readCases, readParityNpy, readRgb } from '../../../support/engine-fixtures.js';

interface AestheticCase extends ReferenceCase {
  strength: number;
  aesthetic_score: number;
  negative_aesthetic_score: number;
  init_image: string;
  posterior_noise: string;
}

const cases = readCases<AestheticCase>('sdxl-aesthetic-cases.json');
const MAX_LEVELS = 2;
const REFINER = join(MODELS, 'tiny-sdxl-refiner');

describe("the SDXL refiner's aesthetic scores", () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(() => engine.unloadAll());

  const request = (c: AestheticCase, scores: boolean) => ({
    mode: 'img2img' as const,
    ...caseRequest(c),
    initImage: readFileSync(join(PARITY, c.init_image)),
    strength: c.strength,
    ...(scores ? { aestheticScore: c.aesthetic_score, negativeAestheticScore: c.negative_aesthetic_score } : {}),
  });
  const run = async (c: AestheticCase, scores: boolean) => {
    const model = await engine.loadModel(REFINER);
    const req = request(c, scores);
    const rng = new ReplayRng([readParityNpy(c.posterior_noise).slice(0, req.latents.length)]);
    return runJob(await prepareJob(model, req, {}, rng));
  };

  for (const c of cases) {
    test(`${c.name}: aesthetic ${c.aesthetic_score}, negative ${c.negative_aesthetic_score} equals diffusers within ${MAX_LEVELS}/255`, async (t) => {
      await assertMatchesReference(t, await run(c, true), c, MAX_LEVELS);
    });
  }

  test("a request without scores runs diffusers' defaults (6 and 2.5) and records them; the scores change the picture", async (t) => {
    const [defaults, other] = [cases.find((c) => c.aesthetic_score === 6 && c.negative_aesthetic_score === 2.5)!, cases.find((c) => c.aesthetic_score !== 6)!];
    await assertMatchesReference(t, await run(defaults, false), defaults, MAX_LEVELS);
    const model = await engine.loadModel(REFINER);
    const params = resolveParams(model, { ...request(defaults, false), seed: 1 });
    assert.deepEqual([params.aestheticScore, params.negativeAestheticScore], [6, 2.5]);
    const [a, b] = await Promise.all([readRgb(join(PARITY, defaults.reference)), readRgb(join(PARITY, other.reference))]);
    assert.ok(maxAbsDiff(a, b) > 20, `the references differ by ${maxAbsDiff(a, b)}/255 only: the case would prove nothing`);
  });

  test('out of range, or on a model whose time ids carry no score, is refused before any step', async () => {
    const model = await engine.loadModel(REFINER);
    const c = cases[0]!;
    assert.throws(() => resolveParams(model, { ...request(c, false), aestheticScore: 11 }), (e) => e instanceof InvalidRequestError && /aestheticScore must be a number from 0 to 10/.test(e.message));
    assert.throws(() => resolveParams(model, { ...request(c, false), negativeAestheticScore: Number.NaN }), InvalidRequestError);
    const base = await engine.loadModel(join(MODELS, 'tiny-sdxl'));
    assert.throws(
      () => resolveParams(base, { mode: 'txt2img', prompt: 'x', seed: 1, steps: 2, width: 64, height: 64, aestheticScore: 7 }),
      (e) => e instanceof InvalidRequestError && /aesthetic scores condition an SDXL refiner .* tiny-sdxl is sdxl/.test(e.message),
    );
    const plain = resolveParams(base, { mode: 'txt2img', prompt: 'x', seed: 1, steps: 2, width: 64, height: 64 });
    assert.equal('aestheticScore' in plain, false, 'a base run records no scores');
  });
});
