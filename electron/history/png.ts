/**
 * PNG files with their parameters inside: encoding raw RGB to a deterministic PNG with text chunks, and
 * reading those chunks back.
 *
 * Two chunks are written before the image data:
 * - `parameters`: the AUTOMATIC1111 infotext (see electron/shared/a1111.ts), which A1111, Forge, Civitai
 *   and most viewers read. Like Pillow's `PngInfo.add_text` (what A1111 uses), it is a tEXt chunk when
 *   the text is Latin-1 and an uncompressed iTXt chunk (UTF-8) otherwise.
 * - `latent-studio`: the full request as JSON, in an uncompressed iTXt chunk (UTF-8), keys sorted so
 *   that the same request always gives the same bytes.
 *
 * Chunk layout and text chunk formats: PNG specification (W3C, 3rd edition), §11.3.3 tEXt, zTXt, iTXt.
 */
import { inflateSync } from 'node:zlib';
import sharp from 'sharp';
import extractChunks from 'png-chunks-extract';
import encodeChunks from 'png-chunks-encode';
import type { RgbImage } from '../shared/history.js';
import { HistoryError } from './errors.js';

export const PARAMETERS_KEYWORD = 'parameters';
export const REQUEST_KEYWORD = 'latent-studio';

/** The 8 bytes every PNG starts with (PNG spec §5.2). */
const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Each chunk: 4-byte length, 4-byte type, data, 4-byte CRC (PNG spec §5.3). */
const CHUNK_OVERHEAD = 12;
/** A chunk's length field is at most 2^31 - 1 (PNG spec §5.3). */
const MAX_CHUNK_LENGTH = 0x7fffffff;
/** zlib level for the image data: libpng's default, a fair size/speed trade. */
const PNG_COMPRESSION_LEVEL = 6;
/** Keywords are 1 to 79 Latin-1 bytes (PNG spec §11.3.3.2). */
const MAX_KEYWORD_LENGTH = 79;

export interface PngMetadataInput {
  /** A1111 infotext, written as the `parameters` chunk. */
  parameters?: string;
  /** The full request, written as JSON in the `latent-studio` chunk. */
  request?: unknown;
}

export interface PngMetadata {
  /** The `parameters` chunk, if any. */
  parameters?: string;
  /** The parsed JSON of the `latent-studio` chunk, if any (undefined when absent or not valid JSON). */
  request?: unknown;
  /** Every tEXt, zTXt and iTXt chunk, by keyword (the first one wins if a keyword repeats). */
  text: Record<string, string>;
  width: number;
  height: number;
}

/** True when the bytes start with the PNG signature. */
export function isPng(buf: Uint8Array): boolean {
  if (buf.length < PNG_SIGNATURE.length) return false;
  return PNG_SIGNATURE.every((b, i) => buf[i] === b);
}

/**
 * Encodes raw RGB pixels as a PNG with the given metadata chunks. Deterministic: the same pixels and
 * metadata give the same bytes (no timestamps; JSON keys sorted; fixed compression settings).
 */
