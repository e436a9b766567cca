/**
 * A prompt to U-Net conditioning, as A1111's `FrozenCLIPEmbedderWithCustomWords.forward` makes it for one
 * text (wave2-reference §1b): chunk it (chunker.ts), encode each 77-token chunk on its own with the chosen
 * hidden state, weight it token by token and restore its mean (emphasis "Original"), and concatenate the
 * chunks along the sequence axis (a 2-chunk prompt gives 154 tokens).
 *
 * SDXL runs this once per text encoder, each with its own tokenizer padding and hidden state.
 */
import { StudioError } from '../../shared/errors.js';
import type { ChunkTokenizer, EmbeddingVocabulary, PromptChunk } from './chunker.js';
import { CHUNK_TOKENS, tokenizePrompt } from './chunker.js';
import type { TextualInversion } from './embeddings.js';
import type { HiddenStateChoice, PromptTextEncoder } from './text-encoder.js';
import { DEFAULT_EMPHASIS, type EmphasisMode } from '../../shared/generation-limits.js';

/** Encoded prompts kept per model (a batch, a re-run or a live preview reuse them). */
export const PROMPT_CACHE_SIZE = 32;

export interface EncodedPrompt {
  /** [chunks · 77, width], row-major. */
  data: Float32Array;
  /** Sequence length: 77 × chunks. */
  tokens: number;
  width: number;
  chunks: number;
  /** A1111's token count (what the prompt box shows). */
  tokenCount: number;
  /** The embeddings the prompt used, in order of first use. */
  embeddings: TextualInversion[];
  /** Warnings for the embeddings the text names but the model can't take (A1111's skipped embeddings). */
  skipped?: string[];
}

export interface PromptEncodeOptions {
  state: HiddenStateChoice;
  commaBacktrack?: number;
  embeddings?: EmbeddingVocabulary<TextualInversion>;
  /** A1111's "Emphasis" option; default Original. */
  emphasis?: EmphasisMode;
}

export async function encodePrompt(
  encoder: PromptTextEncoder,
  tokenizer: ChunkTokenizer,
  prompt: string,
  options: PromptEncodeOptions,
): Promise<EncodedPrompt> {
  const { chunks, tokenCount } = tokenizePrompt(prompt, tokenizer, {
    ...(options.commaBacktrack !== undefined ? { commaBacktrack: options.commaBacktrack } : {}),
    ...(options.embeddings ? { embeddings: options.embeddings } : {}),
    ...(options.emphasis === 'None' ? { parseAttention: false } : {}),
  });
  const encoded = await encodeChunks(encoder, chunks, options.state, options.emphasis ?? DEFAULT_EMPHASIS);
  return { ...encoded, tokenCount };
}

/** Which tensor of an embedding feeds which text encoder (A1111's `textual_inversion_key`). */
export type EmbeddingVectors = (e: TextualInversion) => Float32Array;

/** SD 1.x/2.x, and SDXL's first encoder (CLIP-L): the file's `clip_l` or only tensor. */
export const FIRST_ENCODER_VECTORS: EmbeddingVectors = (e) => e.data;
/** SDXL's second encoder (OpenCLIP bigG): the file's `clip_g`. */
export const CLIP_G_VECTORS: EmbeddingVectors = (e) => {
  if (!e.clipG) throw new StudioError('E_BAD_EMBEDDING', `${e.file}: the embedding "${e.name}" has no clip_g vectors for SDXL's second text encoder`);
  return e.clipG.data;
};

export interface EncodeChunksOptions {
  emphasis?: EmphasisMode;
  /** The embedding rows this encoder takes (default: the first encoder's). */
  vectors?: EmbeddingVectors;
  /** Also return this output of the encoder for the first chunk (SDXL encoder 2's pooled `text_embeds`). */
  pooled?: string;
}

/**
 * The embeddings of `mismatched` (made for another model family) that a text names: A1111 skips those
 * files, so the word stays text; the job says which file it skipped.
 */
export function skippedEmbeddings(
  text: string,
  tokenizer: ChunkTokenizer,
  mismatched: EmbeddingVocabulary<TextualInversion> | null,
  emphasis: EmphasisMode = DEFAULT_EMPHASIS,
): TextualInversion[] {
  if (!mismatched) return [];
  const { chunks } = tokenizePrompt(text, tokenizer, { embeddings: mismatched, ...(emphasis === 'None' ? { parseAttention: false } : {}) });
  const out: TextualInversion[] = [];
  for (const c of chunks) for (const f of c.fixes) if (!out.includes(f.embedding)) out.push(f.embedding);
  return out;
}

