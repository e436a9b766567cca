-- Rows as an app at schema version 9 wrote them: the v8 rows (see v8.sql) and an SDXL refiner img2img row
-- with its aesthetic scores.
-- The migration test loads this into a v9 database and checks that every later migration keeps them.
-- When you add migration N+1, add vN+1.sql here too.
INSERT INTO images (hash, width, height, byte_size, created_at) VALUES
  ('1111111111111111111111111111111111111111111111111111111111111111', 512, 512, 401234, 1735689600000),
  ('2222222222222222222222222222222222222222222222222222222222222222', 512, 512, 398765, 1735689660000),
  ('3333333333333333333333333333333333333333333333333333333333333333', 512, 512, 1234, 1735689660000),
  ('4444444444444444444444444444444444444444444444444444444444444444', 64, 64, 2345, 1735689760000),
  ('5555555555555555555555555555555555555555555555555555555555555555', 64, 64, 345, 1735689760000);

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, init_image_hash, mask_hash, output_hash, parent_id, execution_provider,
  timings_json, error, favorite, tags, deleted_at, source_file, source_parameters, label_map_hash, inpaint_area, mask_padding,
  control_scale) VALUES
  (1, 1735689600000, 'generated', 'succeeded', 'txt2img', 'sd15', 'abcdef', 'a seeded lighthouse', 'blurry', 42, 20,
   7.0, 'euler_a', 512, 512, 1.0, 4.0, NULL, NULL, '1111111111111111111111111111111111111111111111111111111111111111', NULL,
   'cpu', '{"totalMs":1000,"textEncodeMs":10,"vaeEncodeMs":0,"denoiseMs":900,"vaeDecodeMs":90,"stepsRun":20}', NULL, 1,
   'coast' || char(10) || 'night', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (2, 1735689660000, 'generated', 'succeeded', 'inpaint', 'sd15-inpaint', 'fedcba', 'a seeded lighthouse with a boat', '', 43, 25,
   7.5, 'dpmpp_2m_karras', 512, 512, 0.8, 8.0, '1111111111111111111111111111111111111111111111111111111111111111',
   '3333333333333333333333333333333333333333333333333333333333333333',
   '2222222222222222222222222222222222222222222222222222222222222222', 1, 'cuda', NULL, NULL, 0, '', 1735689700000, NULL, NULL,
   NULL, 'masked', 32, 0.8),
  (3, 1735689720000, 'generated', 'failed', 'txt2img', 'sd15', 'abcdef', 'a failed run', '', 44, 20,
   7.0, 'ddim', 512, 512, 1.0, 4.0, NULL, NULL, NULL, NULL, 'webgpu', NULL, 'device lost', 0, '', NULL, NULL, NULL, NULL, NULL,
   NULL, NULL),
  (4, 1735689760000, 'generated', 'succeeded', 'layout', 'emoji-ldm-layout', '0123abcd', 'a seeded layout face', '', 45, 20,
   7.5, 'euler', 64, 64, 1.0, 0.0, NULL, NULL, '4444444444444444444444444444444444444444444444444444444444444444', NULL, 'cpu',
   NULL, NULL, 0, '', NULL, NULL, NULL, '5555555555555555555555555555555555555555555555555555555555555555', NULL, NULL, NULL);

INSERT INTO models (id, name, origin, source, dir, info_json, kind, family, prediction_type, precision, native_width,
  native_height, providers_json, size_bytes, content_hash, fingerprint, added_at, is_default) VALUES
  ('sd15', 'sd15', 'copied', '/home/someone/models/sd15', '/data/models/sd15', '{}', 'txt2img', 'sd1', 'epsilon', 'fp16',
   512, 512, '["cpu","cuda"]', 2132000000, 'abcdef'||'0123456789abcdef0123456789abcdef0123456789abcdef0123456789', '[]',
   1735689500000, 1),
  ('emoji-ldm-layout', 'emoji-ldm-layout', 'bundled', '/app/native-models/emoji-ldm-layout', '/app/native-models/emoji-ldm-layout',
   '{}', 'layout', 'custom', 'v_prediction', 'fp32', 64, 64, '["cpu"]', 31000000,
   '0123ab'||'0123456789abcdef0123456789abcdef0123456789abcdef0123456789', '[]', 1735689750000, 0);

INSERT INTO model_downloads (id, name, source, files_json, validators_json, created_at, updated_at) VALUES
  ('9999999999999999999999999999999999999999999999999999999999999999', 'sd15-inpaint', 'https://example.com/sd15-inpaint/',
   '[{"path":"model_index.json","url":"https://example.com/sd15-inpaint/model_index.json","size":587}]', '{}',
   1735689800000, 1735689800000);

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, output_hash, favorite, tags, clip_skip, embeddings_json) VALUES
  (90, 1735689900000, 'generated', 'failed', 'txt2img', 'sd15', 'abcdef', '(a lighthouse:1.2) BREAK easynegative', '', 7, 20,
   7.0, 'euler', 512, 512, 1.0, 0.0, NULL, 0, '', 2, '[{"name":"easynegative","hash":"0123456789ab"}]');

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, output_hash, favorite, tags, hires_json, soft_inpaint) VALUES
  (91, 1735690000000, 'generated', 'failed', 'txt2img', 'sd15', 'abcdef', 'a hires lighthouse', '', 8, 20,
   7.0, 'euler', 512, 512, 1.0, 0.0, NULL, 0, '',
   '{"upscaler":"Latent","scale":2,"resizeWidth":0,"resizeHeight":0,"steps":0,"strength":0.7}', NULL),
  (92, 1735690100000, 'generated', 'failed', 'inpaint', 'sd15', 'abcdef', 'a soft lighthouse', '', 9, 20,
   7.0, 'euler', 512, 512, 1.0, 4.0, NULL, 0, '', NULL, 1);

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, output_hash, favorite, tags, loras_json) VALUES
  (93, 1735690200000, 'generated', 'failed', 'txt2img', 'sd15', 'abcdef', 'a lighthouse <lora:watercolor:0.8>', '', 10, 20,
   7.0, 'euler', 512, 512, 1.0, 0.0, NULL, 0, '', '[{"name":"watercolor","hash":"ba9876543210"}]');

