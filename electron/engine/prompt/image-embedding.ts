/**
 * A1111's textual-inversion pictures (`modules/textual_inversion/image_embedding.py`): the trainer saves
 * each embedding as a PNG card that carries its data twice.
 *
 * - A text chunk `sd-ti-embedding`: base64 of the JSON of the embedding's dict, every tensor written as
 *   `{"TORCHTENSOR": nested lists}` (`embedding_to_b64`). Read first, as A1111 does.
 * - The picture's edges (`insert_image_data_embed`), which survive a tool stripping the metadata and are
 *   what a lossless .webp holds: the zlib-compressed JSON's bytes are split in low and high nibbles, laid
 *   out [height, columns, 3] (repeated to fill), each nibble block patterned in its high bits and XORed
 *   in its low bits with A1111's LCG (seed 0, `(1664525·s + 1013904223) mod 2³²`, `s mod 255`, low 4
 *   bits), and pasted left (low) and right (high) of the picture with one black column between.
 *   Reading (`extract_image_data_embed`): crop the black border (rows and columns without a pixel whose
 *   three channels are all non-zero), keep the low nibbles, find the all-zero columns, take the blocks
 *   left of the first and right of the last, undo the XOR, join the nibbles, inflate, parse.
 *
 * A picture with neither is not an embedding (a preview image): null.
 */
import { inflateSync } from 'node:zlib';
import extractChunks from 'png-chunks-extract';
import sharp from 'sharp';
import type { TorchTensor } from './torch-pickle.js';

export const EMBEDDING_TEXT_KEYWORD = 'sd-ti-embedding';
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Pictures larger than this are not embedding cards (A1111's are ~ 600 px wide); don't decode them. */
const MAX_PIXELS = 16_000_000;

/** The embedding's dict from a picture, tensors as TorchTensor, objects as Maps; null when it holds none. */
export async function readImageEmbedding(bytes: Uint8Array): Promise<Map<string, unknown> | null> {
  const text = isPng(bytes) ? embeddingText(bytes) : null;
  if (text !== null) {
    const json = Buffer.from(text.replace(/\s+/g, ''), 'base64').toString('utf8');
    return parseEmbeddingJson(json, 'the sd-ti-embedding text');
  }
  const { data, info } = await sharp(bytes, { limitInputPixels: MAX_PIXELS })
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`the picture decodes to ${info.channels} channels`);
  const json = extractEdges(data, info.width, info.height);
  return json === null ? null : parseEmbeddingJson(json, "the picture's edges");
}