/**
 * The weighted, mean-restored, concatenated hidden states of already-made chunks (all from one text).
 * An embedding's vectors replace the token-embedding rows at its positions (`EmbeddingsWithFixes`: rows
 * offset+1 … offset+n, n cut to what fits before the end of the chunk). SDXL runs this once per encoder,
 * each with its own tensor of the embedding (`clip_l`, `clip_g`).
 */
export async function encodeChunks(
  encoder: PromptTextEncoder,
  chunks: PromptChunk<TextualInversion>[],
  state: HiddenStateChoice,
  emphasisOrOptions: EmphasisMode | EncodeChunksOptions = {},
): Promise<Omit<EncodedPrompt, 'tokenCount'> & { pooled?: Float32Array }> {
  const options = typeof emphasisOrOptions === 'string' ? { emphasis: emphasisOrOptions } : emphasisOrOptions;
  const emphasis = options.emphasis ?? DEFAULT_EMPHASIS;
  const vectorsOf = options.vectors ?? FIRST_ENCODER_VECTORS;
  const ids = chunks.map((c) => c.ids);
  const used: TextualInversion[] = [];
  for (const c of chunks) for (const f of c.fixes) if (!used.includes(f.embedding)) used.push(f.embedding);

  let extra: { rows: Float32Array; lookup: number[][] } | undefined;
  if (used.length > 0) {
    const base = await encoder.vocabRows();
    if (base === null) {
      throw new StudioError(
        'E_UNSUPPORTED',
        `${encoder.plain.label}: textual-inversion embeddings need a plain CLIP text encoder graph with its weights inside model.onnx`,
      );
    }
    const firstRow = new Map<TextualInversion, number>();
    const parts = used.map(vectorsOf);
    let rows = 0;
    used.forEach((e) => {
      firstRow.set(e, base + rows);
      rows += e.vectors;
    });
    const table = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      table.set(p, o);
      o += p.length;
    }
    const lookup = chunks.map((c) => {
      const row = [...c.ids];
      for (const f of c.fixes) {
        const n = Math.min(CHUNK_TOKENS - f.offset - 1, f.embedding.vectors);
        for (let j = 0; j < n; j++) row[f.offset + 1 + j] = firstRow.get(f.embedding)! + j;
      }
      return row;
    });
    extra = { rows: table, lookup };
  }

  const out = await encoder.run({ ids, state, ...(extra ? { extra } : {}), ...(options.pooled ? { pooled: options.pooled } : {}) });
  const { data, width } = out;
  chunks.forEach((c, i) => applyEmphasis(emphasis, data.subarray(i * CHUNK_TOKENS * width, (i + 1) * CHUNK_TOKENS * width), c.multipliers, width));
  const pooled = out.pooled ? out.pooled.slice(0, out.pooled.length / chunks.length) : undefined;
  return { data, tokens: chunks.length * CHUNK_TOKENS, width, chunks: chunks.length, embeddings: used, ...(pooled ? { pooled } : {}) };
}

/**
 * A1111's emphasis options (modules/sd_emphasis.py) on one chunk z [77, width], in place. "None" and
 * "Ignore" leave z as encoded (None never parsed the brackets; Ignore parsed them and drops the weights),
 * "No norm" multiplies each token by its weight, "Original" also restores the chunk's mean.
 */
export function applyEmphasis(emphasis: EmphasisMode, z: Float32Array, multipliers: readonly number[], width: number): void {
  if (emphasis === 'Original') applyEmphasisOriginal(z, multipliers, width);
  else if (emphasis === 'No norm') {
    for (let t = 0; t < multipliers.length; t++) {
      const m = multipliers[t]!;
      if (m !== 1) for (let k = t * width; k < (t + 1) * width; k++) z[k] = z[k]! * m;
    }
  }
}

/**
 * A1111's emphasis "Original" on one chunk z [77, width], in place: z·w per token, then z·(mean before /
 * mean after). The means are over the whole chunk (A1111 encodes one text per call here).
 */
export function applyEmphasisOriginal(z: Float32Array, multipliers: readonly number[], width: number): void {
  if (multipliers.every((m) => m === 1)) return;
  let before = 0;
  for (let i = 0; i < z.length; i++) before += z[i]!;
  let after = 0;
  for (let t = 0; t < multipliers.length; t++) {
    const m = multipliers[t]!;
    for (let k = t * width; k < (t + 1) * width; k++) {
      z[k] = z[k]! * m;
      after += z[k]!;
    }
  }
  const scale = before / after;
  for (let i = 0; i < z.length; i++) z[i] = z[i]! * scale;
}
