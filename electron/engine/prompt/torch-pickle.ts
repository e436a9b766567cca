/**
 * Reads the tensors of a `torch.save` file without Python, in both of torch's formats:
 *
 * - the zip format (torch ≥ 1.6, what A1111, kohya and diffusers write today): the zip's `<name>/data.pkl`
 *   is a pickle whose tensors point, by persistent id, at `<name>/data/<key>` storages;
 * - the legacy format (torch < 1.6, and `_use_new_zipfile_serialization=False`): pickles one after
 *   another — magic number, protocol version, sys info, the object, the storage keys — then each storage
 *   as an int64 element count and its bytes, in the keys' order.
 *
 * The unpickler is restricted: nothing is ever executed. It implements the opcodes pickle protocols 0–5
 * emit for dicts, lists, tuples, sets, strings, numbers and objects, and gives meaning to the few globals
 * a tensor file needs (`ALLOWED_GLOBALS`: torch's tensor rebuilders, storage classes, OrderedDict, set,
 * ParameterDict as a container); any other global (`os.system`, `builtins.eval`, …) refuses the whole
 * file with `UnsafePickleError` before anything else is read.
 *
 * Why not a library: pickleparser (npm, the one maintained-looking JS pickle reader) had one release,
 * resolves unknown globals to generic objects instead of refusing them, and cannot say where a pickle
 * ends, which the legacy format's back-to-back pickles need.
 */
import { float16BitsToFloat32 } from '../tensor/fp16.js';

export interface TorchTensor {
  dims: number[];
  data: Float32Array;
}

/** An object the pickle built from an allowed class we keep as data (torch.nn.ParameterDict). */
export interface PickledObject {
  className: string;
  args: unknown[];
  state: Map<string, unknown> | unknown;
}

/** A pickle that names a global no tensor file needs: refused, nothing run. */
export class UnsafePickleError extends Error {
  override name = 'UnsafePickleError';
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
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'U8',
};
const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1 };

const REBUILD_TENSOR = new Set(['torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor']);
const REBUILD_PARAMETER = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state']);
const CONTAINERS = new Set(['torch.nn.modules.container.ParameterDict']);
/** Every global a tensor file may name; anything else refuses the file. */
const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'builtins.set',
  '__builtin__.set',
  ...REBUILD_TENSOR,
  ...REBUILD_PARAMETER,
  ...CONTAINERS,
  ...Object.keys(STORAGE_DTYPES).map((n) => `torch.${n}`),
]);

/** torch's legacy magic number (torch/serialization.py MAGIC_NUMBER) and protocol version. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** The top-level dict of a torch.save file (zip or legacy format). */
export function readTorchPickle(bytes: Uint8Array): Map<string, unknown> {
  const isZip = bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
  const result = isZip ? readZipFormat(bytes) : bytes[0] === 0x80 ? readLegacyFormat(bytes) : null;
  if (result === null) {
    const isTar = bytes.length > 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar';
    throw new Error(
      isTar
        ? "a tar archive (torch.save before 0.4): re-save it with a current torch or convert it to .safetensors"
        : 'not a torch.save file (neither a zip archive nor a pickle)',
    );
  }
  if (!(result instanceof Map)) throw new Error('the file does not hold a dict');
  return result as Map<string, unknown>;
}

