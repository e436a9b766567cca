/**
 * A1111 prompt semantics on SDXL's two text encoders, against the torch reference of the same maths on
 * tiny-sdxl (native-models/tools/make_sdxl_prompt_parity.py: each encoder chunks and weights the text on its
 * own, chunks concatenated along the sequence and encoders along the features, pooled from encoder 2's
 * first chunk, two U-Net calls when prompt and negative differ in chunk count). From the same latents each
 * picture is within 2/255, and the prompt's conditioning (states and pooled) within 1e-4.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { encodeSdxlPrompts } from '../../../../electron/engine/pipelines/sdxl-conditioning.js';
import { MODELS, type ReferenceCase, assertMatchesReference, caseRequest, readCases, readParityNpy } from '../../../support/engine-fixtures.js';

interface SdxlPromptCase extends ReferenceCase {
  chunks: { prompt: number; negative: number };
  prompt_conditioning: string;
}

const cases = readCases<SdxlPromptCase>('sdxl-prompt-cases.json');
const MAX_LEVELS = 2;

describe('SDXL prompts as A1111 writes them (weights, BREAK, chunks on both encoders)', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const dir = join(MODELS, 'tiny-sdxl');
  after(() => engine.unloadAll());

  test('the cases cover a weighted prompt, BREAK, more than 77 tokens and different cond/uncond chunk counts', () => {
    const names = cases.map((c) => c.name);
    assert.ok(names.includes('sdxl-prompt-weighted') && names.includes('sdxl-prompt-break'));
    assert.ok(cases.some((c) => c.chunks.prompt >= 2 && c.chunks.negative === 1), 'a long prompt against a one-chunk negative');
  });

  for (const c of cases) {
    test(`${c.name}: ${c.chunks.prompt} prompt chunk(s), ${c.chunks.negative} negative chunk(s)`, async (t) => {
      const model = await engine.loadModel(dir);
      const { embeddings, pooled } = await encodeSdxlPrompts(model, c.prompt, c.negative, true);
      assert.equal(embeddings.condTokens, 77 * c.chunks.prompt);
      assert.equal(embeddings.uncondTokens, 77 * (c.negative === '' ? c.chunks.prompt : c.chunks.negative));
      const reference = readParityNpy(c.prompt_conditioning);
      assert.equal(reference.length, embeddings.cond.length + pooled.cond.length);
      let diff = 0;
      embeddings.cond.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - reference[i]!))));
      pooled.cond.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - reference[embeddings.cond.length + i]!))));
      t.diagnostic(`conditioning max diff ${diff.toExponential(2)}`);
      assert.ok(diff < 1e-4, `conditioning differs by ${diff}`);

      const result = await engine.generate(dir, { mode: 'txt2img', ...caseRequest(c) });
      await assertMatchesReference(t, result.image, c, MAX_LEVELS);
    });
  }

  test('each encoder encodes a text once: the same prompt again is the cached encoding, another emphasis or text is not', async () => {
    const model = await engine.loadModel(dir);
    const first = await encodeSdxlPrompts(model, 'a (red:1.3) fox', 'blurry', true);
    const again = await encodeSdxlPrompts(model, 'a (red:1.3) fox', 'blurry', true);
    // The pooled embedding is the cached encoding's own array; the states are concatenated anew, equal.
    assert.equal(again.pooled.cond, first.pooled.cond);
    assert.equal(again.pooled.uncond, first.pooled.uncond);
    assert.deepEqual(again.embeddings.cond, first.embeddings.cond);
    const noNorm = await encodeSdxlPrompts(model, 'a (red:1.3) fox', 'blurry', true, { emphasis: 'No norm' });
    assert.notEqual(noNorm.pooled.cond, first.pooled.cond);
    assert.notDeepEqual(noNorm.embeddings.cond, first.embeddings.cond);
    assert.notEqual((await encodeSdxlPrompts(model, 'a (red:1.3) cat', 'blurry', true)).pooled.cond, first.pooled.cond);
  });
});
