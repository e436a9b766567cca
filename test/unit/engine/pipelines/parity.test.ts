/**
 * Parity with the reference implementation: from the same initial latents, our pipeline's image matches
 * diffusers' OnnxStableDiffusionPipeline (and, for LCM, the torch LatentConsistencyModelPipeline on the
 * same weights) within 2/255 per pixel. References and the script that made them:
 * test/fixtures/parity/, native-models/tools/make_fixtures.py.
 */
import { after, describe, test } from 'node:test';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import { FIXTURES, type ReferenceCase, assertMatchesReference, caseRequest, readCases, readParityNpy } from '../../../support/engine-fixtures.js';

interface ParityCase extends ReferenceCase {
  step_noises?: string;
  timesteps: number[];
}

const cases = readCases<ParityCase>('cases.json');
/** The bar: within 2/255 per pixel. */
const MAX_LEVELS = 2;

describe('parity with diffusers from the same initial latents', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  for (const c of cases) {
    test(`${c.name}: ${c.sampler}, ${c.steps} steps, cfg ${c.cfg}`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      const request = caseRequest(c);
      let rng;
      if (c.step_noises) {
        const all = readParityNpy(c.step_noises);
        const per = request.latents.length;
        rng = new ReplayRng(Array.from({ length: all.length / per }, (_, i) => all.slice(i * per, (i + 1) * per)));
      }
      const job = await prepareJob(model, { mode: 'txt2img', ...request }, {}, rng);
      await assertMatchesReference(t, await runJob(job), c, MAX_LEVELS);
    });
  }
});