function readZipFormat(bytes: Uint8Array): unknown {
  const files = readZip(bytes);
  const pklName = [...files.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (!pklName) throw new Error('a zip archive without data.pkl: not a torch.save file');
  const prefix = pklName.slice(0, -'data.pkl'.length);
  const storage = (ref: StorageRef): Uint8Array => {
    const raw = files.get(`${prefix}data/${ref.key}`);
    if (!raw) throw new Error(`storage ${ref.key} is missing from the archive`);
    return raw;
  };
  return unpickle(files.get(pklName)!, 0, storageRefs(), storage).value;
}

function readLegacyFormat(bytes: Uint8Array): unknown {
  const none = (): never => {
    throw new Error('the header pickles refer to storages');
  };
  const magic = unpickle(bytes, 0, none, none);
  if (magic.value !== LEGACY_MAGIC) throw new Error('a pickle, but not one torch.save wrote (no torch magic number)');
  const protocol = unpickle(bytes, magic.end, none, none);
  if (protocol.value !== LEGACY_PROTOCOL) throw new Error(`torch legacy protocol ${String(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = unpickle(bytes, protocol.end, none, none);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) throw new Error('saved on a big-endian machine');
  // The object: its tensors are read lazily, once the storages after it are located.
  const storages = new Map<string, Uint8Array>();
  const dtypes = new Map<string, string>();
  const refs = storageRefs((ref) => dtypes.set(ref.key, ref.dtype));
  const main = unpickle(bytes, sysInfo.end, refs, (ref) => {
    const raw = storages.get(ref.key);
    if (!raw) throw new Error(`storage ${ref.key} is missing from the file`);
    return raw;
  });
  const keys = unpickle(bytes, main.end, none, none);
  if (!Array.isArray(keys.value)) throw new Error('the storage keys are not a list');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = keys.end;
  for (const key of keys.value as unknown[]) {
    const dtype = dtypes.get(String(key));
    if (!dtype) throw new Error(`storage ${String(key)} is listed but no tensor uses it`);
    if (p + 8 > bytes.length) throw new Error('the file ends inside the storages');
    const count = Number(view.getBigInt64(p, true));
    const length = count * DTYPE_BYTES[dtype]!;
    if (count < 0 || p + 8 + length > bytes.length) throw new Error(`storage ${String(key)} runs past the end of the file`);
    storages.set(String(key), bytes.subarray(p + 8, p + 8 + length));
    p += 8 + length;
  }
  return main.value;
}

/** The persistent-id loader both formats share: storages (and the legacy format's module classes). */
function storageRefs(seen?: (ref: StorageRef) => void): (pid: unknown) => unknown {
  return (pid) => {
    const t = pid as unknown[];
    if (!Array.isArray(t)) throw new Error('pickle: persistent id is not a tuple');
    // Legacy: ('module', class, source file, source) stands for an nn.Module subclass (ParameterDict).
    if (t[0] === 'module') return t[1];
    if (t[0] !== 'storage') throw new Error(`pickle: unknown persistent id ${String(t[0])}`);
    const cls = t[1] as Global;
    const dtype = STORAGE_DTYPES[cls?.name];
    if (!dtype) throw new Error(`unsupported tensor storage ${cls?.module}.${cls?.name}`);
    if (t[5] !== undefined && t[5] !== null) throw new Error('storage views (torch < 1.0) are not supported');
    const ref = { dtype, key: String(t[2]) } satisfies StorageRef;
    seen?.(ref);
    return ref;
  };
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

/** Little-endian two's complement bytes as a number, or a bigint past 2⁵³. */
function littleEndianInt(bytes: Uint8Array): number | bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  if (bytes.length > 0 && bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(8 * bytes.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** One pickle from `start`: its value and where it ended (the byte after STOP). */
function unpickle(
  data: Uint8Array,
  start: number,
  persistentLoad: (pid: unknown) => unknown,
  storage: (ref: StorageRef) => Uint8Array,
): { value: unknown; end: number } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const decoder = new TextDecoder();
  const latin1 = new TextDecoder('latin1');
  // MARK starts a new stack (pickle.py's metastack); popMark returns it and restores the one before.
  // Always pop into a const before pushing: `stack.push(popMark())` would push into the popped stack.
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  let p = start;
  const need = (n: number): void => {
    if (n < 0 || p + n > data.length) throw new Error('pickle: ran past the end');
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = metastack.pop();
    if (!previous) throw new Error('pickle: MARK not found');
    stack = previous;
    return items;
  };
  const bytesOf = (n: number): Uint8Array => {
    need(n);
    const b = data.subarray(p, p + n);
    p += n;
    return b;
  };
  const str = (n: number): string => decoder.decode(bytesOf(n));
  const line = (): string => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) throw new Error('pickle: ran past the end');
    const s = decoder.decode(data.subarray(p, end));
    p = end + 1;
    return s;
  };
  const u8 = (): number => bytesOf(1)[0]!;
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(p, true);
    p += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = Number(view.getBigUint64(p, true));
    p += 8;
    return v;
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new Error('pickle: empty stack');
    return stack[stack.length - 1];
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new Error('pickle: empty stack');
    return stack.pop();
  };
  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) {
      throw new UnsafePickleError(`its pickle names ${full}, which a tensor file never needs; refused without running anything`);
    }
    return { module, name };
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) throw new Error('pickle: SETITEMS on a non-dict');
    for (let i = 0; i + 1 < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    const g = fn as Global;
    if (!g || typeof g.module !== 'string' || !Array.isArray(args)) throw new Error('pickle: a call of something not a global');
    const full = `${g.module}.${g.name}`;
    if (full === 'collections.OrderedDict') return new Map();
    if (full.endsWith('.set')) return new Set(Array.isArray(args[0]) ? (args[0] as unknown[]) : []);
    if (REBUILD_TENSOR.has(full)) return rebuildTensor(args[0] as StorageRef, args[1] as number, args[2] as number[], args[3] as number[], storage);
    if (REBUILD_PARAMETER.has(full)) return args[0];
    if (CONTAINERS.has(full)) return { className: full, args, state: undefined } satisfies PickledObject;
    throw new UnsafePickleError(`its pickle calls ${full}, which builds no tensor or container; refused without running anything`);
  };
  const memoize = (key: number): void => {
    memo.set(key, top());
  };

  for (;;) {
    need(1);
    const op = data[p++]!;
    switch (op) {
      case 0x80: p++; break; // PROTO
      case 0x95: need(8); p += 8; break; // FRAME
      case 0x2e: return { value: pop(), end: p }; // STOP
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const m = new Map(); setItems(m, items); stack.push(m); break; } // DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const s = top(); if (s instanceof Set) for (const i of items) s.add(i); break; } // ADDITEMS
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: need(2); stack.push(view.getUint16(p, true)); p += 2; break; // BININT2
      case 0x4a: need(4); stack.push(view.getInt32(p, true)); p += 4; break; // BININT
      case 0x49: { const s = line(); stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10)); break; } // INT
      case 0x4c: stack.push(Number.parseInt(line(), 10)); break; // LONG
      case 0x8a: { const n = u8(); stack.push(littleEndianInt(bytesOf(n))); break; } // LONG1
      case 0x8b: { const n = u32(); stack.push(littleEndianInt(bytesOf(n))); break; } // LONG4
      case 0x47: need(8); stack.push(view.getFloat64(p, false)); p += 8; break; // BINFLOAT
      case 0x46: stack.push(Number.parseFloat(line())); break; // FLOAT
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x55: stack.push(latin1.decode(bytesOf(u8()))); break; // SHORT_BINSTRING (Python 2 str)
      case 0x54: stack.push(latin1.decode(bytesOf(u32()))); break; // BINSTRING
      case 0x43: stack.push(bytesOf(u8())); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytesOf(u32())); break; // BINBYTES
      case 0x8e: stack.push(bytesOf(u64())); break; // BINBYTES8
      case 0x71: memoize(u8()); break; // BINPUT
      case 0x72: memoize(u32()); break; // LONG_BINPUT
      case 0x70: memoize(Number.parseInt(line(), 10)); break; // PUT
      case 0x94: memoize(memo.size); break; // MEMOIZE
      case 0x68: stack.push(memo.get(u8())); break; // BINGET
      case 0x6a: stack.push(memo.get(u32())); break; // LONG_BINGET
      case 0x67: stack.push(memo.get(Number.parseInt(line(), 10))); break; // GET
      case 0x63: { const module = line(); const name = line(); stack.push(global(module, name)); break; } // GLOBAL
      case 0x93: { const name = pop() as string; const module = pop() as string; stack.push(global(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x65: { const items = popMark(); const list = top(); if (!Array.isArray(list)) throw new Error('pickle: APPENDS on a non-list'); list.push(...items); break; } // APPENDS
      case 0x61: { const v = pop(); const list = top(); if (!Array.isArray(list)) throw new Error('pickle: APPEND on a non-list'); list.push(v); break; } // APPEND
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj && typeof obj === 'object' && 'className' in obj) (obj as PickledObject).state = state;
        break;
      }
      case 0x51: { const pid = pop(); stack.push(persistentLoad(pid)); break; } // BINPERSID
      default:
        throw new UnsafePickleError(`its pickle uses opcode 0x${op.toString(16)} (at byte ${p - 1}), which torch.save never writes; refused`);
    }
  }
}

/**
 * A tensor from its storage, offset, size and stride. Its values are read on first use: the legacy
 * format stores them after the pickle that describes the tensor.
 */
function rebuildTensor(ref: StorageRef, offset: number, size: number[], stride: number[], storage: (ref: StorageRef) => Uint8Array): TorchTensor {
  if (!ref || typeof ref.dtype !== 'string' || !Array.isArray(size) || !Array.isArray(stride)) throw new Error('pickle: a malformed tensor');
  let values: Float32Array | null = null;
  return {
    dims: [...size],
    get data(): Float32Array {
      if (values) return values;
      const all = decodeFloats(storage(ref), ref.dtype);
      const count = size.reduce((a, b) => a * b, 1);
      const out = new Float32Array(count);
      const index = new Array<number>(size.length).fill(0);
      for (let i = 0; i < count; i++) {
        let src = offset;
        for (let d = 0; d < size.length; d++) src += index[d]! * stride[d]!;
        if (src >= all.length) throw new Error('a tensor reaches past its storage');
        out[i] = all[src]!;
        for (let d = size.length - 1; d >= 0; d--) {
          if (++index[d]! < size[d]!) break;
          index[d] = 0;
        }
      }
      values = out;
      return out;
    },
  };
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
    case 'I64':
      return Float32Array.from({ length: raw.length / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    case 'I32':
      return Float32Array.from({ length: raw.length / 4 }, (_, i) => view.getInt32(i * 4, true));
    case 'I16':
      return Float32Array.from({ length: raw.length / 2 }, (_, i) => view.getInt16(i * 2, true));
    case 'I8':
      return Float32Array.from({ length: raw.length }, (_, i) => view.getInt8(i));
    case 'U8':
      return Float32Array.from(raw);
    default:
      throw new Error(`unsupported tensor dtype ${dtype}`);
  }
}
