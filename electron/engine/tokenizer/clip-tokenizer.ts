/**
 * CLIP's byte-level BPE tokenizer, exactly as diffusers runs it through HF `CLIPTokenizer` (the
 * tokenizers-backed "fast" one; SD model folders name it in model_index.json). Rules and sources:
 * docs/sd-onnx-reference.md §5.
 *
 * Text → ids:
 * 1. Special tokens (`<|startoftext|>`, `<|endoftext|>` and the pad token) are split out of the raw
 *    text first and map straight to their ids, as HF does with added tokens. When the pad token is "!"
 *    (SD 2.x, SDXL tokenizer_2) every "!" therefore becomes its own token (diffusers#4153).
 * 2. Each other segment is normalized like HF's `NFC → Replace(\s+, " ") → Lowercase`: Unicode NFC,
 *    every run of White_Space characters to one space, then each code point lowercased on its own
 *    (Rust `char::to_lowercase`, so a final Σ becomes σ, never ς). No ftfy repair and no html
 *    unescaping: reference-cases.json is reproduced by exactly this.
 * 3. The pre-tokenizer regex cuts words: `'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`, where
 *    \s is Unicode White_Space as in Oniguruma (U+0085 yes, U+FEFF no; JS's own \s differs).
 * 4. Each word is UTF-8 encoded; byte b starts as the symbol BYTE_TO_UNICODE[b], the last one with
 *    "</w>" appended; then BPE merges (bpe-merges.ts). Symbols missing from the vocabulary become the
 *    unknown token `<|endoftext|>`.
 *
 * vocab.json is authoritative for every id: nothing assumes the real vocabulary's numbering.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BYTE_TO_UNICODE } from './byte-level.js';
import { BpeMerges } from './bpe-merges.js';
import { TokenizerFileError } from './tokenizer-file-error.js';

export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';
/** HF CLIPTokenizer's unk_token; also the default pad token ("hack to enable padding"). */
const UNK_TOKEN = EOS_TOKEN;
const END_OF_WORD_SUFFIX = '</w>';

/** CLIP text encoders have 77 positions (openai/CLIP `context_length`, HF `model_max_length`). */
export const CLIP_MODEL_MAX_LENGTH = 77;
/** A comma that ends a word, as CLIP's BPE writes it (vocab id 267 in the full CLIP vocabulary). */
const COMMA_WORD_TOKEN = ',</w>';
/**
 * Larger model_max_length values are not real context lengths but transformers' "unset" sentinel
 * (VERY_LARGE_INTEGER = 1e30); refuse them rather than pad to that length.
 */
const MAX_SUPPORTED_MODEL_MAX_LENGTH = 4096;
/** BOS and EOS are always present, so a sequence needs at least two positions. */
const SPECIALS_PER_SEQUENCE = 2;

/** tokenizers' BPE DEFAULT_CACHE_CAPACITY. */
const DEFAULT_WORD_CACHE_CAPACITY = 10_000;
/** Longer words are merged every time instead of cached, so the cache's memory stays bounded. */
const MAX_CACHED_WORD_LENGTH = 256;
/** See `spotCheckMerges`. */
const MERGE_CHECK_STRIDE = 64;

const VOCAB_FILE = 'vocab.json';
const MERGES_FILE = 'merges.txt';
const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';
const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

const WHITESPACE_RUN = /\p{White_Space}+/gu;
const WORD_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/gu;
/**
 * String.prototype.toLowerCase applies one context-dependent rule, Final_Sigma (Σ → ς at a word's
 * end); HF lowercases code point by code point, where Σ is always σ.
 */
const CAPITAL_SIGMA = /\u03a3/g;
const SMALL_SIGMA = '\u03c3';

const utf8 = new TextEncoder();
const CARRIAGE_RETURN = 0x0d;

export interface ClipTokenizerOptions {
  /** Token string → id, as in vocab.json. It is authoritative for every id, specials included. */
  vocab: Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  /**
   * The merges in rank order: the text of merges.txt (an optional `#version` first line, then one
   * "left right" pair per line), or the pairs themselves.
   */
  merges: string | readonly (readonly [string, string])[];
  /** Padding token string; default `<|endoftext|>` (SD 1.x). SD 2.x uses "!". */
  padToken?: string;
  /** Sequence length of `encode`; default 77. */
  maxLength?: number;
  /** Most words whose ids are kept for reuse; default 10,000. */
  wordCacheCapacity?: number;
  /** How error messages name the vocabulary; default "vocab.json". */
  vocabSource?: string;
  /** How error messages name the merges; default "merges.txt". */
  mergesSource?: string;
}

