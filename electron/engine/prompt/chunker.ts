/**
 * A1111's long-prompt chunking (`sd_hijack_clip.py` `tokenize_line` and the padding of `process_tokens`,
 * wave2-reference §1b), for one tokenizer. SDXL runs it once per text encoder, each with its own ids.
 *
 * - Each weighted fragment is tokenized on its own (token boundaries fall at every weight boundary).
 * - Chunks hold 75 tokens, wrapped as BOS + 75 + EOS and padded with EOS (multiplier 1 for all three).
 * - When a non-comma token finds the chunk full and a comma lies within the last `commaBacktrack` tokens,
 *   the chunk ends after that comma and the rest moves on to the next chunk.
 * - BREAK ends the chunk (even an empty one); a trailing BREAK adds nothing.
 * - A textual-inversion embedding takes one position per vector, never straddles two chunks, and is
 *   recorded as a fix (offset counted after BOS).
 * - For a tokenizer whose pad id is not EOS (SD 2.x `!`, SDXL's second encoder), every position after the
 *   first EOS becomes the pad id.
 */
import { isBreak, parsePromptAttention } from './attention.js';

/** Tokens per chunk between BOS and EOS (A1111 `chunk_length`). */
export const CHUNK_LENGTH = 75;
/** Token positions the text encoder takes per chunk: BOS + 75 + EOS. */
export const CHUNK_TOKENS = CHUNK_LENGTH + 2;
/** A1111 option `comma_padding_backtrack` ("Prompt word wrap length limit"), default 20. */
export const DEFAULT_COMMA_BACKTRACK = 20;
/** The id an embedding's positions carry in `ids` (A1111's placeholder); the encoder overwrites those rows. */
export const EMBEDDING_PLACEHOLDER_ID = 0;

/** What the chunker needs from a tokenizer (the engine's ClipTokenizer has it all). */
export interface ChunkTokenizer {
  /** Content ids of a text: no BOS/EOS, no truncation. */
  tokenize(text: string): number[];
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  /** The id of `,</w>`, or undefined when the vocabulary has none (then no comma backtrack). */
  readonly commaId: number | undefined;
}

/** An embedding as the chunker sees it: a prompt word and how many positions it takes. */
export interface ChunkEmbedding {
  name: string;
  vectors: number;
}

export interface EmbeddingFix<E extends ChunkEmbedding = ChunkEmbedding> {
  /** Position of the first vector, counted after BOS (the row is offset + 1). */
  offset: number;
  embedding: E;
}

export interface PromptChunk<E extends ChunkEmbedding = ChunkEmbedding> {
  /** Exactly CHUNK_TOKENS ids: BOS, content, EOS, padding (SD 2.x padding rule applied). */
  ids: number[];
  /** One weight per position; 1 for BOS, EOS and padding. */
  multipliers: number[];
  fixes: EmbeddingFix<E>[];
}

export interface TokenizedPrompt<E extends ChunkEmbedding = ChunkEmbedding> {
  chunks: PromptChunk<E>[];
  /**
   * A1111's token count: 75 per finished chunk plus the tokens of the last one. The prompt box shows it
   * as `count/limit`, where limit = 75 × chunks.
   */
  tokenCount: number;
}

export interface ChunkOptions<E extends ChunkEmbedding = ChunkEmbedding> {
  /** 0 turns the comma backtrack off. Default 20. */
  commaBacktrack?: number;
  embeddings?: EmbeddingVocabulary<E>;
  /** false: A1111's emphasis "None", the whole text is one fragment of weight 1 (brackets and BREAK are plain text). */
  parseAttention?: boolean;
}

/**
 * A1111's `EmbeddingDatabase.find_embedding_at_position`: each embedding is registered under its name's
 * token ids; a match needs the exact id run at the position (within one fragment), longest name first.
 * Names are tokenized, so they match case-insensitively, as in A1111.
 */
export class EmbeddingVocabulary<E extends ChunkEmbedding = ChunkEmbedding> {
  private readonly byFirstId = new Map<number, { ids: number[]; embedding: E }[]>();

  constructor(tokenizer: Pick<ChunkTokenizer, 'tokenize'>, embeddings: Iterable<E>) {
    for (const embedding of embeddings) {
      const ids = tokenizer.tokenize(embedding.name);
      if (ids.length === 0) continue;
      const list = this.byFirstId.get(ids[0]!) ?? [];
      list.push({ ids, embedding });
      // Stable sort, longest first (Python's sorted(reverse=True) keeps equal lengths in order too).
      list.sort((a, b) => b.ids.length - a.ids.length);
      this.byFirstId.set(ids[0]!, list);
    }
  }

  get size(): number {
    let n = 0;
    for (const list of this.byFirstId.values()) n += list.length;
    return n;
  }

  find(tokens: readonly number[], position: number): { embedding: E; length: number } | null {
    for (const { ids, embedding } of this.byFirstId.get(tokens[position]!) ?? []) {
      if (ids.every((id, i) => tokens[position + i] === id)) return { embedding, length: ids.length };
    }
    return null;
  }
}

