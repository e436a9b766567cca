/**
 * The U-Net's detector: its input dtypes and ranks (`sample`, `timestep`, `encoder_hidden_states`, LCM's
 * `timestep_cond`, a layout U-Net's `label_map`), its batch and spatial axes, and its input channel count,
 * which says the kind: the latent channels (text-to-image), 2·latent + 1 (inpainting, 9 for SD), or a
 * layout U-Net. Channels come from config.json, a static dim, or a probe run (diffusers-script exports
 * have symbolic axes and no config.json).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFolderError } from '../../shared/errors.js';
import type { ControlInfo, LayoutLabel, ModelInfo, ModelKind } from '../../shared/model.js';
import { residualShapesFromUnet, zeroResiduals } from './controlnet.js';
import { isFloatType, num, staticDim, type JsonObject } from './folder-config.js';
import { LABELS_FILE, readLabels } from './layout-labels.js';
import type { HostTensor, IoSpec, OnnxModule } from './onnx-module.js';
import { TEXT_EMBEDS_INPUT, TIME_IDS_INPUT } from './sdxl.js';

/** CLIP text encoders in SD take 77 tokens (tokenizer `model_max_length`). */
export const CLIP_MAX_LENGTH = 77;
/** A layout U-Net's extra input: the label map, [batch, K, h, w] (docs: tensor/label-map.ts). */
export const LABEL_MAP_INPUT = 'label_map';

/** Feeds a timestep the way the session declares it: rank 0 → scalar, rank 1 → [1] (§2.2 summary). */
export function timestepTensor(t: number, rank: 0 | 1): HostTensor {
  return { data: Float32Array.of(t), dims: rank === 0 ? [] : [1] };
}

export interface UnetContext {
  /** The model folder (for labels.json and unet/config.json residual shapes). */
  dir: string;
  config: JsonObject | null;
  latentChannels: number;
  textHiddenSize: number;
  /** The U-Net's ControlNet residual inputs, when it has them (controlnet.ts `detectUnetControl`). */
  control: Pick<ControlInfo, 'downInputs' | 'midInput'> | null;
  /** SDXL: zero `text_embeds`/`time_ids` feeds for a probe run (sdxl.ts); null for SD 1.x/2.x. */
  addedConditioning: Record<string, HostTensor> | null;
  warnings: string[];
}

export interface UnetDetection {
  info: ModelInfo['unet'];
  sample: IoSpec;
  kind: ModelKind;
  inChannels: number;
  /** A layout U-Net's labels (labels.json), else null. */
  labels: LayoutLabel[] | null;
  /** Static latent height/width, when the graph fixes them. */
  fixedH: number | undefined;
  fixedW: number | undefined;
  /** config.json `sample_size` (latent side), else the static height. */
  sampleSize: number | undefined;
  /** Resolution levels (config `block_out_channels`, 4 when unknown). */
  levels: number;
}

