/** A1111 prompt features from the `studio` CLI: clip skip, embeddings folders, chunks in tokenize, infotext. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPngMetadata } from '../../../electron/history/png.js';
import { parseA1111Parameters } from '../../../electron/shared/a1111.js';
import { MODELS, PARITY } from '../../support/engine-fixtures.js';
import { studio } from '../../support/studio-cli.js';

const MODEL = join(MODELS, 'tiny-sd1-prompt');


describe('studio CLI: A1111 prompts', () => {
  let dir: string;
  let embeddings: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'studio-prompt-cli-'));
    embeddings = join(dir, 'my-embeddings');
    mkdirSync(embeddings);
    copyFileSync(join(PARITY, 'prompt-embedding.safetensors'), join(embeddings, 'shiny-style.safetensors'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('tokenize shows where an embedding from --embeddings-dir sits', async () => {
    const r = await studio('tokenize', '--model', MODEL, '--data-dir', dir, '--embeddings-dir', embeddings, 'a red apple, (shiny-style:1.2)');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.chunks[0].embeddings, [{ position: 6, name: 'shiny-style', vectors: 3 }]);
    assert.deepEqual(out.chunks[0].weights.slice(6, 9), [1.2, 1.2, 1.2]);
    assert.equal(out.tokenCount, 8);
  });

  test('generate --clip-skip 2 with an embedding: the infotext says Clip skip and TI hashes', async () => {
    const out = join(dir, 'skip.png');
    const r = await studio(
      'generate', '--model', MODEL, '--data-dir', dir, '--embeddings-dir', embeddings, '--prompt', 'a (red:1.2) apple, shiny-style BREAK leaves',
      '--steps', '2', '--seed', '3', '--clip-skip', '2', '--out', out,
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.clipSkip, 2);
    assert.equal(result.embeddings[0].name, 'shiny-style');
    const meta = readPngMetadata(readFileSync(out));
    const parsed = parseA1111Parameters(meta.parameters!);
    assert.equal(parsed.prompt, 'a (red:1.2) apple, shiny-style BREAK leaves');
    assert.equal(parsed.settings['Clip skip'], '2');
    assert.match(parsed.settings['TI hashes'] ?? '', /^shiny-style: [0-9a-f]{12}$/);
    assert.equal(parsed.params.clipSkip, 2);
  });

  test('a bad clip skip is refused before anything runs', async () => {
    const r = await studio('generate', '--model', MODEL, '--data-dir', dir, '--prompt', 'x', '--clip-skip', '0', '--out', join(dir, 'x.png'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /clipSkip must be an integer from 1 to 12/);
  });
});
