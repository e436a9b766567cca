/**
 * Open a Stable Diffusion ONNX model folder (diffusers convert script, Olive, optimum) and detect what it
 * is from session metadata plus any config.json, never by assumption (sd-onnx-reference §1–2, §8).
 * Where neither says (diffusers-script exports have symbolic channel axes and no config.json), a tiny
 * probe run answers the question.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InvalidRequestError, ModelFolderError, StudioError } from '../../shared/errors.js';
import type { SamplerName } from '../../shared/generation.js';
import type { ControlInfo, LayoutLabel, ModelInfo, PredictionType, Precision, SessionReport } from '../../shared/model.js';
import { ClipTokenizer } from '../tokenizer/clip-tokenizer.js';
import { createScheduler } from '../schedulers/index.js';
import {
  CONTROLNET_SUBFOLDER,
  ControlNet,
  controlNetFile,
  detectUnetControl,
  needsControlNetError,
  residualShapesFromUnet,
  zeroResiduals,
} from './controlnet.js';
import { LABELS_FILE, readLabels } from './layout-labels.js';
import { exposePosteriorNoise, POSTERIOR_NOISE_INPUT, type NoisePatch } from './onnx-graph.js';
import { OnnxModule, type HostTensor, type SessionSettings } from './onnx-module.js';

/** VAE latent scaling for SD 1.x / 2.x (diffusers `AutoencoderKL` default `scaling_factor`). */
export const SD_VAE_SCALING_FACTOR = 0.18215;
/** SD's VAE downsamples by 2 three times (`2 ** (len(block_out_channels) - 1)` with 4 blocks). */
export const SD_VAE_SCALE_FACTOR = 8;
/** CLIP text encoders in SD take 77 tokens (tokenizer `model_max_length`). */
export const CLIP_MAX_LENGTH = 77;
/** A layout U-Net's extra input: the label map, [batch, K, h, w] (docs: tensor/label-map.ts). */
export const LABEL_MAP_INPUT = 'label_map';

/** diffusers scheduler classes we run natively, and the sampler each maps to. */
const SCHEDULER_CLASSES: Record<string, SamplerName> = {
  PNDMScheduler: 'pndm',
  DDIMScheduler: 'ddim',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler_a',
  DPMSolverMultistepScheduler: 'dpmpp_2m',
  LCMScheduler: 'lcm',
};
/** Real diffusers classes that folders ship but we don't implement: we fall back to Euler and say so. */
const KNOWN_OTHER_SCHEDULERS = new Set([
  'LMSDiscreteScheduler',
  'DDPMScheduler',
  'HeunDiscreteScheduler',
  'KDPM2DiscreteScheduler',
  'KDPM2AncestralDiscreteScheduler',
  'DPMSolverSinglestepScheduler',
  'UniPCMultistepScheduler',
  'DEISMultistepScheduler',
  'EulerDiscreteSchedulerOutput',
]);

export interface ModelSubmodules {
  textEncoder: OnnxModule;
  unet: OnnxModule;
  vaeEncoder: OnnxModule | null;
  vaeDecoder: OnnxModule;
  /** The folder's own `controlnet/model.onnx`, opened when the U-Net takes residuals. */
  controlNet: ControlNet | null;
}

/** An opened model folder: its sessions, tokenizer and scheduler config, and what was detected. */
export class LoadedModel {
  /** ControlNets named by requests (other folders), by resolved file path; released with the model. */
  private readonly externalControlNets = new Map<string, Promise<ControlNet>>();
  /** Zero-residual shapes (without batch) per latent size "h×w", for runs without control. */
  private readonly residualShapes = new Map<string, number[][]>();

  constructor(
    readonly info: ModelInfo,
    readonly modules: ModelSubmodules,
    readonly tokenizer: ClipTokenizer,
    readonly schedulerConfig: Record<string, unknown>,
    readonly sessions: SessionReport,
    private readonly settings: SessionSettings = { providers: ['cpu'], threads: 0 },
  ) {}

