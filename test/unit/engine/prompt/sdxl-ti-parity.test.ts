/**
 * Textual inversion on SDXL against diffusers itself (native-models/tools/make_sdxl_ti_fixtures.py): an SDXL
 * embedding file (`clip_l` + `clip_g`, as A1111 and Civitai ship them) loaded by diffusers'
 * StableDiffusionXLPipeline with `load_textual_inversion` once per encoder (clip_l → text_encoder, clip_g →
 * text_encoder_2) and by the engine, from the same latents on tiny-sdxl. Also: the embedding moves the
 * picture; an embedding made for the other family (SD 1.x on SDXL, SDXL on SD 1.x) is skipped, as A1111
 * skips it, with a warning naming the file, and the word is read as text; the prompt box counts its vectors.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { describePrompt, EmbeddingVocabulary } from '../../../../electron/engine/prompt/chunker.js';
import { embeddingFits, loadEmbeddingFolder, loadTextualInversion } from '../../../../electron/engine/prompt/embeddings.js';
import { ClipTokenizer } from '../../../../electron/engine/tokenizer/clip-tokenizer.js';
import { embeddingNames } from '../../../../electron/model-library/embeddings.js';
import type { RgbImage } from '../../../../electron/engine/tensor/image.js';
import { FIXTURES, MODELS, type ReferenceCase, assertMatchesReference, caseRequest, readCases } from '../../../support/engine-fixtures.js';

interface SdxlTiCase extends ReferenceCase {
  embedding: string;
  without_embedding: { prompt: string; negative: string; mean_levels: number };
}

const cases = readCases<SdxlTiCase>('sdxl-ti-cases.json');
const SDXL = join(MODELS, 'tiny-sdxl');
const SD1 = join(MODELS, 'tiny-sd1-named');
const SDXL_EMBEDDING = join(FIXTURES, 'embeddings-sdxl', 'ti-sdxl.safetensors');
const SD1_EMBEDDING = join(FIXTURES, 'embeddings', 'ti-diffusers.bin');

function meanDiff(a: RgbImage, b: RgbImage): number {
  assert.equal(a.rgb.length, b.rgb.length);
  let sum = 0;
  for (let i = 0; i < a.rgb.length; i++) sum += Math.abs(a.rgb[i]! - b.rgb[i]!);
  return sum / a.rgb.length;
}

describe('textual inversion on SDXL: clip_l on encoder 1, clip_g on encoder 2', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'sdxl-ti-'));
  /** A folder holding only `file`. */
  const folderWith = (file: string): string => {
    const folder = mkdtempSync(join(dir, 'embeddings-'));
    copyFileSync(file, join(folder, basename(file)));
    return folder;
  };
  after(async () => {
    await engine.unloadAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the fixture is an SDXL file: clip_l and clip_g, two vectors each, as wide as tiny-sdxl\'s encoders', async () => {
    const e = (await loadTextualInversion(SDXL_EMBEDDING))!;
    assert.deepEqual([e.name, e.vectors, e.width, e.clipG?.width], ['ti-sdxl', 2, 32, 48]);
    assert.ok(cases.some((c) => c.prompt.includes('ti-sdxl')) && cases.some((c) => c.negative.includes('ti-sdxl')), 'in the prompt and in the negative');
  });

  for (const c of cases) {
    test(`${c.name}: parity with diffusers load_textual_inversion, and the embedding moves the picture`, async (t) => {
      const embeddingDirs = [folderWith(join(FIXTURES, c.embedding))];
      const result = await engine.generate(SDXL, { mode: 'txt2img', ...caseRequest(c), embeddingDirs });
      assert.deepEqual(result.warnings, []);
      assert.deepEqual(result.params.embeddings?.map((e) => e.name), ['ti-sdxl']);
      await assertMatchesReference(t, result.image, c, 2);

      // Without the folder the word is plain text: the picture differs as much as diffusers' does.
      const plain = await engine.generate(SDXL, { mode: 'txt2img', ...caseRequest(c) });
      const moved = meanDiff(result.image, plain.image);
      t.diagnostic(`the embedding moves the picture ${moved.toFixed(1)}/255 (mean) from the word read as text`);
      assert.ok(moved > 2, `the embedding moves the picture only ${moved.toFixed(2)}/255`);
    });
  }

  test('an SD 1.x embedding named in an SDXL prompt is skipped with a warning naming the file; the word stays text', async () => {
    const c = cases[0]!;
    const prompt = 'a red apple, ti-diffusers, shiny';
    const embeddingDirs = [folderWith(SD1_EMBEDDING)];
    const skipped = await engine.generate(SDXL, { mode: 'txt2img', ...caseRequest(c), prompt, embeddingDirs });
    assert.equal(skipped.params.embeddings, undefined);
    assert.equal(skipped.warnings.length, 1);
    assert.match(skipped.warnings[0]!, /ti-diffusers\.bin: the embedding "ti-diffusers" is .*\(32 wide\), but this model's text encoders are 32 \+ 48 wide: skipped/);
    const asText = await engine.generate(SDXL, { mode: 'txt2img', ...caseRequest(c), prompt });
    assert.deepEqual(skipped.image.rgb, asText.image.rgb);
    // Not named: no warning.
    const unnamed = await engine.generate(SDXL, { mode: 'txt2img', ...caseRequest(c), prompt: 'a red apple', embeddingDirs });
    assert.deepEqual(unnamed.warnings, []);
  });

  test('an SDXL embedding named in an SD 1.x prompt is skipped with a warning naming the file; the word stays text', async () => {
    const request = { mode: 'txt2img', prompt: 'a red apple, ti-sdxl, shiny', seed: 5, steps: 2, width: 64, height: 64, cfg: 7 } as const;
    const skipped = await engine.generate(SD1, { ...request, embeddingDirs: [folderWith(SDXL_EMBEDDING)] });
    assert.equal(skipped.params.embeddings, undefined);
    assert.equal(skipped.warnings.length, 1);
    assert.match(skipped.warnings[0]!, /ti-sdxl\.safetensors: the embedding "ti-sdxl" is an SDXL embedding \(clip_l 32 \+ clip_g 48 wide\), but this model's text encoder is 32 wide: skipped/);
    const asText = await engine.generate(SD1, request);
    assert.deepEqual(skipped.image.rgb, asText.image.rgb);
  });

  test('which family an embedding fits: SDXL files SDXL base only (not the bigG-only refiner), single tensors SD 1.x/2.x', async () => {
    const sdxl = (await loadTextualInversion(SDXL_EMBEDDING))!;
    const sd1 = (await loadTextualInversion(SD1_EMBEDDING))!;
    assert.deepEqual([[32], [32, 48], [48]].map((w) => embeddingFits(sdxl, w)), [false, true, false]);
    assert.deepEqual([[32], [32, 48], [48]].map((w) => embeddingFits(sd1, w)), [true, false, false]);
  });

  test('an SDXL file whose clip_l and clip_g differ in vector count is a clear error naming it', async () => {
    // safetensors by hand: u64 header length, JSON header, then the float32 data.
    const header = JSON.stringify({ clip_g: { dtype: 'F32', shape: [2, 48], data_offsets: [0, 384] }, clip_l: { dtype: 'F32', shape: [1, 32], data_offsets: [384, 512] } });
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(header.length));
    const file = join(dir, 'uneven.safetensors');
    writeFileSync(file, Buffer.concat([head, Buffer.from(header), Buffer.alloc(512)]));
    await assert.rejects(loadTextualInversion(file), (err: Error & { code?: string }) => err.code === 'E_BAD_EMBEDDING' && /uneven\.safetensors: clip_l holds 1 vectors but clip_g 2/.test(err.message));
  });

  test('the prompt box counts an SDXL embedding as its vectors and offers it as a completion', async () => {
    const tokenizer = await ClipTokenizer.fromFolder(join(SDXL, 'tokenizer'));
    const folder = folderWith(SDXL_EMBEDDING);
    const found = await loadEmbeddingFolder([folder], null);
    const vocabulary = new EmbeddingVocabulary(tokenizer, found.usable);
    const withIt = describePrompt('a red apple, ti-sdxl', tokenizer, { embeddings: vocabulary });
    const base = describePrompt('a red apple,', tokenizer);
    assert.equal(withIt.tokenCount, base.tokenCount + 2);
    assert.deepEqual(withIt.chunks[0]!.embeddings.map((e) => [e.name, e.vectors]), [['ti-sdxl', 2]]);
    assert.deepEqual(await embeddingNames(folder), ['ti-sdxl']);
  });
});
