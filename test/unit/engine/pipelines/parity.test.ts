/**
 * Parity with the reference implementation: from the same initial latents, our pipeline's image matches
 * diffusers' OnnxStableDiffusionPipeline (and, for LCM, the torch LatentConsistencyModelPipeline on the
 * same weights) within 2/255 per pixel. References and the script that made them:
 * test/fixtures/parity/, native-models/tools/make_fixtures.py.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { readNpyFloat32 } from '../../../../electron/engine/tensor/npy.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import type { SamplerName } from '../../../../electron/shared/generation.js';
import { FIXTURES, maxAbsDiff, readRgb } from '../../../support/engine-fixtures.js';

interface ParityCase {
  name: string;
  model: string;
  prompt: string;
  negative: string;
  steps: number;
  cfg: number;
  sampler: SamplerName;
  width: number;
  height: number;
  latents: string;
  step_noises?: string;
  reference: string;
  reference_float: string;
  timesteps: number[];
}

const PARITY = join(FIXTURES, 'parity');
const cases = JSON.parse(readFileSync(join(PARITY, 'cases.json'), 'utf8')) as ParityCase[];
/** The bar: within 2/255 per pixel. */
const MAX_LEVELS = 2;

describe('parity with diffusers from the same initial latents', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  for (const c of cases) {
    test(`${c.name}: ${c.sampler}, ${c.steps} steps, cfg ${c.cfg}`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      const latents = readNpyFloat32(readFileSync(join(PARITY, c.latents))).data;
      let rng;
      if (c.step_noises) {
        const all = readNpyFloat32(readFileSync(join(PARITY, c.step_noises))).data;
        const per = latents.length;
        rng = new ReplayRng(Array.from({ length: all.length / per }, (_, i) => all.slice(i * per, (i + 1) * per)));
      }
      const job = await prepareJob(
        model,
        {
          mode: 'txt2img',
          prompt: c.prompt,
          negativePrompt: c.negative,
          seed: 0,
          steps: c.steps,
          cfg: c.cfg,
          sampler: c.sampler,
          width: c.width,
          height: c.height,
          latents,
        },
        {},
        rng,
      );
      const image = await runJob(job);
      const reference = await readRgb(join(PARITY, c.reference));
      const diff = maxAbsDiff(image, reference);
      // Against the float image before rounding: how far our 8-bit pixels are from the exact values.
      const exact = readNpyFloat32(readFileSync(join(PARITY, c.reference_float))).data;
      let floatDiff = 0;
      for (let i = 0; i < exact.length; i++) floatDiff = Math.max(floatDiff, Math.abs(image.rgb[i]! / 255 - exact[i]!));
      t.diagnostic(`max diff ${diff}/255 vs reference PNG; ${(floatDiff * 255).toFixed(3)}/255 vs float reference`);
      assert.ok(diff <= MAX_LEVELS, `${c.name}: max pixel difference ${diff}/255 exceeds ${MAX_LEVELS}/255`);
      // Every pixel is the nearest 8-bit level of the exact value (± float noise): ≤ 0.5/255 plus slack.
      assert.ok(floatDiff * 255 <= 0.6, `${c.name}: ${(floatDiff * 255).toFixed(3)}/255 from the float reference`);
    });
  }
});
