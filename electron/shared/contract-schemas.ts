/**
 * Runtime schemas for every request of the IPC contract (electron/shared/contract.ts): one zod schema
 * per channel. The host parses each payload with `parseRequest` before any handler runs, so a handler
 * only ever sees a well-typed request. Every object is strict: an unknown key is an error, not ignored.
 *
 * Encoding on the wire: images cross the contract as base64 strings of the encoded file bytes (PNG,
 * JPEG or WebP in; PNG or WebP out), because JSON over WebSocket carries no bytes and Electron's
 * structured clone would otherwise be the only door with a different shape. File paths must be
 * absolute, normalized (no `..` segment) and free of NUL bytes.
 */
import { z } from 'zod';
import { InvalidRequestError } from './errors.js';
import { GENERATION_MODES, INPAINT_AREAS, SAMPLERS } from './generation.js';
import type { ExecutionProviderName } from './generation.js';
import {
  MAX_AESTHETIC_SCORE,
  MAX_CFG,
  MAX_CLIP_SKIP,
  EMPHASIS_MODES,
  MAX_CONTROL_SCALE,
  MAX_HIRES_SCALE,
  MAX_MASK_BLUR,
  MAX_MASK_PADDING,
  MAX_PROMPT_CHARS,
  MAX_REGION_WEIGHT,
  MAX_REGIONS,
  MAX_SEED,
  MAX_SIDE,
  MAX_STEPS,
  MAX_STRENGTH,
  MIN_REGION_WEIGHT,
  MIN_AESTHETIC_SCORE,
  MIN_CFG,
  MIN_HIRES_SCALE,
  MIN_SIDE,
  MIN_STEPS,
  MIN_STRENGTH,
  SIDE_MULTIPLE,
} from './generation-limits.js';
import { HISTORY_PAGE_MAX } from './history.js';
import { MAX_MAX_INPUT_PIXELS, MAX_SIZE_FACTOR_LIMIT, MAX_UNDO_MEMORY_MB, MIN_MAX_INPUT_PIXELS, MIN_UNDO_MEMORY_MB } from './resource-limits.js';

// A generation request's limits live in generation-limits.ts (the engine and the renderer read them too);
// they are re-exported here beside the contract's other limits.
export {
  MAX_CFG,
  MAX_CONTROL_SCALE,
  MAX_MASK_BLUR,
  MAX_MASK_PADDING,
  MAX_PROMPT_CHARS,
  MAX_SEED,
  MAX_SIDE,
  MAX_STEPS,
  MIN_SIDE,
} from './generation-limits.js';
/** Longest file path we accept: PATH_MAX on Linux. */
export const MAX_PATH_CHARS = 4096;
/** Base64 of one input image: 64 MiB of text ≈ 48 MiB of file, more than a 4096² PNG needs. */
export const MAX_IMAGE_BASE64_CHARS = 64 * 1024 * 1024;
/** The largest coordinate or side of a live frame's raw mask rectangle (the picture is checked in the engine). */
export const MAX_MASK_RECT_COORD = 65_536;
/** Most ids one request may name (bulk favourite, delete, export, reorder). */
export const MAX_IDS_PER_REQUEST = 10_000;
export const MAX_IMPORT_PATHS = 1000;
export const MAX_SEARCH_CHARS = 1000;
export const MAX_TAGS = 64;
export const MAX_TAG_CHARS = 64;
/** CPU intra-op threads: 0 lets onnxruntime decide. */
export const MAX_THREADS = 256;
/** A model's display name: the model id's bound (the library derives ids from names). */
export const MAX_MODEL_NAME_CHARS = 128;
/** Files in one download manifest or URL list (an SD ONNX folder has about 20). */
export const MAX_DOWNLOAD_FILES = 1000;
/** Longest URL we accept: browsers' practical limit. */
export const MAX_URL_CHARS = 8192;
/** Longest relative file path inside a model folder in a manifest. */
export const MAX_RELATIVE_PATH_CHARS = 1024;

export const EXECUTION_PROVIDERS = ['webgpu', 'cuda', 'dml', 'coreml', 'cpu'] as const satisfies readonly ExecutionProviderName[];

/** Marks a string schema as a file path so the contract fuzz test knows to try traversal there. */
export const FILE_PATH_META = { kind: 'file-path' } as const;

