import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { HistoryStore } from '../../../electron/history/store.js';
import { HistoryError } from '../../../electron/history/errors.js';
import { encodePng, readPngMetadata } from '../../../electron/history/png.js';
import { generation, noiseImage, tempDir } from '../../support/history-fixtures.js';
import { walkPngChunks } from '../../support/history-png-chunks.js';

/** PNGs written by Pillow exactly as AUTOMATIC1111 writes them (see fixtures/make_a1111_fixtures.py). */
const FIXTURES = join(import.meta.dirname, 'fixtures');
const A1111_TXT2IMG = join(FIXTURES, 'a1111-txt2img.png');
const A1111_INPAINT = join(FIXTURES, 'a1111-inpaint-unicode.png');
const A1111_PROMPT_FEATURES = join(FIXTURES, 'a1111-prompt-features.png');

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof HistoryError, `expected a HistoryError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Rewrites one chunk's data and fixes its CRC, so only the decoder can tell something is wrong. */
function damageIdat(png: Buffer): Buffer {
  const out = Buffer.from(png);
  let at = 8;
  while (at < out.length) {
    const length = out.readUInt32BE(at);
    if (out.toString('ascii', at + 4, at + 8) === 'IDAT') {
      for (let i = at + 8 + 2; i < at + 8 + length; i += 3) out[i] = out[i]! ^ 0x5a;
      out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + length)), at + 8 + length);
      return out;
    }
    at += 12 + length;
  }
  throw new Error('no IDAT');
}

describe('import', () => {
  let dir: string;
  let cleanup: () => void;
  let store: HistoryStore;

  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    store = await HistoryStore.open(join(dir, 'history'));
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  test('an A1111 PNG (Pillow tEXt) becomes a browsable, searchable item with every field mapped', async () => {
    const item = await store.importFile(A1111_TXT2IMG);
    assert.equal(item.source, 'imported');
    assert.equal(item.mode, 'txt2img');
    assert.equal(item.params.prompt, 'masterpiece, a lighthouse on a cliff at dusk,\n(dramatic sky:1.2), <lora:add_detail:0.5>');
    assert.equal(item.params.negativePrompt, 'blurry, lowres\nwatermark');
    assert.equal(item.params.steps, 28);
    assert.equal(item.params.sampler, 'dpmpp_2m_karras', 'DPM++ 2M + Schedule type: Karras');
    assert.equal(item.params.cfg, 6.5);
    assert.equal(item.params.seed, 3141592653);
    assert.deepEqual([item.params.width, item.params.height], [64, 48]);
    assert.equal(item.params.strength, null);
    assert.deepEqual(item.model, { id: 'v1-5-pruned-emaonly', hash: '6ce0161689' });
    assert.deepEqual(item.output && [item.output.width, item.output.height], [64, 48]);
    assert.equal(item.imported?.fileName, 'a1111-txt2img.png');
    assert.match(item.imported!.parameters!, /Lora hashes: "add_detail: 7c6bdd4b4b9a, detail2: 0123456789ab"/);
    const original = readFileSync(A1111_TXT2IMG);
    assert.equal(item.output!.hash, sha256(original), 'the file is kept byte for byte, its metadata included');
    assert.ok(readFileSync(store.imagePath(item.output!.hash)).equals(original));
    assert.deepEqual(store.search({ text: 'lighthouse' }).items.map((i) => i.id), [item.id]);
    assert.deepEqual(store.search({ text: 'negative:watermark' }).items.map((i) => i.id), [item.id]);
  });

  test('an A1111 inpaint PNG with a non-Latin-1 prompt (Pillow iTXt)', async () => {
    const item = await store.importFile(A1111_INPAINT);
    assert.equal(item.mode, 'inpaint');
    assert.equal(item.params.prompt, '一只猫坐在窗台上, café au lait');
    assert.equal(item.params.negativePrompt, '');
    assert.equal(item.params.sampler, 'euler_a');
    assert.equal(item.params.strength, 0.75);
    assert.equal(item.params.maskBlur, 4);
    assert.deepEqual(store.search({ text: 'cafe' }).items.map((i) => i.id), [item.id]);
  });

  test('an A1111 PNG with weights, BREAK, Clip skip: 2 and TI hashes keeps all of it, in the row and after a reopen', async () => {
    const prompt = '(masterpiece:1.2), a red apple on a table, ((shiny)), [blurry]\nBREAK\n(green leaves:0.8), \\(still life\\)';
    const item = await store.importFile(A1111_PROMPT_FEATURES);
    for (const got of [item, store.get(item.id)]) {
      assert.equal(got.params.prompt, prompt, 'the prompt as written, brackets, escapes and BREAK included');
      assert.equal(got.params.negativePrompt, '(worst quality:1.4), EasyNegative');
      assert.equal(got.params.clipSkip, 2);
      assert.deepEqual(got.params.embeddings, [{ name: 'EasyNegative', hash: 'c74b4e810b03' }]);
      assert.deepEqual([got.params.seed, got.params.steps, got.params.cfg, got.params.sampler], [1234, 20, 7, 'euler_a']);
    }
    store.close();
    store = await HistoryStore.open(join(dir, 'history'));
    assert.equal(store.get(item.id).params.clipSkip, 2);
  });

  test('Emphasis and Pad conds: kept in the row, written to the infotext as A1111 does, and read back from A1111 text alone', async () => {
    const source = await HistoryStore.open(join(dir, 'options'));
    try {
      const original = await source.add(generation(9, { params: { prompt: '(a red apple:1.2)', emphasis: 'No norm', padConds: true } }));
      assert.equal(source.get(original.id).params.emphasis, 'No norm');
      assert.equal(source.get(original.id).params.padConds, true);
      const { files } = source.export([original.id], join(dir, 'exported-options'));
      const infotext = readPngMetadata(readFileSync(files[0]!.file)).parameters!;
      assert.match(infotext.split('\n').at(-1)!, /Emphasis: No norm, Pad conds: True/);
      const imported = await store.importFile(files[0]!.file);
      assert.deepEqual([imported.params.emphasis, imported.params.padConds], ['No norm', true]);
    } finally {
      source.close();
    }
    // An A1111 PNG (text only, no request of ours).
    const file = join(dir, 'a1111-options.png');
    const text = '(shiny:1.3) apple\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 8x8, Emphasis: Ignore, Pad conds: True';
    writeFileSync(file, await encodePng(noiseImage(8), { parameters: text }));
    const item = await store.importFile(file);
    assert.deepEqual([item.params.emphasis, item.params.padConds], ['Ignore', true]);
  });

  test("an SDXL refiner's aesthetic scores: kept in the row, written to the infotext, read back from the text alone", async () => {
    const source = await HistoryStore.open(join(dir, 'aesthetic'));
    try {
      const original = await source.add(generation(10, { params: { mode: 'img2img', strength: 0.3, aestheticScore: 7.5, negativeAestheticScore: 1 } }));
      assert.deepEqual([source.get(original.id).params.aestheticScore, source.get(original.id).params.negativeAestheticScore], [7.5, 1]);
      const { files } = source.export([original.id], join(dir, 'exported-aesthetic'));
      const infotext = readPngMetadata(readFileSync(files[0]!.file)).parameters!;
      assert.match(infotext.split('\n').at(-1)!, /Aesthetic score: 7\.5, Negative aesthetic score: 1/);
      const imported = await store.importFile(files[0]!.file);
      assert.deepEqual([imported.params.aestheticScore, imported.params.negativeAestheticScore], [7.5, 1]);
    } finally {
      source.close();
    }
    const file = join(dir, 'text-aesthetic.png');
    const text = 'a refined apple\nSteps: 20, Sampler: Euler, CFG scale: 5, Seed: 5, Size: 8x8, Denoising strength: 0.3, Aesthetic score: 8, Negative aesthetic score: 2';
    writeFileSync(file, await encodePng(noiseImage(8), { parameters: text }));
    const item = await store.importFile(file);
    assert.deepEqual([item.params.mode, item.params.aestheticScore, item.params.negativeAestheticScore], ['img2img', 8, 2]);
  });

  test('our own export imports into another store with the full request', async () => {
    const source = await HistoryStore.open(join(dir, 'other'));
    try {
      const original = await source.add(generation(5, { params: { mode: 'img2img', strength: 0.35, sampler: 'lcm', prompt: 'ünïcode ✓ prompt' } }));
      const { files } = source.export([original.id], join(dir, 'exported'));
      const imported = await store.importFile(files[0]!.file);
      assert.deepEqual(imported.params, original.params);
      assert.deepEqual(imported.model, original.model, 'the full model hash, not A1111\'s 10 digits');
      assert.equal(imported.output!.hash, original.output!.hash);
    } finally {
      source.close();
    }
  });

  test('a PNG written by `studio generate` (request {params, model: name}) imports with its model name', async () => {
    const p = generation(8).params;
    const file = join(dir, 'cli.png');
    writeFileSync(file, await encodePng(noiseImage(8), { request: { params: p, model: 'tiny-sd' } }));
    const item = await store.importFile(file);
    assert.deepEqual(item.params, p);
    assert.deepEqual(item.model, { id: 'tiny-sd', hash: null });
  });

  test('a folder imports recursively; duplicates and bad files are reported per file, with no partial rows', async () => {
    const folder = join(dir, 'outputs');
    mkdirSync(join(folder, 'sub'), { recursive: true });
    copyFileSync(A1111_TXT2IMG, join(folder, 'a.png'));
    copyFileSync(A1111_TXT2IMG, join(folder, 'sub', 'same-as-a.PNG'));
    copyFileSync(A1111_INPAINT, join(folder, 'sub', 'b.png'));
    writeFileSync(join(folder, 'notes.txt'), 'not an image, not a .png: skipped');
    writeFileSync(join(folder, 'fake.png'), 'GIF89a… a GIF renamed to .png');
    const good = readFileSync(A1111_TXT2IMG);
    writeFileSync(join(folder, 'truncated.png'), good.subarray(0, good.length - 30));
    writeFileSync(join(folder, 'bad-pixels.png'), damageIdat(good));
    writeFileSync(join(folder, 'plain.png'), await encodePng(noiseImage(1)));
    writeFileSync(join(folder, 'photo.png'), await sharp(Buffer.from(noiseImage(2).rgb), { raw: { width: 16, height: 16, channels: 3 } }).jpeg().toBuffer());

    const report = await store.import([folder, join(dir, 'does-not-exist.png')]);
    const byName = Object.fromEntries(report.results.map((r) => [r.path.split('/').at(-1)!, r]));
    assert.equal(byName['a.png']?.status, 'imported');
    assert.equal(byName['b.png']?.status, 'imported');
    const aId = byName['a.png']?.status === 'imported' ? byName['a.png'].id : -1;
    assert.deepEqual(byName['same-as-a.PNG'], { path: join(folder, 'sub', 'same-as-a.PNG'), status: 'duplicate', existingId: aId });
    const code = (name: string): string | undefined => {
      const r = byName[name];
      return r?.status === 'failed' ? r.error.code : undefined;
    };
    assert.equal(code('fake.png'), 'E_NOT_PNG');
    assert.equal(code('photo.png'), 'E_NOT_PNG', 'a JPEG named .png');
    assert.equal(code('truncated.png'), 'E_CORRUPT_IMAGE');
    assert.equal(code('bad-pixels.png'), 'E_CORRUPT_IMAGE', 'chunks intact, image data damaged');
    assert.equal(code('plain.png'), 'E_NO_METADATA');
    assert.equal(code('does-not-exist.png'), 'E_NOT_FOUND');
    assert.equal(byName['notes.txt'], undefined);
    assert.deepEqual([report.imported, report.duplicates, report.failed], [2, 1, 6]);
    for (const r of report.results) if (r.status === 'failed') assert.match(r.error.message, /\S{10,}/, 'a message a person can read');

    assert.equal(store.counts().total, 2, 'no partial rows');
    const stored = readdirSync(join(dir, 'history', 'images')).flatMap((d) => readdirSync(join(dir, 'history', 'images', d)));
    assert.equal(stored.length, 2, 'no stray files');
    assert.deepEqual(readdirSync(join(dir, 'history', 'tmp')), []);
    assert.equal(store.integrityCheck().ok, true);
  });

  test('importing a file that is already in history is E_DUPLICATE, also when it sits in the trash', async () => {
    const first = await store.importFile(A1111_TXT2IMG);
    await rejectsWith(store.importFile(A1111_TXT2IMG), 'E_DUPLICATE', new RegExp(`item ${first.id}\\.`));
    store.delete([first.id]);
    await rejectsWith(store.importFile(A1111_TXT2IMG), 'E_DUPLICATE', /in the trash/);
    assert.equal(store.counts().trash, 1);
    assert.equal(store.counts().total, 0);
    // each PNG chunk of the stored copy is intact
    assert.ok(walkPngChunks(readFileSync(store.imagePath(first.output!.hash))).every((c) => c.crcOk));
  });
});
