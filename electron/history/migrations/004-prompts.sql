-- 004: the A1111 prompt settings a generation ran with.
--
--   clip_skip: A1111's "Clip skip" (NULL = 1, as runs before it and imports that do not say)
--   embeddings_json: the textual-inversion embeddings the prompts used, [{"name", "hash"}] (A1111 "TI hashes")
--
-- Plain added columns: no CHECK of an existing column changes, so the table is not rebuilt.
ALTER TABLE generations ADD COLUMN clip_skip INTEGER CHECK (clip_skip >= 1);
ALTER TABLE generations ADD COLUMN embeddings_json TEXT;
