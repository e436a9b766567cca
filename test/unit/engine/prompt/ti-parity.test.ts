/**
 * Textual inversion against diffusers itself (native-models/tools/make_ti_fixtures.py): the same embedding
 * file loaded by `load_textual_inversion` in diffusers' StableDiffusionPipeline and by the engine, and the
 * engine's clip skip and embeddings on a text encoder a LoRA patched (`load_lora_weights` + `fuse_lora` of
 * the text encoder: the engine's `<lora:tiny-kohya:1:0>`; diffusers `clip_skip` = A1111's − 1), all from the
 * same latents on tiny-sd1-named.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { FIXTURES, type ReferenceCase, assertMatchesReference, caseRequest, readCases } from '../../../support/engine-fixtures.js';

interface TiCase extends ReferenceCase {
  clip_skip: number;
  embedding: string | null;
  lora: string | null;
}

const cases = readCases<TiCase>('ti-cases.json');

describe('textual inversion: parity with diffusers load_textual_inversion', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'ti-parity-'));
  after(async () => {
    await engine.unloadAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the cases cover a legacy .pt alone, and clip skip and a .bin embedding on a LoRA-patched text encoder', () => {
    assert.ok(cases.some((c) => c.embedding?.endsWith('.pt') && !c.lora));
    assert.ok(cases.some((c) => c.lora && c.clip_skip === 2 && !c.embedding));
    assert.ok(cases.some((c) => c.lora && c.clip_skip === 2 && c.embedding?.endsWith('.bin')));
  });

  for (const c of cases) {
    test(`${c.name}`, async (t) => {
      // A folder with the case's file only (the fixture folder also holds files the engine must refuse).
      const embeddingDirs: string[] = [];
      if (c.embedding) {
        const folder = mkdtempSync(join(dir, 'embeddings-'));
        copyFileSync(join(FIXTURES, 'embeddings', c.embedding), join(folder, c.embedding));
        embeddingDirs.push(folder);
      }
      const result = await engine.generate(join(FIXTURES, c.model), {
        mode: 'txt2img',
        ...caseRequest(c),
        ...(c.clip_skip > 1 ? { clipSkip: c.clip_skip } : {}),
        embeddingDirs,
        ...(c.lora ? { loraDirs: [join(FIXTURES, 'loras')] } : {}),
      });
      assert.deepEqual(result.warnings, []);
      if (c.embedding) assert.deepEqual(result.params.embeddings?.map((e) => e.name), [c.embedding.replace(/\.[^.]+$/, '')]);
      if (c.lora) assert.deepEqual(result.loras?.map((l) => l.name), ['tiny-kohya']);
      await assertMatchesReference(t, result.image, c, 2);
    });
  }
});