-- Version 7: a txt2img row with two regional prompts and their masks.
INSERT INTO images (hash, width, height, byte_size, created_at) VALUES
  ('6666666666666666666666666666666666666666666666666666666666666666', 512, 512, 1200, 1735690000000),
  ('7777777777777777777777777777777777777777777777777777777777777777', 512, 512, 1300, 1735690000000),
  ('8888888888888888888888888888888888888888888888888888888888888888', 512, 512, 401000, 1735690000000);
INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, output_hash, favorite, tags) VALUES
  (95, 1735690000000, 'generated', 'succeeded', 'txt2img', 'sd15', 'abcdef', 'a seeded garden', '', 8, 20,
   7.0, 'euler', 512, 512, 1.0, 0.0, '8888888888888888888888888888888888888888888888888888888888888888', 0, '');
INSERT INTO generation_regions (generation_id, position, prompt, weight, area, mask_hash) VALUES
  (95, 0, 'a red rose', 1.0, 0.25, '6666666666666666666666666666666666666666666666666666666666666666'),
  (95, 1, 'a blue pond; still water', 0.7, 0.4, '7777777777777777777777777777777777777777777777777777777777777777');

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, output_hash, favorite, tags, emphasis, pad_conds) VALUES
  (193, 1735690900000, 'generated', 'failed', 'txt2img', 'sd15', 'abcdef', '(a padded lighthouse:1.2)', 'long negative', 10, 20,
   7.0, 'euler', 512, 512, 1.0, 0.0, NULL, 0, '', 'No norm', 1);

INSERT INTO generations (id, created_at, source, status, mode, model_id, model_hash, prompt, negative_prompt, seed, steps,
  cfg, sampler, width, height, strength, mask_blur, output_hash, favorite, tags, aesthetic_score, negative_aesthetic_score) VALUES
  (194, 1735691000000, 'generated', 'failed', 'img2img', 'sdxl-refiner', 'abcdef', 'a refined lighthouse', 'blurry', 11, 25,
   5.0, 'euler', 1024, 1024, 0.3, 0.0, NULL, 0, '', 7.5, 1.5);
