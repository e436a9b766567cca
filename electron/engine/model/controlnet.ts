/**
 * ControlNet: a second network that reads a control image (a segmentation map, edges, depth…) and
 * returns residuals that a ControlNet-ready U-Net adds to its skip connections and mid block
 * (Zhang et al. 2023; diffusers `ControlNetModel`, `StableDiffusionControlNetPipeline`).
 *
 * There is no single official ONNX exporter, so this reads the common shapes of community exports
 * (e.g. Amblyopius/Stable-Diffusion-ONNX-FP16):
 * - the ControlNet takes `sample`, `timestep`, `encoder_hidden_states`, `controlnet_cond` ([B, 3, H, W]
 *   in [0, 1]: diffusers' control image processor does not normalize to [−1, 1]) and, in some exports,
 *   `conditioning_scale`. Its outputs are N down-block residuals then one mid-block residual; the mid
 *   one is found by name ("mid"), the others keep their declared order.
 * - the U-Net takes them as extra inputs `down_block_{i}` (or `down_block_additional_residual_{i}`)
 *   and `mid_block_additional_residual`, matched by pattern and sorted by index.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidRequestError, ModelFolderError } from '../../shared/errors.js';
import type { ControlInfo } from '../../shared/model.js';
import { OnnxModule, type HostTensor, type IoSpec, type SessionSettings } from './onnx-module.js';

/** `down_block_3`, `down_block_additional_residual_3`, `down_block_additional_residuals_3`, `down_block_res_samples_3`. */
const DOWN_RESIDUAL = /^down_block(?:_additional_residuals?|_res_samples?)?_?(\d+)$/;
/** `mid_block_additional_residual`, `mid_block_res_sample`, `mid_block_residual`. */
const MID_RESIDUAL = /^mid_block(?:_additional_residual|_res_sample|_residual)$/;
export const CONTROLNET_SUBFOLDER = 'controlnet';
const CONTROLNET_INPUTS = ['sample', 'timestep', 'encoder_hidden_states', 'controlnet_cond'] as const;
export const CONDITIONING_SCALE_INPUT = 'conditioning_scale';

/** The U-Net's residual inputs, or null for a plain U-Net. */
export function detectUnetControl(unet: OnnxModule): Pick<ControlInfo, 'downInputs' | 'midInput'> | null {
  const down: Array<{ name: string; index: number }> = [];
  const mids: string[] = [];
  for (const name of unet.inputs.keys()) {
    const m = DOWN_RESIDUAL.exec(name);
    if (m) down.push({ name, index: Number(m[1]) });
    else if (MID_RESIDUAL.test(name)) mids.push(name);
  }
  if (down.length === 0 && mids.length === 0) return null;
  if (mids.length !== 1 || down.length === 0) {
    throw new ModelFolderError(
      `ControlNet residual inputs are incomplete: ${down.length} down-block input(s) and ${mids.length} mid-block input(s) ` +
        `(expected down_block_0…down_block_{N-1} and one mid_block_additional_residual)`,
      unet.label,
    );
  }
  down.sort((a, b) => a.index - b.index);
  down.forEach((d, i) => {
    if (d.index !== i) {
      throw new ModelFolderError(`ControlNet residual inputs skip an index: ${down.map((x) => x.name).join(', ')}`, unet.label);
    }
  });
  return { downInputs: down.map((d) => d.name), midInput: mids[0]! };
}

/**
 * The ControlNet detector for a model folder: the U-Net's residual inputs and the folder's own
 * `controlnet/model.onnx`, opened when the U-Net takes residuals (ignored, with a warning, when not).
 */
