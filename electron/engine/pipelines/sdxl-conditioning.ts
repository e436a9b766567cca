/**
 * SDXL conditioning as diffusers' StableDiffusionXLPipeline builds it (`encode_prompt`,
 * `_get_add_time_ids`; wave2-reference §2b):
 * - each text encoder's penultimate hidden state (`hidden_states[-2]`, no final LayerNorm), concatenated
 *   along the feature axis in encoder order (768 + 1280 = 2048 for the real models);
 * - the pooled embedding: encoder 2's projected `text_embeds` (1280), fed as the U-Net's `text_embeds`;
 * - `time_ids` = (original h, w, crop top, left, target h, w), or for the refiner
 *   (original h, w, crop top, left, aesthetic score) with 6.0 for the prompt and 2.5 for the negative;
 * - under guidance, an empty negative prompt gives zeros for its hidden states and pooled embedding when
 *   the folder's `force_zeros_for_empty_prompt` is true (diffusers does that for a missing negative; a
 *   written one is encoded by both encoders).
 * The batch order under guidance is [negative, positive], as everywhere else in the engine.
 */
import type { SdxlInfo } from '../../shared/model.js';
import type { LoadedModel } from '../model/model-folder.js';
import type { HostTensor, OnnxModule } from '../model/onnx-module.js';
import { REFINER_TIME_IDS, TEXT_EMBEDS_INPUT, TIME_IDS_INPUT, type SdxlTextEncoder } from '../model/sdxl.js';
import type { PromptEmbeddings } from './components.js';

/** diffusers StableDiffusionXLImg2ImgPipeline defaults for the refiner's aesthetic conditioning. */
export const DEFAULT_AESTHETIC_SCORE = 6.0;
export const DEFAULT_NEGATIVE_AESTHETIC_SCORE = 2.5;

/** The U-Net's added inputs for the prompt and (under guidance) the negative. */
export interface AddedConditioning {
  textEmbeds: { cond: Float32Array; uncond: Float32Array | null; width: number };
  timeIds: { cond: Float32Array; uncond: Float32Array | null; width: number };
}

export interface TimeIdOptions {
  /** Defaults to the picture's size (diffusers: `original_size = (height, width)`). */
  originalSize?: { width: number; height: number };
  /** Defaults to (0, 0). */
  cropTopLeft?: { top: number; left: number };
  /** Defaults to the picture's size. */
  targetSize?: { width: number; height: number };
  aestheticScore?: number;
  negativeAestheticScore?: number;
}

/**
 * `_get_add_time_ids` for one picture: base (6 values) or refiner (5). The negative's ids equal the
 * positive's for the base; the refiner's differ in the aesthetic score.
 */
export function sdxlTimeIds(
  info: Pick<SdxlInfo, 'timeIds'>,
  size: { width: number; height: number },
  options: TimeIdOptions = {},
): { cond: Float32Array; uncond: Float32Array } {
  const original = options.originalSize ?? size;
  const crop = options.cropTopLeft ?? { top: 0, left: 0 };
  const target = options.targetSize ?? size;
  const head = [original.height, original.width, crop.top, crop.left];
  if (info.timeIds === REFINER_TIME_IDS) {
    return {
      cond: Float32Array.from([...head, options.aestheticScore ?? DEFAULT_AESTHETIC_SCORE]),
      uncond: Float32Array.from([...head, options.negativeAestheticScore ?? DEFAULT_NEGATIVE_AESTHETIC_SCORE]),
    };
  }
  const ids = Float32Array.from([...head, target.height, target.width]);
  return { cond: ids, uncond: ids.slice() };
}

/** One encoder's outputs for a list of texts: penultimate hidden states [n, tokens, w] and, on encoder 2, pooled [n, p]. */
async function runEncoder(
  module: OnnxModule,
  encoder: SdxlTextEncoder,
  texts: string[],
): Promise<{ hidden: Float32Array[]; pooled: Float32Array[] | null }> {
  const { tokenizer, info } = encoder;
  const len = tokenizer.maxLength;
  const outputs = info.pooledOutput ? [info.hiddenOutput, info.pooledOutput] : [info.hiddenOutput];
  const run = async (rows: number[][]) => {
    const ids = new Int32Array(rows.length * len);
    rows.forEach((r, i) => ids.set(r, i * len));
    return module.run({ input_ids: { data: ids, dims: [rows.length, len] } }, outputs);
  };
  const rows = texts.map((t) => tokenizer.encode(t).ids);
  const results = info.batchDynamic || rows.length === 1 ? [await run(rows)] : await Promise.all(rows.map((r) => run([r])));
  const split = (name: string): Float32Array[] =>
    results.flatMap((r) => {
      const t = r[name]!;
      const data = t.data as Float32Array;
      const per = data.length / t.dims[0]!;
      return Array.from({ length: t.dims[0]! }, (_, i) => data.subarray(i * per, (i + 1) * per));
    });
  return { hidden: split(info.hiddenOutput), pooled: info.pooledOutput ? split(info.pooledOutput) : null };
}

