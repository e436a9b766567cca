/**
 * The model library's own schema, in the same `history.sqlite` file as the history but with its own
 * migrations and its own version (the `library_schema` table; `PRAGMA user_version` is the history's).
 *
 * Why the same file: every data folder already holds the library's rows there (history migrations 002
 * and 003 created the first `models` and `model_downloads` tables), and moving them to a file of their
 * own could not be one transaction (a WAL database commits atomically per file only); a copy of the
 * history file also keeps the models its items were made with. Why its own migrations: the library's
 * tables change with the library, not with the history, and the history store opens and migrates
 * without them (the CLI's history commands, the history tests' small disks).
 *
 * Each migration runs in one BEGIN IMMEDIATE transaction with its version bump, after the history's
 * migrations (the library opens its connection with `openDatabase`, which applies those first).
 */
import type { Migration, SqliteDatabase } from '../history/database.js';
import { ModelLibraryError } from '../shared/model-library.js';

export const LIBRARY_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: '001-library-owns-models',
    // The library takes over the tables history migrations 002/003 made, and gets back the constraints
    // 002 had left out to save pages on a test's 2 MiB disk: one row per folder (`dir`), one per content
    // hash, at most one default. The library still checks these itself first (for a clear E_DUPLICATE);
    // the constraints make a race or a bug an error instead of a second row. A database that somehow
    // holds duplicates keeps the oldest row of each (they were refused at import, so none should exist).
    sql: `
      CREATE TABLE library_models (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('bundled', 'referenced', 'copied', 'downloaded')),
        source TEXT NOT NULL,
        dir TEXT NOT NULL UNIQUE,
        info_json TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('txt2img', 'inpaint', 'layout')),
        family TEXT NOT NULL CHECK (family IN ('sd1', 'sd2', 'lcm', 'custom')),
        prediction_type TEXT NOT NULL,
        precision TEXT NOT NULL CHECK (precision IN ('fp32', 'fp16', 'mixed')),
        native_width INTEGER NOT NULL CHECK (native_width > 0),
        native_height INTEGER NOT NULL CHECK (native_height > 0),
        providers_json TEXT NOT NULL DEFAULT '[]',
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        content_hash TEXT NOT NULL UNIQUE CHECK (length(content_hash) = 64),
        fingerprint TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
      ) STRICT, WITHOUT ROWID;
      INSERT OR IGNORE INTO library_models SELECT * FROM models ORDER BY added_at, id;
      DROP TABLE models;
      ALTER TABLE library_models RENAME TO models;
      UPDATE models SET is_default = 0
        WHERE is_default = 1 AND id <> (SELECT id FROM models WHERE is_default = 1 ORDER BY added_at, id LIMIT 1);
      CREATE UNIQUE INDEX models_one_default ON models (is_default) WHERE is_default = 1;
    `,
  },
  {
    version: 2,
    name: '002-sdxl-families',
    // The engine opens SDXL folders (family 'sdxl', and 'sdxl-refiner' for refiner-only folders); the
    // family CHECK of 001 refused their rows. SQLite can't change a CHECK in place: the table is rebuilt
    // with the same columns, rows and indexes.
    sql: `
      CREATE TABLE library_models (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('bundled', 'referenced', 'copied', 'downloaded')),
        source TEXT NOT NULL,
        dir TEXT NOT NULL UNIQUE,
        info_json TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('txt2img', 'inpaint', 'layout')),
        family TEXT NOT NULL CHECK (family IN ('sd1', 'sd2', 'lcm', 'sdxl', 'sdxl-refiner', 'custom')),
        prediction_type TEXT NOT NULL,
        precision TEXT NOT NULL CHECK (precision IN ('fp32', 'fp16', 'mixed')),
        native_width INTEGER NOT NULL CHECK (native_width > 0),
        native_height INTEGER NOT NULL CHECK (native_height > 0),
        providers_json TEXT NOT NULL DEFAULT '[]',
        size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
        content_hash TEXT NOT NULL UNIQUE CHECK (length(content_hash) = 64),
        fingerprint TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
      ) STRICT, WITHOUT ROWID;
      INSERT INTO library_models SELECT * FROM models;
      DROP TABLE models;
      ALTER TABLE library_models RENAME TO models;
      CREATE UNIQUE INDEX models_one_default ON models (is_default) WHERE is_default = 1;
    `,
  },
];

/** The library's schema version in this database (0: none of its migrations applied yet). */
export function librarySchemaVersion(db: SqliteDatabase): number {
  const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'library_schema'").get();
  if (!table) return 0;
  return (db.prepare('SELECT version FROM library_schema').get() as { version: number } | undefined)?.version ?? 0;
}

/**
 * Applies the library migrations this database hasn't seen, up to `upTo` (default: all); returns the
 * versions applied. A library schema newer than this app's is refused (E_SCHEMA_TOO_NEW).
 */
export function migrateLibrary(db: SqliteDatabase, migrations: Migration[] = LIBRARY_MIGRATIONS, upTo = migrations.length): number[] {
  const current = librarySchemaVersion(db);
  if (current > migrations.length) {
    throw new ModelLibraryError(
      'E_SCHEMA_TOO_NEW',
      `The model library in ${db.name} has schema version ${current}, newer than this app's ${migrations.length}: it was written by a newer Latent Studio.`,
    );
  }
  const applied: number[] = [];
  for (const m of migrations.slice(current, upTo)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.exec('CREATE TABLE IF NOT EXISTS library_schema (version INTEGER NOT NULL) STRICT');
      db.exec('DELETE FROM library_schema');
      db.prepare('INSERT INTO library_schema (version) VALUES (?)').run(m.version);
    }).immediate();
    applied.push(m.version);
  }
  return applied;
}