// ── field schemas ─────────────────────────────────────────────────────────────────────────────────

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** A model id is its registry key (usually the folder name): never joined onto a path. */
const MODEL_ID = /^[\p{L}\p{N}_][\p{L}\p{N}._ -]{0,127}$/u;
/** POSIX absolute (`/x`), Windows drive (`C:\x`, `C:/x`) or UNC (`\\server\share`). */
const ABSOLUTE_PATH = /^(\/|[A-Za-z]:[\\/]|\\\\)/;

export const historyIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const jobIdSchema = z.uuid();
export const imageHashSchema = z.string().regex(SHA256_HEX, 'must be a sha256 hex digest (64 lowercase hex digits)');
export const modelIdSchema = z.string().regex(MODEL_ID, 'must be a model id (letters, digits, ". _ -", at most 128)');
/** A download's id: the sha256 of its request (electron/model-library/download-request.ts). */
export const downloadIdSchema = z.string().regex(SHA256_HEX, 'must be a download id (64 lowercase hex digits)');
/** Only http and https are fetched; file:, data: and the rest are refused before the library sees them. */
export const httpUrlSchema = z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).max(MAX_URL_CHARS);
const modelNameSchema = z.string().trim().min(1, 'must not be empty').max(MAX_MODEL_NAME_CHARS);
/**
 * A file inside a model folder: relative, with "/", no empty, ".", ".." or hidden parts (the library
 * checks again), and none of the characters Windows refuses in a file name.
 */
const RELATIVE_MODEL_PATH = /^(?!\.)[^/\\<>:"|?*\u0000-\u001f]+(\/(?!\.)[^/\\<>:"|?*\u0000-\u001f]+)*$/;
const relativeModelPathSchema = z
  .string()
  .max(MAX_RELATIVE_PATH_CHARS)
  .regex(RELATIVE_MODEL_PATH, 'must be a relative path inside the model folder ("/" separators, no "..", no hidden names)');
export const base64ImageSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_IMAGE_BASE64_CHARS, `must be at most ${MAX_IMAGE_BASE64_CHARS} base64 characters`)
  .regex(BASE64, 'must be base64 (the encoded PNG, JPEG or WebP bytes)');

/** The first 24 bytes of a PNG: signature (8), IHDR length (4) and type (4), width (4), height (4) (PNG spec §5.2, §11.2.2). */
const PNG_HEADER_BYTES = 24;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * A PNG's width and height from the start of its base64 (the IHDR chunk comes first), or null when the
 * bytes are not a PNG. Reads 32 base64 characters, so a request's size can be checked without decoding.
 */
