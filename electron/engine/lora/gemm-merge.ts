/**
 * The merge W' = W + Σ factor·(up·down) for one initializer, computed by onnxruntime rather than in
 * JavaScript: the LoRA parts are stacked along the rank (U = [f₁·up₁ | f₂·up₂ | …] [out, R],
 * D = [down₁; down₂; …] [R, in·kh·kw]) so a set of LoRAs is one Gemm, Y = U·D + W — or, for a folded
 * transposed MatMul weight Wᵀ, Y = Dᵀ·Uᵀ + Wᵀ (Gemm transA/transB). fp16 weights are widened by a Cast,
 * summed in float32 and rounded back once (Cast, round to nearest even), as merge.ts' reference does.
 *
 * Why: on SD 1.5's shapes a rank-32 LoRA is ~8·10⁹ multiply-adds and ~270 M fp16 conversions; plain JS
 * took minutes, onnxruntime's Gemm (MLAS, SIMD, threads) and Cast take well under a second.
 * Four tiny graphs (fp16/fp32 × layout) are built in memory on first use and kept for the process.
 */
import * as ort from 'onnxruntime-node';
import { schema } from '../model/onnx-graph.js';
import type { InitializerPlan } from './merge.js';

const FLOAT = 1;
const FLOAT16 = 10;

type Dtype = 'float32' | 'float16';

function mergeGraph(dtype: Dtype, transposed: boolean): Uint8Array {
  const elem = dtype === 'float16' ? FLOAT16 : FLOAT;
  const input = (name: string, elemType: number, dims: string[]) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimParam: d })) } } },
  });
  const nodes: unknown[] = [];
  let w = 'W';
  if (dtype === 'float16') {
    nodes.push({ opType: 'Cast', input: ['W'], output: ['Wf'], attribute: [{ name: 'to', type: 2, i: FLOAT }] });
    w = 'Wf';
  }
  const y = dtype === 'float16' ? 'Yf' : 'Y';
  nodes.push({
    opType: 'Gemm',
    input: transposed ? ['D', 'U', w] : ['U', 'D', w],
    output: [y],
    attribute: transposed
      ? [
          { name: 'transA', type: 2, i: 1 },
          { name: 'transB', type: 2, i: 1 },
        ]
      : [],
  });
  if (dtype === 'float16') nodes.push({ opType: 'Cast', input: ['Yf'], output: ['Y'], attribute: [{ name: 'to', type: 2, i: FLOAT16 }] });
  const model = schema('ModelProto').fromObject({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'latent-studio lora merge',
    graph: {
      name: 'lora_merge',
      node: nodes,
      input: [input('W', elem, ['rows', 'cols']), input('U', FLOAT, ['out', 'rank']), input('D', FLOAT, ['rank', 'inner'])],
      output: [input('Y', elem, ['rows', 'cols'])],
    },
  });
  return schema('ModelProto').encode(model).finish();
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

function mergeSession(dtype: Dtype, transposed: boolean, threads: number): Promise<ort.InferenceSession> {
  const key = `${dtype}/${transposed}/${threads}`;
  let s = sessions.get(key);
  if (!s) {
    s = ort.InferenceSession.create(mergeGraph(dtype, transposed), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'basic',
      ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
      logSeverityLevel: 4,
    });
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

/** U [out, R] (each part's up scaled by its factor) and D [R, inner], stacked along the rank. */
export function stackParts(entry: InitializerPlan): { u: Float32Array; d: Float32Array; out: number; rank: number; inner: number } {
  const first = entry.parts[0]!.module;
  const out = first.upShape[0]!;
  const inner = first.down.length / first.downShape[0]!;
  const rank = entry.parts.reduce((r, p) => r + p.module.upShape[1]!, 0);
  const u = new Float32Array(out * rank);
  const d = new Float32Array(rank * inner);
  let k0 = 0;
  for (const { module, factor } of entry.parts) {
    const r = module.upShape[1]!;
    for (let o = 0; o < out; o++) {
      const src = o * r;
      const dst = o * rank + k0;
      for (let k = 0; k < r; k++) u[dst + k] = module.up[src + k]! * factor;
    }
    d.set(module.down, k0 * inner);
    k0 += r;
  }
  return { u, d, out, rank, inner };
}

/**
 * The merged weight in the initializer's stored form (fp16 bit patterns or float32), from its stored
 * values `w` (left unchanged).
 */
export async function gemmMerge(w: Uint16Array | Float32Array, entry: InitializerPlan, threads: number): Promise<Uint16Array | Float32Array> {
  const { u, d, out, rank, inner } = stackParts(entry);
  const transposed = entry.target.layout === 'linear-transposed';
  const dtype: Dtype = w instanceof Uint16Array ? 'float16' : 'float32';
  const dims = transposed ? [inner, out] : [out, inner];
  if (w.length !== out * inner) throw new Error(`lora merge: ${entry.target.initializer} has ${w.length} values for ${out}×${inner}`);
  const session = await mergeSession(dtype, transposed, threads);
  const feeds = {
    W: new ort.Tensor(dtype, w, dims),
    U: new ort.Tensor('float32', u, [out, rank]),
    D: new ort.Tensor('float32', d, [rank, inner]),
  };
  const result = await session.run(feeds);
  const data = result['Y']!.data as ArrayBufferView & { length: number };
  if (dtype === 'float16') return data instanceof Uint16Array ? data : new Uint16Array(data.buffer, data.byteOffset, data.length);
  return data as Float32Array;
}
