/**
 * Open a Stable Diffusion ONNX model folder (diffusers convert script, Olive, optimum) and detect what it
 * is from session metadata plus any config.json, never by assumption (sd-onnx-reference §1–2, §8).
 * Where neither says (diffusers-script exports have symbolic channel axes and no config.json), a tiny
 * probe run answers the question. Each module has its own detector (text-encoder.ts, unet.ts, vae.ts,
 * controlnet.ts `openFolderControl`); this file checks the layout, opens the sessions and puts the
 * answers together (family, sizes, defaults).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InvalidRequestError, ModelFolderError } from '../../shared/errors.js';
import type { SamplerName } from '../../shared/generation.js';
import {
  DEFAULT_CFG,
  DEFAULT_DISTILLED_CFG,
  DEFAULT_LCM_CFG,
  DEFAULT_LCM_STEPS,
  DEFAULT_SDXL_CFG,
  DEFAULT_SDXL_LIGHTNING_STEPS,
  DEFAULT_SDXL_STEPS,
  DEFAULT_SDXL_TURBO_STEPS,
  DEFAULT_STEPS,
} from '../../shared/generation-limits.js';
import type { ControlInfo, ModelInfo, PredictionType, Precision, SdxlInfo, SdxlVariant, SessionReport } from '../../shared/model.js';
import { ClipTokenizer } from '../tokenizer/clip-tokenizer.js';
import { createScheduler } from '../schedulers/index.js';
import {
  CONTROLNET_SUBFOLDER,
  ControlNet,
  controlNetFile,
  needsControlNetError,
  openFolderControl,
  residualShapesFromUnet,
  zeroResiduals,
} from './controlnet.js';
import { readJson } from './folder-config.js';
import { OnnxModule, type HostTensor, type SessionSettings } from './onnx-module.js';
import {
  addedConditioningProbe,
  detectAddedConditioning,
  detectSdxlTextEncoder,
  hasFirstTextEncoder,
  isSdxlFolder,
  pooledSize,
  REFINER_TIME_IDS,
  SDXL_TEXT_ENCODERS,
  sdxlRequiredFiles,
  sdxlVariant,
  type SdxlTextEncoder,
} from './sdxl.js';
import { detectTextEncoder, type TextEncoderDetection } from './text-encoder.js';
import { detectUnet, unetOutChannels } from './unet.js';
import { detectVaeDecoder, detectVaeEncoder, openVaeDecoder, openVaeEncoder } from './vae.js';
import { EmbeddingVocabulary } from '../prompt/chunker.js';
import { encodePrompt, PROMPT_CACHE_SIZE, skippedEmbeddings, type EncodedPrompt } from '../prompt/conditioning.js';
import { loadEmbeddingFolder, mismatchWarning, modelTextEncoderWidths, type TextualInversion } from '../prompt/embeddings.js';
import { clipSkipState, graphSourceOf, PromptTextEncoder } from '../prompt/text-encoder.js';
import { DEFAULT_EMPHASIS, type EmphasisMode } from '../../shared/generation-limits.js';

// Kept where callers have always imported them from.
export { LABEL_MAP_INPUT, timestepTensor } from './unet.js';

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
  /** The text encoder SD 1.x/2.x pipelines run; for SDXL the first of `sdxlTextEncoders`. */
  textEncoder: OnnxModule;
  /** SDXL's `text_encoder_2` (OpenCLIP bigG with projection); null for SD 1.x/2.x. */
  textEncoder2: OnnxModule | null;
  /**
   * SDXL: each text encoder's tokenizer and detected outputs, in concatenation order (the refiner has
   * encoder 2 only). Pipelines run the sessions in `textEncoder`/`textEncoder2` (a LoRA view replaces those).
   */
  sdxlTextEncoders: SdxlTextEncoder[] | null;
  unet: OnnxModule;
  vaeEncoder: OnnxModule | null;
  vaeDecoder: OnnxModule;
  /** The folder's own `controlnet/model.onnx`, opened when the U-Net takes residuals. */
  controlNet: ControlNet | null;
}

