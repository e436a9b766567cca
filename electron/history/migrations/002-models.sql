-- 002: the model library (electron/model-library) and its downloads.
-- Generations keep their own model_id/model_hash and have no foreign key to models: removing a model
-- keeps every history row, which then shows the model as missing.
--
-- Compact on purpose: comments stay outside the statements (SQLite keeps each CREATE's text in the
-- schema) and there are no secondary indexes. The library holds a handful of rows, and every page this
-- migration writes comes out of the disk the history lives on (test/unit/history/failures.test.ts
-- fills a 2 MiB disk and then needs ~58 kB of WAL to purge). What unique indexes would enforce, the
-- library checks inside its BEGIN IMMEDIATE write transactions: one model per content hash, one per
-- folder (`dir`), at most one default.
-- Since then the library owns these tables and migrates them itself (electron/model-library/schema.ts):
-- its migration 001 restores those three as constraints, and the full-disk test sizes its disk from the
-- schema.
--
-- models: one row per model the library knows.
--   origin: bundled (ships with the app, read-only) | referenced (imported in place) | copied | downloaded
--   source: the imported path or the downloaded URL(s); dir: the folder the engine opens
--   info_json: the engine's ModelInfo at import, whole; kind … native_height are copies to filter on
--   providers_json: execution providers it has run on; size_bytes, content_hash: see content-hash.ts
--   fingerprint: file names, sizes and mtimes when hashed (a bundled folder is rehashed only if it changed)
--   added_at: ms since the epoch
CREATE TABLE models (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('bundled', 'referenced', 'copied', 'downloaded')),
  source TEXT NOT NULL,
  dir TEXT NOT NULL,
  info_json TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('txt2img', 'inpaint')),
  family TEXT NOT NULL CHECK (family IN ('sd1', 'sd2', 'lcm', 'custom')),
  prediction_type TEXT NOT NULL,
  precision TEXT NOT NULL CHECK (precision IN ('fp32', 'fp16', 'mixed')),
  native_width INTEGER NOT NULL CHECK (native_width > 0),
  native_height INTEGER NOT NULL CHECK (native_height > 0),
  providers_json TEXT NOT NULL DEFAULT '[]',
  size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
  content_hash TEXT NOT NULL CHECK (length(content_hash) = 64),
  fingerprint TEXT NOT NULL,
  added_at INTEGER NOT NULL,
  is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
) STRICT, WITHOUT ROWID;

-- model_downloads: downloads not yet installed. The partial files are in <models dir>/.downloads/<id>/;
-- the row says what they are, so a download resumes (HTTP Range) after an interruption or a restart.
--   id: sha256 of the request (the same request continues the same download)
--   files_json: DownloadFileSpec[]; validators_json: per file path, the ETag / Last-Modified sent as If-Range
CREATE TABLE model_downloads (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  source TEXT NOT NULL,
  files_json TEXT NOT NULL,
  validators_json TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
