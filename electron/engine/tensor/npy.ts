/**
 * NumPy .npy files (format versions 1–3, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * the magic "\x93NUMPY", a version, a header length, a Python-dict header with descr/fortran_order/shape,
 * then the raw data. We read and write little-endian float32 in C order, which is what `--latents` takes.
 */
import { InvalidRequestError } from '../../shared/errors.js';

const MAGIC = '\x93NUMPY';

export interface NpyArray {
  data: Float32Array;
  shape: number[];
}

export function readNpyFloat32(bytes: Uint8Array, what = '.npy file'): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== MAGIC) throw new InvalidRequestError(`${what}: not a NumPy .npy file`);
  const major = buf[6]!;
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    offset = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8);
    offset = 12;
  } else throw new InvalidRequestError(`${what}: unsupported .npy version ${major}`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', offset, offset + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new InvalidRequestError(`${what}: bad header`);
  if (descr !== '<f4' && descr !== '=f4') throw new InvalidRequestError(`${what}: expected float32 ('<f4'), found '${descr}'`);
  if (fortran === 'True') throw new InvalidRequestError(`${what}: Fortran order is not supported; save with np.ascontiguousarray`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = offset + headerLen;
  if (buf.length - start !== count * 4) {
    throw new InvalidRequestError(`${what}: shape (${shape.join(', ')}) needs ${count * 4} bytes of data, found ${buf.length - start}`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(start + i * 4);
  return { data, shape };
}

export function writeNpyFloat32(data: Float32Array, shape: readonly number[]): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that magic + version + length + header is a multiple of 64, ending in "\n" (format spec).
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + header.length + data.length * 4);
  out.write(MAGIC, 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i]!, 10 + header.length + i * 4);
  return out;
}
