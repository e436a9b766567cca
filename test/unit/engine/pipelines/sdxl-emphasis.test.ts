/**
 * A1111's "Emphasis" and "Pad conds" on SDXL (both encoders), checked against paths already matched with
 * torch (sdxl-prompts.test.ts): Ignore ≡ the text without brackets, None ≡ the brackets escaped (both
 * bit-identical), No norm = Original without the mean restore; Pad conds appends the empty prompt's chunk
 * (both encoders) to the shorter states, leaves the pooled embeddings alone, and a job records it.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { encodeSdxlPrompts } from '../../../../electron/engine/pipelines/sdxl-conditioning.js';
import { MODELS } from '../../../support/engine-fixtures.js';

const DIR = join(MODELS, 'tiny-sdxl');

describe('SDXL: Emphasis and Pad conds', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(() => engine.unloadAll());

  test('Ignore, None and No norm on both encoders', async () => {
    const model = await engine.loadModel(DIR);
    const states = async (text: string, emphasis?: 'Original' | 'No norm' | 'Ignore' | 'None') =>
      (await encodeSdxlPrompts(model, text, '', false, emphasis ? { emphasis } : {})).embeddings.cond;
    const weighted = 'a (red:1.5) apple, [shiny]';
    assert.deepEqual(await states(weighted, 'Ignore'), await states('a red apple, shiny'));
    assert.deepEqual(await states(weighted, 'None'), await states('a \\(red:1.5\\) apple, \\[shiny\\]'));
    const original = await states(weighted);
    const noNorm = await states(weighted, 'No norm');
    assert.notDeepEqual(noNorm, original);
    // Original = No norm scaled per chunk (and per encoder) to the mean before weighting: equal up to a factor.
    const ratio = original[0]! / noNorm[0]!;
    assert.ok(Math.abs(ratio - 1) > 1e-6, 'the mean restore changes the states');
    assert.deepEqual(await states('a red apple', 'No norm'), await states('a red apple'));
  });

  test('Pad conds: the shorter gets the empty prompt’s chunk, pooled untouched; a job records it', async () => {
    const model = await engine.loadModel(DIR);
    const prompt = 'a red apple';
    const negative = 'blurry BREAK dark';
    const plain = await encodeSdxlPrompts(model, prompt, negative, true);
    assert.deepEqual([plain.embeddings.condTokens, plain.embeddings.uncondTokens, plain.padded], [77, 154, false]);
    const padded = await encodeSdxlPrompts(model, prompt, negative, true, { padConds: true });
    const { hidden } = padded.embeddings;
    assert.deepEqual([padded.embeddings.condTokens, padded.embeddings.uncondTokens, padded.padded], [154, 154, true]);
    const empty = (await encodeSdxlPrompts(model, '', '', false)).embeddings.cond;
    assert.deepEqual(padded.embeddings.cond.subarray(0, 77 * hidden), plain.embeddings.cond);
    assert.deepEqual(padded.embeddings.cond.subarray(77 * hidden), empty);
    assert.deepEqual(padded.embeddings.uncond, plain.embeddings.uncond);
    assert.deepEqual(padded.pooled, plain.pooled);
    const same = await encodeSdxlPrompts(model, prompt, 'blurry', true, { padConds: true });
    assert.equal(same.padded, false);

    const base = { mode: 'txt2img', seed: 3, steps: 2, width: 64, height: 64, cfg: 5, prompt, negativePrompt: negative } as const;
    const a = await engine.generate(DIR, { ...base, padConds: true });
    const b = await engine.generate(DIR, base);
    assert.equal(a.params.padConds, true);
    assert.equal(b.params.padConds, undefined);
    assert.notDeepEqual(a.image.rgb, b.image.rgb);
  });
});
