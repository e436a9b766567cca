-- 005: A1111's hires fix and soft inpainting settings a generation ran with.
--
--   hires_json: txt2img hires fix, {"upscaler", "scale", "resizeWidth", "resizeHeight", "steps", "strength"}
--               (GenerationParams.hires; NULL = no hires fix)
--   soft_inpaint: 1 when an inpaint ran with soft inpainting (differential diffusion); NULL = off
--
-- Plain added columns: no CHECK of an existing column changes, so the table is not rebuilt.
ALTER TABLE generations ADD COLUMN hires_json TEXT;
ALTER TABLE generations ADD COLUMN soft_inpaint INTEGER CHECK (soft_inpaint = 1);