  /**
   * The ControlNet for a request: the one in `dir` (a folder with controlnet/model.onnx, or a ControlNet
   * export folder with model.onnx), opened once and cached; without `dir`, the folder's own.
   */
  async controlNetFor(dir: string | undefined): Promise<ControlNet> {
    const control = this.requireControl();
    if (dir === undefined) {
      if (!this.modules.controlNet) {
        throw new InvalidRequestError(
          `${this.info.name} has no ${CONTROLNET_SUBFOLDER}/model.onnx: name a ControlNet folder in the request (control.model)`,
        );
      }
      return this.modules.controlNet;
    }
    const file = controlNetFile(resolve(dir));
    if (!file) {
      throw new InvalidRequestError(`control.model: no ${CONTROLNET_SUBFOLDER}/model.onnx or model.onnx in ${resolve(dir)}`);
    }
    // This folder's own ControlNet, named by path: reuse its session.
    if (this.modules.controlNet && file === this.modules.controlNet.module.file) return this.modules.controlNet;
    let p = this.externalControlNets.get(file);
    if (!p) {
      p = ControlNet.open(file, file, this.settings, control);
      this.externalControlNets.set(file, p);
      p.catch(() => this.externalControlNets.delete(file));
    }
    return p;
  }

  /**
   * Zero residuals for a control-ready U-Net run without control. Their shapes come from the folder's
   * ControlNet (one run on zeros, cached per latent size), else from the U-Net's own description.
   */
  async zeroResiduals(latent: { height: number; width: number }, batch: number): Promise<HostTensor[]> {
    const control = this.requireControl();
    const key = `${latent.height}x${latent.width}`;
    let shapes = this.residualShapes.get(key);
    if (!shapes) {
      const cn = this.modules.controlNet;
      if (cn) {
        const { latentChannels, vaeScaleFactor: f, maxTokens, textHiddenSize } = this.info;
        const c = cn.sampleChannels ?? latentChannels;
        const image = { data: new Float32Array(3 * latent.height * f * latent.width * f), width: latent.width * f, height: latent.height * f };
        const out = await cn.run(
          { data: new Float32Array(c * latent.height * latent.width), dims: [1, c, latent.height, latent.width] },
          1,
          { data: new Float32Array(maxTokens * textHiddenSize), dims: [1, maxTokens, textHiddenSize] },
          image,
          0,
        );
        shapes = out.map((t) => t.dims.slice(1));
      } else {
        shapes = residualShapesFromUnet(this.modules.unet, control, join(this.info.dir, 'unet'), latent) ?? undefined;
        if (!shapes) throw needsControlNetError(this.info.name);
      }
      this.residualShapes.set(key, shapes);
    }
    return zeroResiduals(shapes, batch);
  }

  private requireControl(): ControlInfo {
    if (!this.info.control) throw new InvalidRequestError(`${this.info.name}'s U-Net takes no ControlNet residuals`);
    return this.info.control;
  }

  async release(): Promise<void> {
    const all = [this.modules.textEncoder, this.modules.unet, this.modules.vaeEncoder, this.modules.vaeDecoder, this.modules.controlNet];
    const external = await Promise.all([...this.externalControlNets.values()].map((p) => p.catch(() => null)));
    this.externalControlNets.clear();
    await Promise.all([...all, ...external].map((m) => m?.release()));
  }
}

