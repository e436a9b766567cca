/**
 * The host's own database, `host.sqlite` in the data folder, apart from the history store's: the job
 * queue (so queued jobs survive a restart) and the settings. Same settings and migration scheme as the
 * history database (WAL, synchronous FULL, `user_version`). The models live in the model library's
 * tables of the history database (electron/model-library).
 */
import { join } from 'node:path';
import { openDatabase, type Migration, type SqliteDatabase } from '../history/database.js';

export const HOST_DATABASE_FILE = 'host.sqlite';

export const HOST_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: '001-jobs-settings-models',
    sql: `
      CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        -- Queued jobs run in ascending order; reorder rewrites it.
        position    INTEGER NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        model_id    TEXT NOT NULL,
        mode        TEXT NOT NULL,
        prompt      TEXT NOT NULL,
        -- The parsed generate request as JSON (seed filled in), input images as base64.
        request     TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        started_at  INTEGER,
        finished_at INTEGER,
        history_id  INTEGER,
        -- SerializedError JSON when failed or cancelled.
        error       TEXT
      );
      CREATE INDEX jobs_by_status ON jobs (status, position);
      CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      CREATE TABLE models (
        id       TEXT PRIMARY KEY,
        dir      TEXT NOT NULL UNIQUE,
        added_at INTEGER NOT NULL
      );
      -- Content hash of a model's weights, cached by a fingerprint of file names, sizes and mtimes.
      CREATE TABLE model_hashes (
        dir         TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        hash        TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: '002-models-to-library',
    // The model library (history.sqlite) replaced the host's registry. The rows are kept under a new
    // name until the host has imported each folder into the library (importLegacyModels in host.ts),
    // which then drops the table: a crash before that finishes imports them at the next start. The
    // library hashes folders itself, so the hash cache goes now.
    sql: `
      ALTER TABLE models RENAME TO legacy_models;
      DROP TABLE model_hashes;
    `,
  },
  {
    version: 3,
    name: '003-job-warnings',
    // What the host changed to run a job (a resized mask), as a JSON array of sentences.
    sql: `ALTER TABLE jobs ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 4,
    name: '004-job-image-files',
    // A queued job's images are files in <data>/jobs/<id>/ (job-images.ts), named here as JSON; the
    // request no longer holds them. Rows queued before keep their base64 until the queue starts and
    // moves it to files.
    sql: `ALTER TABLE jobs ADD COLUMN images TEXT NOT NULL DEFAULT '{}';`,
  },
];

/** The pre-library registry's table, present until its rows are imported (migration 2). */
export const LEGACY_MODELS_TABLE = 'legacy_models';

export function openHostDatabase(dataDir: string): SqliteDatabase {
  const db = openDatabase(join(dataDir, HOST_DATABASE_FILE), HOST_MIGRATIONS);
  // No memory map here: a queued job's row held its images as base64 (up to ~80 MB each; rows queued by
  // an older version still do until the queue moves them to files), and every mapped page the queue
  // read stayed in the process's resident memory (295 MB after four 79 MiB uploads). The history
  // database keeps its map for searches.
  db.pragma('mmap_size = 0');
  return db;
}
