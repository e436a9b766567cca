/**
 * The library's own migrations (electron/model-library/schema.ts) in the history database file: they
 * adopt the tables history migrations 002/003 made, keep every row, and restore the UNIQUE constraints
 * (one row per folder, one per content hash, at most one default), tracked by their own version.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadMigrations, migrate, openDatabase, schemaVersion } from '../../../electron/history/database.js';
import { HistoryStore } from '../../../electron/history/store.js';
import { LIBRARY_MIGRATIONS, librarySchemaVersion, migrateLibrary } from '../../../electron/model-library/schema.js';
import { ModelLibraryError } from '../../../electron/shared/model-library.js';
import { openLibrary, sandbox } from './support.js';

const HISTORY_MIGRATIONS = loadMigrations();
const SEEDS = join(import.meta.dirname, '..', 'history', 'migration-seeds');
const HASH = (c: string): string => c.repeat(64);

function insertModel(db: Database.Database, row: { id: string; dir: string; hash: string; isDefault?: 0 | 1; addedAt?: number; family?: string }): void {
  db.prepare(`INSERT INTO models (id, name, origin, source, dir, info_json, kind, family, prediction_type, precision, native_width,
    native_height, size_bytes, content_hash, fingerprint, added_at, is_default) VALUES (?, ?, 'referenced', ?, ?, '{}', 'txt2img', ?,
    'epsilon', 'fp32', 64, 64, 1, ?, '[]', ?, ?)`).run(row.id, row.id, row.dir, row.dir, row.family ?? 'sd1', row.hash, row.addedAt ?? 1, row.isDefault ?? 0);
}

test('a new data folder: the library’s tables carry their UNIQUE constraints, at its own schema version', async () => {
  const box = sandbox('library-schema-');
  try {
    const library = await openLibrary(box);
    library.close();
    const db = new Database(join(box.historyDir, 'history.sqlite'));
    try {
      assert.equal(librarySchemaVersion(db), LIBRARY_MIGRATIONS.length);
      assert.equal(schemaVersion(db), HISTORY_MIGRATIONS.length, 'user_version stays the history’s');
      insertModel(db, { id: 'a', dir: '/models/a', hash: HASH('a'), isDefault: 1 });
      assert.throws(() => insertModel(db, { id: 'b', dir: '/models/a', hash: HASH('b') }), { code: 'SQLITE_CONSTRAINT_UNIQUE', message: /models\.dir/ });
      assert.throws(() => insertModel(db, { id: 'c', dir: '/models/c', hash: HASH('a') }), { code: 'SQLITE_CONSTRAINT_UNIQUE', message: /models\.content_hash/ });
      assert.throws(() => insertModel(db, { id: 'd', dir: '/models/d', hash: HASH('d'), isDefault: 1 }), { code: 'SQLITE_CONSTRAINT_UNIQUE', message: /models\.is_default/ });
      insertModel(db, { id: 'e', dir: '/models/e', hash: HASH('e') });
      assert.deepEqual(db.prepare('SELECT id FROM models ORDER BY id').all(), [{ id: 'a' }, { id: 'e' }]);
    } finally {
      db.close();
    }
  } finally {
    box.cleanup();
  }
});

test('a data folder from schema 3 keeps every model and download row, and gains the constraints', () => {
  const db = new Database(':memory:');
  try {
    migrate(db, HISTORY_MIGRATIONS, 3);
    db.exec(readFileSync(join(SEEDS, 'v3.sql'), 'utf8'));
    const before = db.prepare('SELECT * FROM models ORDER BY id').all();
    const downloads = db.prepare('SELECT * FROM model_downloads').all();
    migrate(db, HISTORY_MIGRATIONS);
    assert.deepEqual(migrateLibrary(db), LIBRARY_MIGRATIONS.map((m) => m.version));
    assert.deepEqual(db.prepare('SELECT * FROM models ORDER BY id').all(), before);
    assert.deepEqual(db.prepare('SELECT * FROM model_downloads').all(), downloads);
    assert.throws(() => insertModel(db, { id: 'x', dir: '/data/models/sd15', hash: HASH('f') }), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
    assert.deepEqual(migrateLibrary(db), [], 'nothing left to apply');
  } finally {
    db.close();
  }
});

test('library schema 1 → 2: SDXL families are accepted, every row, the default and the constraints kept', () => {
  const db = new Database(':memory:');
  try {
    migrate(db, HISTORY_MIGRATIONS);
    migrateLibrary(db, LIBRARY_MIGRATIONS, 1);
    insertModel(db, { id: 'a', dir: '/m/a', hash: HASH('a'), isDefault: 1 });
    insertModel(db, { id: 'b', dir: '/m/b', hash: HASH('b'), addedAt: 2 });
    assert.throws(() => insertModel(db, { id: 'xl', dir: '/m/xl', hash: HASH('c'), family: 'sdxl' }), { code: 'SQLITE_CONSTRAINT_CHECK' });
    const before = db.prepare('SELECT * FROM models ORDER BY id').all();
    assert.deepEqual(migrateLibrary(db), [2]);
    assert.deepEqual(db.prepare('SELECT * FROM models ORDER BY id').all(), before);
    insertModel(db, { id: 'xl', dir: '/m/xl', hash: HASH('c'), family: 'sdxl' });
    insertModel(db, { id: 'refiner', dir: '/m/r', hash: HASH('d'), family: 'sdxl-refiner' });
    assert.throws(() => insertModel(db, { id: 'x', dir: '/m/x', hash: HASH('e'), family: 'flux' }), { code: 'SQLITE_CONSTRAINT_CHECK' });
    assert.throws(() => insertModel(db, { id: 'y', dir: '/m/a', hash: HASH('f') }), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
    assert.throws(() => insertModel(db, { id: 'z', dir: '/m/z', hash: HASH('9'), isDefault: 1 }), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
  } finally {
    db.close();
  }
});

test('duplicates an old database should never have held: the oldest row of each stays, one default', () => {
  const db = new Database(':memory:');
  try {
    migrate(db, HISTORY_MIGRATIONS);
    insertModel(db, { id: 'old', dir: '/m/x', hash: HASH('1'), addedAt: 1, isDefault: 1 });
    insertModel(db, { id: 'same-dir', dir: '/m/x', hash: HASH('2'), addedAt: 2 });
    insertModel(db, { id: 'same-hash', dir: '/m/y', hash: HASH('1'), addedAt: 3 });
    insertModel(db, { id: 'other', dir: '/m/z', hash: HASH('3'), addedAt: 4, isDefault: 1 });
    migrateLibrary(db);
    assert.deepEqual(db.prepare('SELECT id, is_default FROM models ORDER BY added_at').all(), [{ id: 'old', is_default: 1 }, { id: 'other', is_default: 0 }]);
  } finally {
    db.close();
  }
});

test('a library schema newer than this app is refused, with the file named', () => {
  const db = new Database(':memory:');
  try {
    migrate(db, HISTORY_MIGRATIONS);
    migrateLibrary(db);
    db.exec(`UPDATE library_schema SET version = ${LIBRARY_MIGRATIONS.length + 1}`);
    assert.throws(() => migrateLibrary(db), (err: unknown) => err instanceof ModelLibraryError && err.code === 'E_SCHEMA_TOO_NEW' && /newer Latent Studio/.test(err.message));
  } finally {
    db.close();
  }
});

test('the history store opens and migrates without the library’s migrations', async () => {
  const box = sandbox('library-schema-');
  try {
    const store = await HistoryStore.open(box.historyDir);
    store.close();
    const db = openDatabase(join(box.historyDir, 'history.sqlite'));
    try {
      assert.equal(librarySchemaVersion(db), 0);
    } finally {
      db.close();
    }
  } finally {
    box.cleanup();
  }
});
