/**
 * A1111's "Emphasis" options (modules/sd_emphasis.py) and "Pad conds" (sd_samplers_cfg_denoiser.py
 * `pad_cond_uncond`) on the tiny prompt fixture: each option is pinned against an equivalent the
 * engine already matches torch on (parity.test.ts), so no new reference is needed:
 *   - Ignore: "(red:1.5) apple" encodes exactly as "red apple" (brackets parsed, weights dropped);
 *   - None: "(red:1.5) apple" encodes as the escaped text "\(red:1.5\) apple" (brackets are text; BREAK too);
 *   - No norm: Original's states before the mean restore, i.e. Original × (mean after / mean before);
 *   - Pad conds: the shorter text's states followed by the empty prompt's 77 states.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { applyEmphasis } from '../../../../electron/engine/prompt/conditioning.js';
import { tokenizePrompt } from '../../../../electron/engine/prompt/chunker.js';
import { padWithEmpty } from '../../../../electron/engine/pipelines/components.js';
import { MODELS } from '../../../support/engine-fixtures.js';

const PROMPT_MODEL = join(MODELS, 'tiny-sd1-prompt');
const CHUNK = 77;

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test('applyEmphasis: No norm multiplies each token by its weight; Ignore and None leave the states alone', () => {
  const z = Float32Array.from([1, 2, 3, 4, 5, 6]); // 3 tokens of width 2
  const w = [1, 2, 0.5];
  const noNorm = z.slice();
  applyEmphasis('No norm', noNorm, w, 2);
  assert.deepEqual([...noNorm], [1, 2, 6, 8, 2.5, 3]);
  for (const mode of ['Ignore', 'None'] as const) {
    const same = z.slice();
    applyEmphasis(mode, same, w, 2);
    assert.deepEqual([...same], [...z]);
  }
  const original = z.slice();
  applyEmphasis('Original', original, w, 2);
  const ratio = 21 / 22.5; // mean before / mean after weighting
  assert.ok(maxAbs(original, Float32Array.from([...noNorm].map((v) => v * ratio))) < 1e-6);
});

describe('Emphasis and Pad conds on the tiny prompt model', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(() => engine.unloadAll());

  test('Ignore drops the weights; None reads brackets and BREAK as text; No norm skips the mean restore', async () => {
    const model = await engine.loadModel(PROMPT_MODEL);
    const set = await model.embeddingSet([]);
    const weighted = '(red:1.5) apple, [green] leaf';
    const plain = await model.encodePrompt('red apple, green leaf', 1, set);
    assert.equal(maxAbs((await model.encodePrompt(weighted, 1, set, 'Ignore')).data, plain.data), 0);

    const literal = await model.encodePrompt('\\(red:1.5\\) apple, \\[green\\] leaf', 1, set);
    assert.equal(maxAbs((await model.encodePrompt(weighted, 1, set, 'None')).data, literal.data), 0);
    assert.equal((await model.encodePrompt('red apple BREAK leaf', 1, set, 'None')).chunks, 1, 'BREAK is a word');
    assert.equal((await model.encodePrompt('red apple BREAK leaf', 1, set)).chunks, 2);
    const { chunks } = tokenizePrompt('(red:1.5) apple BREAK leaf', model.tokenizer, { parseAttention: false });
    assert.ok(chunks[0]!.multipliers.every((m) => m === 1));

    const original = await model.encodePrompt(weighted, 1, set);
    const noNorm = await model.encodePrompt(weighted, 1, set, 'No norm');
    const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);
    // Original = No norm × (mean of the unweighted states / mean of the weighted ones).
    const scale = sum(plain.data) / sum(noNorm.data);
    assert.ok(maxAbs(original.data, noNorm.data.map((v) => v * scale)) < 1e-5);
    assert.ok(maxAbs(original.data, noNorm.data) > 1e-4, 'the restore changes something');
    // Cached apart: each option is its own entry.
    assert.notEqual(await model.encodePrompt(weighted, 1, set, 'No norm'), original);
  });

  test('Pad conds: the shorter gets the empty prompt’s chunk repeated, the run records it, and only when lengths differ', async () => {
    const model = await engine.loadModel(PROMPT_MODEL);
    const set = await model.embeddingSet([]);
    const short = await model.encodePrompt('a red apple', 1, set);
    const empty = await model.encodePrompt('', 1, set);
    const padded = padWithEmpty(short, empty, 3);
    assert.equal(padded.tokens, 3 * CHUNK);
    assert.deepEqual(padded.data.subarray(0, CHUNK * short.width), short.data);
    assert.deepEqual(padded.data.subarray(2 * CHUNK * short.width), empty.data);

    const request = {
      mode: 'txt2img' as const,
      prompt: 'a red apple',
      negativePrompt: Array.from({ length: 40 }, (_, i) => `blurry ${i}`).join(', '),
      seed: 7,
      steps: 2,
      width: 64,
      height: 64,
    };
    const plainRun = await engine.generate(PROMPT_MODEL, request);
    assert.equal(plainRun.params.padConds, undefined);
    const paddedRun = await engine.generate(PROMPT_MODEL, { ...request, padConds: true });
    assert.equal(paddedRun.params.padConds, true);
    assert.notDeepEqual(paddedRun.image.rgb, plainRun.image.rgb, 'padding changes the picture, as in A1111');
    const sameLength = await engine.generate(PROMPT_MODEL, { ...request, negativePrompt: 'blurry', padConds: true });
    assert.equal(sameLength.params.padConds, undefined, 'nothing to pad');
    const emphasised = await engine.generate(PROMPT_MODEL, { ...request, prompt: '(a red apple:1.3)', emphasis: 'No norm' });
    assert.equal(emphasised.params.emphasis, 'No norm');
    const defaultRun = await engine.generate(PROMPT_MODEL, { ...request, emphasis: 'Original' });
    assert.equal(defaultRun.params.emphasis, undefined, 'the default is not recorded');
  });
});
