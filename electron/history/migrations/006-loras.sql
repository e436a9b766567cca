-- 006: the LoRAs a generation's `<lora:…>` tags applied, [{"name", "hash"}] (A1111 "Lora hashes"), so Reuse
-- can find each file again by its hash when its name changed.
--
-- A plain added column: the table is not rebuilt.
ALTER TABLE generations ADD COLUMN loras_json TEXT;
