/**
 * The prompt code's text-encoder side on the tiny fixtures: the graph rewrite for clip skip and
 * textual inversion (every exporter's form of the final LayerNorm), embedding files (.safetensors as
 * kohya writes them, .pt as A1111 writes them), the width-mismatch warning, the encoded-prompt cache, and
 * the warning when a U-Net with a fixed sequence axis gets a long prompt.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { rewriteTextEncoder } from '../../../../electron/engine/model/onnx-graph.js';
import { loadTextualInversion } from '../../../../electron/engine/prompt/embeddings.js';
import { clipSkipState, LAST_HIDDEN_STATE } from '../../../../electron/engine/prompt/text-encoder.js';
import { MODELS, PARITY } from '../../../support/engine-fixtures.js';

const PROMPT_MODEL = join(MODELS, 'tiny-sd1-prompt');
const LONG = Array.from({ length: 40 }, (_, i) => `apple number ${i}`).join(', ');

function maxAbs(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('text encoder graph rewrite', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(() => engine.unloadAll());

  for (const name of ['tiny-sd1', 'tiny-sd1-fp16', 'tiny-optimum', 'tiny-sd2-v']) {
    test(`${name}: the last normed state is last_hidden_state; clip skip 2 differs`, async () => {
      const rewrite = rewriteTextEncoder(readFileSync(join(MODELS, name, 'text_encoder', 'model.onnx')));
      assert.ok(rewrite, 'rewritten');
      assert.equal(rewrite.layers, 2);
      const model = await engine.loadModel(join(MODELS, name));
      const ids = [model.tokenizer.encode('a red apple').ids];
      const plain = await model.promptEncoder.run({ ids, state: LAST_HIDDEN_STATE });
      // Through the rewritten graph: the same state, and with an (unused) extra row fed.
      const viaRewrite = await model.promptEncoder.run({
        ids,
        state: LAST_HIDDEN_STATE,
        extra: { rows: new Float32Array(rewrite.width), lookup: ids },
      });
      assert.ok(maxAbs(plain.data, viaRewrite.data) < 1e-3, 'same last_hidden_state');
      const skip2 = await model.promptEncoder.run({ ids, state: clipSkipState(2) });
      assert.ok(maxAbs(plain.data, skip2.data) > 1e-2, 'clip skip 2 gives another state');
    });
  }

  test('clip skip beyond the layers is a clear error', async () => {
    const model = await engine.loadModel(PROMPT_MODEL);
    await assert.rejects(model.promptEncoder.run({ ids: [model.tokenizer.encode('').ids], state: clipSkipState(3) }), /only 2 layers/);
  });
});

describe('textual-inversion files', () => {
  test('A1111 .pt (string_to_param) and kohya .safetensors (emb_params) give the same vectors, named by file stem', async () => {
    const st = (await loadTextualInversion(join(PARITY, 'prompt-embedding.safetensors')))!;
    const pt = (await loadTextualInversion(join(PARITY, 'prompt-embedding-a1111.pt')))!;
    assert.equal(st.name, 'prompt-embedding');
    assert.equal(pt.name, 'prompt-embedding-a1111');
    assert.deepEqual([pt.vectors, pt.width], [3, 32]);
    assert.deepEqual([st.vectors, st.width], [3, 32]);
    assert.deepEqual(pt.data, st.data);
    assert.match(st.sha256, /^[0-9a-f]{64}$/);
  });

  test('a file that is not an embedding is a clear error naming it', async () => {
    await assert.rejects(loadTextualInversion(join(MODELS, 'tiny-sd1', 'tokenizer', 'vocab.json')), { code: 'E_BAD_EMBEDDING' });
  });
});

describe('prompts in jobs', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'prompt-embeddings-'));
  after(async () => {
    await engine.unloadAll();
    rmSync(dir, { recursive: true, force: true });
  });
  const base = { mode: 'txt2img', seed: 5, steps: 2, width: 64, height: 64, cfg: 7 } as const;

  test('an embedding of another width is skipped (A1111), with a warning naming the file only when the prompt uses it', async () => {
    copyFileSync(join(PARITY, 'prompt-embedding-sd2.safetensors'), join(dir, 'prompt-embedding-sd2.safetensors'));
    const ok = await engine.generate(PROMPT_MODEL, { ...base, prompt: 'a red apple', embeddingDirs: [dir] });
    assert.equal(ok.params.embeddings, undefined);
    assert.deepEqual(ok.warnings, []);
    const prompt = 'a red apple, prompt-embedding-sd2';
    const skipped = await engine.generate(PROMPT_MODEL, { ...base, prompt, embeddingDirs: [dir] });
    assert.equal(skipped.params.embeddings, undefined);
    assert.equal(skipped.warnings.length, 1);
    assert.ok(skipped.warnings[0]!.includes('prompt-embedding-sd2.safetensors'), skipped.warnings[0]);
    assert.match(skipped.warnings[0]!, /an SD 2\.x embedding \(1024 wide\), but this model's text encoder is 32 wide: skipped/);
    // The word is read as text, as without the folder.
    const asText = await engine.generate(PROMPT_MODEL, { ...base, prompt });
    assert.deepEqual(skipped.image.rgb, asText.image.rgb);
  });

  test('an encoded prompt is cached per (clip skip, embeddings, text)', async () => {
    const model = await engine.loadModel(PROMPT_MODEL);
    const set = await model.embeddingSet([]);
    const a = await model.encodePrompt('(a red apple:1.2)', 1, set);
    assert.equal(await model.encodePrompt('(a red apple:1.2)', 1, set), a);
    assert.notEqual(await model.encodePrompt('(a red apple:1.2)', 2, set), a);
  });

  test('a U-Net with a fixed 77-token axis gets the first chunk only, and the job says so', async () => {
    const model = await engine.loadModel(PROMPT_MODEL);
    const unet = model.info.unet as { sequenceLength: number | null };
    unet.sequenceLength = 77; // as an export with a static encoder_hidden_states axis reports it
    try {
      const result = await engine.generate(PROMPT_MODEL, { ...base, prompt: LONG });
      assert.equal(result.warnings.length, 1);
      assert.match(result.warnings[0]!, /prompt needs \d+ tokens .* fixed at 77/);
      const short = await engine.generate(PROMPT_MODEL, { ...base, prompt: 'a red apple' });
      assert.deepEqual(short.warnings, []);
    } finally {
      unet.sequenceLength = null;
    }
  });
});
