/**
 * LoRA files as people have them, read from the tiny LoRAs that native-models/tools/fixtures_lib/lora.py
 * made with peft (kohya, PEFT, LoCon, an SDXL-named one), plus A1111's prompt tags and the LDM name map.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ldmToDiffusersKey } from '../../../../electron/engine/lora/ldm-names.js';
import { readLoraFile } from '../../../../electron/engine/lora/lora-file.js';
import { extractLoraTags } from '../../../../electron/engine/lora/prompt-tags.js';
import { closeMatches, resolveLoraFile } from '../../../../electron/engine/lora/resolve.js';
import { LoraFileError } from '../../../../electron/engine/lora/safetensors.js';
import { InvalidRequestError } from '../../../../electron/shared/errors.js';
import { FIXTURES } from '../../../support/engine-fixtures.js';
import { safetensorsBytes } from '../../../support/safetensors.js';

const LORAS = join(FIXTURES, 'loras');

describe('LoRA files', () => {
  test('kohya: lora_unet_/lora_te_ modules, alpha/rank scale, fp16, metadata and family', async () => {
    const lora = await readLoraFile(join(LORAS, 'tiny-kohya.safetensors'));
    assert.equal(lora.format, 'kohya');
    assert.equal(lora.name, 'tiny-kohya');
    const unet = lora.modules.filter((m) => m.component === 'unet');
    const te = lora.modules.filter((m) => m.component === 'text_encoder');
    assert.equal(te.length, 12); // 2 layers × q, k, v, out, fc1, fc2
    assert.ok(unet.some((m) => m.key === 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0'));
    assert.ok(te.some((m) => m.key === 'text_model_encoder_layers_1_self_attn_q_proj'));
    for (const m of lora.modules) assert.equal(m.scale, 0.5, `${m.source}: alpha 2 / rank 4`);
    assert.deepEqual(lora.family, 'sd1');
    assert.match(lora.familyReason, /ss_base_model_version=sd_v1/);
    assert.match(lora.shortHash, /^[0-9a-f]{12}$/);
    assert.deepEqual(lora.unsupported, {});
  });

  test('PEFT/diffusers: lora_A/lora_B, scale lora_alpha/r from lora_adapter_metadata', async () => {
    const lora = await readLoraFile(join(LORAS, 'tiny-peft.safetensors'));
    assert.equal(lora.format, 'peft');
    assert.ok(lora.modules.some((m) => m.component === 'unet' && m.key.endsWith('attn2_to_out_0')));
    assert.ok(lora.modules.some((m) => m.component === 'text_encoder' && m.key === 'text_model_encoder_layers_0_mlp_fc2'));
    for (const m of lora.modules) assert.equal(m.scale, 1.5, `${m.source}: lora_alpha 3 / r 2`);
    assert.equal(lora.family, 'unknown'); // tiny widths, no kohya metadata
  });

  test('LoCon: 3×3 lora_down with 1×1 lora_up on resnet convs, bf16', async () => {
    const lora = await readLoraFile(join(LORAS, 'tiny-locon.safetensors'));
    const conv1 = lora.modules.find((m) => m.key === 'down_blocks_0_resnets_0_conv1')!;
    assert.deepEqual(conv1.downShape, [4, 8, 3, 3]);
    assert.deepEqual(conv1.upShape, [8, 4, 1, 1]);
    assert.equal(conv1.scale, 0.25);
    assert.ok(lora.modules.some((m) => m.key === 'down_blocks_0_downsamplers_0_conv'));
    assert.ok(lora.modules.some((m) => m.key.endsWith('time_emb_proj')));
  });

  test('SDXL naming: two text encoders and LDM U-Net names mapped to diffusers paths', async () => {
    const lora = await readLoraFile(join(LORAS, 'tiny-sdxl-kohya.safetensors'));
    assert.equal(lora.family, 'sdxl');
    assert.deepEqual(lora.modules.map((m) => `${m.component}:${m.key}`).sort(), [
      'text_encoder:text_model_encoder_layers_0_self_attn_q_proj',
      'text_encoder_2:text_model_encoder_layers_0_self_attn_q_proj',
      'unet:down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q',
    ]);
  });

  test('LDM → diffusers names (the verified rows of the reference table)', () => {
    const cases: [string, string][] = [
      ['input_blocks_9_0_op', 'down_blocks_2_downsamplers_0_conv'],
      ['output_blocks_2_1_conv', 'up_blocks_0_upsamplers_0_conv'],
      ['output_blocks_5_2_conv', 'up_blocks_1_upsamplers_0_conv'],
      ['input_blocks_6_0_op', 'down_blocks_1_downsamplers_0_conv'],
      ['middle_block_2_out_layers_3', 'mid_block_resnets_1_conv2'],
      ['label_emb_0_0', 'add_embedding_linear_1'],
      ['input_blocks_1_0_in_layers_2', 'down_blocks_0_resnets_0_conv1'],
      ['input_blocks_4_1_proj_in', 'down_blocks_1_attentions_0_proj_in'],
      ['output_blocks_4_1_transformer_blocks_0_attn2_to_k', 'up_blocks_1_attentions_1_transformer_blocks_0_attn2_to_k'],
      ['output_blocks_3_0_skip_connection', 'up_blocks_1_resnets_0_conv_shortcut'],
      ['time_embed_2', 'time_embedding_linear_2'],
      ['down_blocks_0_attentions_0_proj_in', 'down_blocks_0_attentions_0_proj_in'],
    ];
    for (const [ldm, diffusers] of cases) assert.equal(ldmToDiffusersKey(ldm), diffusers, ldm);
  });

  test('files that are not LoRAs, or only LoHa, are refused with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-file-'));
    try {
      const notLora = join(dir, 'model.safetensors');
      writeFileSync(notLora, safetensorsBytes({ 'conv_in.weight': { dtype: 'F32', shape: [1], values: [1] } }));
      await assert.rejects(readLoraFile(notLora), (e: unknown) => e instanceof LoraFileError && /is not a LoRA: none of its 1 tensors/.test(e.message));
      const loha = join(dir, 'loha.safetensors');
      const t = { dtype: 'F16', shape: [2, 2], values: [1, 2, 3, 4] };
      writeFileSync(loha, safetensorsBytes({ 'lora_unet_conv_in.hada_w1_a': t, 'lora_unet_conv_in.hada_w1_b': t, 'lora_unet_conv_in.alpha': { dtype: 'F16', shape: [], values: [1] } }));
      await assert.rejects(readLoraFile(loha), (e: unknown) => e instanceof LoraFileError && /no LoRA modules this app can apply \(1 LoHa\)/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('<lora:…> tags (A1111 extra networks)', () => {
  test('are cut out of the prompt, with default and split multipliers', () => {
    const { prompt, loras } = extractLoraTags('a cat <lora:style:0.6>, <lora:char> on a mat <lora:x:0.5:0.25> <lyco:y:unet=0.3:te=2>');
    assert.equal(prompt, 'a cat ,  on a mat  ');
    assert.deepEqual(loras, [
      { name: 'style', te: 0.6, unet: 0.6 },
      { name: 'char', te: 1, unet: 1 },
      { name: 'x', te: 0.5, unet: 0.25 },
      { name: 'y', te: 2, unet: 0.3 },
    ]);
  });

  test('bad tags are clear errors', () => {
    assert.throws(() => extractLoraTags('<lora:x:heavy>'), (e: unknown) => e instanceof InvalidRequestError && /"heavy" is not a number/.test(e.message));
    assert.throws(() => extractLoraTags('<hypernet:x:1>'), /"hypernet" extra networks are not supported/);
    assert.deepEqual(extractLoraTags('no tags <not a tag> (x:1.2)').loras, []);
  });

  test('names resolve in the folders given; an unknown one lists close matches', () => {
    assert.equal(resolveLoraFile('tiny-peft', ['/nonexistent', LORAS]), join(LORAS, 'tiny-peft.safetensors'));
    assert.throws(
      () => resolveLoraFile('tiny-kohay', [LORAS]),
      (e: unknown) => e instanceof InvalidRequestError && /no LoRA named "tiny-kohay".*did you mean "tiny-kohya"/.test(e.message),
    );
    assert.throws(() => resolveLoraFile('x', []), /no LoRA folder is set/);
    assert.deepEqual(closeMatches('Style', ['style', 'styles-v2', 'cat']), ['style', 'styles-v2']);
  });
});
