-- 008: A1111's prompt options a generation ran with, when not the default.
--
--   emphasis: A1111's "Emphasis" ('No norm', 'Ignore', 'None'); NULL = Original
--   pad_conds: 1 when the shorter of prompt and negative was padded with empty chunks (A1111 "Pad conds: True")
--
-- Plain added columns: no CHECK of an existing column changes, so the table is not rebuilt.
ALTER TABLE generations ADD COLUMN emphasis TEXT CHECK (emphasis IN ('No norm', 'Ignore', 'None'));
ALTER TABLE generations ADD COLUMN pad_conds INTEGER CHECK (pad_conds = 1);
