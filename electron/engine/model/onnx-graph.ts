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
