-- 003: layout generations (semantic synthesis from a label map) and the parameters 001 did not keep.
--
-- generations gains mode 'layout' and four columns:
--   label_map_hash: the layout run's label map, an input image stored like the mask (images table)
--   inpaint_area ('whole' | 'masked'), mask_padding (pixels): inpaint's "only masked" settings
--   control_scale: the ControlNet conditioning scale, when a ControlNet guided the run
-- models (002) gains kind 'layout'.
--
-- SQLite cannot change a CHECK constraint in place, so both tables are rebuilt: rename the old one,
-- create the new one, copy every row (ids kept, so the full-text index, whose rowids are the ids, stays
-- valid), drop the old one. Renaming first moves the old table's self-reference (parent_id) to the old
-- name, so dropping it sets nothing to NULL in the new table; its triggers and indexes go with it and
-- are created again below, as 001 wrote them. Comments stay outside the statements (SQLite keeps each
-- CREATE's text in the schema; see 002).
ALTER TABLE generations RENAME TO generations_v2;

CREATE TABLE generations (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at         INTEGER NOT NULL,
  source             TEXT    NOT NULL CHECK (source IN ('generated', 'imported')),
  status             TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed', 'cancelled')),
  mode               TEXT    NOT NULL CHECK (mode IN ('txt2img', 'img2img', 'inpaint', 'layout')),
  model_id           TEXT,
  model_hash         TEXT,
  prompt             TEXT    NOT NULL,
  negative_prompt    TEXT    NOT NULL,
  seed               INTEGER,
  steps              INTEGER,
  cfg                REAL,
  sampler            TEXT,
  width              INTEGER NOT NULL CHECK (width > 0),
  height             INTEGER NOT NULL CHECK (height > 0),
  strength           REAL,
  mask_blur          REAL,
  init_image_hash    TEXT    REFERENCES images (hash),
  mask_hash          TEXT    REFERENCES images (hash),
  output_hash        TEXT    REFERENCES images (hash),
  parent_id          INTEGER REFERENCES generations (id) ON DELETE SET NULL,
  execution_provider TEXT,
  timings_json       TEXT,
  error              TEXT,
  favorite           INTEGER NOT NULL DEFAULT 0 CHECK (favorite IN (0, 1)),
  tags               TEXT    NOT NULL DEFAULT '',
  deleted_at         INTEGER,
  source_file        TEXT,
  source_parameters  TEXT,
  label_map_hash     TEXT    REFERENCES images (hash),
  inpaint_area       TEXT    CHECK (inpaint_area IN ('whole', 'masked')),
  mask_padding       INTEGER CHECK (mask_padding >= 0),
  control_scale      REAL,
  CHECK (status <> 'succeeded' OR output_hash IS NOT NULL)
) STRICT;

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, init_image_hash, mask_hash, output_hash, parent_id, execution_provider,
  timings_json, error, favorite, tags, deleted_at, source_file, source_parameters)
SELECT id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, init_image_hash, mask_hash, output_hash, parent_id, execution_provider,
  timings_json, error, favorite, tags, deleted_at, source_file, source_parameters
FROM generations_v2;

-- AUTOINCREMENT's high-water mark moves over too: a purged id is never handed out again.
DELETE FROM sqlite_sequence WHERE name = 'generations';
INSERT INTO sqlite_sequence (name, seq) SELECT 'generations', seq FROM sqlite_sequence WHERE name = 'generations_v2';

DROP TABLE generations_v2;

CREATE INDEX generations_by_parent    ON generations (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX generations_by_output    ON generations (output_hash);
CREATE INDEX generations_by_init      ON generations (init_image_hash) WHERE init_image_hash IS NOT NULL;
CREATE INDEX generations_by_mask      ON generations (mask_hash) WHERE mask_hash IS NOT NULL;
CREATE INDEX generations_by_label_map ON generations (label_map_hash) WHERE label_map_hash IS NOT NULL;
CREATE INDEX generations_by_model     ON generations (model_id, id);
CREATE INDEX generations_by_mode      ON generations (mode, id);
CREATE INDEX generations_by_created   ON generations (created_at);
CREATE INDEX generations_favorites    ON generations (id) WHERE favorite = 1;
CREATE INDEX generations_in_trash     ON generations (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX generations_for_counts   ON generations (deleted_at, mode, favorite);

CREATE TRIGGER generations_fts_insert AFTER INSERT ON generations BEGIN
  INSERT INTO generations_fts (rowid, prompt, negative_prompt, tags)
  VALUES (new.id, new.prompt, new.negative_prompt, new.tags);
END;
CREATE TRIGGER generations_fts_delete AFTER DELETE ON generations BEGIN
  INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt, tags)
  VALUES ('delete', old.id, old.prompt, old.negative_prompt, old.tags);
END;
CREATE TRIGGER generations_fts_update AFTER UPDATE OF prompt, negative_prompt, tags ON generations BEGIN
  INSERT INTO generations_fts (generations_fts, rowid, prompt, negative_prompt, tags)
  VALUES ('delete', old.id, old.prompt, old.negative_prompt, old.tags);
  INSERT INTO generations_fts (rowid, prompt, negative_prompt, tags)
  VALUES (new.id, new.prompt, new.negative_prompt, new.tags);
END;

ALTER TABLE models RENAME TO models_v2;

CREATE TABLE models (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  origin TEXT NOT NULL CHECK (origin IN ('bundled', 'referenced', 'copied', 'downloaded')),
  source TEXT NOT NULL,
  dir TEXT NOT NULL,
  info_json TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('txt2img', 'inpaint', 'layout')),
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

INSERT INTO models SELECT * FROM models_v2;

DROP TABLE models_v2;
