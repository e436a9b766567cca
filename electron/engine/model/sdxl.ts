/**
 * SDXL's detectors (wave2-reference §2): the folder layout (two text encoders and tokenizers, or encoder 2
 * alone for the refiner), each text encoder's penultimate hidden state and encoder 2's pooled `text_embeds`
 * (optimum exports every `hidden_states.N` with `output_hidden_states=True`), the U-Net's added
 * conditioning (`text_embeds`, `time_ids`: 6 values, or 5 with the refiner's aesthetic score), and the
 * few-step variants (Turbo, Lightning) from the scheduler config.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFolderError } from '../../shared/errors.js';
import type { SdxlInfo, SdxlTextEncoderInfo, SdxlVariant } from '../../shared/model.js';
import type { ClipTokenizer } from '../tokenizer/clip-tokenizer.js';
import { num, staticDim, type JsonObject } from './folder-config.js';
import type { HostTensor, OnnxModule } from './onnx-module.js';

export const TEXT_EMBEDS_INPUT = 'text_embeds';
export const TIME_IDS_INPUT = 'time_ids';
/** diffusers `_get_add_time_ids`: (original h, w, crop top, left, target h, w), or (…, aesthetic score) for the refiner. */
export const BASE_TIME_IDS = 6;
export const REFINER_TIME_IDS = 5;
const HIDDEN_STATE = /^hidden_states\.(\d+)$/;

/** The two SDXL text encoders, in the order their hidden states are concatenated (768 + 1280 = 2048). */
export const SDXL_TEXT_ENCODERS = [
  { submodel: 'text_encoder', tokenizer: 'tokenizer' },
  { submodel: 'text_encoder_2', tokenizer: 'tokenizer_2' },
] as const;

/** An opened SDXL text encoder with its tokenizer and what was detected. */
export interface SdxlTextEncoder {
  module: OnnxModule;
  tokenizer: ClipTokenizer;
  info: SdxlTextEncoderInfo;
}

/** model_index.json names an SDXL pipeline, or the folder has text_encoder_2/ (Olive and DirectML exports). */
export function isSdxlFolder(dir: string, modelIndex: JsonObject | null): boolean {
  const cls = modelIndex?.['_class_name'];
  if (typeof cls === 'string' && /StableDiffusionXL/.test(cls)) return true;
  return existsSync(join(dir, 'text_encoder_2'));
}

/**
 * A refiner-only folder has no text_encoder (model_index.json says `[null, null]`, or leaves it out and
 * there is no text_encoder/ folder).
 */
export function hasFirstTextEncoder(dir: string, modelIndex: JsonObject | null): boolean {
  const entry = modelIndex?.['text_encoder'];
  if (Array.isArray(entry)) return entry[0] !== null;
  return existsSync(join(dir, 'text_encoder'));
}

/** The files an SDXL folder must have, for checkLayout. */
export function sdxlRequiredFiles(withFirstEncoder: boolean): string[] {
  const encoders = withFirstEncoder ? SDXL_TEXT_ENCODERS : SDXL_TEXT_ENCODERS.slice(1);
  return [
    'model_index.json',
    ...encoders.flatMap((e) => [`${e.submodel}/model.onnx`, `${e.tokenizer}/vocab.json`, `${e.tokenizer}/merges.txt`]),
    'unet/model.onnx',
    'vae_decoder/model.onnx',
    'scheduler/scheduler_config.json',
  ];
}

/**
 * One SDXL text encoder: `input_ids`, its penultimate hidden state (`hidden_states.{L−1}` of the L+1 that
 * optimum exports; diffusers takes `hidden_states[-2]`, without the final LayerNorm) and, on encoder 2,
 * the pooled `text_embeds`.
 */
