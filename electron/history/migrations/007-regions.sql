-- 007: regional prompts (each region's prompt, weight, covered area and mask).
--
-- One row per region of a generation, in the request's order (position 0, 1, …). The mask is an input
-- image stored like the inpaint mask (images table); an image a region references is never freed while
-- the region row exists. Rows go with their generation (ON DELETE CASCADE, when the item is purged).
CREATE TABLE generation_regions (
  generation_id INTEGER NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
  position      INTEGER NOT NULL CHECK (position >= 0),
  prompt        TEXT    NOT NULL,
  weight        REAL    NOT NULL CHECK (weight > 0),
  area          REAL    NOT NULL CHECK (area >= 0 AND area <= 1),
  mask_hash     TEXT    NOT NULL REFERENCES images (hash),
  PRIMARY KEY (generation_id, position)
) STRICT, WITHOUT ROWID;

CREATE INDEX generation_regions_by_mask ON generation_regions (mask_hash);
