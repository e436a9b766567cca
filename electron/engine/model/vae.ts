/**
 * The VAE's detectors. The decoder tells the latent channels, the upscale factor and the scaling factor
 * (config.json, static dims, else one probe run on a small latent); the encoder tells how it gives its
 * posterior (optimum ≥ 1.23 `latent_parameters`, or a sampled `latent_sample`) and whether that sample
 * is seeded. A diffusers-script encoder draws its noise in the graph; `openVaeEncoder` patches that node
 * into an input (onnx-graph.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFolderError } from '../../shared/errors.js';
import type { ModelInfo } from '../../shared/model.js';
import { num, staticDim, type JsonObject } from './folder-config.js';
import { upcastToFp32 } from './fp32-upcast.js';
import { exposePosteriorNoise, POSTERIOR_NOISE_INPUT, type NoisePatch } from './onnx-graph.js';
import { OnnxModule, type SessionSettings } from './onnx-module.js';

/** VAE latent scaling for SD 1.x / 2.x (diffusers `AutoencoderKL` default `scaling_factor`). */
export const SD_VAE_SCALING_FACTOR = 0.18215;
/** SD's VAE downsamples by 2 three times (`2 ** (len(block_out_channels) - 1)` with 4 blocks). */
export const SD_VAE_SCALE_FACTOR = 8;

export interface VaeDecoderDetection {
  info: ModelInfo['vaeDecoder'];
  outputName: string;
  latentChannels: number;
  vaeScaleFactor: number;
  vaeScalingFactor: number;
}

/**
 * `unetOutChannels` (the U-Net's static `out_sample` channels, if any) stands in for the latent channels
 * when neither config.json nor the decoder's own input says.
 */
export async function detectVaeDecoder(
  decoder: OnnxModule,
  config: JsonObject | null,
  unetOutChannels: number | undefined,
): Promise<VaeDecoderDetection> {
  const input = decoder.requireInput('latent_sample');
  const outputName = decoder.outputName(['sample']);
  const vaeScalingFactor = num(config, 'scaling_factor') ?? SD_VAE_SCALING_FACTOR;
  let latentChannels = num(config, 'latent_channels') ?? staticDim(input.shape, 1) ?? unetOutChannels;
  const blocks = config?.['block_out_channels'];
  let vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : undefined;
  if (latentChannels === undefined || vaeScaleFactor === undefined) {
    // Probe the decoder with a small latent: it tells both the channel count (by accepting it) and the
    // upscale factor (by its output size).
    const c = latentChannels ?? 4;
    const side = 8;
    const out = await decoder
      .run({ latent_sample: { data: new Float32Array(c * side * side), dims: [1, c, side, side] } }, [outputName])
      .catch((err: unknown) => {
        throw new ModelFolderError(`could not detect the latent channels (tried ${c}): ${(err as Error).message}`, decoder.label);
      });
    latentChannels = c;
    vaeScaleFactor = vaeScaleFactor ?? out[outputName]!.dims[2]! / side;
  }
  return { info: { inputType: input.type }, outputName, latentChannels, vaeScaleFactor, vaeScalingFactor };
}

/** What the encoder gives and whether its sampling is seeded; `warnings` gets the reason when it is not. */
export function detectVaeEncoder(encoder: OnnxModule, warnings: string[]): NonNullable<ModelInfo['vaeEncoder']> {
  const input = encoder.requireInput('sample');
  const output = encoder.outputs.has('latent_parameters')
    ? 'latent_parameters'
    : encoder.outputs.has('latent_sample')
      ? 'latent_sample'
      : null;
  if (!output) {
    throw new ModelFolderError(
      `expected an output "latent_sample" or "latent_parameters", found ${[...encoder.outputs.keys()].join(', ')}`,
      encoder.label,
    );
  }
  const posteriorNoise = encoder.input(POSTERIOR_NOISE_INPUT) ? 'seeded' : output === 'latent_parameters' ? 'seeded' : 'in-graph';
  if (posteriorNoise === 'in-graph') {
    warnings.push('vae_encoder samples its posterior inside the graph: img2img and inpaint results vary run to run');
  }
  return { output, inputType: input.type, posteriorNoise };
}

/**
 * Opens `vae_decoder/model.onnx`. An fp16 decoder whose config says `force_upcast` (SDXL's stock VAE,
 * which overflows in fp16 and decodes to black) is rewritten to fp32 before its session is created
 * (fp32-upcast.ts), and `warnings` records why; a decoder that cannot be rewritten runs as it is, with
 * the risk said there too.
 */
export async function openVaeDecoder(dir: string, config: JsonObject | null, settings: SessionSettings, warnings: string[]): Promise<OnnxModule> {
  const file = join(dir, 'vae_decoder', 'model.onnx');
  const label = 'vae_decoder/model.onnx';
  const plain = await OnnxModule.open(file, label, settings);
  if (plain.input('latent_sample')?.type !== 'float16' || config?.['force_upcast'] !== true) return plain;
  const upcast = upcastToFp32(readFileSync(file));
  if (!upcast) {
    warnings.push('vae_decoder: fp16 with force_upcast, but its weights are external, so it runs in fp16 and may overflow (a black picture)');
    return plain;
  }
  const fp32 = await OnnxModule.open(file, label, settings, upcast);
  await plain.release();
  warnings.push(
    'vae_decoder: runs in fp32 (upcast from its fp16 weights) because its config.json sets force_upcast: ' +
      "SDXL's VAE overflows in fp16 and would decode to a black picture (an fp16-safe VAE sets force_upcast false)",
  );
  return fp32;
}

/**
 * Opens `vae_encoder/model.onnx`. A diffusers-script export samples its posterior with RandomNormalLike
 * inside the graph; we patch that node into an input so the noise comes from the job's seed.
 */
export async function openVaeEncoder(dir: string, settings: SessionSettings, warnings: string[]): Promise<OnnxModule> {
  const file = join(dir, 'vae_encoder', 'model.onnx');
  const label = 'vae_encoder/model.onnx';
  const plain = await OnnxModule.open(file, label, settings);
  if (!plain.outputs.has('latent_sample') || plain.outputs.has('latent_parameters')) return plain;
  let patch: NoisePatch | null = null;
  try {
    patch = exposePosteriorNoise(readFileSync(file));
  } catch (err) {
    warnings.push(`vae_encoder: could not make its sampling seedable (${(err as Error).message})`);
  }
  if (!patch || patch.mean !== 0 || patch.scale !== 1) return plain;
  const patched = await OnnxModule.open(file, label, settings, patch.bytes);
  await plain.release();
  return patched;
}
