/** Writes safetensors files for tests (the format: 8-byte LE header length, JSON header, data). */
import { float32ToFloat16Bits } from '../../electron/engine/tensor/fp16.js';

export interface TestTensor {
  dtype: 'F32' | 'F16' | 'BF16' | (string & {});
  shape: number[];
  values: ArrayLike<number>;
}

function encode(t: TestTensor): Uint8Array {
  const n = t.values.length;
  if (t.dtype === 'F32') return new Uint8Array(Float32Array.from(t.values).buffer);
  const out = new Uint8Array(n * 2);
  const view = new DataView(out.buffer);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    if (t.dtype === 'BF16') {
      f[0] = t.values[i]!;
      view.setUint16(i * 2, u[0]! >>> 16, true);
    } else view.setUint16(i * 2, float32ToFloat16Bits(t.values[i]!), true);
  }
  return out;
}

export function safetensorsBytes(tensors: Record<string, TestTensor>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const data = encode(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...chunks]);
}
