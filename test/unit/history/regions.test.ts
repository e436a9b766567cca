/**
 * Regional prompts in history (migration 007): each region's prompt, weight, area and mask stored with the
 * item and given back in order; the PNG's infotext carries a readable `Regions` setting that parses back;
 * a mask shared by two items is freed only when neither needs it; a database from version 6 gives its
 * regions back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations, migrate } from '../../../electron/history/database.js';
import { HistoryError } from '../../../electron/history/errors.js';
import { readPngMetadata } from '../../../electron/history/png.js';
import { DATABASE_FILE, HistoryStore } from '../../../electron/history/store.js';
import { parseA1111Parameters } from '../../../electron/shared/a1111.js';
import type { RgbImage } from '../../../electron/shared/history.js';
import { generation, noiseImage, tempDir } from '../../support/history-fixtures.js';

const REGIONS = [
  { prompt: 'a red rose, (petals:1.2)', weight: 1, area: 0.25 },
  { prompt: 'a blue pond; still water', weight: 0.7, area: 0.406 },
];

function maskImage(seed: number): RgbImage {
  const m = noiseImage(seed);
  for (let i = 0; i < m.rgb.length; i += 3) m.rgb[i + 1] = m.rgb[i + 2] = m.rgb[i]!;
  return m;
}

async function withStore(fn: (store: HistoryStore, dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  const store = await HistoryStore.open(dir);
  try {
    await fn(store, dir);
  } finally {
    store.close();
    cleanup();
  }
}

test('an item keeps its regions (prompt, weight, area, mask) in order, and its PNG says them in the infotext', () =>
  withStore(async (store) => {
    const item = await store.add(generation(3, { params: { regions: REGIONS }, regionMasks: [maskImage(10), maskImage(11)] }));
    assert.deepEqual(item.params.regions, REGIONS);
    assert.deepEqual(item.regions?.map((r) => [r.prompt, r.weight, r.area, r.mask.width, r.mask.height]), REGIONS.map((r) => [r.prompt, r.weight, r.area, 16, 16]));
    assert.notEqual(item.regions![0]!.mask.hash, item.regions![1]!.mask.hash);
    assert.deepEqual(store.page().items[0]?.regions, item.regions, 'pages carry them too');

    const meta = readPngMetadata(readFileSync(store.imagePath(item.output!.hash)));
    assert.match(meta.parameters!, /Regions: "a red rose, \(petals:1\.2\) \(area 25%, weight 1\); a blue pond; still water \(area 40\.6%, weight 0\.7\)"/);
    assert.deepEqual(parseA1111Parameters(meta.parameters!).params.regions, REGIONS, 'the infotext parses back');
    assert.deepEqual((meta.request as { regionMaskHashes?: string[] }).regionMaskHashes, item.regions!.map((r) => r.mask.hash));

    const plain = await store.add(generation(4));
    assert.equal(plain.regions, undefined);
    assert.equal(plain.params.regions, undefined);
    assert.doesNotMatch(readPngMetadata(readFileSync(store.imagePath(plain.output!.hash))).parameters!, /Regions/);
  }));

test('regions without their masks are refused, and nothing is stored', () =>
  withStore(async (store) => {
    await assert.rejects(
      store.add(generation(5, { params: { regions: REGIONS }, regionMasks: [maskImage(10)] })),
      (err: unknown) => err instanceof HistoryError && err.code === 'E_INVALID' && /2 regions but 1 region masks/.test(err.message),
    );
    assert.equal(store.counts().total, 0);
  }));

test('a region mask shared by two items is freed with the last of them', () =>
  withStore(async (store) => {
    const shared = maskImage(20);
    const a = await store.add(generation(6, { params: { regions: [REGIONS[0]!] }, regionMasks: [shared] }));
    const b = await store.add(generation(7, { params: { regions: [REGIONS[1]!] }, regionMasks: [shared] }));
    const file = store.imagePath(a.regions![0]!.mask.hash);
    assert.equal(b.regions![0]!.mask.hash, a.regions![0]!.mask.hash);
    store.delete([a.id]);
    store.purge({ ids: [a.id] });
    assert.ok(existsSync(file), 'b still needs the mask');
    assert.equal(store.get(b.id).regions?.[0]?.mask.hash, a.regions![0]!.mask.hash);
    store.delete([b.id]);
    store.purge({ ids: [b.id] });
    assert.equal(existsSync(file), false);
    assert.equal(store.integrityCheck().ok, true);
  }));

test('a version 7 database gives back its regions in order', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const old = new Database(join(dir, DATABASE_FILE));
    migrate(old, loadMigrations(), 7);
    old.exec(readFileSync(join(import.meta.dirname, 'migration-seeds', 'v7.sql'), 'utf8'));
    old.close();
    const store = await HistoryStore.open(dir, { reconcile: false });
    try {
      const item = store.get(95);
      assert.deepEqual(item.params.regions, [
        { prompt: 'a red rose', weight: 1, area: 0.25 },
        { prompt: 'a blue pond; still water', weight: 0.7, area: 0.4 },
      ]);
      assert.deepEqual(item.regions?.map((r) => r.mask.hash), ['6'.repeat(64), '7'.repeat(64)]);
      assert.equal(store.get(90).regions, undefined, 'older rows have none');
    } finally {
      store.close();
    }
  } finally {
    cleanup();
  }
});
