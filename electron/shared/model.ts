/** What the engine detected about a model folder. Serializable: printed by `studio info` and sent over IPC. */
import type { ExecutionProviderName, GenerationMode, SamplerName } from './generation.js';

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
/** 'layout': a text-to-image U-Net that also takes a label map (semantic synthesis, see LayoutInfo). */
export type ModelKind = 'txt2img' | 'inpaint' | 'layout';
/** 'sdxl': an SDXL base (also inpainting, Turbo, Lightning); 'sdxl-refiner': the refiner, which only refines a picture. */
export type ModelFamily = 'sd1' | 'sd2' | 'lcm' | 'sdxl' | 'sdxl-refiner' | 'custom';
export type Precision = 'fp32' | 'fp16' | 'mixed';

export interface ModelInfo {
  dir: string;
  name: string;
  /** Which exporter's folder layout: diffusers' convert script / Olive, or optimum (config.json per submodel). */
  exporter: 'diffusers' | 'optimum';
  kind: ModelKind;
  /** A layout model's labels (from its labels.json); null for every other kind. */
  layout: LayoutInfo | null;
  family: ModelFamily;
  predictionType: PredictionType;
  precision: Precision;
  /** The size the model was trained at. */
  nativeResolution: { width: number; height: number };
  /** Width and height must be multiples of this. */
  sizeMultiple: number;
  /** Set when the U-Net has static spatial dims: then this is the only size it accepts. */
  fixedSize: { width: number; height: number } | null;
  /** Channels of the U-Net's `sample` input: the latent channels, or 2·latent + 1 (9) for inpainting; a layout U-Net's label map is its own input. */
  unetInChannels: number;
  latentChannels: number;
  vaeScaleFactor: number;
  vaeScalingFactor: number;
  textHiddenSize: number;
  maxTokens: number;
  padToken: string;
  padId: number;
  scheduler: { className: string; defaultSampler: SamplerName };
  textEncoder: { inputIdsType: 'int32' | 'int64'; batchDynamic: boolean };
  unet: {
    sampleType: string;
    timestepType: string;
    timestepRank: 0 | 1;
    batchDynamic: boolean;
    timestepCondDim: number | null;
    externalData: string | null;
    /**
     * The static sequence length of `encoder_hidden_states` (77 for a U-Net exported with a fixed axis),
     * or null when it is dynamic: only a dynamic axis takes long prompts (77 tokens per chunk).
     */
    sequenceLength: number | null;
  };
  vaeEncoder: {
    output: 'latent_sample' | 'latent_parameters';
    inputType: string;
    /** 'seeded': the posterior noise comes from the job's seed; 'in-graph': the graph draws it (not reproducible). */
    posteriorNoise: 'seeded' | 'in-graph';
  } | null;
  vaeDecoder: { inputType: string };
  /**
   * Set when the U-Net was exported to take ControlNet residuals (extra inputs); null for a plain U-Net.
   * Such a U-Net runs with zero residuals when a request carries no control.
   */
  control: ControlInfo | null;
  /** What makes an SDXL folder an SDXL folder (its text encoders and added conditioning); null for SD 1.x/2.x. */
  sdxl: SdxlInfo | null;
  /**
   * The VAE config's `force_upcast` (SDXL's stock VAE overflows in fp16): with an fp16 decoder the engine
   * decodes in fp32 and records why in `warnings`.
   */
  vaeForceUpcast: boolean;
  supports: GenerationMode[];
  defaults: { steps: number; cfg: number; sampler: SamplerName; width: number; height: number };
  warnings: string[];
}

/** One text encoder of an SDXL folder, in the order its hidden states are concatenated. */
export interface SdxlTextEncoderInfo {
  /** `text_encoder` (CLIP ViT-L) or `text_encoder_2` (OpenCLIP bigG with projection). */
  submodel: 'text_encoder' | 'text_encoder_2';
  /** Its tokenizer folder: `tokenizer` or `tokenizer_2`. */
  tokenizer: 'tokenizer' | 'tokenizer_2';
  inputIdsType: 'int32' | 'int64';
  batchDynamic: boolean;
  /** The penultimate hidden state (diffusers `hidden_states[-2]`), e.g. `hidden_states.11` for CLIP-L. */
  hiddenOutput: string;
  hiddenSize: number;
  /** `text_embeds`, the pooled projected embedding, on the encoder that gives it (encoder 2); else null. */
  pooledOutput: string | null;
}

/** SDXL's few-step variants, told by their scheduler config (trailing timestep spacing). */
export type SdxlVariant = 'base' | 'turbo' | 'lightning' | 'refiner';

export interface SdxlInfo {
  variant: SdxlVariant;
  encoders: SdxlTextEncoderInfo[];
  /** Width of `text_embeds` (the pooled embedding of encoder 2; 1280 for bigG). */
  pooledSize: number;
  /** Length of `time_ids`: 6 = (original size, crop top-left, target size); 5 = the refiner's (…, aesthetic score). */
  timeIds: 5 | 6;
  /** model_index.json: zeros for the negative's hidden states and pooled embedding when the negative prompt is empty. */
  forceZerosForEmptyPrompt: boolean;
}

/**
 * One label of a layout model (labels.json at the folder's root). A label map is an RGB PNG at the
 * picture's size painted in these colours; ids run 0..K-1 in order and colours are distinct.
 */
export interface LayoutLabel {
  id: number;
  name: string;
  color: [number, number, number];
}

export interface LayoutInfo {
  /** K labels, in id order; the U-Net's `label_map` input has K channels. */
  labels: LayoutLabel[];
}

export interface ControlInfo {
  /** The U-Net's down-block residual inputs, in block order (`down_block_0`…, `down_block_additional_residual_0`…). */
  downInputs: string[];
  /** The U-Net's mid-block residual input (`mid_block_additional_residual`). */
  midInput: string;
  /** The folder has its own `controlnet/model.onnx`, used when a request names no other ControlNet. */
  folderControlNet: boolean;
  /** The folder's ControlNet takes `conditioning_scale` (else the host scales its residuals). Null without one. */
  folderControlNetScaleInput: boolean | null;
}

export interface SessionReport {
  /** The provider each submodel actually runs on. */
  providers: Record<string, ExecutionProviderName>;
  /** Providers that were tried first and failed, with the reason. */
  fallbacks: Array<{ submodel: string; provider: ExecutionProviderName; error: string }>;
}