export function pngSizeFromBase64(base64: string): { width: number; height: number } | null {
  const bytes = decodeBase64Prefix(base64, PNG_HEADER_BYTES);
  if (!bytes || PNG_SIGNATURE.some((b, i) => bytes[i] !== b) || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
  const u32 = (at: number): number => ((bytes[at]! << 24) >>> 0) + (bytes[at + 1]! << 16) + (bytes[at + 2]! << 8) + bytes[at + 3]!;
  return { width: u32(16), height: u32(20) };
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The first `count` bytes (a multiple of 3) of a base64 string, or null when it is shorter or not base64
 * there. Plain TS rather than `atob`, which shared/ can't name: it compiles without Node's or the DOM's types.
 */
function decodeBase64Prefix(base64: string, count: number): Uint8Array | null {
  const chars = (count / 3) * 4;
  if (base64.length < chars) return null;
  const out = new Uint8Array(count);
  for (let i = 0, o = 0; i < chars; i += 4, o += 3) {
    const quad = [0, 1, 2, 3].map((k) => BASE64_ALPHABET.indexOf(base64[i + k]!));
    if (quad.some((v) => v < 0)) return null;
    const n = (quad[0]! << 18) | (quad[1]! << 12) | (quad[2]! << 6) | quad[3]!;
    out[o] = n >> 16;
    out[o + 1] = (n >> 8) & 0xff;
    out[o + 2] = n & 0xff;
  }
  return out;
}

/** Why a path is unsafe, or null when it is fine. Pure string checks: shared/ has no node:path. */
export function filePathProblem(path: string): string | null {
  if (path.includes('\0')) return 'must not contain NUL bytes';
  if (!ABSOLUTE_PATH.test(path)) return 'must be an absolute path';
  const segments = path.split(/[\\/]+/);
  if (segments.includes('..')) return 'must not contain ".." segments (path traversal)';
  return null;
}

export const filePathSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_PATH_CHARS, `must be at most ${MAX_PATH_CHARS} characters`)
  .superRefine((path, ctx) => {
    const problem = filePathProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta(FILE_PATH_META);

const idListSchema = z.array(historyIdSchema).min(1).max(MAX_IDS_PER_REQUEST);
const emptySchema = z.strictObject({});

// ── generation ────────────────────────────────────────────────────────────────────────────────────

const side = z.number().int().min(MIN_SIDE).max(MAX_SIDE).multipleOf(SIDE_MULTIPLE);

/** A LoRA patches the whole U-Net, so its tag has no place in a region's prompt (A1111's extra-network syntax). */
const LORA_TAG = /<(?:lora|lyco):([^:>]+)/i;

/** How the prompt is encoded (A1111's settings): the same for a queued generation and a live frame. */
const promptOptions = {
  /** A1111's "Clip skip": the text encoder's hidden state N − 1 layers before the last (1 = the last). */
  clipSkip: z.number().int().min(1).max(MAX_CLIP_SKIP).optional(),
  /** A1111's "Emphasis": how (word:1.2) weights the text encoder's output (default Original). */
  emphasis: z.enum(EMPHASIS_MODES).optional(),
  /** A1111's "Pad conds": pad the shorter of prompt and negative with empty chunks so they run as one batch. */
  padConds: z.boolean().optional(),
};

/**
 * One regional prompt: a prompt, a mask (base64 of a PNG at the picture's size; white = the region, grey
 * = partly) and a weight (1 = the region's prompt alone inside its mask).
 */
export const regionRequestSchema = z.strictObject({
  prompt: z
    .string()
    .max(MAX_PROMPT_CHARS)
    .refine((p) => p.trim() !== '', 'a region needs a prompt')
    .superRefine((p, ctx) => {
      const tag = LORA_TAG.exec(p);
      if (tag) ctx.addIssue({ code: 'custom', message: `<lora:${tag[1]}:…> can only go in the main prompt: a LoRA changes the whole model` });
    }),
  mask: base64ImageSchema,
  weight: z.number().min(MIN_REGION_WEIGHT).max(MAX_REGION_WEIGHT).optional(),
});

export const generateRequestSchema = z
  .strictObject({
    mode: z.enum(GENERATION_MODES),
    prompt: z.string().max(MAX_PROMPT_CHARS),
    negativePrompt: z.string().max(MAX_PROMPT_CHARS).optional(),
    /** Absent: the host draws a random seed (and records it). */
    seed: z.number().int().min(0).max(MAX_SEED).optional(),
    steps: z.number().int().min(MIN_STEPS).max(MAX_STEPS).optional(),
    cfg: z.number().min(MIN_CFG).max(MAX_CFG).optional(),
    sampler: z.enum(SAMPLERS).optional(),
    width: side.optional(),
    height: side.optional(),
    strength: z.number().min(MIN_STRENGTH).max(MAX_STRENGTH).optional(),
    maskBlur: z.number().min(0).max(MAX_MASK_BLUR).optional(),
    /** inpaint: soft inpainting (differential diffusion): the mask's grey levels say how much each pixel may change. */
    softInpaint: z.boolean().optional(),
    /** SDXL refiner: the aesthetic scores its time ids end with (prompt, negative; defaults 6 and 2.5). */
    aestheticScore: z.number().min(MIN_AESTHETIC_SCORE).max(MAX_AESTHETIC_SCORE).optional(),
    negativeAestheticScore: z.number().min(MIN_AESTHETIC_SCORE).max(MAX_AESTHETIC_SCORE).optional(),
    /** img2img / inpaint: the input image, base64 of its file bytes… */
    initImage: base64ImageSchema.optional(),
    /** …or an image already in history (for example the parent's output in an inpaint chain). */
    initImageHash: imageHashSchema.optional(),
    /** inpaint: the mask, base64 of its file bytes; white = repaint. */
    mask: base64ImageSchema.optional(),
    /** inpaint: repaint the whole picture at width×height, or only a crop around the mask ("only masked"). */
    inpaintArea: z.enum(INPAINT_AREAS).optional(),
    /** inpaint, "masked" area: pixels of context around the mask. */
    maskPadding: z.number().int().min(0).max(MAX_MASK_PADDING).optional(),
    ...promptOptions,
    /**
     * ControlNet: the control image (e.g. a segmentation map), its conditioning scale, and optionally a
     * ControlNet folder (default: the model folder's own controlnet/).
     */
    control: z
      .strictObject({
        image: base64ImageSchema,
        scale: z.number().min(0).max(MAX_CONTROL_SCALE),
        controlnetPath: filePathSchema.optional(),
      })
      .optional(),
    /**
     * layout: the label map, base64 of an RGB PNG at width×height painted in the model's label colours
     * (ModelInfo.layout.labels); required for layout, refused for the other modes.
     */
    labelMap: base64ImageSchema.optional(),
    /**
     * txt2img: A1111's hires fix. upscaler: Latent, Latent (bicubic), Latent (nearest), Latent (nearest-exact),
     * Lanczos, Nearest, or the name of an ONNX upscaler in the data folder's upscalers/ (file stem).
     */
    hires: z
      .strictObject({
        upscaler: z.string().min(1).max(200).optional(),
        scale: z.number().min(MIN_HIRES_SCALE).max(MAX_HIRES_SCALE).optional(),
        resizeWidth: z.number().int().min(0).max(MAX_SIDE).multipleOf(SIDE_MULTIPLE).optional(),
        resizeHeight: z.number().int().min(0).max(MAX_SIDE).multipleOf(SIDE_MULTIPLE).optional(),
        steps: z.number().int().min(0).max(MAX_STEPS).optional(),
        strength: z.number().min(MIN_STRENGTH).max(MAX_STRENGTH).optional(),
      })
      .optional(),
    /**
     * Regional prompts (any mode): each region's prompt conditions the picture inside its mask, the main
     * prompt the rest. Masks are at the picture's size: the init image's when there is one, else width×height.
     */
    regions: z.array(regionRequestSchema).max(MAX_REGIONS, `at most ${MAX_REGIONS} regions`).optional(),
    /** The history item this generation was made from. */
    parentId: historyIdSchema.optional(),
    /** Default: the selected model. */
    modelId: modelIdSchema.optional(),
  })
  .superRefine((req, ctx) => {
    if (req.softInpaint === true && req.mode !== 'inpaint') {
      ctx.addIssue({ code: 'custom', path: ['softInpaint'], message: `soft inpainting is an inpaint setting, not for ${req.mode}` });
    }
    if (req.hires !== undefined && req.mode !== 'txt2img') {
      ctx.addIssue({ code: 'custom', path: ['hires'], message: `hires fix is a txt2img setting (a second img2img pass), not for ${req.mode}` });
    }
    if (req.initImage !== undefined && req.initImageHash !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['initImageHash'], message: 'give initImage or initImageHash, not both' });
    }
    const hasImage = req.initImage !== undefined || req.initImageHash !== undefined;
    if (req.mode !== 'txt2img' && req.mode !== 'layout' && !hasImage) {
      ctx.addIssue({ code: 'custom', path: ['initImage'], message: `${req.mode} needs an init image (initImage or initImageHash)` });
    }
    if (req.mode === 'inpaint' && req.mask === undefined) {
      ctx.addIssue({ code: 'custom', path: ['mask'], message: 'inpaint needs a mask (white = repaint)' });
    }
    if (req.mode !== 'inpaint' && (req.inpaintArea !== undefined || req.maskPadding !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['inpaintArea'], message: `inpaintArea and maskPadding are only for inpaint, not ${req.mode}` });
    }
    if (req.mode !== 'inpaint' && req.mask !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['mask'], message: `a mask is only for inpaint, not ${req.mode}` });
    }
    if (req.mode === 'layout') {
      if (hasImage) ctx.addIssue({ code: 'custom', path: ['initImage'], message: 'layout draws from the label map: it takes no init image' });
      if (req.labelMap === undefined) {
        ctx.addIssue({ code: 'custom', path: ['labelMap'], message: "layout needs a label map (an RGB PNG painted in the model's label colours)" });
      }
    } else if (req.labelMap !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['labelMap'], message: `a label map is only for layout, not ${req.mode}` });
    }
    req.regions?.forEach((region, i) => {
      const size = pngSizeFromBase64(region.mask);
      if (!size) {
        ctx.addIssue({ code: 'custom', path: ['regions', i, 'mask'], message: 'must be a PNG (base64 of the file bytes)' });
      } else if (!hasImage && ((req.width !== undefined && size.width !== req.width) || (req.height !== undefined && size.height !== req.height))) {
        ctx.addIssue({
          code: 'custom',
          path: ['regions', i, 'mask'],
          message: `region ${i + 1}'s mask is ${size.width}×${size.height}; it must be the picture's size ${req.width ?? size.width}×${req.height ?? size.height}`,
        });
      }
    });
    if (req.labelMap !== undefined) {
      const size = pngSizeFromBase64(req.labelMap);
      if (!size) {
        ctx.addIssue({ code: 'custom', path: ['labelMap'], message: 'must be a PNG (base64 of the file bytes)' });
      } else if ((req.width !== undefined && size.width !== req.width) || (req.height !== undefined && size.height !== req.height)) {
        ctx.addIssue({
          code: 'custom',
          path: ['labelMap'],
          message: `the label map is ${size.width}×${size.height}; it must be the picture's size ${req.width ?? size.width}×${req.height ?? size.height}`,
        });
      }
    }
  });

