/**
 * The engine's prompt parser and chunker against goldens from our Python port of A1111
 * (native-models/tools/make_prompt_goldens.py, transformers' CLIPTokenizer on the full CLIP vocabulary):
 * fragments and weights, and per chunk the 77 ids, multipliers and embedding placements, identical.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePromptAttention } from '../../../../electron/engine/prompt/attention.js';
import { EmbeddingVocabulary, tokenizePrompt, type ChunkTokenizer } from '../../../../electron/engine/prompt/chunker.js';
import { ClipTokenizer } from '../../../../electron/engine/tokenizer/clip-tokenizer.js';
import { FIXTURES, REPO_ROOT } from '../../../support/engine-fixtures.js';

/** The full CLIP vocabulary, kept in the repository for the converter. */
const CLIP_VOCAB_DIR = join(REPO_ROOT, 'native-models', 'tools', 'convert_lib', 'clip_tokenizer');

interface GoldenCase {
  prompt: string;
  padding: 'sd1' | 'sd2';
  commaBacktrack: number;
  embeddings: { name: string; vectors: number }[];
  parsed: [string, number][];
  tokenCount: number;
  chunks: { ids: number[]; multipliers: number[]; fixes: { offset: number; name: string }[] }[];
}

const goldens = JSON.parse(readFileSync(join(FIXTURES, 'prompts', 'goldens.json'), 'utf8')) as {
  cases: GoldenCase[];
  errors: { prompt: string }[];
};

let sd1: ClipTokenizer;
let sd2: ChunkTokenizer;

before(async () => {
  sd1 = await ClipTokenizer.fromFolder(CLIP_VOCAB_DIR);
  const vocab = JSON.parse(readFileSync(join(CLIP_VOCAB_DIR, 'vocab.json'), 'utf8')) as Record<string, number>;
  sd2 = new ClipTokenizer({ vocab, merges: readFileSync(join(CLIP_VOCAB_DIR, 'merges.txt'), 'utf8'), padToken: '!' });
});

describe('A1111 prompt goldens', () => {
  test('cover every rule with at least 60 prompts', () => {
    assert.ok(goldens.cases.length >= 60, `${goldens.cases.length} cases`);
    assert.ok(goldens.cases.some((c) => c.padding === 'sd2'));
    assert.ok(goldens.cases.some((c) => c.embeddings.length > 0));
    assert.ok(goldens.cases.some((c) => c.chunks.length >= 3));
  });

  for (const [i, c] of goldens.cases.entries()) {
    const label = `#${i} ${c.padding} ${JSON.stringify(c.prompt.length > 60 ? `${c.prompt.slice(0, 57)}...` : c.prompt)}`;
    test(label, () => {
      assert.deepEqual(
        parsePromptAttention(c.prompt).map((f) => [f.text, f.weight]),
        c.parsed,
        'parsed fragments',
      );
      const tokenizer = c.padding === 'sd2' ? sd2 : sd1;
      const embeddings = c.embeddings.length > 0 ? new EmbeddingVocabulary(tokenizer, c.embeddings) : undefined;
      const got = tokenizePrompt(c.prompt, tokenizer, { commaBacktrack: c.commaBacktrack, ...(embeddings ? { embeddings } : {}) });
      assert.equal(got.tokenCount, c.tokenCount, 'token count');
      assert.equal(got.chunks.length, c.chunks.length, 'chunk count');
      got.chunks.forEach((chunk, k) => {
        const want = c.chunks[k]!;
        assert.deepEqual(chunk.ids, want.ids, `chunk ${k} ids`);
        assert.deepEqual(chunk.multipliers, want.multipliers, `chunk ${k} multipliers`);
        assert.deepEqual(
          chunk.fixes.map((f) => ({ offset: f.offset, name: f.embedding.name })),
          want.fixes,
          `chunk ${k} embedding fixes`,
        );
      });
    });
  }

  test('a weight Python cannot parse fails the prompt, as in A1111', () => {
    assert.ok(goldens.errors.length >= 3);
    for (const { prompt } of goldens.errors) {
      assert.throws(() => parsePromptAttention(prompt), { code: 'E_INVALID_REQUEST' }, prompt);
    }
  });
});