function isPng(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

/** The `sd-ti-embedding` keyword's text from a tEXt, zTXt or iTXt chunk (PNG spec §11.3.3), or null. */
function embeddingText(bytes: Uint8Array): string | null {
  const latin1 = new TextDecoder('latin1');
  for (const chunk of extractChunks(bytes)) {
    if (chunk.name !== 'tEXt' && chunk.name !== 'zTXt' && chunk.name !== 'iTXt') continue;
    const d = chunk.data;
    const nul = d.indexOf(0);
    if (nul < 0 || latin1.decode(d.subarray(0, nul)) !== EMBEDDING_TEXT_KEYWORD) continue;
    if (chunk.name === 'tEXt') return latin1.decode(d.subarray(nul + 1));
    if (chunk.name === 'zTXt') return latin1.decode(inflateSync(d.subarray(nul + 2)));
    // iTXt: keyword, 0, compression flag, method, language tag, 0, translated keyword, 0, text.
    const compressed = d[nul + 1] === 1;
    const language = d.indexOf(0, nul + 3);
    const translated = language < 0 ? -1 : d.indexOf(0, language + 1);
    if (translated < 0) continue;
    const body = d.subarray(translated + 1);
    return new TextDecoder().decode(compressed ? inflateSync(body) : body);
  }
  return null;
}

/** A1111's `lcg()` values mod 255, low 4 bits, for `count` bytes from seed 0. */
function lcgNibbles(count: number): Uint8Array {
  const out = new Uint8Array(count);
  let seed = 0n;
  // BigInt keeps (a·seed + c) mod 2³² exact (the product passes 2⁵³).
  for (let i = 0; i < count; i++) {
    seed = (1664525n * seed + 1013904223n) & 0xffffffffn;
    out[i] = Number(seed % 255n) & 0x0f;
  }
  return out;
}

/** `extract_image_data_embed` up to the JSON text; null when the picture holds no data (or not A1111's). */
export function extractEdges(rgb: Uint8Array, width: number, height: number): string | null {
  // crop_black: the bounding box of pixels whose three channels are all > 0 (argmax semantics: none → all).
  const colAny = new Uint8Array(width);
  const rowAny = new Uint8Array(height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      if (rgb[i]! > 0 && rgb[i + 1]! > 0 && rgb[i + 2]! > 0) {
        colAny[x] = 1;
        rowAny[y] = 1;
      }
    }
  }
  const first = (a: Uint8Array): number => Math.max(0, a.indexOf(1));
  const end = (a: Uint8Array): number => a.length - Math.max(0, [...a].reverse().indexOf(1));
  const x0 = first(colAny);
  const x1 = end(colAny);
  const y0 = first(rowAny);
  const y1 = end(rowAny);
  const w = x1 - x0;
  const h = y1 - y0;
  if (w <= 0 || h <= 0) return null;
  const low = (y: number, x: number, c: number): number => rgb[((y0 + y) * width + x0 + x) * 3 + c]! & 0x0f;
  // Columns whose low nibbles are all zero: the first and last bound the two data blocks.
  const black: number[] = [];
  for (let x = 0; x < w; x++) {
    let sum = 0;
    for (let y = 0; y < h && sum === 0; y++) sum += low(y, x, 0) + low(y, x, 1) + low(y, x, 2);
    if (sum === 0) black.push(x);
  }
  if (black.length < 2) return null;
  const lowerWidth = black[0]!;
  const upperStart = black[black.length - 1]! + 1;
  if (lowerWidth === 0 || w - upperStart !== lowerWidth) return null;
  const count = h * lowerWidth * 3;
  const key = lcgNibbles(count);
  const out = new Uint8Array(count);
  let i = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < lowerWidth; x++) {
      for (let c = 0; c < 3; c++, i++) {
        out[i] = (((low(y, upperStart + x, c) ^ key[i]!) << 4) | (low(y, x, c) ^ key[i]!)) & 0xff;
      }
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(inflateSync(out));
  } catch {
    return null; // black columns, but no zlib stream between them: a picture, not a card
  }
}

/** A1111's `EmbeddingDecoder`: objects with `TORCHTENSOR` become tensors; other objects Maps. */
export function parseEmbeddingJson(json: string, where: string): Map<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new Error(`${where} is not JSON (${(err as Error).message})`, { cause: err });
  }
  const convert = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(convert);
    if (value === null || typeof value !== 'object') return value;
    const obj = value as Record<string, unknown>;
    if ('TORCHTENSOR' in obj) return tensorFromLists(obj['TORCHTENSOR'], where);
    return new Map(Object.entries(obj).map(([k, v]) => [k, convert(v)]));
  };
  const out = convert(parsed);
  if (!(out instanceof Map)) throw new Error(`${where} does not hold a dict`);
  return out as Map<string, unknown>;
}

/** Nested lists of numbers (numpy's tolist) as a tensor: dims from the nesting, values row-major. */
function tensorFromLists(value: unknown, where: string): TorchTensor {
  const dims: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) dims.push(v.length);
  const flat = (Array.isArray(value) ? value.flat(dims.length) : [value]) as unknown[];
  const count = dims.reduce((a, b) => a * b, 1);
  if (flat.length !== count || flat.some((x) => typeof x !== 'number')) throw new Error(`${where}: a tensor that is not a regular array of numbers`);
  return { dims, data: Float32Array.from(flat as number[]) };
}
