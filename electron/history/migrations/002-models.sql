-- 002: the model library (electron/model-library) and its downloads.
-- Generations keep their own model_id/model_hash and have no foreign key to models: removing a model
-- keeps every history row, which then shows the model as missing.

CREATE TABLE models (
  id              TEXT    PRIMARY KEY,
  name            TEXT    NOT NULL,
  origin          TEXT    NOT NULL CHECK (origin IN ('bundled', 'referenced', 'copied', 'downloaded')),
  source          TEXT    NOT NULL,                              -- the imported path or the downloaded URL(s)
  dir             TEXT    NOT NULL UNIQUE,                       -- the folder the engine opens
  -- What the engine detected (ModelInfo), kept whole as JSON; the columns below are copies to filter on.
  info_json       TEXT    NOT NULL,
  kind            TEXT    NOT NULL CHECK (kind IN ('txt2img', 'inpaint')),
  family          TEXT    NOT NULL CHECK (family IN ('sd1', 'sd2', 'lcm', 'custom')),
  prediction_type TEXT    NOT NULL,
  precision       TEXT    NOT NULL CHECK (precision IN ('fp32', 'fp16', 'mixed')),
  native_width    INTEGER NOT NULL CHECK (native_width > 0),
  native_height   INTEGER NOT NULL CHECK (native_height > 0),
  providers_json  TEXT    NOT NULL DEFAULT '[]',                 -- execution providers it has run on
  size_bytes      INTEGER NOT NULL CHECK (size_bytes >= 0),
  content_hash    TEXT    NOT NULL UNIQUE CHECK (length(content_hash) = 64),
  -- File names, sizes and mtimes when the hash was taken: a bundled folder is rehashed only if it changed.
  fingerprint     TEXT    NOT NULL,
  added_at        INTEGER NOT NULL,                              -- ms since the epoch
  is_default      INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1))
) STRICT;

-- At most one default model.
CREATE UNIQUE INDEX models_one_default ON models (is_default) WHERE is_default = 1;

-- Downloads not yet installed. The partial files live in <models dir>/.downloads/<id>/; the row says what
-- they are, so a download resumes (HTTP Range) after an interruption or an app restart. The id is the
-- sha256 of the request, so asking again for the same files continues the same download.
CREATE TABLE model_downloads (
  id              TEXT    PRIMARY KEY,
  name            TEXT    NOT NULL,
  source          TEXT    NOT NULL,
  files_json      TEXT    NOT NULL,                              -- DownloadFileSpec[]
  -- Per file path: the server's ETag / Last-Modified, sent as If-Range so a changed file restarts.
  validators_json TEXT    NOT NULL DEFAULT '{}',
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;
