/**
 * A U-Net-shaped ONNX graph with SD 1.5's LoRA-targeted layers, written at bench time (too big to commit):
 * the 16 transformer blocks of SD 1.5 (channels 320/640/1280, context 768; to_q/k/v/out of attn1 and attn2,
 * GEGLU ff.net.0.proj [8C, C] and ff.net.2, 1×1 conv proj_in/out), each a MatMul on a folded transposed
 * fp16 initializer `onnx::MatMul_<n>` named by torch's node path, weights in `model.onnx_data`, as optimum
 * writes an SD 1.5 fp16 U-Net. Plus a kohya LoRA over all of them (rank 32, alpha 16, fp16), and two more
 * with other seeds for switching sets.
 */
import { writeFileSync, openSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { schema } from '../electron/engine/model/onnx-graph.js';
import { float32ToFloat16Bits } from '../electron/engine/tensor/fp16.js';

const CONTEXT = 768;
const FLOAT16 = 10;

interface Layer {
  path: string; // diffusers module path
  kind: 'linear' | 'conv';
  out: number;
  in: number;
}

function transformerLayers(prefix: string, c: number): Layer[] {
  const t = `${prefix}.transformer_blocks.0`;
  return [
    { path: `${prefix}.proj_in`, kind: 'conv', out: c, in: c },
    ...['attn1.to_q', 'attn1.to_k', 'attn1.to_v', 'attn1.to_out.0', 'attn2.to_q', 'attn2.to_out.0'].map((p) => ({ path: `${t}.${p}`, kind: 'linear' as const, out: c, in: c })),
    { path: `${t}.attn2.to_k`, kind: 'linear', out: c, in: CONTEXT },
    { path: `${t}.attn2.to_v`, kind: 'linear', out: c, in: CONTEXT },
    { path: `${t}.ff.net.0.proj`, kind: 'linear', out: 8 * c, in: c },
    { path: `${t}.ff.net.2`, kind: 'linear', out: c, in: 4 * c },
    { path: `${prefix}.proj_out`, kind: 'conv', out: c, in: c },
  ];
}

/** SD 1.5's attention blocks: down 0–2 (two each), mid, up 1–3 (three each). */
export function sd15Layers(): Layer[] {
  const channels = [320, 640, 1280, 1280];
  const layers: Layer[] = [];
  for (let level = 0; level < 3; level++) for (let j = 0; j < 2; j++) layers.push(...transformerLayers(`down_blocks.${level}.attentions.${j}`, channels[level]!));
  layers.push(...transformerLayers('mid_block.attentions.0', 1280));
  for (let level = 1; level < 4; level++) for (let j = 0; j < 3; j++) layers.push(...transformerLayers(`up_blocks.${level}.attentions.${j}`, channels[3 - level]!));
  return layers;
}

/** Deterministic small fp16 values (xorshift), cheap enough for ~270 M weights. */
function fillFp16(out: Uint16Array, seed: number, scale: number): void {
  let x = seed | 1;
  const table = new Uint16Array(4096);
  for (let i = 0; i < table.length; i++) table[i] = float32ToFloat16Bits(((i / table.length) * 2 - 1) * scale);
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = table[x & 4095]!;
  }
}

/** Writes `<dir>/unet/model.onnx` + `model.onnx_data`; returns the weight bytes. */
export function writeSd15ShapedUnet(dir: string): number {
  const layers = sd15Layers();
  const unetDir = join(dir, 'unet');
  mkdirSync(unetDir, { recursive: true });
  const dataFd = openSync(join(unetDir, 'model.onnx_data'), 'w');
  let offset = 0;
  const nodes: unknown[] = [];
  const inputs: unknown[] = [];
  const outputs: unknown[] = [];
  const initializers: unknown[] = [];
  const valueInfo = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: FLOAT16, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  layers.forEach((layer, i) => {
    const nodePath = `/${layer.path.split('.').reduce<string[]>((acc, part) => (/^\d+$/.test(part) ? [...acc.slice(0, -1), `${acc[acc.length - 1]}.${part}`] : [...acc, part]), []).join('/')}`;
    const conv = layer.kind === 'conv';
    const weight = conv ? `${layer.path}.weight` : `onnx::MatMul_${1000 + i}`;
    const dims = conv ? [layer.out, layer.in, 1, 1] : [layer.in, layer.out];
    const count = layer.out * layer.in;
    const data = new Uint16Array(count);
    fillFp16(data, 7 + i, 0.05);
    writeSync(dataFd, new Uint8Array(data.buffer));
    initializers.push({
      name: weight,
      dims,
      dataType: FLOAT16,
      dataLocation: 1,
      externalData: [
        { key: 'location', value: 'model.onnx_data' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(count * 2) },
      ],
    });
    offset += count * 2;
    const x = `x_${i}`;
    const y = `y_${i}`;
    inputs.push(valueInfo(x, conv ? [1, layer.in, 1, 1] : [1, layer.in]));
    outputs.push(valueInfo(y, conv ? [1, layer.out, 1, 1] : [1, layer.out]));
    nodes.push({ name: `${nodePath}/${conv ? 'Conv' : 'MatMul'}`, opType: conv ? 'Conv' : 'MatMul', input: [x, weight], output: [y] });
  });
  closeSync(dataFd);
  const model = schema('ModelProto').fromObject({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'latent-studio bench (SD 1.5 LoRA layer shapes)',
    graph: { name: 'unet', node: nodes, input: inputs, output: outputs, initializer: initializers },
  });
  writeFileSync(join(unetDir, 'model.onnx'), schema('ModelProto').encode(model).finish());
  return offset;
}

/** A kohya LoRA over every layer (rank 32, alpha 16, fp16). */
export function writeKohyaLora(file: string, seed: number, rank = 32): void {
  const header: Record<string, unknown> = { __metadata__: { ss_network_dim: String(rank), ss_network_alpha: '16', ss_base_model_version: 'sd_v1' } };
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], values: Uint16Array): void => {
    header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + values.byteLength] };
    chunks.push(new Uint8Array(values.buffer));
    offset += values.byteLength;
  };
  sd15Layers().forEach((layer, i) => {
    const name = `lora_unet_${layer.path.replaceAll('.', '_')}`;
    const conv = layer.kind === 'conv';
    const down = new Uint16Array(rank * layer.in);
    const up = new Uint16Array(layer.out * rank);
    fillFp16(down, seed * 7919 + i, 0.02);
    fillFp16(up, seed * 104729 + i, 0.02);
    add(`${name}.lora_down.weight`, conv ? [rank, layer.in, 1, 1] : [rank, layer.in], down);
    add(`${name}.lora_up.weight`, conv ? [layer.out, rank, 1, 1] : [layer.out, rank], up);
    add(`${name}.alpha`, [], Uint16Array.of(float32ToFloat16Bits(16)));
  });
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([length, json, ...chunks]));
}
