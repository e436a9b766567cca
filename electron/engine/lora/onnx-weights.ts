/**
 * An ONNX model's weights, indexed by the module they belong to, so a LoRA module can find its weight
 * (wave2-reference §3d), and a way to build the model again with some weights changed, in memory.
 *
 * torch.onnx.export (TorchScript, torch ≥ 1.13) keeps the module path in node names:
 * `/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul`. A Linear on 3-D input becomes
 * MatMul(x, Wᵀ), and constant folding stores Wᵀ [in, out] as a new initializer `onnx::MatMul_<n>`: the
 * torch name is gone, only the node says which module it is. Gemm (a Linear on 2-D input) and Conv keep
 * `<path>.weight` in torch layout. So each MatMul / Gemm / Conv whose weight input is a constant (through
 * Transpose, Cast or Identity nodes) is indexed under its node's module path and its initializer's
 * `<path>.weight` name, with the layout the initializer holds.
 *
 * Keys are module paths with `.` and `/` as `_` (kohya's spelling), registered for every suffix that
 * starts at a path segment, so wrapper modules (`/unet/…`, `/text_encoder/…`) don't matter; a suffix
 * two different weights share is ambiguous and not used.
 *
 * Weights live inline (`raw_data`, `float_data`) or in external files (`weights.pb`, `model.onnx_data`,
 * location/offset/length). Both are read once and kept: building a patched model never re-reads the
 * folder and never touches the originals. Only the changed weights are new bytes: inline ones patched in
 * a copy of the model's bytes, external ones written to one patch buffer that the model points them at
 * (location PATCH_LOCATION); the unchanged external weights are handed to onnxruntime as the kept files
 * themselves, not copies (onnxruntime copies what it needs from the buffers while creating the session).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { ModelFolderError } from '../../shared/errors.js';
import { schema } from '../model/onnx-graph.js';
import { float16ToFloat32 } from '../tensor/fp16.js';

/** How the initializer stores the module's weight W [out, in(, kh, kw)]. */
export type WeightLayout = 'linear' | 'linear-transposed' | 'conv';

export interface WeightTarget {
  initializer: string;
  layout: WeightLayout;
  /** The initializer's dims. */
  dims: number[];
  dtype: 'float32' | 'float16';
  /** The node that uses it (for messages). */
  node: string;
}

type Int64 = number | { toNumber(): number };
interface TensorLike {
  name?: string;
  dims?: Int64[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  externalData?: { key?: string; value?: string }[];
  dataLocation?: number;
}
interface AttributeLike {
  name?: string;
  i?: Int64;
  ints?: Int64[];
}
interface NodeLike {
  name?: string;
  opType?: string;
  domain?: string;
  input?: string[];
  output?: string[];
  attribute?: AttributeLike[];
}
interface ModelLike {
  graph?: { node?: NodeLike[]; initializer?: TensorLike[] };
}

const FLOAT = 1;
const FLOAT16 = 10;
const EXTERNAL = 1;

const toNumber = (v: Int64 | undefined): number => (v === undefined ? 0 : typeof v === 'number' ? v : v.toNumber());

/** Where a patched model's changed external weights are (a name no exporter writes). */
export const PATCH_LOCATION = 'latent-studio-lora-patch.bin';
/** Changed weights start on this boundary in the patch buffer (as onnx's own external-data writer aligns). */
const PATCH_ALIGN = 4096;

/** A patched model: bytes for InferenceSession.create and the external data files it names, by location. */
export interface BuiltModel {
  bytes: Uint8Array;
  externalData: { path: string; data: Uint8Array }[];
}

interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

export class OnnxWeights {
  private constructor(
    readonly label: string,
    private readonly modelBytes: Uint8Array,
    private readonly model: ModelLike,
    private readonly initializers: ReadonlyMap<string, TensorLike>,
    /** External files by location, read once. */
    private readonly externalFiles: ReadonlyMap<string, Uint8Array>,
    readonly targets: ReadonlyMap<string, WeightTarget>,
  ) {}