export async function detectUnet(unet: OnnxModule, ctx: UnetContext): Promise<UnetDetection> {
  const { config, latentChannels, textHiddenSize } = ctx;
  if (!ctx.addedConditioning && (unet.input(TEXT_EMBEDS_INPUT) || unet.input(TIME_IDS_INPUT))) {
    throw new ModelFolderError(
      "the U-Net takes SDXL's text_embeds and time_ids, but the folder has no text_encoder_2/model.onnx " +
        '(SDXL\'s second text encoder, OpenCLIP bigG with projection) and model_index.json does not name an SDXL pipeline',
      'text_encoder_2/model.onnx',
    );
  }
  const sample = unet.requireInput('sample');
  const timestep = unet.requireInput('timestep');
  const hidden = unet.requireInput('encoder_hidden_states');
  if (!isFloatType(sample.type)) throw new ModelFolderError(`sample must be a float tensor, found ${sample.type}`, unet.label);
  if (!['float32', 'float16', 'int64', 'int32', 'float64'].includes(timestep.type)) {
    throw new ModelFolderError(`timestep has unsupported type ${timestep.type}`, unet.label);
  }
  if (sample.shape.length !== 4 && sample.shape.length !== 0) {
    throw new ModelFolderError(`sample must be rank 4 [batch, channels, height, width], found rank ${sample.shape.length}`, unet.label);
  }
  const timestepRank: 0 | 1 = timestep.shape.length === 0 ? 0 : 1;
  if (timestep.shape.length > 1) throw new ModelFolderError(`timestep must be a scalar or [batch], found rank ${timestep.shape.length}`, unet.label);
  const cond = unet.input('timestep_cond');
  const timestepCondDim = cond ? (num(config, 'time_cond_proj_dim') ?? staticDim(cond.shape, 1) ?? null) : null;
  if (cond && timestepCondDim === null) throw new ModelFolderError('timestep_cond has no static width and no config.json says time_cond_proj_dim', unet.label);
  const crossDim = num(config, 'cross_attention_dim') ?? staticDim(hidden.shape, 2);
  if (crossDim !== undefined && crossDim !== textHiddenSize) {
    throw new ModelFolderError(
      `wrong shapes: the U-Net expects encoder_hidden_states of width ${crossDim} but the text encoder gives ${textHiddenSize}`,
      unet.label,
    );
  }
  const fixedH = staticDim(sample.shape, 2);
  const fixedW = staticDim(sample.shape, 3);
  const labels = detectLayoutLabels(unet, ctx, sample);

  // In-channels (of `sample`): config, else a static channel dim, else probe. A layout U-Net's
  // config.json is its inner U-Net's, whose conv_in also takes the K label channels that the graph
  // concatenates to `sample`.
  const configInChannels = num(config, 'in_channels');
  let inChannels = labels
    ? (staticDim(sample.shape, 1) ?? (configInChannels !== undefined ? configInChannels - labels.length : undefined))
    : (configInChannels ?? staticDim(sample.shape, 1));
  if (inChannels === undefined) {
    const extraFeeds: Record<string, HostTensor> = { ...ctx.addedConditioning };
    const { control } = ctx;
    const residuals = control ? residualShapesFromUnet(unet, control, join(ctx.dir, 'unet'), { height: fixedH ?? 8, width: fixedW ?? 8 }) : null;
    if (control && residuals) {
      zeroResiduals(residuals, 1).forEach((t, i) => (extraFeeds[[...control.downInputs, control.midInput][i]!] = t));
    }
    if (labels) {
      const [h, w] = [fixedH ?? 8, fixedW ?? 8];
      extraFeeds[LABEL_MAP_INPUT] = { data: new Float32Array(labels.length * h * w), dims: [1, labels.length, h, w] };
    }
    inChannels = await probeUnetChannels(unet, latentChannels, textHiddenSize, timestepRank, timestepCondDim, fixedH, fixedW, extraFeeds);
  }
  const maskedChannels = 2 * latentChannels + 1;
  let kind: ModelKind;
  if (labels) {
    if (inChannels !== latentChannels) {
      throw new ModelFolderError(
        `wrong shapes: a layout U-Net's sample takes the ${latentChannels} latent channels (the label map is its own input), found ${inChannels}`,
        unet.label,
      );
    }
    kind = 'layout';
  } else if (inChannels === latentChannels) kind = 'txt2img';
  else if (inChannels === maskedChannels) kind = 'inpaint';
  else {
    throw new ModelFolderError(
      `wrong shapes: the U-Net takes ${inChannels} input channels; expected ${latentChannels} (text-to-image) or ${maskedChannels} (inpainting)`,
      unet.label,
    );
  }
  const blocks = config?.['block_out_channels'];
  const externalData = ['weights.pb', 'model.onnx_data'].find((f) => existsSync(join(ctx.dir, 'unet', f))) ?? null;
  return {
    info: {
      sampleType: sample.type,
      timestepType: timestep.type,
      timestepRank,
      batchDynamic: staticDim(sample.shape, 0) === undefined,
      timestepCondDim,
      externalData,
      sequenceLength: staticDim(hidden.shape, 1) ?? null,
    },
    sample,
    kind,
    inChannels,
    labels,
    fixedH,
    fixedW,
    sampleSize: num(config, 'sample_size') ?? fixedH,
    levels: Array.isArray(blocks) ? blocks.length : 4,
  };
}

