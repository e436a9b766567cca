/**
 * GPT-2/CLIP byte-level alphabet (`bytes_to_unicode` in openai/CLIP simple_tokenizer.py and HF's
 * ByteLevel pre-tokenizer): every byte gets a printable stand-in character so that BPE symbols are
 * never whitespace or control characters.
 *
 * The printable bytes 33–126, 161–172 and 174–255 stand for themselves; the other 68 bytes (0–32,
 * 127–160, 173), in increasing order, map to U+0100, U+0101, … (256 + k).
 */
export const BYTE_TO_UNICODE: readonly string[] = buildByteToUnicode();

function isPrintableByte(byte: number): boolean {
  return (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
}

function buildByteToUnicode(): string[] {
  const table = new Array<string>(256);
  let nextStandIn = 256;
  for (let byte = 0; byte < 256; byte++) {
    table[byte] = String.fromCodePoint(isPrintableByte(byte) ? byte : nextStandIn++);
  }
  return table;
}

