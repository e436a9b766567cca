/**
 * Small, careful edits of ONNX graphs, decoded with protobufjs against the official onnx.proto schema.
 *
 * The one edit we make: the diffusers convert script exports the VAE encoder as
 * `vae.encode(x).latent_dist.sample()`, so the graph draws its posterior noise with RandomNormalLike
 * (sd-onnx-reference §2.1). onnxruntime offers no seed for it, so img2img and inpainting would differ run
 * to run. We replace that node by a new graph input, `studio_posterior_noise`, and feed the noise from
 * the job's seeded RNG: the encoder then computes exactly mean + std·z with our z.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const POSTERIOR_NOISE_INPUT = 'studio_posterior_noise';

const SCHEMA_PATH = fileURLToPath(new URL('./onnx.proto', import.meta.url));
let root: protobuf.Root | undefined;

/** A message type of onnx.proto (also used by lora/onnx-weights.ts to read and rewrite initializers). */
export function schema(name: 'ModelProto' | 'NodeProto' | 'ValueInfoProto' | 'TensorProto'): protobuf.Type {
  root ??= protobuf.loadSync(SCHEMA_PATH);
  return root.lookupType(`onnx.${name}`);
}

interface AttributeLike {
  name?: string;
  i?: number | { toNumber(): number };
  f?: number;
}
interface NodeLike {
  opType?: string;
  input?: string[];
  output?: string[];
  name?: string;
  attribute?: AttributeLike[];
  domain?: string;
}
interface ValueInfoLike {
  name?: string;
  type?: { tensorType?: { elemType?: number } };
}
interface TensorLike {
  dataLocation?: number;
}
interface GraphLike {
  node?: NodeLike[];
  input?: ValueInfoLike[];
  valueInfo?: ValueInfoLike[];
  initializer?: TensorLike[];
}
interface ModelLike {
  graph?: GraphLike;
}

/** onnx TensorProto.DataType.EXTERNAL data location. */
const DATA_LOCATION_EXTERNAL = 1;

export interface NoisePatch {
  /** The patched model, ready for InferenceSession.create(bytes). */
  bytes: Uint8Array;
  /** The noise is N(mean, scale²) per the node's attributes. */
  mean: number;
  scale: number;
}

/**
 * Replaces the single top-level RandomNormalLike node by the graph input `studio_posterior_noise`.
 * Returns null when there is nothing to patch (no such node, several, or weights stored externally,
 * which a buffer-loaded session could not find).
 */
export function exposePosteriorNoise(modelBytes: Uint8Array): NoisePatch | null {
  const type = schema('ModelProto');
  const model = type.decode(modelBytes) as unknown as ModelLike;
  const graph = model.graph;
  if (!graph?.node) return null;
  if (graph.initializer?.some((t) => t.dataLocation === DATA_LOCATION_EXTERNAL)) return null;
  const random = graph.node.filter((n) => n.opType === 'RandomNormalLike' && (n.domain ?? '') === '');
  if (random.length !== 1) return null;
  const node = random[0]!;
  const output = node.output?.[0];
  const source = node.input?.[0];
  if (!output || !source) return null;

  const attr = (name: string): AttributeLike | undefined => node.attribute?.find((a) => a.name === name);
  const mean = attr('mean')?.f ?? 0;
  const scale = attr('scale')?.f ?? 1;
  const dtypeAttr = attr('dtype')?.i;
  // The output type: the dtype attribute, else the type of the tensor it is "like".
  const elemType =
    dtypeAttr !== undefined
      ? typeof dtypeAttr === 'number'
        ? dtypeAttr
        : dtypeAttr.toNumber()
      : [...(graph.valueInfo ?? []), ...(graph.input ?? [])].find((v) => v.name === source)?.type?.tensorType?.elemType ??
        graph.input?.[0]?.type?.tensorType?.elemType;
  if (elemType === undefined) return null;

  // Edit in place (no deep copy: the weights of a real VAE encoder are ~130 MB).
  const index = graph.node.indexOf(node);
  graph.node[index] = schema('NodeProto').fromObject({
    opType: 'Identity',
    input: [POSTERIOR_NOISE_INPUT],
    output: [output],
    name: `${node.name ?? 'random'}_fed`,
  }) as unknown as NodeLike;
  graph.input = graph.input ?? [];
  graph.input.push(
    schema('ValueInfoProto').fromObject({ name: POSTERIOR_NOISE_INPUT, type: { tensorType: { elemType } } }) as unknown as ValueInfoLike,
  );
  const bytes = type.encode(model as unknown as protobuf.Message).finish();
  return { bytes, mean, scale };
}