function readJson(dir: string, rel: string, required: true): Record<string, unknown>;
function readJson(dir: string, rel: string, required: false): Record<string, unknown> | null;
function readJson(dir: string, rel: string, required: boolean): Record<string, unknown> | null {
  const file = join(dir, rel);
  if (!existsSync(file)) {
    if (required) throw new ModelFolderError('file is missing', rel);
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelFolderError(`not valid JSON (${(err as Error).message})`, rel, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ModelFolderError('expected a JSON object', rel);
  }
  return parsed as Record<string, unknown>;
}

function num(config: Record<string, unknown> | null, key: string): number | undefined {
  const v = config?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function staticDim(shape: ReadonlyArray<number | string>, axis: number): number | undefined {
  const d = shape[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

function isFloatType(t: string): boolean {
  return t === 'float32' || t === 'float16' || t === 'float64';
}

/** Checks the folder's files before any session is created, so the error names the missing piece. */
function checkLayout(dir: string): void {
  if (!existsSync(dir)) throw new ModelFolderError(`model folder not found: ${dir}`);
  if (!statSync(dir).isDirectory()) throw new ModelFolderError(`not a folder: ${dir}`);
  const required = [
    'model_index.json',
    'text_encoder/model.onnx',
    'unet/model.onnx',
    'vae_decoder/model.onnx',
    'tokenizer/vocab.json',
    'tokenizer/merges.txt',
    'scheduler/scheduler_config.json',
  ];
  const missing = required.filter((rel) => !existsSync(join(dir, rel)));
  if (missing.length > 0) {
    throw new ModelFolderError(
      `not a Stable Diffusion ONNX folder: missing ${missing.join(', ')} (expected the diffusers ONNX layout: ` +
        `model_index.json, text_encoder/, unet/, vae_decoder/, vae_encoder/, tokenizer/, scheduler/)`,
      missing[0],
    );
  }
}

function schedulerSampler(config: Record<string, unknown>, warnings: string[]): { className: string; sampler: SamplerName } {
  const className = typeof config['_class_name'] === 'string' ? config['_class_name'] : '';
  const mapped = SCHEDULER_CLASSES[className];
  if (mapped) {
    const sampler = mapped === 'dpmpp_2m' && config['use_karras_sigmas'] === true ? 'dpmpp_2m_karras' : mapped;
    return { className, sampler };
  }
  if (KNOWN_OTHER_SCHEDULERS.has(className)) {
    warnings.push(`scheduler ${className} is not implemented; Euler is used by default (pick another sampler freely)`);
    return { className, sampler: 'euler' };
  }
  throw new ModelFolderError(
    `unknown scheduler class "${className || '(none)'}"; supported: ${Object.keys(SCHEDULER_CLASSES).join(', ')}`,
    'scheduler/scheduler_config.json',
  );
}

function predictionTypeOf(config: Record<string, unknown>): PredictionType {
  const p = config['prediction_type'] ?? 'epsilon';
  if (p === 'epsilon' || p === 'v_prediction' || p === 'sample') return p;
  throw new ModelFolderError(`unknown prediction_type "${String(p)}"`, 'scheduler/scheduler_config.json');
}

function zeros(n: number): Float32Array {
  return new Float32Array(n);
}

/** Feeds a timestep the way the session declares it: rank 0 → scalar, rank 1 → [1] (§2.2 summary). */
export function timestepTensor(t: number, rank: 0 | 1): HostTensor {
  return { data: Float32Array.of(t), dims: rank === 0 ? [] : [1] };
}

export async function openModelFolder(dirIn: string, settings: SessionSettings): Promise<LoadedModel> {
  const dir = resolve(dirIn);
  checkLayout(dir);
  const warnings: string[] = [];
  const modelIndex = readJson(dir, 'model_index.json', true);
  const schedulerConfig = readJson(dir, 'scheduler/scheduler_config.json', true);
  const unetConfig = readJson(dir, 'unet/config.json', false);
  const textConfig = readJson(dir, 'text_encoder/config.json', false);
  const vaeConfig = readJson(dir, 'vae_decoder/config.json', false) ?? readJson(dir, 'vae_encoder/config.json', false);

  const { className, sampler } = schedulerSampler(schedulerConfig, warnings);
  const predictionType = predictionTypeOf(schedulerConfig);
  try {
    createScheduler(sampler, schedulerConfig);
  } catch (err) {
    throw new ModelFolderError((err as Error).message, 'scheduler/scheduler_config.json', { cause: err });
  }

  let tokenizer: ClipTokenizer;
  try {
    tokenizer = await ClipTokenizer.fromFolder(join(dir, 'tokenizer'));
  } catch (err) {
    if (err instanceof ModelFolderError) throw err;
    throw new ModelFolderError((err as Error).message, 'tokenizer/', { cause: err });
  }

  const opened: OnnxModule[] = [];
  const open = async (sub: string): Promise<OnnxModule> => {
    const m = await OnnxModule.open(join(dir, sub, 'model.onnx'), `${sub}/model.onnx`, settings);
    opened.push(m);
    return m;
  };
  try {
    const textEncoder = await open('text_encoder');
    const unet = await open('unet');
    const vaeDecoder = await open('vae_decoder');
    const vaeEncoder = existsSync(join(dir, 'vae_encoder', 'model.onnx')) ? await openVaeEncoder(dir, settings, warnings) : null;
    if (vaeEncoder) opened.push(vaeEncoder);
    if (!vaeEncoder) warnings.push('no vae_encoder: only text-to-image is possible');
    // --- ControlNet ---------------------------------------------------------------------------------
    const unetControl = detectUnetControl(unet);
    const ownControlNet = existsSync(join(dir, CONTROLNET_SUBFOLDER, 'model.onnx'));
    let controlNet: ControlNet | null = null;
    if (unetControl && ownControlNet) {
      const label = `${CONTROLNET_SUBFOLDER}/model.onnx`;
      controlNet = await ControlNet.open(join(dir, label), label, settings, unetControl);
      opened.push(controlNet.module);
    } else if (ownControlNet) {
      warnings.push(`${CONTROLNET_SUBFOLDER}/ is ignored: the U-Net has no ControlNet residual inputs`);
    }
    const control: ControlInfo | null = unetControl
      ? { ...unetControl, folderControlNet: controlNet !== null, folderControlNetScaleInput: controlNet ? controlNet.scalesInGraph : null }
      : null;
    const modules: ModelSubmodules = { textEncoder, unet, vaeEncoder, vaeDecoder, controlNet };

    // --- text encoder -------------------------------------------------------------------------------
    const ids = textEncoder.requireInput('input_ids');
    if (ids.type !== 'int32' && ids.type !== 'int64') {
      throw new ModelFolderError(`input_ids must be int32 or int64, found ${ids.type}`, textEncoder.label);
    }
    const textOut = textEncoder.outputName(['last_hidden_state']);
    const textBatchDynamic = staticDim(ids.shape, 0) === undefined;
    const maxTokens = staticDim(ids.shape, 1) ?? tokenizer.maxLength;
    if (maxTokens !== tokenizer.maxLength) {
      throw new ModelFolderError(
        `text_encoder takes ${maxTokens} tokens but tokenizer model_max_length is ${tokenizer.maxLength}`,
        textEncoder.label,
      );
    }
    let textHiddenSize = num(textConfig, 'hidden_size') ?? staticDim(textEncoder.outputs.get(textOut)!.shape, 2);
    if (textHiddenSize === undefined) {
      // Probe: one encode of an empty prompt tells the width.
      const probe = await textEncoder.run(
        { input_ids: { data: Int32Array.from(tokenizer.encode('').ids), dims: [1, tokenizer.maxLength] } },
        [textOut],
      );
      textHiddenSize = probe[textOut]!.dims[2]!;
    }

    // --- U-Net --------------------------------------------------------------------------------------
    if (unet.input('text_embeds') || unet.input('time_ids')) {
      throw new StudioError('E_UNSUPPORTED', 'unet/model.onnx: SDXL models (text_embeds, time_ids) are not supported yet');
    }
    const sample = unet.requireInput('sample');
    const timestep = unet.requireInput('timestep');
    const hidden = unet.requireInput('encoder_hidden_states');
    if (!isFloatType(sample.type)) throw new ModelFolderError(`sample must be a float tensor, found ${sample.type}`, unet.label);
    if (!['float32', 'float16', 'int64', 'int32', 'float64'].includes(timestep.type)) {
      throw new ModelFolderError(`timestep has unsupported type ${timestep.type}`, unet.label);
    }
    if (sample.shape.length !== 4 && sample.shape.length !== 0) {
      throw new ModelFolderError(`sample must be rank 4 [batch, channels, height, width], found rank ${sample.shape.length}`, unet.label);
    }
    const timestepRank: 0 | 1 = timestep.shape.length === 0 ? 0 : 1;
    if (timestep.shape.length > 1) throw new ModelFolderError(`timestep must be a scalar or [batch], found rank ${timestep.shape.length}`, unet.label);
    const cond = unet.input('timestep_cond');
    const timestepCondDim = cond ? (num(unetConfig, 'time_cond_proj_dim') ?? staticDim(cond.shape, 1) ?? null) : null;
    if (cond && timestepCondDim === null) throw new ModelFolderError('timestep_cond has no static width and no config.json says time_cond_proj_dim', unet.label);
    const crossDim = num(unetConfig, 'cross_attention_dim') ?? staticDim(hidden.shape, 2);
    if (crossDim !== undefined && crossDim !== textHiddenSize) {
      throw new ModelFolderError(
        `wrong shapes: the U-Net expects encoder_hidden_states of width ${crossDim} but the text encoder gives ${textHiddenSize}`,
        unet.label,
      );
    }
    const unetBatchDynamic = staticDim(sample.shape, 0) === undefined;
    const fixedH = staticDim(sample.shape, 2);
    const fixedW = staticDim(sample.shape, 3);

    // --- layout (semantic synthesis): a `label_map` input [batch, K, h, w] and labels.json -----------
    const labelMapInput = unet.input(LABEL_MAP_INPUT);
    let labels: LayoutLabel[] | null = null;
    if (labelMapInput) {
      if (!isFloatType(labelMapInput.type)) throw new ModelFolderError(`${LABEL_MAP_INPUT} must be a float tensor, found ${labelMapInput.type}`, unet.label);
      if (labelMapInput.shape.length !== 4) {
        throw new ModelFolderError(`${LABEL_MAP_INPUT} must be rank 4 [batch, labels, height, width], found rank ${labelMapInput.shape.length}`, unet.label);
      }
      labels = readLabels(dir);
      // K from the graph, else from config.json (the inner U-Net's in_channels minus the sample's channels).
      const configIn = num(unetConfig, 'in_channels');
      const sampleChannels = staticDim(sample.shape, 1);
      const channels =
        staticDim(labelMapInput.shape, 1) ?? (configIn !== undefined && sampleChannels !== undefined ? configIn - sampleChannels : undefined);
      if (channels !== undefined && channels !== labels.length) {
        throw new ModelFolderError(
          `${labels.length} labels, but the U-Net's ${LABEL_MAP_INPUT} input takes ${channels} channels: the labels must match the model`,
          LABELS_FILE,
        );
      }
    } else if (existsSync(join(dir, LABELS_FILE))) {
      warnings.push(`${LABELS_FILE} is ignored: the U-Net has no ${LABEL_MAP_INPUT} input`);
    }

    // --- VAE ----------------------------------------------------------------------------------------
    const decIn = vaeDecoder.requireInput('latent_sample');
    const decOut = vaeDecoder.outputName(['sample']);
    const vaeScalingFactor = num(vaeConfig, 'scaling_factor') ?? SD_VAE_SCALING_FACTOR;
    let latentChannels =
      num(vaeConfig, 'latent_channels') ?? staticDim(decIn.shape, 1) ?? staticDim(unet.outputs.get(unet.outputName(['out_sample']))!.shape, 1);
    const blocks = vaeConfig?.['block_out_channels'];
    let vaeScaleFactor = Array.isArray(blocks) && blocks.length > 0 ? 2 ** (blocks.length - 1) : undefined;
    if (latentChannels === undefined || vaeScaleFactor === undefined) {
      // Probe the decoder with a small latent: it tells both the channel count (by accepting it) and the
      // upscale factor (by its output size).
      const c = latentChannels ?? 4;
      const side = 8;
      const out = await vaeDecoder.run({ latent_sample: { data: zeros(c * side * side), dims: [1, c, side, side] } }, [decOut]).catch(
        (err: unknown) => {
          throw new ModelFolderError(
            `could not detect the latent channels (tried ${c}): ${(err as Error).message}`,
            vaeDecoder.label,
          );
        },
      );
      latentChannels = c;
      vaeScaleFactor = vaeScaleFactor ?? out[decOut]!.dims[2]! / side;
    }
    let vaeEncoderInfo: ModelInfo['vaeEncoder'] = null;
    if (vaeEncoder) {
      const encIn = vaeEncoder.requireInput('sample');
      const output = vaeEncoder.outputs.has('latent_parameters')
        ? 'latent_parameters'
        : vaeEncoder.outputs.has('latent_sample')
          ? 'latent_sample'
          : null;
      if (!output) {
        throw new ModelFolderError(
          `expected an output "latent_sample" or "latent_parameters", found ${[...vaeEncoder.outputs.keys()].join(', ')}`,
          vaeEncoder.label,
        );
      }
      const posteriorNoise = vaeEncoder.input(POSTERIOR_NOISE_INPUT) ? 'seeded' : output === 'latent_parameters' ? 'seeded' : 'in-graph';
      if (posteriorNoise === 'in-graph') {
        warnings.push('vae_encoder samples its posterior inside the graph: img2img and inpaint results vary run to run');
      }
      vaeEncoderInfo = { output, inputType: encIn.type, posteriorNoise };
    }

    // In-channels (of `sample`): config, else a static channel dim, else probe (diffusers-script exports:
    // symbolic). A layout U-Net's config.json is its inner U-Net's, whose conv_in also takes the K label
    // channels that the graph concatenates to `sample`.
    const configInChannels = num(unetConfig, 'in_channels');
    let unetInChannels = labels
      ? (staticDim(sample.shape, 1) ?? (configInChannels !== undefined ? configInChannels - labels.length : undefined))
      : (configInChannels ?? staticDim(sample.shape, 1));
    if (unetInChannels === undefined) {
      const residuals = unetControl ? residualShapesFromUnet(unet, unetControl, join(dir, 'unet'), { height: fixedH ?? 8, width: fixedW ?? 8 }) : null;
      const extraFeeds: Record<string, HostTensor> = {};
      if (unetControl && residuals) {
        zeroResiduals(residuals, 1).forEach((t, i) => (extraFeeds[[...unetControl.downInputs, unetControl.midInput][i]!] = t));
      }
      if (labels) {
        const [h, w] = [fixedH ?? 8, fixedW ?? 8];
        extraFeeds[LABEL_MAP_INPUT] = { data: zeros(labels.length * h * w), dims: [1, labels.length, h, w] };
      }
      unetInChannels = await probeUnetChannels(unet, latentChannels, textHiddenSize, timestepRank, timestepCondDim, fixedH, fixedW, extraFeeds);
    }
    const maskedChannels = 2 * latentChannels + 1;
    let kind: ModelInfo['kind'];
    if (labels) {
      if (unetInChannels !== latentChannels) {
        throw new ModelFolderError(
          `wrong shapes: a layout U-Net's sample takes the ${latentChannels} latent channels (the label map is its own input), found ${unetInChannels}`,
          unet.label,
        );
      }
      kind = 'layout';
    } else if (unetInChannels === latentChannels) kind = 'txt2img';
    else if (unetInChannels === maskedChannels) kind = 'inpaint';
    else {
      throw new ModelFolderError(
        `wrong shapes: the U-Net takes ${unetInChannels} input channels; expected ${latentChannels} (text-to-image) or ${maskedChannels} (inpainting)`,
        unet.label,
      );
    }
    if (kind === 'inpaint' && !vaeEncoder) {
      throw new ModelFolderError('an inpainting U-Net needs vae_encoder/model.onnx', 'vae_encoder/model.onnx');
    }

    // --- what it is -------------------------------------------------------------------------------
    const family: ModelInfo['family'] =
      timestepCondDim !== null || sampler === 'lcm' ? 'lcm' : textHiddenSize === 768 ? 'sd1' : textHiddenSize === 1024 ? 'sd2' : 'custom';
    const unetLevels = Array.isArray(unetConfig?.['block_out_channels']) ? (unetConfig['block_out_channels'] as unknown[]).length : 4;
    const sizeMultiple = vaeScaleFactor * 2 ** (unetLevels - 1);
    const sampleSize = num(unetConfig, 'sample_size') ?? fixedH;
    const nativeSide =
      sampleSize !== undefined
        ? sampleSize * vaeScaleFactor
        : family === 'sd2' && predictionType === 'v_prediction'
          ? 768
          : 512;
    const fixedSize = fixedH !== undefined && fixedW !== undefined ? { width: fixedW * vaeScaleFactor, height: fixedH * vaeScaleFactor } : null;
    const floatTypes = [sample.type, decIn.type, textEncoder.outputs.get(textOut)!.type, vaeEncoderInfo?.inputType].filter(
      (t): t is string => t !== undefined,
    );
    const precision: Precision = floatTypes.every((t) => t === 'float16')
      ? 'fp16'
      : floatTypes.every((t) => t !== 'float16')
        ? 'fp32'
        : 'mixed';
    const externalData = ['weights.pb', 'model.onnx_data'].find((f) => existsSync(join(dir, 'unet', f))) ?? null;
    const exporter: ModelInfo['exporter'] = unetConfig || textConfig || vaeConfig ? 'optimum' : 'diffusers';
    // A layout U-Net always wants a label map, so it draws only from one.
    const supports: ModelInfo['supports'] =
      kind === 'layout' ? ['layout'] : kind === 'inpaint' || vaeEncoder ? ['txt2img', 'img2img', 'inpaint'] : ['txt2img'];
    const defaultSide = fixedSize ? fixedSize.width : nativeSide;
    const info: ModelInfo = {
      dir,
      name: typeof modelIndex['_name_or_path'] === 'string' ? basename(modelIndex['_name_or_path']) : basename(dir),
      exporter,
      kind,
      layout: labels ? { labels } : null,
      family,
      predictionType,
      precision,
      nativeResolution: { width: nativeSide, height: nativeSide },
      sizeMultiple,
      fixedSize,
      unetInChannels,
      latentChannels,
      vaeScaleFactor,
      vaeScalingFactor,
      textHiddenSize,
      maxTokens: tokenizer.maxLength,
      padToken: tokenizer.padToken,
      padId: tokenizer.padId,
      scheduler: { className, defaultSampler: sampler },
      textEncoder: { inputIdsType: ids.type, batchDynamic: textBatchDynamic },
      unet: {
        sampleType: sample.type,
        timestepType: timestep.type,
        timestepRank,
        batchDynamic: unetBatchDynamic,
        timestepCondDim,
        externalData,
      },
      vaeEncoder: vaeEncoderInfo,
      vaeDecoder: { inputType: decIn.type },
      control,
      supports,
      defaults:
        family === 'lcm'
          ? { steps: 4, cfg: 8, sampler, width: defaultSide, height: defaultSide }
          : { steps: 20, cfg: 7.5, sampler, width: defaultSide, height: defaultSide },
      warnings,
    };
    const sessions: SessionReport = { providers: {}, fallbacks: [] };
    const submodules = { text_encoder: textEncoder, unet, vae_encoder: vaeEncoder, vae_decoder: vaeDecoder, controlnet: controlNet?.module ?? null };
    for (const [sub, m] of Object.entries(submodules)) {
      if (!m) continue;
      sessions.providers[sub] = m.provider;
      for (const f of m.fallbacks) sessions.fallbacks.push({ submodel: sub, ...f });
    }
    return new LoadedModel(info, modules, tokenizer, schedulerConfig, sessions, settings);
  } catch (err) {
    await Promise.all(opened.map((m) => m.release().catch(() => undefined)));
    throw err;
  }
}

/**
 * The VAE encoder. A diffusers-script export samples its posterior with RandomNormalLike inside the
 * graph; we patch that node into an input so the noise comes from the job's seed (onnx-graph.ts).
 */
async function openVaeEncoder(dir: string, settings: SessionSettings, warnings: string[]): Promise<OnnxModule> {
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

/** Runs the U-Net once on a tiny input with each plausible channel count; the one it accepts is the answer. */
async function probeUnetChannels(
  unet: OnnxModule,
  latentChannels: number,
  hiddenSize: number,
  timestepRank: 0 | 1,
  timestepCondDim: number | null,
  fixedH: number | undefined,
  fixedW: number | undefined,
  extraFeeds: Record<string, HostTensor>,
): Promise<number> {
  const h = fixedH ?? 8;
  const w = fixedW ?? 8;
  const out = unet.outputName(['out_sample']);
  const errors: string[] = [];
  for (const c of [latentChannels, 2 * latentChannels + 1]) {
    const feeds: Record<string, HostTensor> = {
      sample: { data: zeros(c * h * w), dims: [1, c, h, w] },
      timestep: timestepTensor(1, timestepRank),
      encoder_hidden_states: { data: zeros(CLIP_MAX_LENGTH * hiddenSize), dims: [1, CLIP_MAX_LENGTH, hiddenSize] },
      ...extraFeeds,
    };
    if (timestepCondDim !== null) feeds['timestep_cond'] = { data: zeros(timestepCondDim), dims: [1, timestepCondDim] };
    try {
      await unet.run(feeds, [out]);
      return c;
    } catch (err) {
      errors.push(`${c}: ${(err as Error).message}`);
    }
  }
  throw new ModelFolderError(`could not detect the U-Net's input channels (${errors.join(' | ')})`, unet.label);
}