export interface ClipEncoding {
  /** Exactly `maxLength` ids: BOS, up to maxLength − 2 content ids, EOS, then pad ids. */
  ids: number[];
  /** Content tokens before truncation (what the prompt panel shows as "count/75"). */
  count: number;
  /** Whether content tokens were cut to fit. */
  truncated: boolean;
}

export class ClipTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly padToken: string;
  /** The id of `,</w>` (a comma ending a word), used by A1111's comma backtrack; undefined if absent. */
  readonly commaId: number | undefined;
  /** Length of every `encode` result, BOS and EOS included. */
  readonly maxLength: number;

  private readonly vocab: ReadonlyMap<string, number>;
  private readonly unkId: number;
  private readonly merges = new BpeMerges();
  private readonly specialIds = new Map<string, number>();
  private readonly specialPattern: RegExp;
  /** Word → ids, least recently used first (Map keeps insertion order). */
  private readonly wordCache = new Map<string, readonly number[]>();
  private readonly wordCacheCapacity: number;

  constructor(options: ClipTokenizerOptions) {
    const vocabSource = options.vocabSource ?? VOCAB_FILE;
    const mergesSource = options.mergesSource ?? MERGES_FILE;
    const vocab = toVocabMap(options.vocab, vocabSource);
    this.vocab = vocab;

    const lookupSpecial = (token: string, role: string): number => {
      const id = vocab.get(token);
      if (id === undefined) {
        throw new TokenizerFileError(vocabSource, `the ${role} token ${JSON.stringify(token)} is not in the vocabulary`);
      }
      return id;
    };
    this.bosId = lookupSpecial(BOS_TOKEN, 'start-of-text');
    this.eosId = lookupSpecial(EOS_TOKEN, 'end-of-text');
    this.unkId = vocab.get(UNK_TOKEN) as number;
    this.padToken = options.padToken ?? EOS_TOKEN;
    if (this.padToken === '') throw new TokenizerFileError(vocabSource, 'the pad token is empty');
    this.padId = lookupSpecial(this.padToken, 'pad');
    this.commaId = vocab.get(COMMA_WORD_TOKEN);

    this.maxLength = options.maxLength ?? CLIP_MODEL_MAX_LENGTH;
    if (
      !Number.isInteger(this.maxLength) ||
      this.maxLength < SPECIALS_PER_SEQUENCE ||
      this.maxLength > MAX_SUPPORTED_MODEL_MAX_LENGTH
    ) {
      throw new RangeError(
        `maxLength must be an integer from ${SPECIALS_PER_SEQUENCE} to ${MAX_SUPPORTED_MODEL_MAX_LENGTH}, got ${this.maxLength}`,
      );
    }

    this.wordCacheCapacity = options.wordCacheCapacity ?? DEFAULT_WORD_CACHE_CAPACITY;
    if (!Number.isInteger(this.wordCacheCapacity) || this.wordCacheCapacity < 0) {
      throw new RangeError(`wordCacheCapacity must be a non-negative integer, got ${this.wordCacheCapacity}`);
    }

    const merges = options.merges;
    if (typeof merges === 'string') {
      scanMerges(merges, mergesSource, (pair) => this.merges.addPair(pair));
    } else {
      for (const [left, right] of merges) this.merges.addPair(left + ' ' + right);
    }
    this.spotCheckMerges(mergesSource);

    // Added tokens are matched in the raw text, longest first (HF's leftmost-longest matching).
    for (const token of [BOS_TOKEN, EOS_TOKEN, this.padToken]) this.specialIds.set(token, vocab.get(token) as number);
    const alternatives = [...this.specialIds.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.specialPattern = new RegExp(alternatives.join('|'), 'gu');
  }

  /**
   * Loads a tokenizer folder as SD models ship it: vocab.json, merges.txt, and optionally
   * special_tokens_map.json and tokenizer_config.json for pad_token (the former wins, as in
   * transformers) and model_max_length.
   */
  static async fromFolder(dir: string): Promise<ClipTokenizer> {
    const vocabPath = join(dir, VOCAB_FILE);
    const mergesPath = join(dir, MERGES_FILE);
    const specialTokensPath = join(dir, SPECIAL_TOKENS_MAP_FILE);
    const configPath = join(dir, TOKENIZER_CONFIG_FILE);
    const [vocabText, mergesText, specialTokensText, configText] = await Promise.all([
      readTextFile(vocabPath),
      readTextFile(mergesPath),
      readOptionalTextFile(specialTokensPath),
      readOptionalTextFile(configPath),
    ]);
    const vocab = parseVocab(vocabText, vocabPath);
    const specialTokens = specialTokensText === undefined ? {} : parseJsonObject(specialTokensText, specialTokensPath);
    const config = configText === undefined ? {} : parseJsonObject(configText, configPath);

    const padFromMap = readPadToken(specialTokens, specialTokensPath);
    const padFromConfig = readPadToken(config, configPath);
    const padToken = padFromMap ?? padFromConfig ?? EOS_TOKEN;
    // Blame the config file for a pad token of its own; a missing EOS is reported as a vocab.json problem.
    if (padToken !== EOS_TOKEN && !vocab.has(padToken)) {
      const padSource = padFromMap !== undefined ? specialTokensPath : configPath;
      throw new TokenizerFileError(padSource, `pad_token ${JSON.stringify(padToken)} is not in ${VOCAB_FILE}`);
    }
    const maxLength = readModelMaxLength(config, configPath) ?? CLIP_MODEL_MAX_LENGTH;
    return new ClipTokenizer({ vocab, merges: mergesText, padToken, maxLength, vocabSource: vocabPath, mergesSource: mergesPath });
  }

  /** Content token ids of `text`: no BOS/EOS, no truncation. */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    let segmentStart = 0;
    for (const match of text.matchAll(this.specialPattern)) {
      this.tokenizeSegment(text.slice(segmentStart, match.index), ids);
      ids.push(this.specialIds.get(match[0]) as number);
      segmentStart = match.index + match[0].length;
    }
    this.tokenizeSegment(text.slice(segmentStart), ids);
    return ids;
  }

  /**
   * The text encoder's input: BOS + the first maxLength − 2 content ids + EOS, padded to maxLength
   * with the pad id (HF `padding="max_length", truncation=True`).
   */
  encode(text: string): ClipEncoding {
    const content = this.tokenize(text);
    const capacity = this.maxLength - SPECIALS_PER_SEQUENCE;
    const kept = content.length > capacity ? content.slice(0, capacity) : content;
    const ids = [this.bosId, ...kept, this.eosId];
    while (ids.length < this.maxLength) ids.push(this.padId);
    return { ids, count: content.length, truncated: content.length > capacity };
  }

  /**
   * HF refuses merges whose parts or result are not in the vocabulary. Checking all 48k costs three
   * vocabulary lookups each, most of the load time, so only every MERGE_CHECK_STRIDE-th merge and the
   * last one are checked: enough to catch a merges.txt from another vocabulary or a truncated
   * vocab.json. A merge that slips through yields the unknown token, never a wrong id.
   */
  private spotCheckMerges(mergesSource: string): void {
    const last = this.merges.size - 1;
    const ranks: number[] = [];
    for (let rank = 0; rank < last; rank += MERGE_CHECK_STRIDE) ranks.push(rank);
    ranks.push(last);
    for (const rank of ranks) {
      const pair = this.merges.pairAt(rank);
      const space = pair.indexOf(' ');
      const left = pair.slice(0, space);
      const right = pair.slice(space + 1);
      const missing = [left, right, left + right].find((symbol) => !this.vocab.has(symbol));
      if (missing !== undefined) {
        throw new TokenizerFileError(
          mergesSource,
          `merge ${rank + 1} ("${pair}") uses ${JSON.stringify(missing)}, which is not in the vocabulary`,
        );
      }
    }
  }

  private tokenizeSegment(segment: string, out: number[]): void {
    if (segment === '') return;
    const normalized = segment
      .normalize('NFC')
      .replace(WHITESPACE_RUN, ' ')
      .replace(CAPITAL_SIGMA, SMALL_SIGMA)
      .toLowerCase();
    for (const [word] of normalized.matchAll(WORD_PATTERN)) {
      for (const id of this.wordIds(word)) out.push(id);
    }
  }

  private wordIds(word: string): readonly number[] {
    const cached = this.wordCache.get(word);
    if (cached !== undefined) {
      // Move to the most recently used end.
      this.wordCache.delete(word);
      this.wordCache.set(word, cached);
      return cached;
    }
    const bytes = utf8.encode(word);
    const last = bytes.length - 1;
    const symbols = new Array<string>(bytes.length);
    for (let i = 0; i < bytes.length; i++) {
      const symbol = BYTE_TO_UNICODE[bytes[i] as number] as string;
      symbols[i] = i === last ? symbol + END_OF_WORD_SUFFIX : symbol;
    }
    const ids = this.merges.mergeWord(symbols).map((symbol) => this.vocab.get(symbol) ?? this.unkId);
    if (word.length <= MAX_CACHED_WORD_LENGTH && this.wordCacheCapacity > 0) {
      if (this.wordCache.size >= this.wordCacheCapacity) {
        const leastRecent = this.wordCache.keys().next();
        if (leastRecent.done !== true) this.wordCache.delete(leastRecent.value);
      }
      this.wordCache.set(word, ids);
    }
    return ids;
  }
}