/** A least-recently-used cache's entry, moved to the back as the most recent. */
function lruGet<V>(cache: Map<string, V>, key: string): V | undefined {
  const value = cache.get(key);
  if (value !== undefined) {
    cache.delete(key);
    cache.set(key, value);
  }
  return value;
}

/** Adds an entry to a least-recently-used cache of PROMPT_CACHE_SIZE entries, dropping the oldest past it. */
function lruSet<V>(cache: Map<string, V>, key: string, value: V): void {
  cache.set(key, value);
  if (cache.size > PROMPT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
}

/** Numbers prompt encoders for cache keys (module-wide: a LoRA view must not count from its base's value). */
let nextPromptEncoderId = 0;


/**
 * The embeddings a job may use: those that fit this model's text encoders, and those that do not (A1111's
 * skipped embeddings: not applied, their names read as text, a warning when a prompt names one).
 */
export interface PromptEmbeddingSet {
  /** The usable embeddings as the model's (first) tokenizer finds them; null when there are none. */
  vocabulary: EmbeddingVocabulary<TextualInversion> | null;
  /** The same for another tokenizer of the model (SDXL's tokenizer_2); null when there are none. */
  vocabularyFor(tokenizer: ClipTokenizer): EmbeddingVocabulary<TextualInversion> | null;
  /** The embeddings made for another model family, for the warning; null when there are none. */
  mismatched: EmbeddingVocabulary<TextualInversion> | null;
  /** The model's text encoders' widths, in order (what an embedding must match). */
  widths: readonly number[];
  /** Names and hashes, for the cache key. */
  key: string;
}

/** An opened model folder: its sessions, tokenizer and scheduler config, and what was detected. */
export class LoadedModel {
  /** The folder's own text encoder session (a LoRA view of this model has a patched one in `modules`). */
  private readonly baseTextEncoder: OnnxModule;
  /** Prompt encoders per text-encoder session (the base one, or a LoRA-patched one in a view). */
  private readonly promptEncoders = new WeakMap<OnnxModule, { encoder: PromptTextEncoder; id: number }>();
  /** Encoded prompts by (clip skip, embeddings, text), least recently used first. */
  private readonly promptCache = new Map<string, EncodedPrompt>();
  /** SDXL: each encoder's encoded texts by (its session, emphasis, embeddings, text), least recently used first. */
  private readonly sdxlTextCache = new Map<string, unknown>();
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
    /** The session settings it was opened with (patched sessions, e.g. LoRA, are opened the same way). */
    readonly settings: SessionSettings = { providers: ['cpu'], threads: 0 },
  ) {
    this.baseTextEncoder = modules.textEncoder;
  }

  /**
   * The text encoder as the prompt code uses it, for this model's (or this LoRA view's) text encoder
   * session. Clip skip and embeddings open a rewritten graph on first use: from the folder's file, or for a
   * LoRA-patched session from its patched bytes (built again by lora/sessions.ts, which registers how).
   */
  get promptEncoder(): PromptTextEncoder {
    return this.promptEncoderEntry().encoder;
  }

  private promptEncoderEntry(): { encoder: PromptTextEncoder; id: number } {
    return this.promptEncoderOf(this.modules.textEncoder, this.baseTextEncoder, this.info.textEncoder.batchDynamic);
  }

  private promptEncoderOf(te: OnnxModule, base: OnnxModule, batchDynamic: boolean): { encoder: PromptTextEncoder; id: number } {
    let entry = this.promptEncoders.get(te);
    if (!entry) {
      entry = {
        encoder: new PromptTextEncoder(te, this.settings, batchDynamic, this.info.maxTokens, graphSourceOf(te, te === base)),
        id: nextPromptEncoderId++,
      };
      this.promptEncoders.set(te, entry);
    }
    return entry;
  }

  /** The widths of the model's text encoders, in order: [768] for SD 1.x, [768, 1280] for SDXL, [1280] for its refiner. */
  get textEncoderWidths(): number[] {
    return modelTextEncoderWidths(this.info);
  }

  /**
   * The embeddings found in `dirs` (A1111: a prompt word equal to a file stem uses its vectors). Files made
   * for another model family are kept apart, so that a prompt naming one gets a warning naming the file.
   */
  async embeddingSet(dirs: readonly string[]): Promise<PromptEmbeddingSet> {
    const widths = this.textEncoderWidths;
    const none: PromptEmbeddingSet = { vocabulary: null, vocabularyFor: () => null, mismatched: null, widths, key: '' };
    if (dirs.length === 0) return none;
    const found = await loadEmbeddingFolder(dirs, widths);
    const all = [...found.usable, ...found.mismatched];
    if (all.length === 0) return none;
    const vocabularies = new Map<ClipTokenizer, EmbeddingVocabulary<TextualInversion> | null>();
    const vocabularyFor = (tokenizer: ClipTokenizer): EmbeddingVocabulary<TextualInversion> | null => {
      if (!vocabularies.has(tokenizer)) vocabularies.set(tokenizer, found.usable.length > 0 ? new EmbeddingVocabulary(tokenizer, found.usable) : null);
      return vocabularies.get(tokenizer)!;
    };
    return {
      vocabulary: vocabularyFor(this.tokenizer),
      vocabularyFor,
      mismatched: found.mismatched.length > 0 ? new EmbeddingVocabulary(this.tokenizer, found.mismatched) : null,
      widths,
      key: all.map((e) => `${e.name}:${e.sha256}`).join(','),
    };
  }

  /**
   * A1111's conditioning for one text (prompt/conditioning.ts), cached per (clip skip, embeddings, text).
   * An embedding made for another model family is not applied (its name is read as text, as A1111 does);
   * `skipped` lists it for the job's warning.
   */
  async encodePrompt(text: string, clipSkip: number, embeddings: PromptEmbeddingSet, emphasis: EmphasisMode = DEFAULT_EMPHASIS): Promise<EncodedPrompt> {
    const { encoder, id } = this.promptEncoderEntry();
    const key = `${id}\u0000${clipSkip}\u0000${emphasis}\u0000${embeddings.key}\u0000${text}`;
    const cached = lruGet(this.promptCache, key);
    if (cached) return cached;
    const encoded = await encodePrompt(encoder, this.tokenizer, text, {
      state: clipSkipState(this.info.family === 'sd2' ? 1 : clipSkip),
      emphasis,
      ...(embeddings.vocabulary ? { embeddings: embeddings.vocabulary } : {}),
    });
    const skipped = skippedEmbeddings(text, this.tokenizer, embeddings.mismatched, emphasis);
    const result = skipped.length > 0 ? { ...encoded, skipped: skipped.map((e) => mismatchWarning(e, embeddings.widths)) } : encoded;
    lruSet(this.promptCache, key, result);
    return result;
  }

  /**
   * One SDXL encoder's encoding of a text (pipelines/sdxl-conditioning.ts computes it with `encode`),
   * cached per (that encoder's session in this model or LoRA view, `key`: emphasis, embeddings, text), as
   * `encodePrompt` is: a batch, or Generate pressed again, encodes its prompts once. Callers must not
   * change what it gives.
   */
  async cachedSdxlText<T>(encoder: SdxlTextEncoder, key: string, encode: (promptEncoder: PromptTextEncoder) => Promise<T>): Promise<T> {
    const session = encoder.info.submodel === 'text_encoder_2' ? this.modules.textEncoder2! : this.modules.textEncoder;
    const entry = this.promptEncoderOf(session, encoder.module, encoder.info.batchDynamic);
    const full = `${entry.id}\u0000${key}`;
    const cached = lruGet(this.sdxlTextCache, full);
    if (cached !== undefined) return cached as T;
    const result = await encode(entry.encoder);
    lruSet(this.sdxlTextCache, full, result);
    return result;
  }

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

  /** Releases the prompt encoder (its rewritten session) made for a text-encoder session that goes away (a LoRA patch). */
  async releasePromptEncoder(te: OnnxModule): Promise<void> {
    const entry = this.promptEncoders.get(te);
    this.promptEncoders.delete(te);
    await entry?.encoder.release();
  }

  async release(): Promise<void> {
    for (const te of new Set([this.baseTextEncoder, ...(this.modules.sdxlTextEncoders ?? []).map((e) => e.module)])) {
      await this.promptEncoders.get(te)?.encoder.release();
    }
    const encoders = new Set([this.modules.textEncoder, this.modules.textEncoder2]);
    const all = [...encoders, this.modules.unet, this.modules.vaeEncoder, this.modules.vaeDecoder, this.modules.controlNet];
    const external = await Promise.all([...this.externalControlNets.values()].map((p) => p.catch(() => null)));
    this.externalControlNets.clear();
    await Promise.all([...all, ...external].map((m) => m?.release()));
  }
}

