-- 001: the first schema of the history database.
-- Applied inside one transaction by database.ts, which then sets PRAGMA user_version = 1.

-- Every image file the store keeps (outputs, img2img init images, inpaint masks), content-addressed:
-- the file is images/<first 2 hex digits>/<hash>.png and its thumbnail thumbs/<2>/<hash>.webp.
CREATE TABLE images (
  hash         TEXT    PRIMARY KEY CHECK (length(hash) = 64),  -- sha256 of the file bytes, lowercase hex
  width        INTEGER NOT NULL CHECK (width > 0),
  height       INTEGER NOT NULL CHECK (height > 0),
  byte_size    INTEGER NOT NULL CHECK (byte_size > 0),
  -- Set by startup reconciliation when the file has gone from disk: the row stays and is reported.
  file_missing INTEGER NOT NULL DEFAULT 0 CHECK (file_missing IN (0, 1)),
  created_at   INTEGER NOT NULL                                -- ms since the epoch
) STRICT, WITHOUT ROWID;

CREATE TABLE generations (
  -- AUTOINCREMENT: a purged id is never handed out again, so exports and lineage can't be confused.
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at         INTEGER NOT NULL,                         -- ms since the epoch
  source             TEXT    NOT NULL CHECK (source IN ('generated', 'imported')),
  status             TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed', 'cancelled')),
  mode               TEXT    NOT NULL CHECK (mode IN ('txt2img', 'img2img', 'inpaint')),
  model_id           TEXT,
  model_hash         TEXT,
  prompt             TEXT    NOT NULL,
  negative_prompt    TEXT    NOT NULL,
  -- Null only for imported files that don't say (or name a sampler we don't have).
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
  -- Purging a parent keeps its children and forgets the link.
  parent_id          INTEGER REFERENCES generations (id) ON DELETE SET NULL,
  execution_provider TEXT,
  timings_json       TEXT,                                     -- GenerationTimings as JSON
  error              TEXT,
  favorite           INTEGER NOT NULL DEFAULT 0 CHECK (favorite IN (0, 1)),
  tags               TEXT    NOT NULL DEFAULT '',              -- newline-separated, so FTS5 indexes them
  deleted_at         INTEGER,                                  -- set while in the trash
  source_file        TEXT,                                     -- imported: the original file name
  source_parameters  TEXT,                                     -- imported: its A1111 parameters text
  CHECK (status <> 'succeeded' OR output_hash IS NOT NULL)
) STRICT;

-- Newest-first pages walk the rowid (id) backwards; these serve the filters and the reference lookups.
CREATE INDEX generations_by_parent    ON generations (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX generations_by_output    ON generations (output_hash);
CREATE INDEX generations_by_init      ON generations (init_image_hash) WHERE init_image_hash IS NOT NULL;
CREATE INDEX generations_by_mask      ON generations (mask_hash) WHERE mask_hash IS NOT NULL;
CREATE INDEX generations_by_model     ON generations (model_id, id);
CREATE INDEX generations_by_mode      ON generations (mode, id);
CREATE INDEX generations_by_created   ON generations (created_at);
CREATE INDEX generations_favorites    ON generations (id) WHERE favorite = 1;
CREATE INDEX generations_in_trash     ON generations (deleted_at) WHERE deleted_at IS NOT NULL;
-- Covers every column counts() reads, so counting scans this small index instead of the table.
CREATE INDEX generations_for_counts   ON generations (deleted_at, mode, favorite);
CREATE INDEX images_missing           ON images (hash) WHERE file_missing = 1;

-- Full-text index over prompt, negative prompt and tags (external content: the text lives once, in
-- generations). Prefix indexes for 2- and 3-character prefixes make `ca*` fast.
CREATE VIRTUAL TABLE generations_fts USING fts5 (
  prompt, negative_prompt, tags,
  content = 'generations', content_rowid = 'id',
  tokenize = 'unicode61 remove_diacritics 2',
  prefix = '2 3'
);

-- Keep the index in step with generations (the FTS5 documentation's external-content triggers).
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