/**
 * Parses merges.txt: an optional `#version: …` first line, then one merge per line, two symbols
 * separated by one space. Blank lines are skipped; every other line is used.
 */
export function parseMerges(text: string, source: string = MERGES_FILE): [string, string][] {
  const merges: [string, string][] = [];
  scanMerges(text, source, (pair) => {
    const space = pair.indexOf(' ');
    merges.push([pair.slice(0, space), pair.slice(space + 1)]);
  });
  return merges;
}

/** Calls `visit` with each merge line of merges.txt ("left right"), in order. */
function scanMerges(text: string, source: string, visit: (pair: string) => void): void {
  let visited = 0;
  let lineNumber = 0;
  // An indexOf scan rather than split: no array of 48k lines to allocate and collect.
  for (let start = 0; start < text.length; ) {
    lineNumber++;
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const next = end + 1;
    if (end > start && text.charCodeAt(end - 1) === CARRIAGE_RETURN) end--;
    if (end === start || (lineNumber === 1 && text.startsWith('#version', start))) {
      start = next;
      continue;
    }
    const space = text.indexOf(' ', start);
    if (space <= start || space >= end - 1 || text.lastIndexOf(' ', end - 1) !== space) {
      const line = text.slice(start, Math.min(end, start + 80));
      throw new TokenizerFileError(
        source,
        `line ${lineNumber} is not a merge of two symbols separated by one space: ${JSON.stringify(line)}`,
      );
    }
    visit(text.slice(start, end));
    visited++;
    start = next;
  }
  if (visited === 0) throw new TokenizerFileError(source, 'holds no merges');
}