  /** Reads the model file (and its external data files) and indexes its weights. */
  static read(file: string, label: string): OnnxWeights {
    const bytes = readFileSync(file);
    const model = schema('ModelProto').decode(bytes) as unknown as ModelLike;
    const graph = model.graph;
    if (!graph) throw new ModelFolderError('the model has no graph', label);
    const initializers = new Map<string, TensorLike>();
    const externalFiles = new Map<string, Uint8Array>();
    for (const t of graph.initializer ?? []) {
      if (!t.name) continue;
      initializers.set(t.name, t);
      const ref = externalRef(t);
      if (ref && !externalFiles.has(ref.location)) {
        const path = normalize(join(dirname(file), ref.location));
        if (!path.startsWith(normalize(dirname(file)) + sep)) {
          throw new ModelFolderError(`external data "${ref.location}" points outside the model folder`, label);
        }
        try {
          externalFiles.set(ref.location, readFileSync(path));
        } catch (err) {
          throw new ModelFolderError(`cannot read external data "${ref.location}" (${(err as Error).message})`, label, { cause: err });
        }
      }
    }
    return new OnnxWeights(label, bytes, model, initializers, externalFiles, indexTargets(graph.node ?? [], initializers));
  }

  target(key: string): WeightTarget | undefined {
    return this.targets.get(key);
  }

  /** The initializer's values as float32 (fp16 widened), a copy. */
  values(name: string): Float32Array {
    const stored = this.stored(name);
    return stored instanceof Float32Array ? stored : float16ToFloat32(stored);
  }

  /**
   * The initializer's values as stored: fp16 bit patterns or float32, a copy (aligned; the kept bytes are
   * never handed out, so nothing can change the original).
   */
  stored(name: string): Uint16Array | Float32Array {
    const t = this.initializers.get(name);
    if (!t) throw new ModelFolderError(`no initializer "${name}"`, this.label);
    const count = (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1);
    const bytes = this.storedBytes(t);
    if (t.dataType === FLOAT) {
      if (bytes) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
      return Float32Array.from(t.floatData ?? []);
    }
    if (t.dataType === FLOAT16) {
      // float16 without raw_data is stored bit patterns in int32_data (onnx.proto).
      if (bytes) return new Uint16Array(bytes.buffer, bytes.byteOffset, count);
      return Uint16Array.from(t.int32Data ?? []);
    }
    throw new ModelFolderError(`initializer "${name}" has data type ${t.dataType}, not float32/float16`, this.label);
  }