/** Concatenates per-token features of each encoder: [tokens, w1] ‖ [tokens, w2] → [tokens, w1 + w2]. */
function concatFeatures(parts: Float32Array[], widths: number[], tokens: number): Float32Array {
  const total = widths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(tokens * total);
  for (let t = 0; t < tokens; t++) {
    let o = t * total;
    parts.forEach((p, e) => {
      out.set(p.subarray(t * widths[e]!, (t + 1) * widths[e]!), o);
      o += widths[e]!;
    });
  }
  return out;
}

/**
 * Prompt embeddings [tokens, Σw] and pooled embeddings for the prompt and, when `withUncond`, the
 * negative (zeros for an empty negative under `force_zeros_for_empty_prompt`).
 */
export async function encodeSdxlPrompts(
  model: LoadedModel,
  prompt: string,
  negative: string,
  withUncond: boolean,
): Promise<{ embeddings: PromptEmbeddings; pooled: { cond: Float32Array; uncond: Float32Array | null } }> {
  const encoders = model.modules.sdxlTextEncoders!;
  const sdxl = model.info.sdxl!;
  const zeroNegative = withUncond && negative === '' && sdxl.forceZerosForEmptyPrompt;
  const texts = withUncond && !zeroNegative ? [prompt, negative] : [prompt];
  const outs = [];
  for (const e of encoders) {
    // The model's own session for that encoder (a LoRA view of the model swaps it for a patched one).
    const session = e.info.submodel === 'text_encoder_2' ? model.modules.textEncoder2! : model.modules.textEncoder;
    outs.push(await runEncoder(session, e, texts));
  }
  const tokens = encoders[0]!.tokenizer.maxLength;
  const widths = encoders.map((e) => e.info.hiddenSize);
  const hidden = widths.reduce((a, b) => a + b, 0);
  const pooledAll = outs.find((o) => o.pooled !== null)!.pooled!;
  const cond = concatFeatures(outs.map((o) => o.hidden[0]!), widths, tokens);
  let uncond: Float32Array | null = null;
  let pooledUncond: Float32Array | null = null;
  if (withUncond) {
    uncond = zeroNegative ? new Float32Array(cond.length) : concatFeatures(outs.map((o) => o.hidden[1]!), widths, tokens);
    pooledUncond = zeroNegative ? new Float32Array(pooledAll[0]!.length) : pooledAll[1]!;
  }
  return {
    embeddings: { cond, uncond, condTokens: tokens, uncondTokens: uncond ? tokens : 0, hidden },
    pooled: { cond: pooledAll[0]!, uncond: pooledUncond },
  };
}

/** Everything SDXL adds to one job's conditioning: the embeddings and the U-Net's added inputs. */
export async function encodeSdxlConditioning(
  model: LoadedModel,
  prompt: string,
  negative: string,
  withUncond: boolean,
  size: { width: number; height: number },
  options: TimeIdOptions = {},
): Promise<{ embeddings: PromptEmbeddings; added: AddedConditioning }> {
  const sdxl = model.info.sdxl!;
  const { embeddings, pooled } = await encodeSdxlPrompts(model, prompt, negative, withUncond);
  const ids = sdxlTimeIds(sdxl, size, options);
  return {
    embeddings,
    added: {
      textEmbeds: { cond: pooled.cond, uncond: pooled.uncond, width: sdxl.pooledSize },
      timeIds: { cond: ids.cond, uncond: withUncond ? ids.uncond : null, width: sdxl.timeIds },
    },
  };
}

/**
 * The added feeds for one U-Net call: the prompt's alone, the negative's alone, or [negative, prompt] for a
 * batch-2 guidance call.
 */
export function addedFeeds(added: AddedConditioning, which: 'cond' | 'uncond' | 'both'): Record<string, HostTensor> {
  const pick = (part: { cond: Float32Array; uncond: Float32Array | null; width: number }): HostTensor => {
    if (which === 'cond') return { data: part.cond, dims: [1, part.width] };
    if (which === 'uncond') return { data: part.uncond!, dims: [1, part.width] };
    const both = new Float32Array(2 * part.width);
    both.set(part.uncond!, 0);
    both.set(part.cond, part.width);
    return { data: both, dims: [2, part.width] };
  };
  return { [TEXT_EMBEDS_INPUT]: pick(added.textEmbeds), [TIME_IDS_INPUT]: pick(added.timeIds) };
}