/** Parses vocab.json: an object mapping each token string to a non-negative integer id. */
export function parseVocab(text: string, source: string = VOCAB_FILE): ReadonlyMap<string, number> {
  return toVocabMap(parseJsonObject(text, source), source);
}

/** Checks every id. A Map is used as it is (not copied); an object is copied into a Map. */
function toVocabMap(
  vocab: Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>,
  source: string,
): ReadonlyMap<string, number> {
  const checkId = (token: string, id: unknown): id is number => {
    if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return true;
    throw new TokenizerFileError(
      source,
      `token ${JSON.stringify(token)} has id ${JSON.stringify(id)}; ids must be non-negative integers`,
    );
  };
  let map: Map<string, number>;
  if (vocab instanceof Map) {
    for (const [token, id] of vocab) checkId(token, id);
    map = vocab as Map<string, number>;
  } else {
    const record = vocab as Readonly<Record<string, unknown>>;
    map = new Map<string, number>();
    for (const token in record) {
      const id = record[token];
      if (checkId(token, id)) map.set(token, id);
    }
  }
  if (map.size === 0) throw new TokenizerFileError(source, 'the vocabulary is empty');
  return map;
}

function parseJsonObject(text: string, source: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new TokenizerFileError(source, `not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenizerFileError(source, 'must hold a JSON object');
  }
  return value as Record<string, unknown>;
}

/** pad_token as a string or an AddedToken dict `{ "content": … }`; undefined when absent or null. */
function readPadToken(json: Record<string, unknown>, source: string): string | undefined {
  const value = json['pad_token'];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const content = (value as Record<string, unknown>)['content'];
    if (typeof content === 'string') return content;
  }
  throw new TokenizerFileError(source, 'pad_token must be a string or an object with a string "content"');
}

function readModelMaxLength(json: Record<string, unknown>, source: string): number | undefined {
  const value = json['model_max_length'];
  if (value === undefined || value === null) return undefined;
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < SPECIALS_PER_SEQUENCE ||
    value > MAX_SUPPORTED_MODEL_MAX_LENGTH
  ) {
    throw new TokenizerFileError(
      source,
      `model_max_length must be an integer from ${SPECIALS_PER_SEQUENCE} to ${MAX_SUPPORTED_MODEL_MAX_LENGTH}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

async function readTextFile(path: string): Promise<string> {
  const text = await readOptionalTextFile(path);
  if (text === undefined) throw new TokenizerFileError(path, 'file not found');
  return text;
}

async function readOptionalTextFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenizerFileError(path, `cannot be read (${(error as Error).message})`, { cause: error });
  }
}

function escapeRegExp(text: string): string {
  // Only syntax characters: with the `u` flag any other escaped character is a syntax error.
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
