/**
 * SDXL conditioning as diffusers' StableDiffusionXLPipeline builds it (`encode_prompt`,
 * `_get_add_time_ids`; wave2-reference §2b):
 * - each text encoder's penultimate hidden state (`hidden_states[-2]`, no final LayerNorm), concatenated
 *   along the feature axis in encoder order (768 + 1280 = 2048 for the real models);
 * - the pooled embedding: encoder 2's projected `text_embeds` (1280), fed as the U-Net's `text_embeds`;
 * - `time_ids` = (original h, w, crop top, left, target h, w), or for the refiner
 *   (original h, w, crop top, left, aesthetic score) with 6.0 for the prompt and 2.5 for the negative;
 * - the prompt and the negative follow A1111 on both encoders (sd_models_xl.py, sd_hijack_clip.py): weights,
 *   BREAK and 75-token chunks, each chunk encoded on its own by each encoder, weighted with the mean
 *   restored per encoder, the encoders' states of a chunk concatenated along the feature axis and the
 *   chunks along the sequence (77·k tokens); the pooled embedding is encoder 2's of the first chunk;
 * - textual-inversion embeddings as A1111 applies SDXL files: a word equal to the embedding's name takes
 *   its `clip_l` vectors on encoder 1 and its `clip_g` vectors on encoder 2, counted as its vector count
 *   in the chunks; an SD 1.x/2.x embedding is skipped with a warning naming the file;
 * - under guidance, an empty negative prompt gives zeros for its hidden states and pooled embedding when
 *   the folder's `force_zeros_for_empty_prompt` is true (diffusers does that for a missing negative; a
 *   written one is encoded by both encoders).
 * The batch order under guidance is [negative, positive], as everywhere else in the engine.
 */
import { StudioError } from '../../shared/errors.js';
import { DEFAULT_AESTHETIC_SCORE, DEFAULT_NEGATIVE_AESTHETIC_SCORE } from '../../shared/generation-limits.js';
import type { GenerationParams } from '../../shared/generation.js';
import type { SdxlInfo } from '../../shared/model.js';
import type { LoadedModel, PromptEmbeddingSet } from '../model/model-folder.js';
import type { HostTensor } from '../model/onnx-module.js';
import { REFINER_TIME_IDS, TEXT_EMBEDS_INPUT, TIME_IDS_INPUT, type SdxlTextEncoder } from '../model/sdxl.js';
import { CHUNK_TOKENS, tokenizePrompt } from '../prompt/chunker.js';
import { CLIP_G_VECTORS, encodeChunks, FIRST_ENCODER_VECTORS, skippedEmbeddings } from '../prompt/conditioning.js';
import { mismatchWarning, type TextualInversion } from '../prompt/embeddings.js';
import type { HiddenStateChoice } from '../prompt/text-encoder.js';
import { DEFAULT_EMPHASIS, type EmphasisMode } from '../../shared/generation-limits.js';
import type { PromptEmbeddings } from './components.js';


/** The U-Net's added inputs for the prompt and (under guidance) the negative. */
export interface AddedConditioning {
  textEmbeds: { cond: Float32Array; uncond: Float32Array | null; width: number };
  timeIds: { cond: Float32Array; uncond: Float32Array | null; width: number };
}