export async function openFolderControl(
  dir: string,
  unet: OnnxModule,
  settings: SessionSettings,
  warnings: string[],
): Promise<{ control: ControlInfo | null; controlNet: ControlNet | null }> {
  const unetControl = detectUnetControl(unet);
  const ownControlNet = existsSync(join(dir, CONTROLNET_SUBFOLDER, 'model.onnx'));
  let controlNet: ControlNet | null = null;
  if (unetControl && ownControlNet) {
    const label = `${CONTROLNET_SUBFOLDER}/model.onnx`;
    controlNet = await ControlNet.open(join(dir, label), label, settings, unetControl);
  } else if (ownControlNet) {
    warnings.push(`${CONTROLNET_SUBFOLDER}/ is ignored: the U-Net has no ControlNet residual inputs`);
  }
  const control: ControlInfo | null = unetControl
    ? { ...unetControl, folderControlNet: controlNet !== null, folderControlNetScaleInput: controlNet ? controlNet.scalesInGraph : null }
    : null;
  return { control, controlNet };
}

/** Where a ControlNet lives: `DIR/controlnet/model.onnx`, or `DIR/model.onnx` for a folder that is itself one. */
export function controlNetFile(dir: string): string | null {
  for (const file of [join(dir, CONTROLNET_SUBFOLDER, 'model.onnx'), join(dir, 'model.onnx')]) {
    if (existsSync(file)) return file;
  }
  return null;
}

/** Residuals in the U-Net's input order (down blocks, then mid), each [batch, c, h, w]. */
export type Residuals = HostTensor[];

export class ControlNet {
  private constructor(
    readonly module: OnnxModule,
    /** The down-block outputs in declared order, then the mid-block output. */
    readonly outputOrder: readonly string[],
    readonly scaleInput: IoSpec | null,
    private readonly timestepRank: 0 | 1,
    /** Channels of `sample`: its static dim, else the latent channels (diffusers feeds the 4-channel latents). */
    readonly sampleChannels: number | null,
  ) {}

  /** Opens `file` and checks it against the U-Net it will feed. `label` names the file in errors. */
  static async open(
    file: string,
    label: string,
    settings: SessionSettings,
    unetControl: Pick<ControlInfo, 'downInputs' | 'midInput'>,
  ): Promise<ControlNet> {
    const module = await OnnxModule.open(file, label, settings);
    try {
      for (const name of CONTROLNET_INPUTS) module.requireInput(name);
      const timestep = module.requireInput('timestep');
      if (timestep.shape.length > 1) {
        throw new ModelFolderError(`timestep must be a scalar or [batch], found rank ${timestep.shape.length}`, label);
      }
      const scaleInput = module.input(CONDITIONING_SCALE_INPUT) ?? null;
      if (scaleInput && scaleInput.shape.some((d) => d !== 1)) {
        throw new ModelFolderError(`conditioning_scale must be a scalar or [1], found [${scaleInput.shape.join(', ')}]`, label);
      }
      const names = [...module.outputs.keys()];
      const mids = names.filter((n) => n.toLowerCase().includes('mid'));
      if (mids.length !== 1) {
        throw new ModelFolderError(
          `expected exactly one mid-block output (a name containing "mid"), found ${mids.length} among ${names.join(', ')}`,
          label,
        );
      }
      const down = names.filter((n) => n !== mids[0]);
      if (down.length !== unetControl.downInputs.length) {
        throw new ModelFolderError(
          `wrong shapes: the ControlNet gives ${down.length} down-block residuals but the U-Net takes ${unetControl.downInputs.length}`,
          label,
        );
      }
      const channels = module.requireInput('sample').shape[1];
      return new ControlNet(
        module,
        [...down, mids[0]!],
        scaleInput,
        timestep.shape.length === 0 ? 0 : 1,
        typeof channels === 'number' && channels > 0 ? channels : null,
      );
    } catch (err) {
      await module.release();
      throw err;
    }
  }

  /** True when the graph applies `conditioning_scale` itself; else the host multiplies the residuals. */
  get scalesInGraph(): boolean {
    return this.scaleInput !== null;
  }

