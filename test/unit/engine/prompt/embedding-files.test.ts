/**
 * Textual-inversion files in every form people have them (test/fixtures/embeddings, written by
 * native-models/tools/make_ti_fixtures.py with torch.save and A1111's picture encoding): torch's zip and
 * legacy formats, the original repo's ParameterDict, diffusers' .bin, A1111's PNG card (text chunk and
 * edges) and the edges alone in a PNG and a lossless WebP; pickles that call anything are refused.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Engine } from '../../../../electron/engine/engine.js';
import { loadEmbeddingFolder, loadTextualInversion } from '../../../../electron/engine/prompt/embeddings.js';
import { embeddingNames } from '../../../../electron/model-library/embeddings.js';
import { FIXTURES, MODELS } from '../../../support/engine-fixtures.js';

const DIR = join(FIXTURES, 'embeddings');
const file = (name: string): string => join(DIR, name);

describe('textual-inversion file formats', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ti-files-'));
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  after(async () => {
    await engine.unloadAll();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('every format gives the same 2×32 vectors; torch files are named by stem, pictures by the name inside', async () => {
    const reference = (await loadTextualInversion(file('ti-a1111.pt')))!;
    assert.deepEqual([reference.name, reference.vectors, reference.width], ['ti-a1111', 2, 32]);
    const expected: Record<string, string> = {
      'ti-a1111-legacy.pt': 'ti-a1111-legacy',
      'ti-paramdict-legacy.pt': 'ti-paramdict-legacy',
      'ti-diffusers.bin': 'ti-diffusers',
      'ti-card.png': 'ti-card-name',
      'ti-stego.png': 'ti-card-name',
      'ti-stego.webp': 'ti-card-name',
    };
    for (const [name, word] of Object.entries(expected)) {
      const e = await loadTextualInversion(file(name));
      assert.ok(e, name);
      assert.equal(e.name, word, name);
      assert.deepEqual([e.vectors, e.width], [2, 32], name);
      assert.deepEqual(e.data, reference.data, `${name}: the same vectors`);
      assert.match(e.sha256, /^[0-9a-f]{64}$/);
    }
  });

  test('the picture card reads the same from its edges when a tool strips the text chunk', async () => {
    const card = await loadTextualInversion(file('ti-card.png'));
    const edges = await loadTextualInversion(file('ti-stego.png'));
    assert.deepEqual(edges!.data, card!.data);
    // A re-encode that keeps the pixels (sharp, no metadata) still carries it.
    const copy = join(tmp, 'card-copy.png');
    writeFileSync(copy, await sharp(readFileSync(file('ti-card.png'))).png().toBuffer());
    assert.deepEqual((await loadTextualInversion(copy))!.data, card!.data);
  });

  for (const evil of ['evil-zip.pt', 'evil-legacy.pt']) {
    test(`${evil}: a pickle that calls os.system is refused, naming the file and the call`, async () => {
      await assert.rejects(loadTextualInversion(file(evil)), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_BAD_EMBEDDING');
        assert.ok(err.message.includes(evil), err.message);
        assert.match(err.message, /(posix|os|nt)\.system.*refused/);
        return true;
      });
    });
  }

  test('a truncated legacy file and a tar-era file are clear errors', async () => {
    const bytes = readFileSync(file('ti-a1111-legacy.pt'));
    writeFileSync(join(tmp, 'cut.pt'), bytes.subarray(0, bytes.length - 40));
    await assert.rejects(loadTextualInversion(join(tmp, 'cut.pt')), (err: Error & { code?: string }) => err.code === 'E_BAD_EMBEDDING' && /cut\.pt/.test(err.message));
    const tar = Buffer.alloc(1024);
    tar.write('ustar', 257);
    writeFileSync(join(tmp, 'old.pt'), tar);
    await assert.rejects(loadTextualInversion(join(tmp, 'old.pt')), /tar archive/);
  });

  test('preview pictures and pictures without data are not embeddings: skipped, not errors', async () => {
    const folder = mkdtempSync(join(tmp, 'folder-'));
    const picture = await sharp({ create: { width: 24, height: 16, channels: 3, background: { r: 200, g: 120, b: 40 } } }).png().toBuffer();
    writeFileSync(join(folder, 'just-a-picture.png'), picture);
    writeFileSync(join(folder, 'ti-a1111.preview.png'), picture);
    copyFileSync(file('ti-a1111.pt'), join(folder, 'ti-a1111.pt'));
    copyFileSync(file('ti-stego.webp'), join(folder, 'card.webp'));
    copyFileSync(file('evil-zip.pt'), join(folder, 'evil-zip.pt'));
    assert.equal(await loadTextualInversion(join(folder, 'just-a-picture.png')), null);
    assert.equal(await loadTextualInversion(join(folder, 'ti-a1111.preview.png')), null);
    const set = await loadEmbeddingFolder([folder], 32);
    assert.deepEqual(set.usable.map((e) => e.name).sort(), ['ti-a1111', 'ti-card-name']);
    assert.deepEqual(set.unreadable.map((u) => u.file), [join(folder, 'evil-zip.pt')]);
    assert.deepEqual(await embeddingNames(folder), ['ti-a1111', 'ti-card-name']);
  });

  test('a picture embedding conditions a prompt exactly as the same vectors from a .pt', async () => {
    const folder = mkdtempSync(join(tmp, 'prompt-'));
    copyFileSync(file('ti-a1111.pt'), join(folder, 'ti-a1111.pt'));
    copyFileSync(file('ti-card.png'), join(folder, 'ti-card.png'));
    const model = await engine.loadModel(join(MODELS, 'tiny-sd1-prompt'));
    const set = await model.embeddingSet([folder]);
    const fromPt = await model.encodePrompt('a red apple, (ti-a1111:1.1), shiny', 1, set);
    const fromPng = await model.encodePrompt('a red apple, (ti-card-name:1.1), shiny', 1, set);
    assert.deepEqual(fromPng.embeddings.map((e) => e.name), ['ti-card-name']);
    assert.deepEqual(fromPng.data, fromPt.data);
  });
});
