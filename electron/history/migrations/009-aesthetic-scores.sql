-- 009: the aesthetic scores an SDXL refiner run conditioned on (its time ids end with them; diffusers'
-- aesthetic_score / negative_aesthetic_score). NULL for every other model and for older rows.
--
-- Plain added columns: no CHECK of an existing column changes, so the table is not rebuilt.
ALTER TABLE generations ADD COLUMN aesthetic_score REAL CHECK (aesthetic_score BETWEEN 0 AND 10);
ALTER TABLE generations ADD COLUMN negative_aesthetic_score REAL CHECK (negative_aesthetic_score BETWEEN 0 AND 10);
