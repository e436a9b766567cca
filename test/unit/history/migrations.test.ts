import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations, migrate, schemaVersion } from '../../../electron/history/database.js';
import type { Migration } from '../../../electron/history/database.js';
import { DATABASE_FILE, HistoryStore } from '../../../electron/history/store.js';
import { HistoryError } from '../../../electron/history/errors.js';
import { tempDir } from '../../support/history-fixtures.js';

const MIGRATIONS = loadMigrations();
const LATEST = MIGRATIONS.length;
const SEEDS = join(import.meta.dirname, 'migration-seeds');

/** The schema as structure (columns, indexes, foreign keys, triggers), not as CREATE text. */
function describeSchema(db: Database.Database): unknown {
  const objects = db.prepare("SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all() as Array<{ type: string; name: string; tbl_name: string }>;
  return objects.map((o) => ({
    ...o,
    columns: o.type === 'table' ? db.prepare('SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_xinfo(?)').all(o.name) : undefined,
    foreignKeys: o.type === 'table' ? db.prepare('SELECT "table", "from", "to", on_delete FROM pragma_foreign_key_list(?)').all(o.name) : undefined,
    indexColumns: o.type === 'index' ? db.prepare('SELECT name FROM pragma_index_info(?)').all(o.name) : undefined,
  }));
}

function referenceSchema(): unknown {
  const db = new Database(':memory:');
  migrate(db, MIGRATIONS);
  const schema = describeSchema(db);
  db.close();
  return schema;
}

function withTemp(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const { dir, cleanup } = tempDir('history-migrate-');
    try {
      await fn(dir);
    } finally {
      cleanup();
    }
  };
}

test('migration files are numbered 1..N without gaps', () => {
  assert.ok(LATEST >= 1);
  assert.deepEqual(MIGRATIONS.map((m) => m.version), Array.from({ length: LATEST }, (_, i) => i + 1));
});

test('an empty database file migrates to the latest version', withTemp(async (dir) => {
  writeFileSync(join(dir, DATABASE_FILE), '');
  const store = await HistoryStore.open(dir);
  store.close();
  const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
  assert.equal(schemaVersion(db), LATEST);
  assert.deepEqual(describeSchema(db), referenceSchema());
  db.close();
}));

test('applying the migrations one at a time gives the same schema as all at once', () => {
  const db = new Database(':memory:');
  for (let v = 1; v <= LATEST; v++) {
    assert.deepEqual(migrate(db, MIGRATIONS, v), [v]);
    assert.equal(schemaVersion(db), v);
  }
  assert.deepEqual(migrate(db, MIGRATIONS), [], 'nothing left to apply');
  assert.deepEqual(describeSchema(db), referenceSchema());
  db.close();
});

// One case per schema version the app has ever had: a database left at that version, holding that
// version's seed rows, opens in the current app with its rows intact and the current schema.
for (let version = 1; version <= LATEST; version++) {
  test(`a database at schema version ${version} with data migrates to ${LATEST}, keeping every row`, withTemp(async (dir) => {
    const seedFile = join(SEEDS, `v${version}.sql`);
    assert.ok(existsSync(seedFile), `test/unit/history/migration-seeds/v${version}.sql must exist (rows as version ${version} wrote them)`);
    const file = join(dir, DATABASE_FILE);
    const old = new Database(file);
    migrate(old, MIGRATIONS, version);
    old.exec(readFileSync(seedFile, 'utf8'));
    const before = old.prepare('SELECT id, prompt, output_hash, parent_id, deleted_at FROM generations ORDER BY id').all();
    old.close();

    const store = await HistoryStore.open(dir, { reconcile: false }); // the seed's images have no files
    try {
      assert.equal(store.integrityCheck().ok, true);
      const after = [...store.page().items, ...store.page({ filter: { view: 'trash' } }).items].sort((a, b) => a.id - b.id);
      assert.deepEqual(after.map((i) => ({ id: i.id, prompt: i.params.prompt, output_hash: i.output?.hash ?? null, parent_id: i.parentId, deleted_at: i.deletedAt })), before);
      assert.ok(store.search({ text: 'seeded lighthouse' }).items.length > 0, 'the full-text index covers the old rows');
      assert.deepEqual(store.lineage(1).descendants.map((d) => d.item.id), [2]);
    } finally {
      store.close();
    }
    const db = new Database(file, { readonly: true });
    assert.equal(schemaVersion(db), LATEST);
    assert.deepEqual(describeSchema(db), referenceSchema());
    db.close();
  }));
}