/** The rewritten text encoder's hidden state k (k = 0 embeddings … L last layer), before the final LayerNorm. */
export const HIDDEN_STATE_OUTPUT_PREFIX = 'studio_hidden_state.';
/** The same after the text model's final LayerNorm (k = L equals `last_hidden_state`). */
export const NORMED_HIDDEN_STATE_OUTPUT_PREFIX = 'studio_normed_hidden_state.';
/** int64 [batch, tokens]: the rows of the token-embedding table to look up (ids past the vocabulary reach the extra rows). */
export const TOKEN_EMBEDDING_IDS_INPUT = 'studio_token_embedding_ids';
/** [rows, width]: extra token-embedding rows (textual-inversion vectors), appended to the table. */
export const EXTRA_TOKEN_EMBEDDINGS_INPUT = 'studio_extra_token_embeddings';

export interface TextEncoderRewrite {
  bytes: Uint8Array;
  /** Transformer layers (CLIP ViT-L: 12). Hidden states 0 … layers are exposed. */
  layers: number;
  /** Rows of the token-embedding table (the vocabulary size the graph knows). */
  vocabRows: number;
  /** Width of the token embeddings. */
  width: number;
}

interface InitializerLike extends TensorLike {
  name?: string;
  dims?: (number | { toNumber(): number })[];
  dataType?: number;
}
interface OutputLike {
  name?: string;
  type?: { tensorType?: { elemType?: number } };
}

/** Ops that pass `input_ids` on unchanged in value (the exporters' Cast/Reshape before the lookup). */
const ID_PASSTHROUGH_OPS = new Set(['Cast', 'Reshape', 'Flatten', 'Identity', 'Unsqueeze', 'Squeeze']);
const TENSOR_INT64 = 7;

/**
 * Rewrites a CLIP text encoder (transformers `CLIPTextModel`, as the diffusers script and optimum export it)
 * so one session serves every prompt feature:
 *
 * - Clip skip. The residual stream is found from the structure, not from node names (the diffusers script's
 *   exports have none that help): the token-embedding Gather feeds the embeddings Add, and each layer adds
 *   two residual Adds (attention, MLP) whose inputs are both computed. Hidden state k is the stream after
 *   layer k (`hidden_states[k]` of transformers). Each is exposed as an output, and, for A1111's SD 1.x clip
 *   skip (`final_layer_norm(hidden_states[-N])`), a copy of the final-LayerNorm nodes (whatever form the
 *   exporter gave them: LayerNormalization or ReduceMean/Sub/Pow/…) is applied to each.
 * - Textual inversion. The token-embedding Gather reads `studio_token_embedding_ids` from the table with
 *   `studio_extra_token_embeddings` appended, so embedding vectors are looked up like tokens (ids past the
 *   vocabulary), while `input_ids` keeps A1111's placeholder ids for everything else (the pooled output's
 *   EOS position).
 *
 * Returns null when the graph does not have that shape, or keeps its weights in an external file and the
 * caller does not give that file's bytes with the session (`externalData`).
 */