export async function encodePng(image: RgbImage, metadata: PngMetadataInput = {}): Promise<Buffer> {
  const { rgb, width, height } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`encodePng: image size must be positive integers, got ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new RangeError(`encodePng: expected ${width * height * 3} RGB bytes for ${width}x${height}, got ${rgb.length}`);
  }
  const plain = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: PNG_COMPRESSION_LEVEL, adaptiveFiltering: false, palette: false })
    .toBuffer();
  return withTextChunks(plain, metadata);
}

/**
 * Adds the metadata chunks to an existing PNG, just before its first IDAT chunk. Any existing chunk with
 * the same keyword is replaced.
 */
export function withTextChunks(png: Uint8Array, metadata: PngMetadataInput): Buffer {
  const chunks = readChunks(png);
  const added: Array<{ name: string; data: Uint8Array }> = [];
  const replaced = new Set<string>();
  if (metadata.parameters !== undefined) {
    added.push(textChunk(PARAMETERS_KEYWORD, metadata.parameters));
    replaced.add(PARAMETERS_KEYWORD);
  }
  if (metadata.request !== undefined) {
    added.push(itxtChunk(REQUEST_KEYWORD, canonicalJson(metadata.request)));
    replaced.add(REQUEST_KEYWORD);
  }
  const kept = chunks.filter((c) => {
    if (!TEXT_CHUNK_TYPES.has(c.name)) return true;
    return !replaced.has(decodeTextChunk(c.name, c.data)?.keyword ?? '');
  });
  const firstData = kept.findIndex((c) => c.name === 'IDAT');
  const at = firstData === -1 ? kept.length - 1 : firstData;
  kept.splice(at, 0, ...added);
  return Buffer.from(encodeChunks(kept));
}

/**
 * Reads the text chunks of a PNG (and its size) without decoding the image. Throws HistoryError
 * E_NOT_PNG when the signature is wrong and E_CORRUPT_IMAGE when the chunk structure or a CRC is wrong.
 */
export function readPngMetadata(buf: Uint8Array): PngMetadata {
  const chunks = readChunks(buf);
  const ihdr = chunks[0];
  if (ihdr === undefined || ihdr.name !== 'IHDR' || ihdr.data.length < 8) {
    throw new HistoryError('E_CORRUPT_IMAGE', 'The PNG has no valid IHDR header chunk.');
  }
  const view = new DataView(ihdr.data.buffer, ihdr.data.byteOffset, ihdr.data.byteLength);
  const text: Record<string, string> = {};
  for (const chunk of chunks) {
    if (!TEXT_CHUNK_TYPES.has(chunk.name)) continue;
    const decoded = decodeTextChunk(chunk.name, chunk.data);
    if (decoded !== undefined && !(decoded.keyword in text)) text[decoded.keyword] = decoded.text;
  }
  const metadata: PngMetadata = { text, width: view.getUint32(0), height: view.getUint32(4) };
  const parameters = text[PARAMETERS_KEYWORD];
  if (parameters !== undefined) metadata.parameters = parameters;
  const requestJson = text[REQUEST_KEYWORD];
  if (requestJson !== undefined) {
    try {
      metadata.request = JSON.parse(requestJson);
    } catch {
      // A chunk that isn't JSON is not ours after all: treated as absent, the text stays in `text`.
    }
  }
  return metadata;
}

const TEXT_CHUNK_TYPES = new Set(['tEXt', 'zTXt', 'iTXt']);

/** Splits a PNG into chunks, CRCs verified. */
function readChunks(buf: Uint8Array): Array<{ name: string; data: Uint8Array }> {
  if (!isPng(buf)) throw new HistoryError('E_NOT_PNG', 'The file is not a PNG (its first bytes are not the PNG signature).');
  checkChunkBounds(buf);
  try {
    return extractChunks(buf);
  } catch (err) {
    throw new HistoryError('E_CORRUPT_IMAGE', `The PNG is damaged: ${(err as Error).message}.`, { cause: err });
  }
}

/**
 * Walks the chunk lengths before the chunk library reads them: it would allocate whatever a damaged
 * length field says (up to 4 GiB) before noticing the file is shorter.
 */
function checkChunkBounds(buf: Uint8Array): void {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let at = PNG_SIGNATURE.length;
  while (at + CHUNK_OVERHEAD <= buf.length) {
    const length = view.getUint32(at);
    if (length > MAX_CHUNK_LENGTH || at + CHUNK_OVERHEAD + length > buf.length) {
      throw new HistoryError('E_CORRUPT_IMAGE', `The PNG is damaged: a chunk at byte ${at} runs past the end of the file (truncated?).`);
    }
    const type = String.fromCharCode(buf[at + 4]!, buf[at + 5]!, buf[at + 6]!, buf[at + 7]!);
    if (type === 'IEND') return;
    at += CHUNK_OVERHEAD + length;
  }
  throw new HistoryError('E_CORRUPT_IMAGE', 'The PNG is damaged: it ends before its IEND chunk (truncated?).');
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

function keywordBytes(keyword: string): Buffer {
  if (keyword.length < 1 || keyword.length > MAX_KEYWORD_LENGTH || !isLatin1(keyword) || keyword.includes('\0')) {
    throw new RangeError(`PNG text keyword must be 1-${MAX_KEYWORD_LENGTH} Latin-1 characters, got ${JSON.stringify(keyword)}`);
  }
  return Buffer.from(keyword, 'latin1');
}

/** tEXt when the text is Latin-1 without NUL (what every reader handles), iTXt otherwise. */
function textChunk(keyword: string, text: string): { name: string; data: Uint8Array } {
  if (!isLatin1(text) || text.includes('\0')) return itxtChunk(keyword, text);
  const data = Buffer.concat([keywordBytes(keyword), Buffer.from([0]), Buffer.from(text, 'latin1')]);
  return { name: 'tEXt', data };
}

/** iTXt: keyword, NUL, compression flag 0, method 0, empty language tag + NUL, empty translated keyword + NUL, UTF-8 text. */
function itxtChunk(keyword: string, text: string): { name: string; data: Uint8Array } {
  const data = Buffer.concat([keywordBytes(keyword), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(text, 'utf8')]);
  return { name: 'iTXt', data };
}

function decodeTextChunk(type: string, data: Uint8Array): { keyword: string; text: string } | undefined {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const keywordEnd = bytes.indexOf(0);
  if (keywordEnd < 1) return undefined;
  const keyword = bytes.toString('latin1', 0, keywordEnd);
  try {
    if (type === 'tEXt') return { keyword, text: bytes.toString('latin1', keywordEnd + 1) };
    if (type === 'zTXt') {
      // keyword NUL, compression method (0 = zlib), compressed Latin-1 text
      return { keyword, text: inflateSync(bytes.subarray(keywordEnd + 2)).toString('latin1') };
    }
    // iTXt: keyword NUL, compressed flag, method, language NUL, translated keyword NUL, UTF-8 text
    const compressed = bytes[keywordEnd + 1] === 1;
    const languageEnd = bytes.indexOf(0, keywordEnd + 3);
    if (languageEnd === -1) return undefined;
    const translatedEnd = bytes.indexOf(0, languageEnd + 1);
    if (translatedEnd === -1) return undefined;
    const body = bytes.subarray(translatedEnd + 1);
    return { keyword, text: (compressed ? inflateSync(body) : body).toString('utf8') };
  } catch {
    return undefined; // a compressed text chunk that doesn't inflate: ignored, as libpng does
  }
}

/** JSON with object keys sorted at every level, so equal values give equal bytes. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