  /**
   * The model with the named initializers changed (`storedOf(name)`: the new values as stored, fp16 bits
   * or float32, in the initializer's layout, made one at a time so only one is in memory at once). The
   * originals are untouched and never copied whole:
   * - external weights are written into one patch buffer (allocated once, each at an aligned offset) and
   *   their `external_data` entries point there; the kept external files go along as they are;
   * - inline `raw_data` is patched in a copy of the model's bytes at its place (same length);
   * - weights in `float_data` / `int32_data` are written as `raw_data`.
   * The model's protobuf is encoded again only when an entry changed (external or float_data weights).
   */
  async build(names: Iterable<string>, storedOf: (name: string) => Promise<Uint16Array | Float32Array>): Promise<BuiltModel> {
    const list = [...names];
    // The patch buffer's layout first, so it is allocated once.
    const patchAt = new Map<string, { offset: number; length: number }>();
    let patchLength = 0;
    for (const name of list) {
      const t = this.initializers.get(name);
      if (!t) throw new ModelFolderError(`no initializer "${name}"`, this.label);
      const ref = externalRef(t);
      if (!ref) continue;
      patchLength = Math.ceil(patchLength / PATCH_ALIGN) * PATCH_ALIGN;
      patchAt.set(name, { offset: patchLength, length: ref.length });
      patchLength += ref.length;
    }
    if (patchAt.size > 0 && this.externalFiles.has(PATCH_LOCATION)) {
      throw new ModelFolderError(`external data "${PATCH_LOCATION}" is a name the LoRA patch uses`, this.label);
    }
    const patch = patchAt.size > 0 ? new Uint8Array(patchLength) : null;
    const reencode: [TensorLike, Uint8Array][] = [];
    let patchedModel: Uint8Array | null = null;
    for (const name of list) {
      const t = this.initializers.get(name)!;
      const values = await storedOf(name);
      if ((values instanceof Uint16Array) !== (t.dataType === FLOAT16)) throw new ModelFolderError(`initializer "${name}": patched values of the wrong type`, this.label);
      const encoded = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      const at = patchAt.get(name);
      if (at) {
        if (encoded.length !== at.length) throw new ModelFolderError(`initializer "${name}": ${encoded.length} bytes for ${at.length}`, this.label);
        patch!.set(encoded, at.offset);
        continue;
      }
      const rawAt = this.rawDataOffset(t);
      if (rawAt !== null && t.rawData!.length === encoded.length) {
        patchedModel ??= Uint8Array.prototype.slice.call(this.modelBytes) as Uint8Array;
        patchedModel.set(encoded, rawAt);
      } else {
        reencode.push([t, encoded.slice()]);
      }
    }
    let bytes = patchedModel ?? this.modelBytes;
    if (reencode.length > 0 || patchAt.size > 0) {
      // Entries change: encode the model again (with external weights its protobuf is the graph only).
      const encodeFrom = patchedModel ? (schema('ModelProto').decode(patchedModel) as unknown as ModelLike) : this.model;
      const byName = new Map((encodeFrom.graph?.initializer ?? []).map((x) => [x.name, x]));
      type Fields = Pick<TensorLike, 'rawData' | 'floatData' | 'int32Data' | 'externalData'>;
      const saved: [TensorLike, Fields][] = [];
      try {
        const change = (name: string | undefined, fields: Fields): void => {
          const target = byName.get(name)!;
          saved.push([target, Object.fromEntries(Object.keys(fields).map((k) => [k, target[k as keyof Fields]])) as Fields]);
          Object.assign(target, fields);
        };
        for (const [t, encoded] of reencode) change(t.name, { rawData: encoded, floatData: [], int32Data: [] });
        for (const [name, { offset, length }] of patchAt) {
          change(name, {
            externalData: [
              { key: 'location', value: PATCH_LOCATION },
              { key: 'offset', value: String(offset) },
              { key: 'length', value: String(length) },
            ],
          });
        }
        bytes = schema('ModelProto').encode(encodeFrom as unknown as Record<string, unknown>).finish();
      } finally {
        if (encodeFrom === this.model) for (const [t, original] of saved) Object.assign(t, original);
      }
    }
    const externalData = [...this.externalFiles].map(([path, data]) => ({ path, data }));
    if (patch) externalData.push({ path: PATCH_LOCATION, data: patch });
    return { bytes, externalData };
  }

  /** Where an inline initializer's raw_data lies in the model's bytes (protobufjs decodes bytes as views), or null. */
  private rawDataOffset(t: TensorLike): number | null {
    const raw = t.rawData;
    if (!raw || raw.length === 0 || raw.buffer !== this.modelBytes.buffer) return null;
    const at = raw.byteOffset - this.modelBytes.byteOffset;
    return at >= 0 && at + raw.length <= this.modelBytes.length ? at : null;
  }

