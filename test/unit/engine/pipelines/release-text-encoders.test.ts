/**
 * The releaseTextEncoders setting: after a job's prompts are encoded the text encoders' sessions are
 * released (both of SDXL's), the next prompt creates them again from their files, and the pictures are the
 * same as with the sessions kept.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import type { GenerateRequest } from '../../../../electron/engine/pipelines/types.js';
import { MODELS } from '../../../support/engine-fixtures.js';

const request = (prompt: string): GenerateRequest => ({ mode: 'txt2img', prompt, negativePrompt: 'blurry', seed: 11, steps: 3, cfg: 5, width: 64, height: 64 });

describe('releasing the text encoders after encoding', () => {
  const releasing = new Engine({ providers: ['cpu'], threads: 1, releaseTextEncoders: true });
  const keeping = new Engine({ providers: ['cpu'], threads: 1 });
  after(async () => {
    await releasing.unloadAll();
    await keeping.unloadAll();
  });

  for (const name of ['tiny-sdxl', 'tiny-sd1']) {
    test(`${name}: released after each job, made again for the next prompt, same pictures`, async () => {
      const dir = join(MODELS, name);
      const model = await releasing.loadModel(dir);
      const encoders = [...new Set([model.modules.textEncoder, model.modules.textEncoder2].filter((m) => m !== null))];
      assert.equal(encoders.length, name === 'tiny-sdxl' ? 2 : 1);
      assert.ok(encoders.every((e) => e.loaded && e.sessionLoads === 1));
      const unet = model.modules.unet;

      for (const [i, prompt] of ['a red apple', '(a green pear:1.2) BREAK on a table', 'a red apple, shiny'].entries()) {
        const released = await releasing.generate(dir, request(prompt));
        const kept = await keeping.generate(dir, request(prompt));
        assert.ok(encoders.every((e) => !e.loaded), `${prompt}: the encoders' sessions were kept`);
        assert.deepEqual(encoders.map((e) => e.sessionLoads), encoders.map(() => i + 1), `${prompt}: sessions made again for the new prompt`);
        assert.ok(unet.loaded && unet.sessionLoads === 1, 'the U-Net stays');
        assert.ok(Buffer.from(released.image.rgb).equals(Buffer.from(kept.image.rgb)), `${prompt}: the picture changed`);
      }
    });
  }
});
