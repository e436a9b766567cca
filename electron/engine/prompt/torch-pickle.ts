/**
 * Reads the tensors of a `torch.save` file (the zip format of torch ≥ 1.6, which A1111 and kohya write)
 * without Python: the zip's `<name>/data.pkl` is a pickle whose tensors point, by persistent id, at
 * `<name>/data/<key>` storages. Only the pickle opcodes `torch.save` emits for dicts, tuples, lists,
 * strings, numbers and tensors are implemented; nothing is ever executed: globals are names, and only
 * torch's tensor rebuilders and OrderedDict are given meaning.
 */
import { float16BitsToFloat32 } from '../tensor/fp16.js';

export interface TorchTensor {
  dims: number[];
  data: Float32Array;
}

/** An object the pickle built from a class we do not interpret (e.g. torch.nn.ParameterDict). */
export interface PickledObject {
  className: string;
  args: unknown[];
  state: Map<string, unknown> | unknown;
}

interface Global {
  module: string;
  name: string;
}

interface StorageRef {
  dtype: string;
  key: string;
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
};

/** The top-level dict of a torch.save zip. */
export function readTorchPickle(bytes: Uint8Array): Map<string, unknown> {
  const files = readZip(bytes);
  const pklName = [...files.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (!pklName) {
    throw new Error('not a torch zip file (saved by torch older than 1.6, or not a torch file): re-save it with a current torch or convert it to .safetensors');
  }
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const storage = (ref: StorageRef): Uint8Array => {
    const raw = files.get(`${prefix}data/${ref.key}`);
    if (!raw) throw new Error(`storage ${ref.key} is missing from the archive`);
    return raw;
  };
  const result = unpickle(files.get(pklName)!, storage);
  if (!(result instanceof Map)) throw new Error('the file does not hold a dict');
  return result as Map<string, unknown>;
}

/** Stored (uncompressed) zip entries by name, via the central directory. torch.save never compresses. */
function readZip(bytes: Uint8Array): Map<string, Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return new Map();
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const out = new Map<string, Uint8Array>();
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (view.getUint32(p, true) !== 0x02014b50) throw new Error('bad zip central directory');
    const method = view.getUint16(p + 10, true);
    const size = view.getUint32(p + 20, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLength));
    if (method !== 0) throw new Error(`zip entry ${name} is compressed (method ${method})`);
    const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    out.set(name, bytes.subarray(dataStart, dataStart + size));
    p += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

const MARK = Symbol('mark');

