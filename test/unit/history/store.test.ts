import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { HistoryStore } from '../../../electron/history/store.js';
import { HistoryError } from '../../../electron/history/errors.js';
import { encodePng, readPngMetadata } from '../../../electron/history/png.js';
import { parseA1111Parameters } from '../../../electron/shared/a1111.js';
import { pngTextChunks } from '../../support/history-png-chunks.js';
import { MODEL, generation, noiseImage, tempDir } from '../../support/history-fixtures.js';

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof HistoryError && err.code === code);
}

function throwsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof HistoryError && err.code === code);
}

describe('HistoryStore', () => {
  let dir: string;
  let cleanup: () => void;
  let store: HistoryStore;
  let now: number;

  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    now = Date.UTC(2025, 0, 1);
    store = await HistoryStore.open(dir, { clock: () => now });
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  test('add stores the PNG content-addressed with a thumbnail and every field of the row', async () => {
    const item = await store.add(generation(7, { tags: ['coast', ' night  sky '], favorite: true }));
    assert.equal(item.id, 1);
    assert.equal(item.createdAt, now);
    assert.equal(item.source, 'generated');
    assert.equal(item.status, 'succeeded');
    assert.deepEqual(item.model, MODEL);
    assert.equal(item.params.seed, 7);
    assert.equal(item.params.sampler, 'euler_a');
    assert.equal(item.executionProvider, 'cpu');
    assert.equal(item.timings?.denoiseMs, 100);
    assert.deepEqual(item.tags, ['coast', 'night sky']);
    assert.equal(item.favorite, true);

    const file = store.imagePath(item.output!.hash);
    assert.equal(file, join(dir, 'images', item.output!.hash.slice(0, 2), `${item.output!.hash}.png`));
    assert.equal(sha256(file), item.output!.hash, 'the file name is the sha256 of its bytes');
    const pixels = await sharp(file).raw().toBuffer();
    assert.deepEqual(new Uint8Array(pixels), noiseImage(7).rgb);

    const thumb = await sharp(store.thumbnailPath(item.output!.hash)).metadata();
    assert.equal(thumb.format, 'webp');

    // The PNG carries the A1111 text and our request, read by the independent reader.
    const chunks = Object.fromEntries(pngTextChunks(readFileSync(file)).map((c) => [c.keyword, c.text]));
    const a1111 = parseA1111Parameters(chunks['parameters']!);
    assert.equal(a1111.prompt, 'a lighthouse on a cliff');
    assert.equal(a1111.params.seed, 7);
    assert.equal(a1111.model.name, MODEL.id);
    const request = JSON.parse(chunks['latent-studio']!) as { params: { seed: number }; model: typeof MODEL };
    assert.equal(request.params.seed, 7);
    assert.deepEqual(request.model, MODEL);
    assert.equal(readdirSync(join(dir, 'tmp')).length, 0, 'no temp file is left');
  });

  test('inputs are stored content-addressed and an inpaint chain forms a lineage tree', async () => {
    const root = await store.add(generation(1));
    const child = await store.add(generation(2, {
      params: { mode: 'inpaint', strength: 0.8 },
      parentId: root.id,
      initImage: { hash: root.output!.hash },
      mask: noiseImage(99),
    }));
    const sibling = await store.add(generation(3, { params: { mode: 'img2img', strength: 0.5 }, parentId: root.id, initImage: noiseImage(1) }));
    const grandchild = await store.add(generation(4, { params: { mode: 'inpaint' }, parentId: child.id, mask: { png: readFileSync(store.imagePath(child.mask!.hash)) } }));

    assert.equal(child.initImage!.hash, root.output!.hash);
    // Raw inputs are stored as plain PNGs (no metadata): same pixels, same bytes, same hash.
    assert.equal(sibling.initImage!.hash, createHash('sha256').update(await encodePng(noiseImage(1))).digest('hex'));
    assert.notEqual(sibling.initImage!.hash, root.output!.hash, 'outputs carry their parameters, inputs do not');
    assert.ok(existsSync(store.imagePath(child.mask!.hash)));
    assert.equal(grandchild.mask!.hash, child.mask!.hash);

    const fromRoot = store.lineage(root.id);
    assert.deepEqual(fromRoot.ancestors, []);
    assert.deepEqual(fromRoot.descendants.map((d) => [d.depth, d.item.id]), [[1, child.id], [1, sibling.id], [2, grandchild.id]]);
    const fromGrandchild = store.lineage(grandchild.id);
    assert.deepEqual(fromGrandchild.ancestors.map((a) => a.id), [child.id, root.id]);
    assert.deepEqual(fromGrandchild.descendants, []);

    await rejectsWith(store.add(generation(5, { parentId: 999 })), 'E_NOT_FOUND');
    await rejectsWith(store.add(generation(5, { initImage: { hash: 'f'.repeat(64) } })), 'E_NOT_FOUND');
    throwsWith(() => store.lineage(999), 'E_NOT_FOUND');
  });

  test('bad requests are refused before anything is written', async () => {
    await rejectsWith(store.add(generation(1, { params: { steps: 0 } })), 'E_INVALID');
    await rejectsWith(store.add({ ...generation(1), output: undefined }), 'E_INVALID');
    await rejectsWith(store.add(generation(1, { tags: ['x'.repeat(65)] })), 'E_INVALID');
    await rejectsWith(store.add(generation(1, { mask: { png: Buffer.from('not a png') } })), 'E_NOT_PNG');
    assert.equal(store.counts().total, 0);
    assert.equal(readdirSync(join(dir, 'images')).length, 0);
  });

  test('a failed run is recorded without an image', async () => {
    const failed = await store.add({ ...generation(1), output: undefined, status: 'failed', error: 'out of memory' });
    assert.equal(failed.output, null);
    assert.equal(failed.error, 'out of memory');
    throwsWith(() => store.export([failed.id], join(dir, 'out')), 'E_INVALID');
  });

  test('newest-first pages with keyset cursors see every item exactly once, even with inserts between pages', async () => {
    for (let i = 1; i <= 25; i++) await store.add(generation(i));
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = store.page({ limit: 10, cursor });
      seen.push(...page.items.map((it) => it.id));
      cursor = page.nextCursor;
      if (pages++ === 0) await store.add(generation(100)); // a new item arrives: it belongs before page 1
    } while (cursor !== null);
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => 25 - i));
    assert.equal(pages, 3);
    throwsWith(() => store.page({ limit: 0 }), 'E_INVALID');
    throwsWith(() => store.page({ cursor: 'nope' }), 'E_INVALID');
  });

  test('filters: favorite, model, mode, date range', async () => {
    const day = 24 * 3600 * 1000;
    const a = await store.add(generation(1, { favorite: true }));
    now += day;
    const b = await store.add(generation(2, { model: { id: 'other', hash: 'd'.repeat(64) }, params: { mode: 'img2img', strength: 0.5 } }));
    now += day;
    const c = await store.add(generation(3, { params: { mode: 'inpaint' } }));
    const ids = (filter: Parameters<HistoryStore['page']>[0]): number[] => store.page(filter).items.map((it) => it.id);
    assert.deepEqual(ids({ filter: { favorite: true } }), [a.id]);
    assert.deepEqual(ids({ filter: { favorite: false } }), [c.id, b.id]);
    assert.deepEqual(ids({ filter: { modelId: 'other' } }), [b.id]);
    assert.deepEqual(ids({ filter: { mode: 'inpaint' } }), [c.id]);
    assert.deepEqual(ids({ filter: { createdFrom: a.createdAt + 1, createdTo: c.createdAt } }), [b.id]);
    assert.deepEqual(ids({ filter: { createdFrom: b.createdAt } }), [c.id, b.id]);
    store.setFavorite([b.id, c.id], true);
    store.setFavorite(a.id, false);
    assert.deepEqual(ids({ filter: { favorite: true } }), [c.id, b.id]);
    throwsWith(() => store.setFavorite([c.id, 999], false), 'E_NOT_FOUND');
    assert.equal(store.get(c.id).favorite, true, 'a failed batch changes nothing');
  });

  test('full-text search over prompt, negative prompt and tags, with prefixes, phrases, fields and exclusions', async () => {
    const fox = await store.add(generation(1, { params: { prompt: 'a red fox jumping over snow', negativePrompt: 'blurry, watermark' } }));
    const owl = await store.add(generation(2, { params: { prompt: 'an owl at night, (moonlight:1.2)', negativePrompt: 'lowres' } }));
    const foxes = await store.add(generation(3, { params: { prompt: 'foxes in a forest', negativePrompt: 'text' }, tags: ['portfolio'] }));
    const café = await store.add(generation(4, { params: { prompt: 'Café terrace at night, Van Gogh style', negativePrompt: '' } }));
    const ids = (text: string): number[] => store.search({ text }).items.map((it) => it.id);

    assert.deepEqual(ids('fox'), [fox.id], 'whole words');
    assert.deepEqual(ids('fox*'), [foxes.id, fox.id], 'prefix query');
    assert.deepEqual(ids('watermark'), [fox.id], 'negative prompt is searched');
    assert.deepEqual(ids('portfolio'), [foxes.id], 'tags are searched');
    assert.deepEqual(ids('negative:lowres'), [owl.id]);
    assert.deepEqual(ids('prompt:lowres'), []);
    assert.deepEqual(ids('"at night"'), [café.id, owl.id], 'phrase');
    assert.deepEqual(ids('night -owl'), [café.id], 'exclusion');
    assert.deepEqual(ids('cafe'), [café.id], 'diacritics folded');
    assert.deepEqual(ids('moonlight:1.2'), [owl.id], 'A1111 weights are plain text, not syntax');
    assert.deepEqual(ids('"unbalanced AND OR NEAR('), [], 'no syntax error can come from user input');
    assert.equal(ids('   ').length, 4, 'no words: the plain page');

    const tagged = store.setTags(owl.id, ['Portfolio', 'birds', 'portfolio']);
    assert.deepEqual(tagged.tags, ['Portfolio', 'birds']);
    assert.deepEqual(ids('tag:portfolio'), [foxes.id, owl.id], 'tag changes reach the index');
    store.setTags(owl.id, []);
    assert.deepEqual(ids('tag:birds'), []);
    assert.deepEqual(store.search({ text: 'fox*', filter: { favorite: true } }).items, []);
    const paged = store.search({ text: 'night', limit: 1 });
    assert.deepEqual(paged.items.map((i) => i.id), [café.id]);
    assert.deepEqual(store.search({ text: 'night', limit: 1, cursor: paged.nextCursor }).items.map((i) => i.id), [owl.id]);

    store.delete([fox.id]);
    assert.deepEqual(ids('fox*'), [foxes.id], 'trashed items leave search');
    assert.deepEqual(store.search({ text: 'fox*', filter: { view: 'trash' } }).items.map((i) => i.id), [fox.id]);
  });

  test('delete moves to the trash, restore brings back, purge removes rows and files from disk', async () => {
    const a = await store.add(generation(1));
    const b = await store.add(generation(2, { parentId: a.id }));
    const aFile = store.imagePath(a.output!.hash);
    const aThumb = store.thumbnailPath(a.output!.hash);

    assert.equal(store.delete([a.id]), 1);
    assert.equal(store.delete([a.id]), 0, 'already in the trash');
    assert.notEqual(store.get(a.id).deletedAt, null);
    assert.deepEqual(store.page().items.map((i) => i.id), [b.id]);
    assert.deepEqual(store.page({ filter: { view: 'trash' } }).items.map((i) => i.id), [a.id]);
    assert.deepEqual(store.counts(), { total: 1, favorites: 0, trash: 1, byMode: { txt2img: 1, img2img: 0, inpaint: 0, layout: 0 }, missingFiles: 0 });
    assert.ok(existsSync(aFile), 'the trash keeps the file');

    assert.equal(store.restore([a.id]), 1);
    assert.equal(store.get(a.id).deletedAt, null);
    assert.equal(store.counts().total, 2);

    throwsWith(() => store.purge({ ids: [a.id] }), 'E_INVALID');
    throwsWith(() => store.delete([a.id, 999]), 'E_NOT_FOUND');
    assert.equal(store.get(a.id).deletedAt, null, 'a failed batch changes nothing');

    store.delete([a.id]);
    const result = store.purge();
    assert.deepEqual(result, { purged: [a.id], filesRemoved: 1 });
    assert.ok(!existsSync(aFile), 'purge removes the image file');
    assert.ok(!existsSync(aThumb), 'and its thumbnail');
    throwsWith(() => store.get(a.id), 'E_NOT_FOUND');
    assert.equal(store.get(b.id).parentId, null, 'children stay; the link to a purged parent is dropped');
    assert.equal(store.integrityCheck().ok, true);
    const next = await store.add(generation(3));
    assert.ok(next.id > b.id, 'purged ids are never reused');
  });

  test('purge keeps a file another item still uses, and purges by trash date', async () => {
    const a = await store.add(generation(1));
    const b = await store.add(generation(2, { params: { mode: 'img2img', strength: 0.5 }, initImage: { hash: a.output!.hash } }));
    store.delete([a.id]);
    now += 1000;
    store.delete([b.id]);
    assert.deepEqual(store.purge({ deletedBefore: now }), { purged: [a.id], filesRemoved: 0 });
    assert.ok(existsSync(store.imagePath(a.output!.hash)), "still b's init image");
    assert.deepEqual(store.purge(), { purged: [b.id], filesRemoved: 2 });
    assert.deepEqual(readdirSync(join(dir, 'images')).flatMap((d) => readdirSync(join(dir, 'images', d))), []);
  });

  test('export writes the PNGs (metadata inside) and a manifest, never overwriting', async () => {
    const a = await store.add(generation(1, { params: { prompt: 'exported one' } }));
    const b = await store.add(generation(2));
    const out = join(dir, 'export');
    const report = store.export([a.id, b.id], out);
    assert.deepEqual(report.files.map((f) => f.id), [a.id, b.id]);
    assert.equal(sha256(report.files[0]!.file), a.output!.hash, 'byte-identical copy');
    assert.equal(parseA1111Parameters(readPngMetadata(readFileSync(report.files[0]!.file)).parameters!).prompt, 'exported one');
    const manifest = JSON.parse(readFileSync(report.manifest, 'utf8')) as { items: Array<{ file: string; item: { id: number } }> };
    assert.deepEqual(manifest.items.map((i) => i.item.id), [a.id, b.id]);

    const again = store.export([a.id], out);
    assert.notEqual(again.files[0]!.file, report.files[0]!.file);
    assert.match(again.files[0]!.file, /latent-studio-1-2\.png$/);
    assert.equal(readdirSync(out).filter((f) => f.endsWith('.part')).length, 0);
    throwsWith(() => store.export([999], out), 'E_NOT_FOUND');
  });

  test('reconcile collects orphan and temp files, marks and reports rows whose file is gone', async () => {
    const a = await store.add(generation(1));
    const b = await store.add(generation(2));
    store.close();

    const orphanHash = 'a'.repeat(64);
    const orphan = join(dir, 'images', 'aa', `${orphanHash}.png`);
    mkdirSync(dirname(orphan), { recursive: true });
    writeFileSync(orphan, 'a file whose row never committed');
    const temp = join(dir, 'tmp', '.123-1-deadbeef.part');
    writeFileSync(temp, 'half a file');
    const foreign = join(dir, 'images', 'notes.txt');
    writeFileSync(foreign, 'not ours to judge');
    rmSync(store.imagePath(b.output!.hash));
    rmSync(store.thumbnailPath(a.output!.hash));

    store = await HistoryStore.open(dir);
    const report = store.lastReconcile!;
    assert.deepEqual(report.orphanFilesRemoved.sort(), [orphan, temp].sort());
    assert.deepEqual(report.missingImages, [b.output!.hash]);
    assert.deepEqual(report.affectedItems, [b.id]);
    assert.equal(report.thumbnailsRebuilt, 1);
    assert.ok(existsSync(store.thumbnailPath(a.output!.hash)));
    assert.ok(existsSync(foreign));
    assert.equal(store.get(b.id).output!.fileMissing, true, 'the row is kept and marked, never dropped');
    assert.equal(store.counts().missingFiles, 1);
    throwsWith(() => store.export([b.id], join(dir, 'out')), 'E_NOT_FOUND');

    // Adding the same image again brings the file back and clears the mark.
    await store.add(generation(2));
    assert.equal(store.get(b.id).output!.fileMissing, false);
    assert.equal((await store.reconcile()).missingImages.length, 0);
  });

  test('a layout item keeps its label map beside the result, names it in the PNG, and purges it with the item', async () => {
    const map = await encodePng(noiseImage(90));
    const mapHash = createHash('sha256').update(map).digest('hex');
    const item = await store.add(generation(9, { params: { mode: 'layout', maskBlur: 0 }, labelMap: { png: map } }));
    assert.equal(item.mode, 'layout');
    assert.deepEqual(item.labelMap, { hash: mapHash, width: 16, height: 16, fileMissing: false });
    assert.equal(item.mask, null);
    assert.ok(readFileSync(store.imagePath(mapHash)).equals(map), 'the very bytes sent are stored (reuse hands them back)');
    assert.ok(existsSync(store.thumbnailPath(mapHash)));
    assert.deepEqual(store.get(item.id).labelMap, item.labelMap);

    const meta = readPngMetadata(readFileSync(store.imagePath(item.output!.hash)));
    assert.equal((meta.request as { labelMapHash?: string }).labelMapHash, mapHash);
    assert.equal((meta.request as { params: { mode: string } }).params.mode, 'layout');
    const a1111 = parseA1111Parameters(meta.parameters!);
    assert.equal(a1111.settings['Label map hash'], mapHash);
    assert.equal(a1111.mode, 'layout');
    assert.equal(a1111.settings['Denoising strength'], undefined, 'layout starts from noise');

    assert.equal(store.counts().byMode.layout, 1);
    assert.deepEqual(store.page({ filter: { mode: 'layout' } }).items.map((i) => i.id), [item.id]);
    const plain = await store.add(generation(10));
    assert.equal(plain.labelMap, null);

    store.delete([item.id]);
    assert.equal(store.purge({ ids: [item.id] }).filesRemoved, 2, 'the output and the label map');
    assert.equal(existsSync(store.imagePath(mapHash)), false);
    assert.equal(store.integrityCheck().ok, true);
  });

  test('inpaint area, mask padding and the ControlNet scale are recorded and come back; absent ones stay absent', async () => {
    const mask = { png: await encodePng(noiseImage(3)) };
    const masked = await store.add(generation(11, { params: { mode: 'inpaint', inpaintArea: 'masked', maskPadding: 24, controlScale: 0.6 }, initImage: noiseImage(2), mask }));
    assert.deepEqual(
      [masked.params.inpaintArea, masked.params.maskPadding, masked.params.controlScale],
      ['masked', 24, 0.6],
    );
    const meta = readPngMetadata(readFileSync(store.imagePath(masked.output!.hash)));
    assert.deepEqual((meta.request as { params: Record<string, unknown> }).params['maskPadding'], 24);
    const plain = await store.add(generation(12));
    assert.equal('inpaintArea' in plain.params || 'maskPadding' in plain.params || 'controlScale' in plain.params, false);
    // An exported PNG imported again keeps them (its own chunk is read first).
    const folder = join(dir, 'out');
    const exported = store.export([masked.id], folder).files[0]!.file;
    store.delete([masked.id]);
    store.purge({ ids: [masked.id] });
    const back = await store.importFile(exported);
    assert.deepEqual([back.params.inpaintArea, back.params.maskPadding, back.params.controlScale], ['masked', 24, 0.6]);
  });

  test('integrityCheck reports ok on a healthy store, and errors serialize as {name, code, message}', async () => {
    await store.add(generation(1));
    assert.deepEqual(store.integrityCheck(), { ok: true, messages: ['ok'] });
    try {
      store.get(12345);
      assert.fail('expected an error');
    } catch (err) {
      assert.deepEqual(JSON.parse(JSON.stringify(err)), { name: 'HistoryError', code: 'E_NOT_FOUND', message: 'There is no history item 12345.' });
    }
  });
});