/** A1111's prompt options SD 1.x honours too: "Emphasis" and "Pad conds". */
export interface SdxlPromptOptions {
  emphasis?: EmphasisMode;
  /** Textual-inversion embeddings the texts may name (LoadedModel.embeddingSet). */
  embeddings?: PromptEmbeddingSet;
  /** Pad the shorter of prompt and negative with the empty prompt's chunk (A1111's `pad_cond_uncond`). */
  padConds?: boolean;
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

/** The refiner's scores a run resolved (GenerationParams), as time-id options; empty for other models. */
export function aestheticOptions(params: Pick<GenerationParams, 'aestheticScore' | 'negativeAestheticScore'>): TimeIdOptions {
  return {
    ...(params.aestheticScore !== undefined ? { aestheticScore: params.aestheticScore } : {}),
    ...(params.negativeAestheticScore !== undefined ? { negativeAestheticScore: params.negativeAestheticScore } : {}),
  };
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

/** One encoder's A1111 conditioning for one text. */
interface EncodedSdxlText {
  /** [chunks · 77, width]: each chunk's penultimate hidden state, weighted and mean-restored, concatenated. */
  hidden: Float32Array;
  chunks: number;
  /** On the encoder that gives it (encoder 2): the first chunk's pooled, projected embedding. */
  pooled: Float32Array | null;
  /** The textual-inversion embeddings the text used on this encoder. */
  embeddings: TextualInversion[];
}

/** SDXL conditions on each encoder's penultimate hidden state, without the final LayerNorm (`hidden_states[-2]`). */
const SDXL_STATE: HiddenStateChoice = { fromEnd: 2, finalNorm: false };

/**
 * A1111's `FrozenCLIPEmbedderForSDXLWithCustomWords` / `FrozenOpenCLIPEmbedder2WithCustomWords` forward for
 * one text on one encoder: the text is parsed and chunked with this encoder's tokenizer (chunker.ts: CLIP-L
 * pads with EOS, bigG with `!` after the first EOS), each 77-token chunk runs through the encoder on its
 * own, its penultimate hidden state is weighted token by token with the mean restored (emphasis
 * "Original", per encoder), and the chunks are concatenated along the sequence. The pooled embedding is the
 * first chunk's (`zs[0].pooled`). A word naming a textual-inversion embedding takes the embedding's
 * vectors for this encoder (`clip_l` on CLIP-L, `clip_g` on bigG: A1111's `textual_inversion_key`),
 * through the same rewritten graph as SD 1.x (prompt/conditioning.ts encodeChunks). Cached per encoder
 * session, emphasis, embeddings and text (LoadedModel.cachedSdxlText).
 */
async function encodeSdxlText(
  model: LoadedModel,
  encoder: SdxlTextEncoder,
  text: string,
  emphasis: EmphasisMode,
  embeddings: PromptEmbeddingSet | undefined,
): Promise<EncodedSdxlText> {
  const { info } = encoder;
  return model.cachedSdxlText(encoder, `${emphasis}\u0000${embeddings?.key ?? ''}\u0000${text}`, async (promptEncoder) => {
    const vocabulary = embeddings?.vocabularyFor(encoder.tokenizer) ?? null;
    const { chunks } = tokenizePrompt(text, encoder.tokenizer, {
      ...(emphasis === 'None' ? { parseAttention: false } : {}),
      ...(vocabulary ? { embeddings: vocabulary } : {}),
    });
    const out = await encodeChunks(promptEncoder, chunks, SDXL_STATE, {
      emphasis,
      vectors: info.submodel === 'text_encoder_2' ? CLIP_G_VECTORS : FIRST_ENCODER_VECTORS,
      ...(info.pooledOutput ? { pooled: info.pooledOutput } : {}),
    });
    return { hidden: out.data, chunks: out.chunks, pooled: out.pooled ?? null, embeddings: out.embeddings };
  });
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
 * One text through every encoder of the folder (the refiner: encoder 2 alone), A1111's way: the hidden
 * states of the same chunk concatenated along the feature axis (sgm's GeneralConditioner), [77·k, Σw], and
 * encoder 2's pooled embedding of the first chunk.
 */
async function encodeSdxlTextAllEncoders(
  model: LoadedModel,
  text: string,
  emphasis: EmphasisMode = DEFAULT_EMPHASIS,
  embeddings?: PromptEmbeddingSet,
): Promise<EncodedSdxlTextAll> {
  const encoders = model.modules.sdxlTextEncoders!;
  const outs: EncodedSdxlText[] = [];
  // Each encoder's session in the model (a LoRA view of the model swaps it for a patched one).
  for (const e of encoders) outs.push(await encodeSdxlText(model, e, text, emphasis, embeddings));
  const chunks = outs[0]!.chunks;
  if (outs.some((o) => o.chunks !== chunks)) {
    // Both tokenizers share CLIP's vocabulary, so this only happens with mismatched tokenizer files.
    throw new StudioError('E_MODEL_FOLDER', `the two SDXL tokenizers split the prompt into ${outs.map((o) => o.chunks).join(' and ')} chunks; tokenizer/ and tokenizer_2/ must share one vocabulary`);
  }
  const tokens = chunks * CHUNK_TOKENS;
  const states = concatFeatures(outs.map((o) => o.hidden), encoders.map((e) => e.info.hiddenSize), tokens);
  const used: TextualInversion[] = [];
  for (const o of outs) for (const e of o.embeddings) if (!used.includes(e)) used.push(e);
  const skipped = embeddings ? skippedEmbeddings(text, encoders[0]!.tokenizer, embeddings.mismatched, emphasis) : [];
  return { states, tokens, pooled: outs.find((o) => o.pooled !== null)!.pooled!, used, skipped };
}

interface EncodedSdxlTextAll {
  states: Float32Array;
  tokens: number;
  pooled: Float32Array;
  /** The embeddings applied. */
  used: TextualInversion[];
  /** The embeddings named but made for another model family (not applied). */
  skipped: TextualInversion[];
}

/**
 * Prompt embeddings [77·k, Σw] and pooled embeddings for the prompt and, when `withUncond`, the negative,
 * with A1111's prompt semantics on both encoders (weights, BREAK, 75-token chunks). The two may have
 * different chunk counts (predictNoise then runs them as two U-Net calls). An empty negative under
 * `force_zeros_for_empty_prompt` is zeros, as long as the prompt (zero keys and values attend to nothing,
 * so the length does not change the picture; one batched call is cheaper).
 * Emphasis and Pad conds as A1111 applies them to SDXL: emphasis per encoder and chunk; Pad conds repeats
 * the empty prompt's chunk (both encoders, not zeros: A1111's `cond_stage_model_empty_prompt`) after the
 * shorter cross-attention states; the pooled embeddings are not padded. `padded` says it happened.
 */
export async function encodeSdxlPrompts(
  model: LoadedModel,
  prompt: string,
  negative: string,
  withUncond: boolean,
  options: SdxlPromptOptions = {},
): Promise<{ embeddings: PromptEmbeddings; pooled: { cond: Float32Array; uncond: Float32Array | null }; padded: boolean; textualInversion: TextualInversionUse }> {
  const sdxl = model.info.sdxl!;
  const emphasis = options.emphasis ?? DEFAULT_EMPHASIS;
  const hidden = model.modules.sdxlTextEncoders!.reduce((n, e) => n + e.info.hiddenSize, 0);
  const zeroNegative = withUncond && negative === '' && sdxl.forceZerosForEmptyPrompt;
  let cond = await encodeSdxlTextAllEncoders(model, prompt, emphasis, options.embeddings);
  let uncond: EncodedSdxlTextAll | null = null;
  if (withUncond) {
    uncond = zeroNegative
      ? { states: new Float32Array(cond.states.length), tokens: cond.tokens, pooled: new Float32Array(cond.pooled.length), used: [], skipped: [] }
      : await encodeSdxlTextAllEncoders(model, negative, emphasis, options.embeddings);
  }
  let padded = false;
  if (options.padConds && uncond && uncond.tokens !== cond.tokens) {
    const empty = await encodeSdxlTextAllEncoders(model, '', emphasis);
    const pad = <T extends { states: Float32Array; tokens: number }>(e: T, tokens: number): T => {
      const states = new Float32Array(tokens * hidden);
      states.set(e.states);
      for (let t = e.tokens; t < tokens; t += CHUNK_TOKENS) states.set(empty.states, t * hidden);
      return { ...e, states, tokens };
    };
    if (cond.tokens < uncond.tokens) cond = pad(cond, uncond.tokens);
    else uncond = pad(uncond, cond.tokens);
    padded = true;
  }
  return {
    embeddings: { cond: cond.states, uncond: uncond?.states ?? null, condTokens: cond.tokens, uncondTokens: uncond?.tokens ?? 0, hidden },
    pooled: { cond: cond.pooled, uncond: uncond?.pooled ?? null },
    padded,
    textualInversion: {
      used: [...new Set([...cond.used, ...(uncond?.used ?? [])])],
      skipped: [...new Set([...cond.skipped, ...(uncond?.skipped ?? [])])].map((e) => mismatchWarning(e, options.embeddings!.widths)),
    },
  };
}

/** The embeddings a job's texts used, and the warnings for those it named but could not take. */
export interface TextualInversionUse {
  used: TextualInversion[];
  skipped: string[];
}

/** Everything SDXL adds to one job's conditioning: the embeddings and the U-Net's added inputs. */
export async function encodeSdxlConditioning(
  model: LoadedModel,
  prompt: string,
  negative: string,
  withUncond: boolean,
  size: { width: number; height: number },
  options: TimeIdOptions & SdxlPromptOptions = {},
): Promise<{ embeddings: PromptEmbeddings; added: AddedConditioning; padded: boolean; textualInversion: TextualInversionUse }> {
  const sdxl = model.info.sdxl!;
  const { embeddings, pooled, padded, textualInversion } = await encodeSdxlPrompts(model, prompt, negative, withUncond, options);
  const ids = sdxlTimeIds(sdxl, size, options);
  return {
    embeddings,
    padded,
    textualInversion,
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
  // The same for every step of a job: built once per (conditioning, batch), not per U-Net call.
  let byWhich = feedCache.get(added);
  if (!byWhich) feedCache.set(added, (byWhich = new Map()));
  const cached = byWhich.get(which);
  if (cached) return cached;
  const feeds = buildAddedFeeds(added, which);
  byWhich.set(which, feeds);
  return feeds;
}

const feedCache = new WeakMap<AddedConditioning, Map<'cond' | 'uncond' | 'both', Record<string, HostTensor>>>();

function buildAddedFeeds(added: AddedConditioning, which: 'cond' | 'uncond' | 'both'): Record<string, HostTensor> {
  const pick = (part: { cond: Float32Array; uncond: Float32Array | null; width: number }): HostTensor => {
    if (which === 'cond') return { data: part.cond, dims: [1, part.width], constant: true };
    if (which === 'uncond') return { data: part.uncond!, dims: [1, part.width], constant: true };
    const both = new Float32Array(2 * part.width);
    both.set(part.uncond!, 0);
    both.set(part.cond, part.width);
    return { data: both, dims: [2, part.width], constant: true };
  };
  return { [TEXT_EMBEDS_INPUT]: pick(added.textEmbeds), [TIME_IDS_INPUT]: pick(added.timeIds) };
}
