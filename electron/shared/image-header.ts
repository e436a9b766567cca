/**
 * An image's format and pixel size from its header alone (PNG, JPEG, WebP), read before anything
 * decodes it: a 31 KB PNG can declare 16000×16000 pixels (a decompression bomb), and decoding it takes
 * gigabytes. Pure byte reading; works on the bytes or on their base64 without decoding the rest.
 */

export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}

/** Reads byte i, or undefined past the end. */
type ByteAt = (i: number) => number | undefined;

/** Most JPEG segments walked before the frame header (real files have a handful). */
const MAX_JPEG_SEGMENTS = 1000;

/** JPEG start-of-frame markers (ITU T.81 table B.1): SOF0–3, 5–7, 9–11, 13–15; C4, C8 and CC are not frames. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function readHeader(at: ByteAt): ImageHeader | null {
  const u8 = (i: number): number => {
    const v = at(i);
    if (v === undefined) throw new RangeError('truncated');
    return v;
  };
  const be16 = (i: number) => (u8(i) << 8) | u8(i + 1);
  const be32 = (i: number) => ((u8(i) << 24) >>> 0) + (u8(i + 1) << 16) + (u8(i + 2) << 8) + u8(i + 3);
  const le16 = (i: number) => u8(i) | (u8(i + 1) << 8);
  const le24 = (i: number) => u8(i) | (u8(i + 1) << 8) | (u8(i + 2) << 16);
  const ascii = (i: number, n: number) => String.fromCharCode(...Array.from({ length: n }, (_, k) => u8(i + k)));
  try {
    // PNG (spec §5.2, §11.2.2): signature, then IHDR with width and height.
    if (be32(0) === 0x89504e47 && be32(4) === 0x0d0a1a0a) {
      if (ascii(12, 4) !== 'IHDR') return null;
      return { format: 'png', width: be32(16), height: be32(20) };
    }
    // JPEG: SOI, then segments up to the start of frame, which holds height and width.
    if (u8(0) === 0xff && u8(1) === 0xd8) {
      let pos = 2;
      for (let n = 0; n < MAX_JPEG_SEGMENTS; n++) {
        if (u8(pos) !== 0xff) return null;
        let marker = u8(pos + 1);
        while (marker === 0xff) marker = u8(++pos + 1); // fill bytes
        if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
          pos += 2; // no length
          continue;
        }
        if (marker === 0xd9 || marker === 0xda) return null; // end or scan before any frame
        if (isStartOfFrame(marker)) return { format: 'jpeg', width: be16(pos + 7), height: be16(pos + 5) };
        pos += 2 + be16(pos + 2);
      }
      return null;
    }
    // WebP (RIFF container): the first chunk is VP8 (lossy), VP8L (lossless) or VP8X (extended).
    if (ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
      const chunk = ascii(12, 4);
      if (chunk === 'VP8 ') {
        if (u8(23) !== 0x9d || u8(24) !== 0x01 || u8(25) !== 0x2a) return null;
        return { format: 'webp', width: le16(26) & 0x3fff, height: le16(28) & 0x3fff };
      }
      if (chunk === 'VP8L') {
        if (u8(20) !== 0x2f) return null;
        const b0 = u8(21), b1 = u8(22), b2 = u8(23), b3 = u8(24);
        return { format: 'webp', width: 1 + (((b1 & 0x3f) << 8) | b0), height: 1 + (((b3 & 0x0f) << 10) | (b2 << 2) | ((b1 & 0xc0) >> 6)) };
      }
      if (chunk === 'VP8X') return { format: 'webp', width: 1 + le24(24), height: 1 + le24(27) };
      return null;
    }
    return null;
  } catch {
    return null; // truncated before the size
  }
}

/** The header of image file bytes, or null when they are not a PNG, JPEG or WebP (or end too early). */
export function imageHeader(bytes: Uint8Array): ImageHeader | null {
  return readHeader((i) => (i < bytes.length ? bytes[i] : undefined));
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The 1–3 bytes of one 4-character base64 group ('=' padding ends it), or null when it isn't base64. */
function decodeGroup(quad: string): number[] | null {
  const values: number[] = [];
  for (const ch of quad) {
    if (ch === '=') break;
    const v = BASE64_ALPHABET.indexOf(ch);
    if (v < 0) return null;
    values.push(v);
  }
  if (values.length < 2) return null;
  const n = ((values[0]! << 18) | (values[1]! << 12) | ((values[2] ?? 0) << 6) | (values[3] ?? 0)) >>> 0;
  return [n >> 16, (n >> 8) & 0xff, n & 0xff].slice(0, values.length - 1);
}

/**
 * The same from the base64 of the file, decoding only the 4-character groups it reads (plain TS: shared/
 * compiles without the DOM's or Node's `atob`).
 */
export function imageHeaderFromBase64(base64: string): ImageHeader | null {
  const groups = new Map<number, number[] | null>();
  return readHeader((i) => {
    const g = Math.floor(i / 3);
    let bytes = groups.get(g);
    if (bytes === undefined) {
      bytes = decodeGroup(base64.slice(g * 4, g * 4 + 4));
      groups.set(g, bytes);
    }
    return bytes?.[i % 3];
  });
}
