/**
 * An independent PNG chunk reader for the history tests: a plain walk over the bytes with node's own
 * zlib.crc32, sharing no code with electron/history/png.ts (which uses png-chunks-extract/encode), so a
 * bug in the writer can't hide behind the same bug in the reader.
 */
import { crc32, inflateSync } from 'node:zlib';

export interface RawChunk {
  type: string;
  data: Buffer;
  /** True when the stored CRC matches CRC-32 over type + data (PNG spec §5.3). */
  crcOk: boolean;
}

export function walkPngChunks(file: Buffer): RawChunk[] {
  const signature = '89504e470d0a1a0a';
  if (file.subarray(0, 8).toString('hex') !== signature) throw new Error('not a PNG signature');
  const chunks: RawChunk[] = [];
  let at = 8;
  while (at < file.length) {
    const length = file.readUInt32BE(at);
    const typeAndData = file.subarray(at + 4, at + 8 + length);
    const stored = file.readUInt32BE(at + 8 + length);
    chunks.push({
      type: typeAndData.subarray(0, 4).toString('ascii'),
      data: Buffer.from(typeAndData.subarray(4)),
      crcOk: crc32(typeAndData) === stored,
    });
    at += 12 + length;
    if (chunks.at(-1)!.type === 'IEND') break;
  }
  return chunks;
}

/** Text chunks by keyword, decoded per PNG spec §11.3.3 (tEXt Latin-1, zTXt deflated Latin-1, iTXt UTF-8). */
export function pngTextChunks(file: Buffer): Array<{ type: string; keyword: string; text: string }> {
  const out: Array<{ type: string; keyword: string; text: string }> = [];
  for (const { type, data } of walkPngChunks(file)) {
    if (type !== 'tEXt' && type !== 'zTXt' && type !== 'iTXt') continue;
    const nul = data.indexOf(0);
    const keyword = data.subarray(0, nul).toString('latin1');
    if (type === 'tEXt') out.push({ type, keyword, text: data.subarray(nul + 1).toString('latin1') });
    else if (type === 'zTXt') out.push({ type, keyword, text: inflateSync(data.subarray(nul + 2)).toString('latin1') });
    else {
      const compressed = data[nul + 1] === 1;
      let rest = data.subarray(nul + 3);
      rest = rest.subarray(rest.indexOf(0) + 1); // language tag
      rest = rest.subarray(rest.indexOf(0) + 1); // translated keyword
      out.push({ type, keyword, text: (compressed ? inflateSync(rest) : rest).toString('utf8') });
    }
  }
  return out;
}