test('migration 003 (layout) keeps ids, lineage and the AUTOINCREMENT mark, and opens the layout columns', withTemp(async (dir) => {
  const file = join(dir, DATABASE_FILE);
  const old = new Database(file);
  migrate(old, MIGRATIONS, 2);
  old.exec(readFileSync(join(SEEDS, 'v2.sql'), 'utf8'));
  // A purged item left the high-water mark at 50: no later item may get an id at or below it.
  old.exec(`INSERT INTO generations (id, created_at, source, status, mode, prompt, negative_prompt, width, height)
            VALUES (50, 1, 'generated', 'failed', 'txt2img', 'gone', '', 8, 8); DELETE FROM generations WHERE id = 50;`);
  assert.throws(() => old.exec(`INSERT INTO models (id, name, origin, source, dir, info_json, kind, family, prediction_type, precision,
    native_width, native_height, size_bytes, content_hash, fingerprint, added_at) VALUES ('l', 'l', 'bundled', '/l', '/l', '{}', 'layout',
    'custom', 'epsilon', 'fp32', 64, 64, 1, '${'a'.repeat(64)}', '[]', 1)`), /CHECK constraint failed/, 'v2 had no layout kind');
  old.close();

  const store = await HistoryStore.open(dir, { reconcile: false, clock: () => 1_800_000_000_000 });
  try {
    const inpaint = store.get(2);
    assert.deepEqual([inpaint.mode, inpaint.parentId, inpaint.mask?.hash, inpaint.labelMap], ['inpaint', 1, '3'.repeat(64), null]);
    assert.equal('inpaintArea' in inpaint.params, false, 'old rows did not record it');
    const layout = await store.add({
      params: { mode: 'layout', prompt: 'a layout face', negativePrompt: '', seed: 1, steps: 2, cfg: 7, sampler: 'euler', width: 8, height: 8, strength: 1, maskBlur: 0 },
      model: { id: 'emoji-ldm-layout', hash: 'b'.repeat(64) },
      output: { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).fill(200) },
      labelMap: { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).fill(255) },
    });
    assert.equal(layout.id, 51);
    assert.equal(layout.labelMap?.width, 8);
    assert.equal(store.search({ text: 'layout face' }).items[0]?.id, 51);
    assert.equal(store.integrityCheck().ok, true);
  } finally {
    store.close();
  }
  const db = new Database(file);
  db.exec(`INSERT INTO models (id, name, origin, source, dir, info_json, kind, family, prediction_type, precision, native_width,
    native_height, size_bytes, content_hash, fingerprint, added_at) VALUES ('l', 'l', 'bundled', '/l', '/l', '{}', 'layout', 'custom',
    'epsilon', 'fp32', 64, 64, 1, '${'a'.repeat(64)}', '[]', 1)`);
  assert.deepEqual(db.prepare('SELECT id FROM models ORDER BY id').all(), [{ id: 'l' }, { id: 'sd15' }]);
  db.close();
}));

test('a version 3 database gives back its layout and inpaint settings', withTemp(async (dir) => {
  const old = new Database(join(dir, DATABASE_FILE));
  migrate(old, MIGRATIONS, 3);
  old.exec(readFileSync(join(SEEDS, 'v3.sql'), 'utf8'));
  old.close();
  const store = await HistoryStore.open(dir, { reconcile: false });
  try {
    const inpaint = store.get(2).params;
    assert.deepEqual([inpaint.inpaintArea, inpaint.maskPadding, inpaint.controlScale], ['masked', 32, 0.8]);
    const layout = store.get(4);
    assert.deepEqual([layout.mode, layout.labelMap?.hash, layout.labelMap?.width], ['layout', '5'.repeat(64), 64]);
    assert.equal(store.counts().byMode.layout, 1);
  } finally {
    store.close();
  }
}));

test('a database from a newer app is refused, untouched', withTemp(async (dir) => {
  const file = join(dir, DATABASE_FILE);
  const db = new Database(file);
  migrate(db, MIGRATIONS);
  db.pragma(`user_version = ${LATEST + 1}`);
  db.close();
  await assert.rejects(HistoryStore.open(dir), (err: unknown) => err instanceof HistoryError && err.code === 'E_SCHEMA_TOO_NEW');
  const again = new Database(file, { readonly: true });
  assert.equal(schemaVersion(again), LATEST + 1);
  again.close();
}));

test('a migration that fails part-way leaves the database at the previous version', withTemp(async (dir) => {
  const broken: Migration = {
    version: LATEST + 1,
    name: 'broken.sql',
    sql: 'CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);',
  };
  (await HistoryStore.open(dir)).close();
  await assert.rejects(HistoryStore.open(dir, { migrations: [...MIGRATIONS, broken] }));
  const db = new Database(join(dir, DATABASE_FILE), { readonly: true });
  assert.equal(schemaVersion(db), LATEST);
  assert.deepEqual(db.prepare("SELECT name FROM sqlite_schema WHERE name = 'half_done'").all(), []);
  db.close();
}));

test('a gap in the migration numbers is caught', withTemp(async (dir) => {
  mkdirSync(join(dir, 'm'));
  writeFileSync(join(dir, 'm', '001-a.sql'), 'CREATE TABLE a (x);');
  writeFileSync(join(dir, 'm', '003-c.sql'), 'CREATE TABLE c (x);');
  assert.throws(() => loadMigrations(join(dir, 'm')), /003-c\.sql .* should be number 2/);
}));

test('a file that is not a database is E_DB_CORRUPT, not overwritten', withTemp(async (dir) => {
  const garbage = Buffer.alloc(8192, 'this is not sqlite ');
  writeFileSync(join(dir, DATABASE_FILE), garbage);
  await assert.rejects(HistoryStore.open(dir), (err: unknown) => err instanceof HistoryError && err.code === 'E_DB_CORRUPT');
  assert.ok(readFileSync(join(dir, DATABASE_FILE)).equals(garbage));
}));