  private storedBytes(t: TensorLike): Uint8Array | null {
    const ref = externalRef(t);
    if (ref) {
      const file = this.externalFiles.get(ref.location)!;
      if (ref.offset + ref.length > file.length) {
        throw new ModelFolderError(`external data "${ref.location}" is shorter than initializer "${t.name}" needs`, this.label);
      }
      // A copy in a buffer of its own: aligned (views into a file may start at any byte), never the original.
      return Uint8Array.prototype.slice.call(file, ref.offset, ref.offset + ref.length) as Uint8Array;
    }
    if (t.rawData && t.rawData.length > 0) return Uint8Array.prototype.slice.call(t.rawData) as Uint8Array;
    return null;
  }
}

function externalRef(t: TensorLike): ExternalRef | null {
  if (t.dataLocation !== EXTERNAL) return null;
  const entry = (key: string): string | undefined => t.externalData?.find((e) => e.key === key)?.value;
  const location = entry('location');
  if (!location) return null;
  const offset = Number(entry('offset') ?? 0);
  const count = (t.dims ?? []).reduce<number>((a, d) => a * toNumber(d), 1);
  const length = Number(entry('length') ?? count * (t.dataType === FLOAT16 ? 2 : 4));
  return { location, offset, length };
}


/** `/down_blocks.0/attentions.0/proj_in/Conv` → segments of the module path (op name dropped). */
function nodeModulePath(name: string | undefined): string[] | null {
  if (!name || !name.startsWith('/')) return null;
  const parts = name.slice(1).split('/');
  parts.pop();
  return parts.length > 0 ? parts.flatMap((p) => p.split('.')) : null;
}

function initializerModulePath(name: string): string[] | null {
  if (!name.endsWith('.weight')) return null;
  return name.slice(0, -'.weight'.length).split(/[./]/);
}

/** Follows a node input back through Transpose / Cast / Identity to an initializer. */
function constantSource(
  input: string,
  producers: ReadonlyMap<string, NodeLike>,
  initializers: ReadonlyMap<string, TensorLike>,
): { name: string; transposed: boolean } | null {
  let transposed = false;
  let current = input;
  for (let hops = 0; hops < 4; hops++) {
    if (initializers.has(current)) return { name: current, transposed };
    const node = producers.get(current);
    if (!node) return null;
    if (node.opType === 'Transpose') {
      const perm = node.attribute?.find((a) => a.name === 'perm')?.ints?.map(toNumber);
      if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) return null;
      transposed = !transposed;
    } else if (node.opType !== 'Cast' && node.opType !== 'Identity') {
      return null;
    }
    current = node.input?.[0] ?? '';
  }
  return null;
}

function indexTargets(nodes: NodeLike[], initializers: ReadonlyMap<string, TensorLike>): Map<string, WeightTarget> {
  const producers = new Map<string, NodeLike>();
  for (const n of nodes) for (const o of n.output ?? []) producers.set(o, n);
  const byKey = new Map<string, WeightTarget | null>();
  const register = (segments: string[] | null, target: WeightTarget): void => {
    if (!segments) return;
    for (let i = 0; i < segments.length; i++) {
      const key = segments.slice(i).join('_');
      const known = byKey.get(key);
      if (known === undefined) byKey.set(key, target);
      else if (known !== null && known.initializer !== target.initializer) byKey.set(key, null);
    }
  };
  for (const node of nodes) {
    if ((node.domain ?? '') !== '' || !['MatMul', 'Gemm', 'Conv'].includes(node.opType ?? '')) continue;
    const source = constantSource(node.input?.[1] ?? '', producers, initializers);
    if (!source) continue;
    const t = initializers.get(source.name)!;
    if (t.dataType !== FLOAT && t.dataType !== FLOAT16) continue;
    const dims = (t.dims ?? []).map(toNumber);
    let layout: WeightLayout;
    if (node.opType === 'Conv') {
      if (dims.length !== 4 || source.transposed) continue;
      layout = 'conv';
    } else {
      if (dims.length !== 2) continue;
      // MatMul(x, B) and Gemm without transB compute x·B, so B is Wᵀ; Gemm(transB=1) holds W.
      const transB = node.opType === 'Gemm' && toNumber(node.attribute?.find((a) => a.name === 'transB')?.i) === 1;
      const holdsW = transB !== source.transposed;
      layout = holdsW ? 'linear' : 'linear-transposed';
    }
    const target: WeightTarget = {
      initializer: source.name,
      layout,
      dims,
      dtype: t.dataType === FLOAT16 ? 'float16' : 'float32',
      node: node.name ?? node.opType ?? '',
    };
    register(nodeModulePath(node.name), target);
    register(initializerModulePath(source.name), target);
  }
  const out = new Map<string, WeightTarget>();
  for (const [key, target] of byKey) if (target) out.set(key, target);
  return out;
}
