/**
 * Reading a PNG made elsewhere (or exported by us) into a history record: validation first, then its
 * parameters, from our own `latent-studio` chunk when present and valid, else from A1111 `parameters`.
 */
import { z } from 'zod';
import sharp from 'sharp';
import { GENERATION_MODES, INPAINT_AREAS, SAMPLERS } from '../shared/generation.js';
import type { GenerationParams } from '../shared/generation.js';
import { parseA1111Parameters } from '../shared/a1111.js';
import { EMPHASIS_MODES, MAX_AESTHETIC_SCORE, MIN_AESTHETIC_SCORE } from '../shared/generation-limits.js';
import type { PreparedImage, RecordedParams } from '../shared/history.js';
import { imageHeader } from '../shared/image-header.js';
import { DEFAULT_MAX_INPUT_PIXELS, formatMegapixels } from '../shared/resource-limits.js';
import { HistoryError } from './errors.js';
import { readPngMetadata } from './png.js';

/** Strict shape of GenerationParams: what `add` accepts from the queue. */
export const generationParamsSchema = z.object({
  mode: z.enum(GENERATION_MODES),
  prompt: z.string(),
  negativePrompt: z.string(),
  seed: z.number().int().safe(),
  steps: z.number().int().positive(),
  cfg: z.number().finite(),
  sampler: z.enum(SAMPLERS),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  strength: z.number().finite().min(0).max(1),
  maskBlur: z.number().finite().min(0),
  inpaintArea: z.enum(INPAINT_AREAS).optional(),
  maskPadding: z.number().int().min(0).optional(),
  controlScale: z.number().finite().min(0).optional(),
  clipSkip: z.number().int().min(1).optional(),
  embeddings: z.array(z.object({ name: z.string(), hash: z.string() })).optional(),
  hires: z
    .object({
      upscaler: z.string(),
      scale: z.number().finite(),
      resizeWidth: z.number().int().min(0),
      resizeHeight: z.number().int().min(0),
      steps: z.number().int().min(0),
      strength: z.number().finite().min(0).max(1),
    })
    .optional(),
  softInpaint: z.boolean().optional(),
  regions: z.array(z.object({ prompt: z.string(), weight: z.number().finite().positive(), area: z.number().finite().min(0).max(1) })).optional(),
  emphasis: z.enum(EMPHASIS_MODES).optional(),
  padConds: z.literal(true).optional(),
  aestheticScore: z.number().finite().min(MIN_AESTHETIC_SCORE).max(MAX_AESTHETIC_SCORE).optional(),
  negativeAestheticScore: z.number().finite().min(MIN_AESTHETIC_SCORE).max(MAX_AESTHETIC_SCORE).optional(),
});

/**
 * Lenient shape of our embedded request (also what `studio generate` writes): the params either under
 * `params` or at the top level; fields it doesn't have are null.
 */
const embeddedParamsSchema = generationParamsSchema.partial().extend({ prompt: z.string() });
const embeddedSchema = z.union([
  z.object({
    params: embeddedParamsSchema,
    loras: z.array(z.object({ name: z.string(), hash: z.string() })).optional(),
    model: z.union([z.object({ id: z.string().optional(), hash: z.string().optional() }), z.string()]).optional(),
  }),
  embeddedParamsSchema.extend({ model: z.string().optional(), modelId: z.string().optional(), modelHash: z.string().optional() }),
]);

export interface ImportedRecord {
  params: RecordedParams;
  model: { id: string | null; hash: string | null };
  parameters: string | null;
  width: number;
  height: number;
  /** The thumbnail, when the decoder made one. */
  thumbnail: Uint8Array | null;
}

/**
 * Decodes every pixel of a user's image, checking it, and may thumbnail it on the way. The host passes
 * one that runs in the engine process (the host never decodes a user's image); the default decodes here.
 */
export type UserImageDecoder = (bytes: Uint8Array, what: string) => Promise<Pick<PreparedImage, 'width' | 'height'> & { thumbnail: Uint8Array | null }>;

/** Decodes here, with sharp: what the CLI and the store's own tests use. */
export const decodeUserImageHere: UserImageDecoder = async (bytes) => {
  // Every pixel: a PNG whose chunks are intact can still hold damaged image data.
  const { info } = await sharp(bytes, { failOn: 'warning', limitInputPixels: DEFAULT_MAX_INPUT_PIXELS }).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, thumbnail: null };
};

/**
 * Validates a PNG and reads its parameters. Throws HistoryError E_NOT_PNG, E_CORRUPT_IMAGE (bad CRC,
 * truncated, undecodable pixels) or E_NO_METADATA.
 */