// ── history ───────────────────────────────────────────────────────────────────────────────────────

const historyFilterSchema = z.strictObject({
  favorite: z.boolean().optional(),
  modelId: z.string().max(256).optional(),
  mode: z.enum(GENERATION_MODES).optional(),
  createdFrom: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  createdTo: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  view: z.enum(['active', 'trash']).optional(),
});

const pageFields = {
  filter: historyFilterSchema.optional(),
  cursor: z.string().max(512).nullable().optional(),
  limit: z.number().int().min(1).max(HISTORY_PAGE_MAX).optional(),
};

const tagSchema = z.string().min(1).max(MAX_TAG_CHARS);

// ── the table ─────────────────────────────────────────────────────────────────────────────────────

/**
 * Live painting (host/live-frames.ts): one inpaint frame of the masked area ("only masked"), outside
 * the job queue. The seed is required: every frame of a session repaints from the same noise, so a
 * stroke changes the picture and not the dice.
 */
export const liveFrameRequestSchema = z.strictObject({
  prompt: z.string().max(MAX_PROMPT_CHARS),
  negativePrompt: z.string().max(MAX_PROMPT_CHARS).optional(),
  seed: z.number().int().min(0).max(MAX_SEED),
  steps: z.number().int().min(1).max(MAX_STEPS).optional(),
  cfg: z.number().min(0).max(MAX_CFG).optional(),
  sampler: z.enum(SAMPLERS).optional(),
  width: side.optional(),
  height: side.optional(),
  strength: z.number().min(0).max(1).optional(),
  maskBlur: z.number().min(0).max(MAX_MASK_BLUR).optional(),
  maskPadding: z.number().int().min(0).max(MAX_MASK_PADDING).optional(),
  ...promptOptions,
  /** The picture, base64 of its file bytes… */
  initImage: base64ImageSchema.optional(),
  /** …or an image already in history… */
  initImageHash: imageHashSchema.optional(),
  /**
   * …or the picture a frame before sent (one of the two above), by the `pictureId` its answer gave: a
   * picture is sent once, not with every stroke. Refused when the host no longer holds that picture.
   */
  samePicture: z.string().min(1).max(64).optional(),
  /** The mask at the picture's size, base64 of its file bytes; white = repaint… */
  mask: base64ImageSchema.optional(),
  /**
   * …or, cheaper per frame, the mask as raw 8-bit grey bytes (base64 of width × height bytes, row by
   * row) of the rectangle at (x, y) of the picture that holds every non-zero pixel: 0 outside it.
   */
  maskRect: z
    .strictObject({
      x: z.number().int().min(0).max(MAX_MASK_RECT_COORD),
      y: z.number().int().min(0).max(MAX_MASK_RECT_COORD),
      width: z.number().int().min(1).max(MAX_MASK_RECT_COORD),
      height: z.number().int().min(1).max(MAX_MASK_RECT_COORD),
      data: z.string().min(1, 'must not be empty').max(MAX_IMAGE_BASE64_CHARS, `must be at most ${MAX_IMAGE_BASE64_CHARS} base64 characters`).regex(BASE64, 'must be base64'),
    })
    .optional(),
  /** The history item the picture is (or was made from): a kept frame becomes its child. */
  parentId: historyIdSchema.optional(),
  /** Default: the selected model. */
  modelId: modelIdSchema.optional(),
}).superRefine((req, ctx) => {
  if ([req.initImage, req.initImageHash, req.samePicture].filter((v) => v !== undefined).length !== 1) {
    ctx.addIssue({ code: 'custom', path: ['initImage'], message: 'a live frame needs the picture: give initImage, initImageHash or samePicture (one of them)' });
  }
  if ((req.mask === undefined) === (req.maskRect === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['mask'], message: 'a live frame needs the mask: give mask or maskRect (one of them)' });
  }
  const rect = req.maskRect;
  if (rect && rect.data.length !== Math.ceil((rect.width * rect.height) / 3) * 4) {
    ctx.addIssue({ code: 'custom', path: ['maskRect', 'data'], message: `must be base64 of width × height = ${rect.width * rect.height} bytes` });
  }
});