export function tokenizePrompt<E extends ChunkEmbedding = ChunkEmbedding>(
  prompt: string,
  tokenizer: ChunkTokenizer,
  options: ChunkOptions<E> = {},
): TokenizedPrompt<E> {
  const backtrack = options.commaBacktrack ?? DEFAULT_COMMA_BACKTRACK;
  const parsed = options.parseAttention === false ? [{ text: prompt, weight: 1 }] : parsePromptAttention(prompt);
  const chunks: PromptChunk<E>[] = [];
  let tokens: number[] = [];
  let mults: number[] = [];
  let fixes: EmbeddingFix<E>[] = [];
  let tokenCount = 0;
  let lastComma = -1;

  const nextChunk = (isLast = false): void => {
    tokenCount += isLast ? tokens.length : CHUNK_LENGTH;
    while (tokens.length < CHUNK_LENGTH) {
      tokens.push(tokenizer.eosId);
      mults.push(1.0);
    }
    chunks.push({
      ids: padAfterFirstEos([tokenizer.bosId, ...tokens, tokenizer.eosId], tokenizer),
      multipliers: [1.0, ...mults, 1.0],
      fixes,
    });
    lastComma = -1;
    tokens = [];
    mults = [];
    fixes = [];
  };

  for (const fragment of parsed) {
    if (isBreak(fragment)) {
      nextChunk();
      continue;
    }
    const { weight } = fragment;
    const ids = tokenizer.tokenize(fragment.text);
    let position = 0;
    while (position < ids.length) {
      const token = ids[position]!;
      if (token === tokenizer.commaId) {
        lastComma = tokens.length;
      } else if (backtrack !== 0 && tokens.length === CHUNK_LENGTH && lastComma !== -1 && tokens.length - lastComma <= backtrack) {
        const cut = lastComma + 1;
        const movedTokens = tokens.slice(cut);
        const movedMults = mults.slice(cut);
        tokens.length = cut;
        mults.length = cut;
        nextChunk();
        tokens = movedTokens;
        mults = movedMults;
      }
      if (tokens.length === CHUNK_LENGTH) nextChunk();

      const found = options.embeddings?.find(ids, position) ?? null;
      if (!found) {
        tokens.push(token);
        mults.push(weight);
        position++;
        continue;
      }
      const n = found.embedding.vectors;
      if (tokens.length + n > CHUNK_LENGTH) nextChunk();
      fixes.push({ offset: tokens.length, embedding: found.embedding });
      for (let i = 0; i < n; i++) {
        tokens.push(EMBEDDING_PLACEHOLDER_ID);
        mults.push(weight);
      }
      position += found.length;
    }
  }
  if (tokens.length > 0 || chunks.length === 0) nextChunk(true);
  return { chunks, tokenCount };
}

/** `process_tokens`: when pad ≠ EOS, every position after the first EOS becomes the pad id. */
function padAfterFirstEos(ids: number[], tokenizer: ChunkTokenizer): number[] {
  if (tokenizer.padId === tokenizer.eosId) return ids;
  const first = ids.indexOf(tokenizer.eosId);
  for (let i = first + 1; i < ids.length; i++) ids[i] = tokenizer.padId;
  return ids;
}

/** A1111's prompt-box limit for a count: 75 × the chunks needed (`get_target_prompt_token_count`). */
export function tokenLimit(tokenCount: number): number {
  return Math.ceil(Math.max(tokenCount, 1) / CHUNK_LENGTH) * CHUNK_LENGTH;
}

/** One chunk as `studio tokenize` and the prompt box show it. */
export interface ChunkDescription {
  /** The 77 ids, BOS and EOS included (padding applied). */
  ids: number[];
  /** One weight per id. */
  weights: number[];
  /** Embedding placements: position in `ids` of the first vector, name and vector count. */
  embeddings: { position: number; name: string; vectors: number }[];
}

export interface PromptDescription {
  /** A1111's count: 75 per finished chunk plus the tokens of the last one. */
  tokenCount: number;
  /** The prompt box's limit: 75 × chunks (A1111 shows `tokenCount/limit`, e.g. 82/150). */
  limit: number;
  chunks: ChunkDescription[];
}

export function describePrompt<E extends ChunkEmbedding>(prompt: string, tokenizer: ChunkTokenizer, options: ChunkOptions<E> = {}): PromptDescription {
  const { chunks, tokenCount } = tokenizePrompt(prompt, tokenizer, options);
  return {
    tokenCount,
    limit: tokenLimit(tokenCount),
    chunks: chunks.map((c) => ({
      ids: c.ids,
      weights: c.multipliers,
      embeddings: c.fixes.map((f) => ({ position: f.offset + 1, name: f.embedding.name, vectors: f.embedding.vectors })),
    })),
  };
}
