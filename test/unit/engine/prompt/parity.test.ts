/**
 * A1111 prompt conditioning end to end on test/fixtures/models/tiny-sd1-prompt, against torch references
 * that implement the same maths (native-models/tools/make_prompt_parity.py): weights, BREAK, 2- and
 * 3-chunk prompts, prompt and negative of different chunk counts (two U-Net calls), clip skip 2 and a
 * textual-inversion embedding, all from the same latents.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { FIXTURES, PARITY, type ReferenceCase, assertMatchesReference, caseRequest, readCases } from '../../../support/engine-fixtures.js';

interface PromptCase extends ReferenceCase {
  clip_skip: number;
  embedding: string | null;
  chunks: { prompt: number; negative: number };
}

const cases = readCases<PromptCase>('prompt-cases.json');

describe('A1111 prompt conditioning: parity with the torch reference', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const embeddingDir = mkdtempSync(join(tmpdir(), 'prompt-embeddings-'));
  after(async () => {
    await engine.unloadAll();
    rmSync(embeddingDir, { recursive: true, force: true });
  });

  test('the cases cover every feature', () => {
    assert.ok(cases.some((c) => c.prompt.includes('BREAK')));
    assert.ok(cases.some((c) => c.chunks.prompt === 2));
    assert.ok(cases.some((c) => c.chunks.prompt === 3));
    assert.ok(cases.some((c) => c.chunks.prompt !== c.chunks.negative));
    assert.ok(cases.some((c) => c.clip_skip === 2));
    assert.ok(cases.some((c) => c.embedding !== null));
  });

  for (const c of cases) {
    test(`${c.name}: ${c.chunks.prompt}/${c.chunks.negative} chunks, clip skip ${c.clip_skip}${c.embedding ? ', embedding' : ''}`, async (t) => {
      const embeddingDirs: string[] = [];
      if (c.embedding) {
        copyFileSync(join(PARITY, c.embedding), join(embeddingDir, c.embedding));
        embeddingDirs.push(embeddingDir);
      }
      const result = await engine.generate(join(FIXTURES, c.model), {
        mode: 'txt2img',
        ...caseRequest(c),
        ...(c.clip_skip > 1 ? { clipSkip: c.clip_skip } : {}),
        embeddingDirs,
      });
      assert.deepEqual(result.warnings, []);
      if (c.embedding) assert.deepEqual(result.params.embeddings?.map((e) => e.name), ['prompt-embedding']);
      await assertMatchesReference(t, result.image, c, 2);
    });
  }
});