/** One schema per channel. The channel list of the contract is this object's keys. */
export const requestSchemas = {
  generate: generateRequestSchema,
  cancel: z.strictObject({ jobId: jobIdSchema }),
  'queue.list': emptySchema,
  /** The queued jobs named move to the front in this order; the rest keep theirs after them. */
  'queue.reorder': z.strictObject({ jobIds: z.array(jobIdSchema).min(1).max(MAX_IDS_PER_REQUEST) }),
  /** Cancels every queued job; with `includeRunning`, the running one too. */
  'queue.clear': z.strictObject({ includeRunning: z.boolean().optional() }),

  'history.page': z.strictObject(pageFields),
  'history.search': z.strictObject({ ...pageFields, text: z.string().max(MAX_SEARCH_CHARS) }),
  'history.get': z.strictObject({ id: historyIdSchema }),
  'history.lineage': z.strictObject({ id: historyIdSchema }),
  'history.counts': emptySchema,
  'history.setFavorite': z.strictObject({ ids: idListSchema, favorite: z.boolean() }),
  'history.setTags': z.strictObject({ id: historyIdSchema, tags: z.array(tagSchema).max(MAX_TAGS) }),
  'history.delete': z.strictObject({ ids: idListSchema }),
  'history.restore': z.strictObject({ ids: idListSchema }),
  'history.purge': z.strictObject({
    ids: idListSchema.optional(),
    deletedBefore: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  }),
  'history.import': z.strictObject({ paths: z.array(filePathSchema).min(1).max(MAX_IMPORT_PATHS) }),
  'history.export': z.strictObject({ ids: idListSchema, folder: filePathSchema }),
  /** A stored image (output, init image, mask) or its thumbnail, by content hash. */
  'history.image': z.strictObject({ hash: imageHashSchema, thumbnail: z.boolean().optional() }),
  /** Shows an item's image file in the file manager (desktop), or just answers its path (browser mode). */
  'history.reveal': z.strictObject({ id: historyIdSchema }),

  'models.list': emptySchema,
  'models.info': z.strictObject({ modelId: modelIdSchema }),
  /**
   * Adds a model folder once the engine has opened it: in place (`copy: false`, the default) or copied
   * into the app's models folder. The same content twice is E_DUPLICATE.
   */
  'models.import': z.strictObject({
    path: filePathSchema,
    copy: z.boolean().default(false),
    name: modelNameSchema.optional(),
  }),
  /**
   * Downloads a model folder: a manifest (`files`, with sizes and sha256 when known) or a plain list of
   * file URLs (`urls`). Progress arrives as `models.downloadProgress` events.
   */
  'models.download': z
    .strictObject({
      name: modelNameSchema,
      files: z
        .array(
          z.strictObject({
            path: relativeModelPathSchema,
            url: httpUrlSchema,
            size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
            sha256: imageHashSchema.optional(),
          }),
        )
        .min(1)
        .max(MAX_DOWNLOAD_FILES)
        .optional(),
      urls: z.array(httpUrlSchema).min(1).max(MAX_DOWNLOAD_FILES).optional(),
    })
    .superRefine((req, ctx) => {
      if ((req.files === undefined) === (req.urls === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['files'], message: 'give files (a manifest) or urls, exactly one of them' });
      }
    }),
  /** Stops a download and deletes what it fetched. */
  'models.cancelDownload': z.strictObject({ downloadId: downloadIdSchema }),
  /** Forgets a model (a copied or downloaded folder is deleted); history rows that used it are kept. */
  'models.remove': z.strictObject({ modelId: modelIdSchema }),
  'models.setDefault': z.strictObject({ modelId: modelIdSchema }),
  /** @deprecated Same as models.setDefault; kept while the renderer's model picker still calls it. */
  'models.select': z.strictObject({ modelId: modelIdSchema }),
  /** The native-models command that converts a `.safetensors` checkpoint (or diffusers folder) to our ONNX layout. */
  'models.convertCommand': z.strictObject({ path: filePathSchema, fp16: z.boolean().optional() }),

  'settings.get': emptySchema,
  'settings.set': z.strictObject({
    providers: z
      .array(z.enum(EXECUTION_PROVIDERS))
      .min(1)
      .max(EXECUTION_PROVIDERS.length)
      .refine((list) => new Set(list).size === list.length, 'must not name a provider twice')
      .optional(),
    threads: z.number().int().min(0).max(MAX_THREADS).optional(),
    /** Release the text encoders' sessions after each job's prompts are encoded. */
    releaseTextEncoders: z.boolean().optional(),
    /** Where each result is also written as a PNG; null: only the history folder. */
    outputFolder: filePathSchema.nullable().optional(),
    /** Resource bounds (electron/shared/resource-limits.ts); null: the default. */
    maxInputPixels: z.number().int().min(MIN_MAX_INPUT_PIXELS).max(MAX_MAX_INPUT_PIXELS).nullable().optional(),
    maxSizeFactor: z.number().min(1).max(MAX_SIZE_FACTOR_LIMIT).nullable().optional(),
    maxJobMemoryMb: z.number().int().min(64).max(16 * 1024 * 1024).nullable().optional(),
    /** The canvas's undo budget in MiB; null: the default. */
    undoMemoryMb: z.number().int().min(MIN_UNDO_MEMORY_MB).max(MAX_UNDO_MEMORY_MB).nullable().optional(),
  }),

  /** `modelId`: say for each LoRA whether it fits this model (its family). */
  'loras.list': z.strictObject({ modelId: modelIdSchema.optional() }),
  /** Reuse: `loras` is the item's recorded `Lora hashes` (name, A1111 short hash). */
  'loras.restore': z.strictObject({
    prompt: z.string().max(MAX_PROMPT_CHARS),
    loras: z.array(z.strictObject({ name: z.string().min(1).max(256), hash: z.string().max(64) })).max(64),
  }),

  'app.info': emptySchema,
  /** Counts a prompt's CLIP tokens (the prompt panel's n/75). */
  tokenize: z.strictObject({ text: z.string().max(MAX_PROMPT_CHARS), modelId: modelIdSchema.optional() }),
  /** Names the embeddings installed in the library (completions in the prompt box). */
  'embeddings.list': emptySchema,

  /** Renders one live frame; a newer frame or live.stop answers the one in flight with 'superseded'. */
  'live.frame': liveFrameRequestSchema,
  /** Puts a shown live frame into history as an inpaint (with its picture, mask and parameters). */
  'live.keep': z.strictObject({ frameId: z.uuid() }),
  /** Live off: cancels the frame in flight and frees the live session. */
  'live.stop': emptySchema,
} as const;

