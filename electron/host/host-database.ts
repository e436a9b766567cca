/**
 * The host's own database, `host.sqlite` in the data folder, apart from the history store's: the job
 * queue (so queued jobs survive a restart), the settings, and the model registry. Same settings and
 * migration scheme as the history database (WAL, synchronous FULL, `user_version`).
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
];

export function openHostDatabase(dataDir: string): SqliteDatabase {
  return openDatabase(join(dataDir, HOST_DATABASE_FILE), HOST_MIGRATIONS);
}