  /**
   * One ControlNet call. `sample` [batch, C, h, w] (the scaled latents), `states` [batch, tokens, hidden],
   * `image` [3, H, W] in [0, 1], repeated for every batch item (diffusers duplicates it under CFG).
   * The residuals come back multiplied by `scale` — by the graph when it takes `conditioning_scale`,
   * else here, as the Amblyopius ONNX pipeline does.
   */
  async run(
    sample: HostTensor,
    timestep: number,
    states: HostTensor,
    image: { data: Float32Array; width: number; height: number },
    scale: number,
  ): Promise<Residuals> {
    const batch = sample.dims[0]!;
    const cond = new Float32Array(batch * image.data.length);
    for (let b = 0; b < batch; b++) cond.set(image.data, b * image.data.length);
    const feeds: Record<string, HostTensor> = {
      sample,
      timestep: { data: Float32Array.of(timestep), dims: this.timestepRank === 0 ? [] : [1] },
      encoder_hidden_states: states,
      controlnet_cond: { data: cond, dims: [batch, 3, image.height, image.width] },
    };
    if (this.scaleInput) feeds[CONDITIONING_SCALE_INPUT] = { data: Float32Array.of(scale), dims: this.scaleInput.shape.length === 0 ? [] : [1] };
    const out = await this.module.run(feeds, this.outputOrder);
    return this.outputOrder.map((name) => {
      const t = out[name]!;
      if (this.scalesInGraph) return t;
      const data = t.data as Float32Array;
      for (let i = 0; i < data.length; i++) data[i] = data[i]! * scale;
      return t;
    });
  }

  release(): Promise<void> {
    return this.module.release();
  }
}

/**
 * Zero-residual shapes (without batch) from the U-Net's own description, for a control-ready U-Net run
 * without a ControlNet: its static input dims, else its config.json (diffusers `UNet2DConditionModel`:
 * conv_in, `layers_per_block` per block at that block's width, a stride-2 downsampler after every block
 * but the last, then the mid block at the last width). Null when neither tells.
 */
export function residualShapesFromUnet(
  unet: OnnxModule,
  control: Pick<ControlInfo, 'downInputs' | 'midInput'>,
  unetDir: string,
  latent: { height: number; width: number },
): number[][] | null {
  const names = [...control.downInputs, control.midInput];
  const fromMeta = names.map((n) => unet.requireInput(n).shape.slice(1));
  if (fromMeta.every((s) => s.length === 3 && s.every((d) => typeof d === 'number' && d > 0))) return fromMeta as number[][];

  const configFile = join(unetDir, 'config.json');
  if (!existsSync(configFile)) return null;
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
  const widths = config['block_out_channels'];
  const layers = config['layers_per_block'];
  if (!Array.isArray(widths) || widths.length === 0 || !widths.every((w) => typeof w === 'number')) return null;
  const perBlock = (b: number): number | undefined =>
    typeof layers === 'number' ? layers : Array.isArray(layers) && typeof layers[b] === 'number' ? (layers[b] as number) : undefined;
  let { height: h, width: w } = latent;
  const shapes: number[][] = [[widths[0] as number, h, w]];
  for (let b = 0; b < widths.length; b++) {
    const n = perBlock(b);
    if (n === undefined) return null;
    for (let l = 0; l < n; l++) shapes.push([widths[b] as number, h, w]);
    if (b < widths.length - 1) {
      h = Math.ceil(h / 2);
      w = Math.ceil(w / 2);
      shapes.push([widths[b] as number, h, w]);
    }
  }
  shapes.push([widths[widths.length - 1] as number, h, w]);
  return shapes.length === names.length ? shapes : null;
}

export function zeroResiduals(shapes: readonly number[][], batch: number): Residuals {
  return shapes.map((s) => ({ data: new Float32Array(batch * s.reduce((a, b) => a * b, 1)), dims: [batch, ...s] }));
}

/** The error for a control-ready U-Net that got no control and has no way to size zero residuals. */
export function needsControlNetError(name: string): InvalidRequestError {
  return new InvalidRequestError(
    `${name}'s U-Net takes ControlNet residuals whose shapes it does not declare: this model needs a ControlNet ` +
      `(add controlnet/model.onnx to the folder, or name one in the request's control.model)`,
  );
}
