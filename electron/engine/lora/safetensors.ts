/**
 * A reader for the safetensors format (huggingface/safetensors README, "Format"): an 8-byte little-endian
 * u64 N, then N bytes of UTF-8 JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, …,
 * "__metadata__": {string: string}}`), then the data; offsets are relative to the byte after the header.
 *
 * Only what LoRA files hold is decoded: F32, F16 and BF16 tensors, read as float32. Anything else, a header
 * that overruns the file, offsets outside the data or a size that does not match dtype × shape, is a clear
 * LoraFileError naming the file and the tensor.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { StudioError } from '../../shared/errors.js';
import { float16Table } from '../tensor/fp16.js';

/** A LoRA file that cannot be used (unreadable, malformed, wrong shapes, wrong model family). */
export class LoraFileError extends StudioError {
  override name = 'LoraFileError';
  constructor(
    message: string,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super('E_LORA_FILE', file ? `${basename(file)}: ${message}` : message, options);
  }
}

/** The safetensors spec limits the header to 100 MB. */
const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
/** dtypes the format defines that a LoRA never needs: named in the error, so a person knows why. */
const KNOWN_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2', 'I64', 'I32', 'I16', 'I8', 'U8', 'U16', 'U32', 'U64', 'BOOL']);

export interface TensorEntry {
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly bytes: Uint8Array,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Readonly<Record<string, string>>,
    /** Byte offset where the data section begins (8 + header length). */
    readonly dataStart: number,
  ) {}

  static read(path: string): SafetensorsFile {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new LoraFileError(`cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, path, { cause: err });
    }
    return SafetensorsFile.parse(bytes, path);
  }

  static parse(bytes: Uint8Array, path = 'LoRA'): SafetensorsFile {
    if (bytes.length < 8) throw new LoraFileError(`not a safetensors file: ${bytes.length} bytes, shorter than the 8-byte header length`, path);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = view.getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new LoraFileError(`not a safetensors file: header length ${headerLength} is over the format's 100 MB limit`, path);
    }
    const n = Number(headerLength);
    if (8 + n > bytes.length) {
      throw new LoraFileError(`truncated: the header says ${n} bytes but the file has ${bytes.length - 8} after the length`, path);
    }
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
    } catch (err) {
      throw new LoraFileError(`not a safetensors file: the header is not JSON (${(err as Error).message})`, path, { cause: err });
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw new LoraFileError('not a safetensors file: the header is not a JSON object', path);
    }
    const dataStart = 8 + n;
    const dataLength = bytes.length - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = readMetadata(value, path);
        continue;
      }
      const entry = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const { dtype, shape, data_offsets: offsets } = entry ?? {};
      if (typeof dtype !== 'string' || !Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) {
        throw new LoraFileError(`tensor "${name}" has no valid dtype/shape/data_offsets in the header`, path);
      }
      if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new LoraFileError(`tensor "${name}" has a bad shape ${JSON.stringify(shape)}`, path);
      const [begin, end] = offsets as [unknown, unknown];
      if (!Number.isInteger(begin) || !Number.isInteger(end) || (begin as number) < 0 || (end as number) < (begin as number)) {
        throw new LoraFileError(`tensor "${name}" has bad data_offsets ${JSON.stringify(offsets)}`, path);
      }
      if ((end as number) > dataLength) {
        throw new LoraFileError(`truncated: tensor "${name}" ends at byte ${end as number} of the data, which has only ${dataLength}`, path);
      }
      const size = DTYPE_BYTES[dtype];
      if (size === undefined) {
        const what = KNOWN_DTYPES.has(dtype) ? `dtype ${dtype}` : `unknown dtype "${dtype}"`;
        throw new LoraFileError(`tensor "${name}" has ${what}; LoRA weights must be F32, F16 or BF16`, path);
      }
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if ((end as number) - (begin as number) !== count * size) {
        throw new LoraFileError(
          `tensor "${name}" holds ${(end as number) - (begin as number)} bytes but ${dtype} ${JSON.stringify(shape)} needs ${count * size}`,
          path,
        );
      }
      tensors.set(name, { dtype: dtype as TensorEntry['dtype'], shape: shape as number[], begin: dataStart + (begin as number), end: dataStart + (end as number) });
    }
    return new SafetensorsFile(path, bytes, tensors, metadata, dataStart);
  }

  /** The tensor as float32 (F16 and BF16 widened exactly). */
  float32(name: string): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new LoraFileError(`has no tensor "${name}"`, this.path);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(count);
    const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + t.begin, t.end - t.begin);
    switch (t.dtype) {
      case 'F32':
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
        break;
      case 'F16': {
        const table = float16Table();
        for (let i = 0; i < count; i++) out[i] = table[view.getUint16(i * 2, true)]!;
        break;
      }
      case 'BF16': {
        // bfloat16 is the top half of a float32.
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
        break;
      }
    }
    return out;
  }

  /**
   * The "addnet" hash A1111 writes in `Lora hashes:` (wave2-reference §1e): sha256 of everything after
   * the header, first 12 hex digits, unless the file carries kohya's `sshs_model_hash`.
   */
  async shortHash(): Promise<string> {
    const own = this.metadata['sshs_model_hash'];
    if (own && /^[0-9a-f]{12,}$/i.test(own)) return own.slice(0, 12).toLowerCase();
    const { createHash } = await import('node:crypto');
    return createHash('sha256').update(this.bytes.subarray(this.dataStart)).digest('hex').slice(0, 12);
  }
}

function readMetadata(value: unknown, path: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LoraFileError('__metadata__ is not a JSON object', path);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    // The spec says string → string; some tools write numbers. Keep those as text rather than fail.
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}