/** Checks the folder's files before any session is created, so the error names the missing piece. */
function checkLayout(dir: string, sdxl: { withFirstEncoder: boolean } | null): void {
  if (sdxl) {
    const missing = sdxlRequiredFiles(sdxl.withFirstEncoder).filter((rel) => !existsSync(join(dir, rel)));
    if (missing.length > 0) {
      throw new ModelFolderError(
        `not a complete SDXL ONNX folder: missing ${missing.join(', ')} (expected the optimum SDXL layout: model_index.json, ` +
          `text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, unet/, vae_decoder/, vae_encoder/, scheduler/; a refiner has no text_encoder/)`,
        missing[0],
      );
    }
    return;
  }
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

export async function openModelFolder(dirIn: string, settings: SessionSettings): Promise<LoadedModel> {
  const dir = resolve(dirIn);
  if (!existsSync(dir)) throw new ModelFolderError(`model folder not found: ${dir}`);
  if (!statSync(dir).isDirectory()) throw new ModelFolderError(`not a folder: ${dir}`);
  const indexIfAny = readJson(dir, 'model_index.json', false);
  const sdxlFolder = isSdxlFolder(dir, indexIfAny) ? { withFirstEncoder: hasFirstTextEncoder(dir, indexIfAny) } : null;
  checkLayout(dir, sdxlFolder);
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
  const tokenizer = await openTokenizer(dir, sdxlFolder && !sdxlFolder.withFirstEncoder ? 'tokenizer_2' : 'tokenizer');

  const opened: OnnxModule[] = [];
  const open = async (sub: string): Promise<OnnxModule> => {
    const m = await OnnxModule.open(join(dir, sub, 'model.onnx'), `${sub}/model.onnx`, settings);
    opened.push(m);
    return m;
  };
  try {
    // SDXL: both encoders (the refiner: encoder 2 only), each with its own tokenizer.
    let sdxlTextEncoders: SdxlTextEncoder[] | null = null;
    if (sdxlFolder) {
      sdxlTextEncoders = [];
      for (const names of sdxlFolder.withFirstEncoder ? SDXL_TEXT_ENCODERS : SDXL_TEXT_ENCODERS.slice(1)) {
        const module = await open(names.submodel);
        const encTokenizer = names.tokenizer === 'tokenizer' || !sdxlFolder.withFirstEncoder ? tokenizer : await openTokenizer(dir, names.tokenizer);
        const config = readJson(dir, `${names.submodel}/config.json`, false);
        sdxlTextEncoders.push({ module, tokenizer: encTokenizer, info: await detectSdxlTextEncoder(module, encTokenizer, config, names) });
      }
    }
    const textEncoder = sdxlTextEncoders ? sdxlTextEncoders[0]!.module : await open('text_encoder');
    const unet = await open('unet');
    const vaeDecoder = await openVaeDecoder(dir, vaeConfig, settings, warnings);
    opened.push(vaeDecoder);
    const vaeEncoder = existsSync(join(dir, 'vae_encoder', 'model.onnx')) ? await openVaeEncoder(dir, settings, warnings) : null;
    if (vaeEncoder) opened.push(vaeEncoder);
    if (!vaeEncoder) warnings.push('no vae_encoder: only text-to-image is possible');
    const { control, controlNet } = await openFolderControl(dir, unet, settings, warnings);
    if (controlNet) opened.push(controlNet.module);
    const textEncoder2 = sdxlTextEncoders?.find((e) => e.info.submodel === 'text_encoder_2')?.module ?? null;
    const modules: ModelSubmodules = { textEncoder, textEncoder2, sdxlTextEncoders, unet, vaeEncoder, vaeDecoder, controlNet };

    const text = sdxlTextEncoders ? sdxlTextInfo(sdxlTextEncoders) : await detectTextEncoder(textEncoder, tokenizer, textConfig);
    let sdxl: SdxlInfo | null = null;
    if (sdxlTextEncoders) {
      const encoder2 = sdxlTextEncoders[sdxlTextEncoders.length - 1]!;
      const pooled = await pooledSize(encoder2, readJson(dir, 'text_encoder_2/config.json', false));
      const { timeIds } = detectAddedConditioning(unet, unetConfig, modelIndex, pooled);
      const refiner = timeIds === REFINER_TIME_IDS || !sdxlFolder!.withFirstEncoder;
      sdxl = {
        variant: sdxlVariant(schedulerConfig, refiner),
        encoders: sdxlTextEncoders.map((e) => e.info),
        pooledSize: pooled,
        timeIds,
        // diffusers' default is true; the refiner's model_index.json says false.
        forceZerosForEmptyPrompt: modelIndex['force_zeros_for_empty_prompt'] !== false,
      };
    }
    const vae = await detectVaeDecoder(vaeDecoder, vaeConfig, unetOutChannels(unet));
    const vaeEncoderInfo = vaeEncoder ? detectVaeEncoder(vaeEncoder, warnings) : null;
    const unetInfo = await detectUnet(unet, {
      dir,
      config: unetConfig,
      latentChannels: vae.latentChannels,
      textHiddenSize: text.hiddenSize,
      control,
      addedConditioning: sdxl ? addedConditioningProbe(sdxl) : null,
      warnings,
    });
    const { kind, labels, fixedH, fixedW } = unetInfo;
    if (kind === 'inpaint' && !vaeEncoder) {
      throw new ModelFolderError('an inpainting U-Net needs vae_encoder/model.onnx', 'vae_encoder/model.onnx');
    }

    // --- what it is -------------------------------------------------------------------------------
    const textHiddenSize = text.hiddenSize;
    const { vaeScaleFactor } = vae;
    const family: ModelInfo['family'] = sdxl
      ? sdxl.variant === 'refiner'
        ? 'sdxl-refiner'
        : 'sdxl'
      : unetInfo.info.timestepCondDim !== null || sampler === 'lcm'
        ? 'lcm'
        : textHiddenSize === 768
          ? 'sd1'
          : textHiddenSize === 1024
            ? 'sd2'
            : 'custom';
    const sizeMultiple = vaeScaleFactor * 2 ** (unetInfo.levels - 1);
    const nativeSide =
      unetInfo.sampleSize !== undefined
        ? unetInfo.sampleSize * vaeScaleFactor
        : family === 'sd2' && predictionType === 'v_prediction'
          ? 768
          : 512;
    const fixedSize = fixedH !== undefined && fixedW !== undefined ? { width: fixedW * vaeScaleFactor, height: fixedH * vaeScaleFactor } : null;
    const floatTypes = [unetInfo.sample.type, vae.info.inputType, text.outputType, vaeEncoderInfo?.inputType].filter(
      (t): t is string => t !== undefined,
    );
    const precision: Precision = floatTypes.every((t) => t === 'float16')
      ? 'fp16'
      : floatTypes.every((t) => t !== 'float16')
        ? 'fp32'
        : 'mixed';
    const exporter: ModelInfo['exporter'] = unetConfig || textConfig || vaeConfig ? 'optimum' : 'diffusers';
    // A layout U-Net always wants a label map, so it draws only from one.
    // A refiner only refines a picture (img2img, or inpaint by latent blending).
    const supports: ModelInfo['supports'] =
      family === 'sdxl-refiner'
        ? vaeEncoder
          ? ['img2img', 'inpaint']
          : []
        : kind === 'layout'
          ? ['layout']
          : kind === 'inpaint' || vaeEncoder
            ? ['txt2img', 'img2img', 'inpaint']
            : ['txt2img'];
    const vaeForceUpcast = vaeConfig?.['force_upcast'] === true;
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
      unetInChannels: unetInfo.inChannels,
      latentChannels: vae.latentChannels,
      vaeScaleFactor,
      vaeScalingFactor: vae.vaeScalingFactor,
      textHiddenSize,
      maxTokens: tokenizer.maxLength,
      padToken: tokenizer.padToken,
      padId: tokenizer.padId,
      scheduler: { className, defaultSampler: sampler },
      textEncoder: text.info,
      unet: unetInfo.info,
      vaeEncoder: vaeEncoderInfo,
      vaeDecoder: vae.info,
      control,
      sdxl,
      vaeForceUpcast,
      supports,
      defaults: { ...familyDefaults(family, sdxl?.variant ?? null), sampler, width: defaultSide, height: defaultSide },
      warnings,
    };
    const sessions: SessionReport = { providers: {}, fallbacks: [] };
    const submodules = {
      ...Object.fromEntries((sdxlTextEncoders ?? []).map((e) => [e.info.submodel, e.module])),
      ...(sdxlTextEncoders ? {} : { text_encoder: textEncoder }),
      unet, vae_encoder: vaeEncoder, vae_decoder: vaeDecoder, controlnet: controlNet?.module ?? null };
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

/** Steps and guidance that suit each family (shared/generation-limits.ts says where each comes from). */
function familyDefaults(family: ModelInfo['family'], variant: SdxlVariant | null): { steps: number; cfg: number } {
  if (family === 'lcm') return { steps: DEFAULT_LCM_STEPS, cfg: DEFAULT_LCM_CFG };
  if (variant === 'turbo') return { steps: DEFAULT_SDXL_TURBO_STEPS, cfg: DEFAULT_DISTILLED_CFG };
  if (variant === 'lightning') return { steps: DEFAULT_SDXL_LIGHTNING_STEPS, cfg: DEFAULT_DISTILLED_CFG };
  if (family === 'sdxl' || family === 'sdxl-refiner') return { steps: DEFAULT_SDXL_STEPS, cfg: DEFAULT_SDXL_CFG };
  return { steps: DEFAULT_STEPS, cfg: DEFAULT_CFG };
}

/** SDXL's text facts for ModelInfo: the first encoder's input, and the concatenated width (768 + 1280). */
function sdxlTextInfo(encoders: SdxlTextEncoder[]): TextEncoderDetection {
  const first = encoders[0]!.info;
  return {
    info: { inputIdsType: first.inputIdsType, batchDynamic: encoders.every((e) => e.info.batchDynamic) },
    outputName: first.hiddenOutput,
    outputType: encoders[0]!.module.outputs.get(first.hiddenOutput)!.type,
    hiddenSize: encoders.reduce((n, e) => n + e.info.hiddenSize, 0),
    maxTokens: encoders[0]!.tokenizer.maxLength,
  };
}

/** The CLIP tokenizer in `sub/` (vocab.json + merges.txt); errors name the folder. */
async function openTokenizer(dir: string, sub: string): Promise<ClipTokenizer> {
  try {
    return await ClipTokenizer.fromFolder(join(dir, sub));
  } catch (err) {
    if (err instanceof ModelFolderError) throw err;
    throw new ModelFolderError((err as Error).message, `${sub}/`, { cause: err });
  }
}