function unpickle(data: Uint8Array, storage: (ref: StorageRef) => Uint8Array): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const decoder = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let p = 0;
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new Error('pickle: MARK not found');
    const items = stack.slice(i + 1);
    stack.length = i;
    return items;
  };
  const str = (n: number): string => {
    const s = decoder.decode(data.subarray(p, p + n));
    p += n;
    return s;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, p);
    const s = decoder.decode(data.subarray(p, end));
    p = end + 1;
    return s;
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) throw new Error('pickle: SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const call = (fn: unknown, args: unknown[]): unknown => {
    const g = fn as Global;
    const full = `${g.module}.${g.name}`;
    if (full === 'collections.OrderedDict') return new Map();
    if (full === 'torch._utils._rebuild_tensor_v2' || full === 'torch._utils._rebuild_tensor') {
      return rebuildTensor(args[0] as StorageRef, args[1] as number, args[2] as number[], args[3] as number[], storage);
    }
    if (full === 'torch._utils._rebuild_parameter' || full === 'torch._utils._rebuild_parameter_with_state') return args[0];
    return { className: full, args, state: undefined } satisfies PickledObject;
  };

  for (;;) {
    if (p >= data.length) throw new Error('pickle: ran past the end');
    const op = data[p++]!;
    switch (op) {
      case 0x80: p++; break; // PROTO
      case 0x95: p += 8; break; // FRAME
      case 0x2e: return stack.pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(data[p++]); break; // BININT1
      case 0x4d: stack.push(view.getUint16(p, true)); p += 2; break; // BININT2
      case 0x4a: stack.push(view.getInt32(p, true)); p += 4; break; // BININT
      case 0x8a: { // LONG1
        const n = data[p++]!;
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[p + i]!);
        if (n > 0 && data[p + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        p += n;
        stack.push(Number(v));
        break;
      }
      case 0x47: stack.push(view.getFloat64(p, false)); p += 8; break; // BINFLOAT
      case 0x58: { const n = view.getUint32(p, true); p += 4; stack.push(str(n)); break; } // BINUNICODE
      case 0x8c: { const n = data[p++]!; stack.push(str(n)); break; } // SHORT_BINUNICODE
      case 0x8d: { const n = Number(view.getBigUint64(p, true)); p += 8; stack.push(str(n)); break; } // BINUNICODE8
      case 0x43: { const n = data[p++]!; stack.push(data.subarray(p, p + n)); p += n; break; } // SHORT_BINBYTES
      case 0x42: { const n = view.getUint32(p, true); p += 4; stack.push(data.subarray(p, p + n)); p += n; break; } // BINBYTES
      case 0x71: memo.set(data[p++]!, stack.at(-1)); break; // BINPUT
      case 0x72: memo.set(view.getUint32(p, true), stack.at(-1)); p += 4; break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, stack.at(-1)); break; // MEMOIZE
      case 0x68: stack.push(memo.get(data[p++]!)); break; // BINGET
      case 0x6a: stack.push(memo.get(view.getUint32(p, true))); p += 4; break; // LONG_BINGET
      case 0x63: { const module = line(); const name = line(); stack.push({ module, name } satisfies Global); break; } // GLOBAL
      case 0x93: { const name = stack.pop() as string; const module = stack.pop() as string; stack.push({ module, name } satisfies Global); break; } // STACK_GLOBAL
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([stack.pop()]); break; // TUPLE1
      case 0x86: { const b = stack.pop(); const a = stack.pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = stack.pop(); const b = stack.pop(); const a = stack.pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x75: { const items = popMark(); setItems(stack.at(-1), items); break; } // SETITEMS
      case 0x73: { const v = stack.pop(); const k = stack.pop(); setItems(stack.at(-1), [k, v]); break; } // SETITEM
      case 0x65: { const items = popMark(); (stack.at(-1) as unknown[]).push(...items); break; } // APPENDS
      case 0x61: { const v = stack.pop(); (stack.at(-1) as unknown[]).push(v); break; } // APPEND
      case 0x52: { const args = stack.pop() as unknown[]; const fn = stack.pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = stack.pop() as unknown[]; const cls = stack.pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD
        const state = stack.pop();
        const obj = stack.at(-1);
        if (obj && typeof obj === 'object' && 'className' in obj) (obj as PickledObject).state = state;
        break;
      }
      case 0x51: { // BINPERSID: ('storage', StorageClass, key, location, numel)
        const pid = stack.pop() as unknown[];
        const cls = pid[1] as Global;
        const dtype = STORAGE_DTYPES[cls.name];
        if (!dtype) throw new Error(`unsupported tensor storage ${cls.module}.${cls.name}`);
        stack.push({ dtype, key: String(pid[2]) } satisfies StorageRef);
        break;
      }
      default:
        throw new Error(`unsupported pickle opcode 0x${op.toString(16)} at byte ${p - 1}`);
    }
  }
}

function rebuildTensor(ref: StorageRef, offset: number, size: number[], stride: number[], storage: (ref: StorageRef) => Uint8Array): TorchTensor {
  const all = decodeFloats(storage(ref), ref.dtype);
  const count = size.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  const index = new Array<number>(size.length).fill(0);
  for (let i = 0; i < count; i++) {
    let src = offset;
    for (let d = 0; d < size.length; d++) src += index[d]! * stride[d]!;
    out[i] = all[src]!;
    for (let d = size.length - 1; d >= 0; d--) {
      if (++index[d]! < size[d]!) break;
      index[d] = 0;
    }
  }
  return { dims: [...size], data: out };
}

/** Little-endian F32 / F16 / BF16 / F64 bytes as float32. */
export function decodeFloats(raw: Uint8Array, dtype: string): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (dtype) {
    case 'F32':
      return Float32Array.from({ length: raw.length / 4 }, (_, i) => view.getFloat32(i * 4, true));
    case 'F16':
      return Float32Array.from({ length: raw.length / 2 }, (_, i) => float16BitsToFloat32(view.getUint16(i * 2, true)));
    case 'BF16':
      return Float32Array.from({ length: raw.length / 2 }, (_, i) => {
        const b = new DataView(new ArrayBuffer(4));
        b.setUint32(0, view.getUint16(i * 2, true) << 16);
        return b.getFloat32(0);
      });
    case 'F64':
      return Float32Array.from({ length: raw.length / 8 }, (_, i) => view.getFloat64(i * 8, true));
    default:
      throw new Error(`unsupported tensor dtype ${dtype}`);
  }
}