/** The static `out_sample` channel count, when the graph has one (a fallback for the latent channels). */
export function unetOutChannels(unet: OnnxModule): number | undefined {
  return staticDim(unet.outputs.get(unet.outputName(['out_sample']))!.shape, 1);
}

/** A layout U-Net: a `label_map` input [batch, K, h, w] and labels.json with K labels. */
function detectLayoutLabels(unet: OnnxModule, ctx: UnetContext, sample: IoSpec): LayoutLabel[] | null {
  const labelMapInput = unet.input(LABEL_MAP_INPUT);
  if (!labelMapInput) {
    if (existsSync(join(ctx.dir, LABELS_FILE))) ctx.warnings.push(`${LABELS_FILE} is ignored: the U-Net has no ${LABEL_MAP_INPUT} input`);
    return null;
  }
  if (!isFloatType(labelMapInput.type)) throw new ModelFolderError(`${LABEL_MAP_INPUT} must be a float tensor, found ${labelMapInput.type}`, unet.label);
  if (labelMapInput.shape.length !== 4) {
    throw new ModelFolderError(`${LABEL_MAP_INPUT} must be rank 4 [batch, labels, height, width], found rank ${labelMapInput.shape.length}`, unet.label);
  }
  const labels = readLabels(ctx.dir);
  // K from the graph, else from config.json (the inner U-Net's in_channels minus the sample's channels).
  const configIn = num(ctx.config, 'in_channels');
  const sampleChannels = staticDim(sample.shape, 1);
  const channels =
    staticDim(labelMapInput.shape, 1) ?? (configIn !== undefined && sampleChannels !== undefined ? configIn - sampleChannels : undefined);
  if (channels !== undefined && channels !== labels.length) {
    throw new ModelFolderError(
      `${labels.length} labels, but the U-Net's ${LABEL_MAP_INPUT} input takes ${channels} channels: the labels must match the model`,
      LABELS_FILE,
    );
  }
  return labels;
}

/** Runs the U-Net once on a tiny input with each plausible channel count; the one it accepts is the answer. */
async function probeUnetChannels(
  unet: OnnxModule,
  latentChannels: number,
  hiddenSize: number,
  timestepRank: 0 | 1,
  timestepCondDim: number | null,
  fixedH: number | undefined,
  fixedW: number | undefined,
  extraFeeds: Record<string, HostTensor>,
): Promise<number> {
  const h = fixedH ?? 8;
  const w = fixedW ?? 8;
  const out = unet.outputName(['out_sample']);
  const errors: string[] = [];
  for (const c of [latentChannels, 2 * latentChannels + 1]) {
    const feeds: Record<string, HostTensor> = {
      sample: { data: new Float32Array(c * h * w), dims: [1, c, h, w] },
      timestep: timestepTensor(1, timestepRank),
      encoder_hidden_states: { data: new Float32Array(CLIP_MAX_LENGTH * hiddenSize), dims: [1, CLIP_MAX_LENGTH, hiddenSize] },
      ...extraFeeds,
    };
    if (timestepCondDim !== null) feeds['timestep_cond'] = { data: new Float32Array(timestepCondDim), dims: [1, timestepCondDim] };
    try {
      await unet.run(feeds, [out]);
      return c;
    } catch (err) {
      errors.push(`${c}: ${(err as Error).message}`);
    }
  }
  throw new ModelFolderError(`could not detect the U-Net's input channels (${errors.join(' | ')})`, unet.label);
}