export async function detectSdxlTextEncoder(
  encoder: OnnxModule,
  tokenizer: ClipTokenizer,
  config: JsonObject | null,
  names: (typeof SDXL_TEXT_ENCODERS)[number],
): Promise<SdxlTextEncoderInfo> {
  const ids = encoder.requireInput('input_ids');
  if (ids.type !== 'int32' && ids.type !== 'int64') {
    throw new ModelFolderError(`input_ids must be int32 or int64, found ${ids.type}`, encoder.label);
  }
  const maxTokens = staticDim(ids.shape, 1) ?? tokenizer.maxLength;
  if (maxTokens !== tokenizer.maxLength) {
    throw new ModelFolderError(`${names.submodel} takes ${maxTokens} tokens but ${names.tokenizer} model_max_length is ${tokenizer.maxLength}`, encoder.label);
  }
  const layers = [...encoder.outputs.keys()].map((n) => HIDDEN_STATE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
  if (layers.length < 2) {
    throw new ModelFolderError(
      `SDXL conditions on the penultimate hidden state, but this encoder has no hidden_states.N outputs ` +
        `(outputs: ${[...encoder.outputs.keys()].join(', ')}); export it with output_hidden_states, as optimum does`,
      encoder.label,
    );
  }
  const hiddenOutput = `hidden_states.${Math.max(...layers) - 1}`;
  let hiddenSize = num(config, 'hidden_size') ?? staticDim(encoder.outputs.get(hiddenOutput)!.shape, 2);
  if (hiddenSize === undefined) {
    const probe = await encoder.run({ input_ids: { data: Int32Array.from(tokenizer.encode('').ids), dims: [1, tokenizer.maxLength] } }, [hiddenOutput]);
    hiddenSize = probe[hiddenOutput]!.dims[2]!;
  }
  const pooledOutput = encoder.outputs.has(TEXT_EMBEDS_INPUT) ? TEXT_EMBEDS_INPUT : null;
  if (names.submodel === 'text_encoder_2' && !pooledOutput) {
    throw new ModelFolderError(
      'SDXL takes its pooled embedding from text_encoder_2 (CLIPTextModelWithProjection), but this one has no text_embeds output',
      encoder.label,
    );
  }
  return {
    submodel: names.submodel,
    tokenizer: names.tokenizer,
    inputIdsType: ids.type,
    batchDynamic: staticDim(ids.shape, 0) === undefined,
    hiddenOutput,
    hiddenSize,
    pooledOutput,
  };
}

/** The pooled width: a static `text_embeds` dim, else text_encoder_2/config.json `projection_dim`, else a probe. */
export async function pooledSize(encoder: SdxlTextEncoder, config: JsonObject | null): Promise<number> {
  const out = encoder.info.pooledOutput!;
  const fixed = staticDim(encoder.module.outputs.get(out)!.shape, 1) ?? num(config, 'projection_dim');
  if (fixed !== undefined) return fixed;
  const probe = await encoder.module.run({ input_ids: { data: Int32Array.from(encoder.tokenizer.encode('').ids), dims: [1, encoder.tokenizer.maxLength] } }, [out]);
  return probe[out]!.dims[1]!;
}

/**
 * The U-Net's added conditioning: it must take `text_embeds` [batch, pooled] and `time_ids` [batch, 6 or 5].
 * The time-id count comes from the graph, else from config.json
 * (`projection_class_embeddings_input_dim = n·addition_time_embed_dim + pooled`), else model_index.json
 * `requires_aesthetics_score`.
 */
export function detectAddedConditioning(
  unet: OnnxModule,
  unetConfig: JsonObject | null,
  modelIndex: JsonObject | null,
  pooled: number,
): { timeIds: 5 | 6 } {
  const missing = [TEXT_EMBEDS_INPUT, TIME_IDS_INPUT].filter((n) => !unet.input(n));
  if (missing.length > 0) {
    throw new ModelFolderError(
      `this is an SDXL folder (text_encoder_2), but the U-Net has no ${missing.join(' and ')} input: an SDXL U-Net takes ` +
        `text_embeds and time_ids (addition_embed_type "text_time"); inputs found: ${[...unet.inputs.keys()].join(', ')}`,
      unet.label,
    );
  }
  const embeds = unet.requireInput(TEXT_EMBEDS_INPUT);
  const ids = unet.requireInput(TIME_IDS_INPUT);
  const embedsWidth = staticDim(embeds.shape, 1);
  if (embedsWidth !== undefined && embedsWidth !== pooled) {
    throw new ModelFolderError(`wrong shapes: the U-Net takes text_embeds of width ${embedsWidth} but text_encoder_2 gives ${pooled}`, unet.label);
  }
  const projection = num(unetConfig, 'projection_class_embeddings_input_dim');
  const timeEmbed = num(unetConfig, 'addition_time_embed_dim');
  const fromConfig = projection !== undefined && timeEmbed !== undefined ? (projection - pooled) / timeEmbed : undefined;
  const count = staticDim(ids.shape, 1) ?? fromConfig ?? (modelIndex?.['requires_aesthetics_score'] === true ? REFINER_TIME_IDS : BASE_TIME_IDS);
  if (count !== BASE_TIME_IDS && count !== REFINER_TIME_IDS) {
    throw new ModelFolderError(`time_ids must hold 6 values (base) or 5 (refiner, with the aesthetic score), found ${count}`, unet.label);
  }
  return { timeIds: count };
}

/**
 * Turbo and Lightning are ordinary SDXL U-Nets distilled for 1–8 steps; what tells them apart is their
 * scheduler config: trailing timestep spacing (sdxl-turbo ships Euler ancestral, Lightning's card Euler).
 */
export function sdxlVariant(schedulerConfig: JsonObject, refiner: boolean): SdxlVariant {
  if (refiner) return 'refiner';
  if (schedulerConfig['timestep_spacing'] !== 'trailing') return 'base';
  return schedulerConfig['_class_name'] === 'EulerAncestralDiscreteScheduler' ? 'turbo' : 'lightning';
}

/** Zero `text_embeds` and base `time_ids` feeds for a probe run. */
export function addedConditioningProbe(info: Pick<SdxlInfo, 'pooledSize' | 'timeIds'>): Record<string, HostTensor> {
  return {
    [TEXT_EMBEDS_INPUT]: { data: new Float32Array(info.pooledSize), dims: [1, info.pooledSize] },
    [TIME_IDS_INPUT]: { data: new Float32Array(info.timeIds), dims: [1, info.timeIds] },
  };
}