export type RequestSchemas = typeof requestSchemas;
export type SchemaChannel = keyof RequestSchemas;

export function isChannel(name: unknown): name is SchemaChannel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(requestSchemas, name);
}

/** How many problems one rejection lists, and how long each part may be: a huge bad key or value must not come back whole. */
const MAX_ISSUE_MESSAGES = 5;
const MAX_ISSUE_PART_CHARS = 200;

function clip(text: string): string {
  return text.length <= MAX_ISSUE_PART_CHARS ? text : `${text.slice(0, MAX_ISSUE_PART_CHARS)}…`;
}

/**
 * Parses one request. Throws InvalidRequestError (code E_INVALID_REQUEST) naming the channel and each
 * bad field: `generate: steps: Too big: expected number to be <=1000`.
 */
export function parseRequest<C extends SchemaChannel>(channel: C, payload: unknown): z.output<RequestSchemas[C]> {
  const schema: z.ZodType = requestSchemas[channel];
  const result = schema.safeParse(payload);
  if (result.success) return result.data as z.output<RequestSchemas[C]>;
  const issues = result.error.issues.slice(0, MAX_ISSUE_MESSAGES).map((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(request)';
    return `${clip(field)}: ${clip(issue.message)}`;
  });
  const more = result.error.issues.length > MAX_ISSUE_MESSAGES ? ` (and ${result.error.issues.length - MAX_ISSUE_MESSAGES} more)` : '';
  throw new InvalidRequestError(`${channel}: ${issues.join('; ')}${more}`);
}