export function rewriteTextEncoder(modelBytes: Uint8Array, options: { externalData?: boolean } = {}): TextEncoderRewrite | null {
  const type = schema('ModelProto');
  const model = type.decode(modelBytes) as unknown as ModelLike & { graph?: GraphLike & { output?: OutputLike[] } };
  const graph = model.graph;
  if (!graph?.node) return null;
  const initializers = (graph.initializer ?? []) as InitializerLike[];
  if (!options.externalData && initializers.some((t) => t.dataLocation === DATA_LOCATION_EXTERNAL)) return null;
  const nodes = graph.node;
  const initByName = new Map(initializers.map((t) => [t.name ?? '', t]));
  const producer = new Map<string, NodeLike>();
  const consumers = new Map<string, NodeLike[]>();
  for (const node of nodes) {
    for (const o of node.output ?? []) producer.set(o, node);
    for (const i of node.input ?? []) {
      const list = consumers.get(i) ?? [];
      list.push(node);
      consumers.set(i, list);
    }
  }
  const isConstant = (name: string): boolean => {
    if (initByName.has(name)) return true;
    const p = producer.get(name);
    return p !== undefined && (p.opType === 'Constant' || (p.opType === 'Identity' && isConstant(p.input?.[0] ?? '')));
  };
  const fromInputIds = (name: string): boolean => {
    if (name === 'input_ids') return true;
    const p = producer.get(name);
    return p !== undefined && ID_PASSTHROUGH_OPS.has(p.opType ?? '') && fromInputIds(p.input?.[0] ?? '');
  };

  // 1. The token-embedding lookup.
  const lookups = nodes.filter(
    (n) => n.opType === 'Gather' && initByName.get(n.input?.[0] ?? '')?.dims?.length === 2 && fromInputIds(n.input?.[1] ?? ''),
  );
  if (lookups.length !== 1) return null;
  const lookup = lookups[0]!;
  const table = initByName.get(lookup.input![0]!)!;
  const [vocabRows, width] = table.dims!.map((d) => (typeof d === 'number' ? d : d.toNumber())) as [number, number];

  // 2. The residual stream: embeddings, then two residual Adds per layer.
  const stream: string[] = [];
  let current = lookup.output?.[0] ?? '';
  for (;;) {
    const adds = (consumers.get(current) ?? []).filter((n) => n.opType === 'Add' && !(n.input ?? []).some(isConstant));
    if (adds.length !== 1) break;
    current = adds[0]!.output![0]!;
    stream.push(current);
  }
  if (stream.length < 3 || stream.length % 2 !== 1) return null;
  const layers = (stream.length - 1) / 2;
  const hidden = (k: number): string => stream[2 * k]!;
  const last = hidden(layers);

  // 3. The final LayerNorm: the nodes between the last hidden state and `last_hidden_state`.
  const outputs = (graph.output ?? []) as OutputLike[];
  const lastHidden = outputs.find((o) => o.name === 'last_hidden_state') ?? outputs[0];
  if (!lastHidden?.name) return null;
  const ancestors = new Set<NodeLike>();
  const pending = [lastHidden.name];
  while (pending.length > 0) {
    const p = producer.get(pending.pop()!);
    if (!p || ancestors.has(p)) continue;
    ancestors.add(p);
    pending.push(...(p.input ?? []));
  }
  const descendants = new Set<NodeLike>();
  const forward = [last];
  while (forward.length > 0) {
    for (const c of consumers.get(forward.pop()!) ?? []) {
      if (descendants.has(c)) continue;
      descendants.add(c);
      forward.push(...(c.output ?? []));
    }
  }
  const finalNorm = nodes.filter((n) => ancestors.has(n) && descendants.has(n));
  if (finalNorm.length === 0 || finalNorm.length > 16) return null;
  const elemType = lastHidden.type?.tensorType?.elemType;
  if (elemType === undefined) return null;

  // 4. Outputs: every hidden state raw, and through a copy of the final LayerNorm (k = L is the original).
  const nodeType = schema('NodeProto');
  const valueInfo = schema('ValueInfoProto');
  const addOutput = (name: string, elem: number): void => {
    outputs.push(valueInfo.fromObject({ name, type: { tensorType: { elemType: elem } } }) as unknown as OutputLike);
  };
  for (let k = 0; k <= layers; k++) {
    // The raw state is an output beside its consumers: an Identity gives it its own name.
    nodes.push(nodeType.fromObject({ opType: 'Identity', input: [hidden(k)], output: [`${HIDDEN_STATE_OUTPUT_PREFIX}${k}`], name: `studio_hidden_${k}` }) as unknown as NodeLike);
    addOutput(`${HIDDEN_STATE_OUTPUT_PREFIX}${k}`, elemType);
    const normed = `${NORMED_HIDDEN_STATE_OUTPUT_PREFIX}${k}`;
    if (k === layers) {
      nodes.push(nodeType.fromObject({ opType: 'Identity', input: [lastHidden.name], output: [normed], name: `studio_normed_${k}` }) as unknown as NodeLike);
    } else {
      const rename = (name: string): string =>
        name === last ? hidden(k) : finalNorm.some((n) => n.output?.includes(name)) ? (name === lastHidden.name ? normed : `${name}_studio_${k}`) : name;
      for (const n of finalNorm) {
        const copy = nodeType.toObject(nodeType.fromObject(n as Record<string, unknown>)) as NodeLike;
        copy.input = (n.input ?? []).map(rename);
        copy.output = (n.output ?? []).map(rename);
        copy.name = `${n.name ?? n.opType}_studio_${k}`;
        nodes.push(nodeType.fromObject(copy as Record<string, unknown>) as unknown as NodeLike);
      }
      if (!finalNorm.some((n) => n.output?.includes(lastHidden.name!))) return null;
    }
    addOutput(normed, elemType);
  }

  // 5. Textual inversion: Gather(Concat(table, extra rows), studio ids).
  const tableInput = `${lookup.input![0]!}_studio_extended`;
  nodes.push(
    nodeType.fromObject({ opType: 'Concat', input: [lookup.input![0]!, EXTRA_TOKEN_EMBEDDINGS_INPUT], output: [tableInput], name: 'studio_extend_token_table', attribute: [{ name: 'axis', type: 2, i: 0 }] }) as unknown as NodeLike,
  );
  lookup.input = [tableInput, TOKEN_EMBEDDING_IDS_INPUT];
  graph.input = graph.input ?? [];
  graph.input.push(valueInfo.fromObject({ name: TOKEN_EMBEDDING_IDS_INPUT, type: { tensorType: { elemType: TENSOR_INT64 } } }) as unknown as ValueInfoLike);
  graph.input.push(valueInfo.fromObject({ name: EXTRA_TOKEN_EMBEDDINGS_INPUT, type: { tensorType: { elemType: table.dataType ?? elemType } } }) as unknown as ValueInfoLike);

  // New nodes went to the end; ONNX wants a topological order, which the original order plus appended
  // consumers of earlier tensors keeps, except the Concat, which must precede the lookup.
  const concat = nodes.pop()!;
  nodes.splice(nodes.indexOf(lookup), 0, concat);
  const bytes = type.encode(model as unknown as protobuf.Message).finish();
  return { bytes, layers, vocabRows, width };
}
