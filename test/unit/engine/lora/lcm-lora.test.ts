/**
 * An LCM-LoRA (test/fixtures/loras/lcm-lora-tiny.safetensors, laid out as latent-consistency/lcm-lora-sdv1-5)
 * on the plain SD 1.x fixture with the LCM scheduler, 4 steps, guidance 1 and 2: parity with diffusers'
 * StableDiffusionPipeline + LCMScheduler.from_config + load_lora_weights + fuse_lora from the same latents and
 * LCM step noises (native-models/tools/fixtures_lib/lora.py, parity/lcm-lora-cases.json).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../../electron/engine/engine.js';
import { ReplayRng } from '../../../../electron/engine/tensor/rng.js';
import { FIXTURES, type ReferenceCase, assertMatchesReference, caseRequest, readCases, readParityNpy } from '../../../support/engine-fixtures.js';

interface LcmLoraCase extends ReferenceCase {
  loras: { name: string; file: string; weight: number }[];
  step_noises: string;
}

const cases = readCases<LcmLoraCase>('lcm-lora-cases.json');

describe('LCM-LoRA with the LCM scheduler on a plain SD 1.x folder', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(() => engine.unloadAll());

  test('the cases are the LCM-LoRA ones (4 steps, guidance 1 and 2)', () => {
    assert.deepEqual(
      cases.map((c) => [c.sampler, c.steps, c.cfg, c.loras.map((l) => l.name)]),
      [
        ['lcm', 4, 1, ['lcm-lora-tiny']],
        ['lcm', 4, 2, ['lcm-lora-tiny']],
      ],
    );
  });

  for (const c of cases) {
    test(`parity with diffusers LCMScheduler + fuse_lora: ${c.name}`, async (t) => {
      const model = await engine.loadModel(join(FIXTURES, c.model));
      assert.notEqual(model.info.family, 'lcm', 'a plain SD 1.x folder, not an LCM one');
      assert.equal(model.info.unet.timestepCondDim, null, 'no guidance embedding input');
      const request = caseRequest(c);
      const all = readParityNpy(c.step_noises);
      const per = request.latents.length;
      const noises = Array.from({ length: c.steps - 1 }, (_, i) => all.slice(i * per, (i + 1) * per));
      const tags = c.loras.map((l) => `<lora:${l.name}:${l.weight}>`).join(' ');
      const job = await prepareJob(
        model,
        { mode: 'txt2img', ...request, prompt: `${c.prompt} ${tags}`, loraDirs: [join(FIXTURES, 'loras')] },
        {},
        new ReplayRng(noises),
      );
      assert.deepEqual(job.loras.map((l) => [l.name, l.unmatched]), [['lcm-lora-tiny', 0]]);
      assert.ok(job.loras[0]!.matched > 0);
      assert.deepEqual([job.params.sampler, job.params.steps, job.params.cfg], ['lcm', 4, c.cfg]);
      // The bar: 2/255 from the reference PNG (and ≤ 0.6/255 from the float reference).
      await assertMatchesReference(t, await runJob(job), c, 2);
    });
  }
});
