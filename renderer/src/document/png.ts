/**
 * A minimal PNG encoder for masks (8-bit greyscale), label maps (RGB) and RGBA images, in plain TS so the exported mask
 * can be checked in unit tests without a browser. The zlib stream comes from `compress` when given (the
 * browser passes CompressionStream('deflate')); otherwise it is written with stored (uncompressed)
 * deflate blocks, which every decoder reads (RFC 1950/1951).
 */

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour types (PNG spec §11.2.2). */
const COLOR_GREY = 0;
const COLOR_RGB = 2;
const COLOR_RGBA = 6;
/** Largest payload of one stored deflate block (RFC 1951 §3.2.4: LEN is 16 bits). */
const MAX_STORED_BLOCK = 65535;

let crcTable: Uint32Array | null = null;
function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
  // 5552 is the most bytes that can be summed before the 32-bit sums must be reduced (zlib's NMAX).
  let a = 1;
  let b = 0;
  for (let i = 0; i < bytes.length; ) {
    const end = Math.min(bytes.length, i + 5552);
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** zlib stream of stored blocks: no compression, but valid everywhere. */
export function zlibStored(raw: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(raw.length / MAX_STORED_BLOCK));
  const out = new Uint8Array(2 + blocks * 5 + raw.length + 4);
  out[0] = 0x78; // CMF: deflate, 32 KiB window
  out[1] = 0x01; // FLG: no dictionary, check bits make CMF·256+FLG a multiple of 31
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * MAX_STORED_BLOCK;
    const len = Math.min(MAX_STORED_BLOCK, raw.length - start);
    out[o++] = b === blocks - 1 ? 1 : 0; // BFINAL, BTYPE=00
    out[o++] = len & 0xff;
    out[o++] = len >>> 8;
    out[o++] = ~len & 0xff;
    out[o++] = (~len >>> 8) & 0xff;
    out.set(raw.subarray(start, start + len), o);
    o += len;
  }
  const adler = adler32(raw);
  out[o++] = adler >>> 24;
  out[o++] = (adler >>> 16) & 0xff;
  out[o++] = (adler >>> 8) & 0xff;
  out[o++] = adler & 0xff;
  return out;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

export type ZlibCompress = (raw: Uint8Array) => Promise<Uint8Array>;

async function encode(width: number, height: number, channels: 1 | 3 | 4, pixels: Uint8Array, compress?: ZlibCompress): Promise<Uint8Array> {
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`PNG pixels have ${pixels.length} bytes, expected ${width}×${height}×${channels}`);
  }
  const stride = width * channels;
  // Each scanline starts with its filter type; 0 (None) keeps the encoder trivial.
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 1 ? COLOR_GREY : channels === 3 ? COLOR_RGB : COLOR_RGBA;
  const idat = compress ? await compress(raw) : zlibStored(raw);
  const parts = [new Uint8Array(PNG_SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** An 8-bit greyscale PNG of the mask (white = repaint), at the mask's own resolution. */
export function encodeGreyPng(width: number, height: number, grey: Uint8Array, compress?: ZlibCompress): Promise<Uint8Array> {
  return encode(width, height, 1, grey, compress);
}

/** An 8-bit RGB PNG (a layout's label map: palette colours, no alpha). */
export function encodeRgbPng(width: number, height: number, rgb: Uint8Array, compress?: ZlibCompress): Promise<Uint8Array> {
  return encode(width, height, 3, rgb, compress);
}

export function encodeRgbaPng(width: number, height: number, rgba: Uint8Array, compress?: ZlibCompress): Promise<Uint8Array> {
  return encode(width, height, 4, rgba, compress);
}

/** Reads width and height from a PNG's IHDR (for checks and for files the user opens). */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24) return null;
  for (let i = 0; i < 8; i++) if (bytes[i] !== PNG_SIGNATURE[i]) return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}
