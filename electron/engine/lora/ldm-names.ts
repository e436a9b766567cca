/**
 * LDM (CompVis / sgm) U-Net module names → diffusers names, in kohya's underscore spelling
 * (wave2-reference §3a, the table checked against A1111's convert_diffusers_name_to_compvis and diffusers'
 * _convert_unet_lora_key). kohya writes SDXL LoRAs with LDM names (it trains its own sgm-layout U-Net);
 * ONNX exports are made from the diffusers U-Net, whose module paths are what the graph keeps.
 *
 * The layout with 2 resnets per down level (SD 1.x, 2.x, XL): input_blocks.(1+3L+j) is level L's resnet or
 * attention j, input_blocks.(3+3L).0.op its downsampler; output_blocks.(3L+j) is up level L's j-th of 3,
 * and the upsampler is the last entry of output_blocks.(3L+2): index 1 without attention, 2 with.
 */

const RESNET_PARTS: Record<string, string> = {
  in_layers_0: 'norm1',
  in_layers_2: 'conv1',
  emb_layers_1: 'time_emb_proj',
  out_layers_0: 'norm2',
  out_layers_3: 'conv2',
  skip_connection: 'conv_shortcut',
};

const TOP_LEVEL: Record<string, string> = {
  input_blocks_0_0: 'conv_in',
  time_embed_0: 'time_embedding_linear_1',
  time_embed_2: 'time_embedding_linear_2',
  label_emb_0_0: 'add_embedding_linear_1',
  label_emb_0_2: 'add_embedding_linear_2',
  out_0: 'conv_norm_out',
  out_2: 'conv_out',
};

function resnetPart(rest: string): string {
  for (const [ldm, diffusers] of Object.entries(RESNET_PARTS)) {
    if (rest === ldm || rest.startsWith(`${ldm}_`)) return diffusers + rest.slice(ldm.length);
  }
  return rest;
}

/** Returns the diffusers key for an LDM-named U-Net key; any other key is returned unchanged. */
export function ldmToDiffusersKey(key: string): string {
  for (const [ldm, diffusers] of Object.entries(TOP_LEVEL)) {
    if (key === ldm || key.startsWith(`${ldm}_`)) return diffusers + key.slice(ldm.length);
  }
  let m = /^input_blocks_(\d+)_(\d+)_(.+)$/.exec(key);
  if (m) {
    const i = Number(m[1]) - 1;
    const level = Math.floor(i / 3);
    const j = i % 3;
    const [, , sub, rest] = m as unknown as [string, string, string, string];
    if (j === 2 && sub === '0' && (rest === 'op' || rest.startsWith('op_'))) return `down_blocks_${level}_downsamplers_0_conv${rest.slice(2)}`;
    if (sub === '0') return `down_blocks_${level}_resnets_${j}_${resnetPart(rest)}`;
    if (sub === '1') return `down_blocks_${level}_attentions_${j}_${rest}`;
    return key;
  }
  m = /^middle_block_(\d)_(.+)$/.exec(key);
  if (m) {
    const [, index, rest] = m as unknown as [string, string, string];
    if (index === '0') return `mid_block_resnets_0_${resnetPart(rest)}`;
    if (index === '1') return `mid_block_attentions_0_${rest}`;
    if (index === '2') return `mid_block_resnets_1_${resnetPart(rest)}`;
    return key;
  }
  m = /^output_blocks_(\d+)_(\d+)_(.+)$/.exec(key);
  if (m) {
    const [, n, sub, rest] = m as unknown as [string, string, string, string];
    const level = Math.floor(Number(n) / 3);
    const j = Number(n) % 3;
    if (sub === '0') return `up_blocks_${level}_resnets_${j}_${resnetPart(rest)}`;
    // The upsampler's conv is `conv` directly under the block (no further path), attention parts are not.
    if ((sub === '1' || sub === '2') && (rest === 'conv' || rest.startsWith('conv_')) && !rest.startsWith('conv_in')) {
      return `up_blocks_${level}_upsamplers_0_conv${rest.slice(4)}`;
    }
    if (sub === '1') return `up_blocks_${level}_attentions_${j}_${rest}`;
    return key;
  }
  return key;
}
