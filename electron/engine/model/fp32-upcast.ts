/**
 * An fp16 graph rewritten to run in fp32: what diffusers does with `vae.to(torch.float32)` when a VAE's
 * config says `force_upcast` (SDXL's stock VAE overflows in fp16: inf/NaN, a black picture). Every fp16
 * initializer, Constant and graph input/output/value type becomes fp32, and every Cast to fp16 a Cast to
 * fp32, so the weights are the same numbers and only the arithmetic widens. Done on the protobuf
 * (onnx.proto, as onnx-graph.ts does); graphs with external data or subgraphs are left alone.
 */
import type protobuf from 'protobufjs';
import { fromFloat16Array } from '../tensor/fp16.js';
import { schema } from './onnx-graph.js';

/** onnx TensorProto.DataType */
const FLOAT = 1;
const FLOAT16 = 10;
const DATA_LOCATION_EXTERNAL = 1;

interface TensorLike {
  dataType?: number;
  rawData?: Uint8Array;
  int32Data?: number[];
  floatData?: number[];
  dataLocation?: number;
}
interface AttributeLike {
  name?: string;
  i?: number | { toNumber(): number };
  t?: TensorLike;
  g?: unknown;
  graphs?: unknown[];
}
interface NodeLike {
  opType?: string;
  attribute?: AttributeLike[];
}
interface ValueInfoLike {
  type?: { tensorType?: { elemType?: number } };
}
interface GraphLike {
  node?: NodeLike[];
  input?: ValueInfoLike[];
  output?: ValueInfoLike[];
  valueInfo?: ValueInfoLike[];
  initializer?: TensorLike[];
}

function toNumber(v: number | { toNumber(): number } | undefined): number | undefined {
  return v === undefined ? undefined : typeof v === 'number' ? v : v.toNumber();
}

/** fp16 tensor → fp32 tensor, in place (raw_data, or int32_data holding the 16-bit patterns). */
function upcastTensor(t: TensorLike): void {
  if (t.dataType !== FLOAT16) return;
  let bits: Uint16Array;
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    bits = new Uint16Array(copy.buffer, 0, copy.length / 2);
  } else {
    bits = Uint16Array.from(t.int32Data ?? []);
  }
  t.rawData = new Uint8Array(fromFloat16Array(bits).buffer);
  t.int32Data = [];
  t.dataType = FLOAT;
}

function upcastValue(v: ValueInfoLike): void {
  const tt = v.type?.tensorType;
  if (tt?.elemType === FLOAT16) tt.elemType = FLOAT;
}

/**
 * The model in `bytes` with fp16 replaced by fp32 throughout; null when it cannot be done safely here
 * (weights in an external file, or control-flow subgraphs).
 */
export function upcastToFp32(bytes: Uint8Array): Uint8Array | null {
  const type = schema('ModelProto');
  const model = type.decode(bytes) as unknown as { graph?: GraphLike };
  const graph = model.graph;
  if (!graph) return null;
  if (graph.initializer?.some((t) => t.dataLocation === DATA_LOCATION_EXTERNAL)) return null;
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.g || (a.graphs && a.graphs.length > 0)) return null;
      if (a.t) upcastTensor(a.t);
      if (node.opType === 'Cast' && a.name === 'to' && toNumber(a.i) === FLOAT16) a.i = FLOAT;
    }
  }
  for (const t of graph.initializer ?? []) upcastTensor(t);
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) upcastValue(v);
  return type.encode(model as unknown as protobuf.Message).finish();
}