export async function readImportablePng(bytes: Buffer, fileName: string, decode: UserImageDecoder = decodeUserImageHere): Promise<ImportedRecord> {
  const header = imageHeader(bytes);
  if (header && header.width * header.height > DEFAULT_MAX_INPUT_PIXELS) {
    // Refused from its header: decoding a decompression bomb takes gigabytes.
    throw new HistoryError(
      'E_INVALID',
      `${fileName}: the image is ${header.width}×${header.height} (${formatMegapixels(header.width * header.height)}); imported images may have at most ${formatMegapixels(DEFAULT_MAX_INPUT_PIXELS)}.`,
    );
  }
  const meta = readPngMetadata(bytes);
  let width: number;
  let height: number;
  let thumbnail: Uint8Array | null;
  try {
    ({ width, height, thumbnail } = await decode(bytes, 'imported image'));
  } catch (err) {
    // A decoder in another process answers bad pixels with E_BAD_IMAGE; anything else (it stopped) is not the file's fault.
    const code = (err as { code?: unknown }).code;
    if (code !== undefined && code !== 'E_BAD_IMAGE') throw err;
    throw new HistoryError('E_CORRUPT_IMAGE', `${fileName}: the PNG's image data can't be decoded (${(err as Error).message}).`, { cause: err });
  }

  const embedded = meta.request === undefined ? undefined : embeddedSchema.safeParse(meta.request);
  if (embedded?.success) {
    const e = embedded.data;
    const p = 'params' in e ? e.params : e;
    let model: { id: string | null; hash: string | null };
    if ('params' in e) {
      model = typeof e.model === 'string' ? { id: e.model, hash: null } : { id: e.model?.id ?? null, hash: e.model?.hash ?? null };
    } else {
      model = { id: e.modelId ?? e.model ?? null, hash: e.modelHash ?? null };
    }
    const loras = ('loras' in e ? e.loras : undefined) ?? (meta.parameters !== undefined ? loraHashesOf(meta.parameters) : []);
    return { params: recorded({ ...p, loras }, width, height), model, parameters: meta.parameters ?? null, width, height, thumbnail };
  }
  if (meta.parameters !== undefined) {
    const a = parseA1111Parameters(meta.parameters);
    return {
      params: recorded({ ...a.params, prompt: a.prompt, negativePrompt: a.negativePrompt, mode: a.mode, loras: a.loras }, width, height),
      model: { id: a.model.name ?? null, hash: a.model.hash ?? null },
      parameters: meta.parameters,
      width,
      height,
      thumbnail,
    };
  }
  throw new HistoryError(
    'E_NO_METADATA',
    `${fileName}: the PNG carries no generation parameters (no A1111 "parameters" text and no Latent Studio chunk).`,
  );
}

/** `Lora hashes` of an infotext (none when it can't be read). */
function loraHashesOf(parameters: string): { name: string; hash: string }[] {
  try {
    return parseA1111Parameters(parameters).loras;
  } catch {
    return [];
  }
}

function recorded(p: Partial<GenerationParams> & { prompt: string; loras?: { name: string; hash: string }[] }, width: number, height: number): RecordedParams {
  return {
    mode: p.mode ?? 'txt2img',
    prompt: p.prompt,
    negativePrompt: p.negativePrompt ?? '',
    seed: p.seed ?? null,
    steps: p.steps ?? null,
    cfg: p.cfg ?? null,
    sampler: p.sampler ?? null,
    width: p.width ?? width,
    height: p.height ?? height,
    strength: p.strength ?? null,
    maskBlur: p.maskBlur ?? null,
    ...(p.inpaintArea !== undefined ? { inpaintArea: p.inpaintArea } : {}),
    ...(p.maskPadding !== undefined ? { maskPadding: p.maskPadding } : {}),
    ...(p.controlScale !== undefined ? { controlScale: p.controlScale } : {}),
    ...(p.clipSkip !== undefined && p.clipSkip > 1 ? { clipSkip: p.clipSkip } : {}),
    ...(p.embeddings !== undefined && p.embeddings.length > 0 ? { embeddings: p.embeddings } : {}),
    ...(p.hires !== undefined ? { hires: p.hires } : {}),
    ...(p.softInpaint === true ? { softInpaint: true } : {}),
    ...(p.loras !== undefined && p.loras.length > 0 ? { loras: p.loras } : {}),
    ...(p.emphasis !== undefined && p.emphasis !== 'Original' ? { emphasis: p.emphasis } : {}),
    ...(p.padConds === true ? { padConds: true as const } : {}),
    ...(p.aestheticScore !== undefined ? { aestheticScore: p.aestheticScore } : {}),
    ...(p.negativeAestheticScore !== undefined ? { negativeAestheticScore: p.negativeAestheticScore } : {}),
  };
}
