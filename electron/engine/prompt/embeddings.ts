/**
 * Textual-inversion embeddings from A1111-style files (wave2-reference §1d, `textual_inversion.py`
 * `load_from_file` and `create_embedding_from_data`). The files:
 *   - `.pt` / `.bin`: torch.save, zip or legacy format (torch-pickle.ts, a restricted unpickler);
 *   - `.safetensors`;
 *   - `.png` / `.webp`: A1111's embedding pictures (image-embedding.ts): the `sd-ti-embedding` text chunk,
 *     else the data hidden in the picture's edges. A picture holding neither is a preview, not an
 *     embedding, and is skipped, as are `*.preview.png` files.
 * The tensor is chosen by the same rules, in order:
 *   1. `string_to_param` (A1111 / original TI `.pt`): its single entry, [vectors, width];
 *   2. `clip_l` + `clip_g` (SDXL, kohya): both, for the two encoders;
 *   3. a single tensor key: diffusers' `{"<token>": [width]}` or kohya's `{"emb_params": [n, width]}`.
 * The name used in prompts is the file name without its extension (A1111; the `name` field inside a .pt
 * is ignored), except for pictures, whose data's `name` wins (A1111 does the same). The hash is sha256 of
 * the whole file, shortened to 12 hex digits in infotext ("TI hashes").
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { StudioError } from '../../shared/errors.js';
import type { ModelInfo } from '../../shared/model.js';
import { readImageEmbedding } from './image-embedding.js';
import { decodeFloats, readTorchPickle, UnsafePickleError, type TorchTensor } from './torch-pickle.js';

export interface TextualInversion {
  /** The prompt word: the file stem. */
  name: string;
  vectors: number;
  width: number;
  /** [vectors, width], row-major. For SDXL files this is `clip_l`; `clipG` holds the second encoder's. */
  data: Float32Array;
  clipG?: { width: number; data: Float32Array };
  file: string;
  /** sha256 of the file, hex. */
  sha256: string;
}

/** A1111's `shorthash` length. */
export const TI_SHORT_HASH_LENGTH = 12;
export const EMBEDDING_EXTENSIONS = ['.pt', '.bin', '.safetensors', '.png', '.webp'] as const;
const IMAGE_EXTENSIONS = new Set(['.png', '.webp']);

export class EmbeddingFileError extends StudioError {
  override name = 'EmbeddingFileError';
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('E_BAD_EMBEDDING', `${file}: ${message}`, options);
  }
}

interface NamedTensor {
  dims: number[];
  data: Float32Array;
}

/**
 * The embedding in `file`, or null for a picture that holds none (a preview image, as A1111 skips it).
 * Unreadable or unsafe files throw EmbeddingFileError (E_BAD_EMBEDDING) naming the file.
 */
export async function loadTextualInversion(file: string): Promise<TextualInversion | null> {
  const bytes = readFileSync(file);
  const ext = extname(file).toLowerCase();
  let tensors: Map<string, unknown>;
  let name = basename(file, extname(file));
  try {
    if (IMAGE_EXTENSIONS.has(ext)) {
      if (extname(name).toLowerCase() === '.preview') return null;
      const found = await readImageEmbedding(bytes);
      if (!found) return null;
      tensors = found;
      const inner = tensors.get('name');
      if (typeof inner === 'string' && inner.length > 0) name = inner;
    } else {
      tensors = ext === '.safetensors' ? readSafetensors(bytes) : readTorchPickle(bytes);
    }
  } catch (err) {
    if (err instanceof StudioError) throw err;
    if (err instanceof UnsafePickleError) throw new EmbeddingFileError(file, err.message, { cause: err });
    throw new EmbeddingFileError(file, `could not read it (${(err as Error).message})`, { cause: err });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const matrix = (value: unknown, what: string): NamedTensor => {
    const t = asTensor(value);
    if (!t) throw new EmbeddingFileError(file, `${what} is not a tensor`);
    const dims = t.dims.length === 1 ? [1, t.dims[0]!] : t.dims;
    if (dims.length !== 2) throw new EmbeddingFileError(file, `${what} has shape [${t.dims.join(', ')}], expected [vectors, width]`);
    let data: Float32Array;
    try {
      data = t.data;
    } catch (err) {
      throw new EmbeddingFileError(file, `could not read ${what} (${(err as Error).message})`, { cause: err });
    }
    if (data.length !== dims[0]! * dims[1]!) throw new EmbeddingFileError(file, `${what} holds ${data.length} values for [${dims.join(', ')}]`);
    return { dims, data };
  };

  const stringToParam = tensors.get('string_to_param');
  if (stringToParam !== undefined) {
    const entries = mapEntries(stringToParam);
    if (entries.length !== 1) throw new EmbeddingFileError(file, `string_to_param must hold one entry, found ${entries.length}`);
    const t = matrix(entries[0]![1], 'string_to_param');
    return { name, vectors: t.dims[0]!, width: t.dims[1]!, data: t.data, file, sha256 };
  }
  if (tensors.has('clip_l') && tensors.has('clip_g')) {
    const l = matrix(tensors.get('clip_l'), 'clip_l');
    const g = matrix(tensors.get('clip_g'), 'clip_g');
    if (l.dims[0] !== g.dims[0]) throw new EmbeddingFileError(file, `clip_l holds ${l.dims[0]} vectors but clip_g ${g.dims[0]}; an SDXL embedding has as many of each`);
    return { name, vectors: g.dims[0]!, width: l.dims[1]!, data: l.data, clipG: { width: g.dims[1]!, data: g.data }, file, sha256 };
  }
  // A diffusers concept: one tensor (a picture's data also carries its `name`).
  const tensorEntries = [...tensors].filter(([, v]) => asTensor(v) !== null);
  if (tensors.size === 1 || (IMAGE_EXTENSIONS.has(ext) && tensorEntries.length === 1)) {
    const t = matrix(tensorEntries[0]?.[1] ?? [...tensors.values()][0], String(tensorEntries[0]?.[0] ?? [...tensors.keys()][0]));
    return { name, vectors: t.dims[0]!, width: t.dims[1]!, data: t.data, file, sha256 };
  }
  throw new EmbeddingFileError(
    file,
    `neither a textual-inversion embedding (string_to_param, emb_params, clip_l/clip_g) nor a diffusers concept; keys: ${[...tensors.keys()].join(', ')}`,
  );
}

/** Files read once per (path, size, mtime): a folder is listed on every job, but rarely changes. */
const fileCache = new Map<string, TextualInversion | null>();
const FILE_CACHE_SIZE = 256;

async function cachedTextualInversion(file: string): Promise<TextualInversion | null> {
  const s = statSync(file);
  const stamp = `${file}\u0000${s.size}\u0000${s.mtimeMs}`;
  if (fileCache.has(stamp)) return fileCache.get(stamp)!;
  const e = await loadTextualInversion(file);
  fileCache.set(stamp, e);
  while (fileCache.size > FILE_CACHE_SIZE) fileCache.delete(fileCache.keys().next().value!);
  return e;
}

/** The embedding files in a folder and its subfolders (A1111 walks it recursively; empty files are skipped). */
export function listEmbeddingFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if ((EMBEDDING_EXTENSIONS as readonly string[]).includes(extname(entry.name).toLowerCase()) && statSync(p).size > 0) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * The embeddings of a folder, split by whether they fit the model's text encoders. A1111 compares the
 * embedding's shape with the model's (`expected_shape`) and keeps the others as `skipped_embeddings`: they
 * are not applied, and a prompt word equal to their name stays plain text. `mismatched` keeps those, so a
 * job can say which file it skipped.
 */
export interface EmbeddingSet {
  usable: TextualInversion[];
  mismatched: TextualInversion[];
  unreadable: { file: string; message: string }[];
}

/** The widths an embedding carries, one per text encoder: [clip_l, clip_g] for SDXL files, else [width]. */
export function embeddingWidths(e: TextualInversion): number[] {
  return e.clipG ? [e.width, e.clipG.width] : [e.width];
}

/** A model's text-encoder widths in order, what an embedding must match: [768] SD 1.x, [768, 1280] SDXL, [1280] its refiner. */
export function modelTextEncoderWidths(info: Pick<ModelInfo, 'sdxl' | 'textHiddenSize'>): number[] {
  return info.sdxl ? info.sdxl.encoders.map((e) => e.hiddenSize) : [info.textHiddenSize];
}

/**
 * Whether an embedding fits a model whose text encoders are `widths` wide, in order (SD 1.x [768], SD 2.x
 * [1024], SDXL [768, 1280], the SDXL refiner [1280]): one tensor per encoder, each as wide as its encoder.
 * (A1111 compares the summed width; per encoder is the same for every real model, and stricter.)
 */
export function embeddingFits(e: TextualInversion, widths: readonly number[]): boolean {
  const own = embeddingWidths(e);
  return own.length === widths.length && own.every((w, i) => w === widths[i]);
}

/**
 * `widths`: the model's text encoders' widths (a single number for one encoder), or null to take every
 * file as usable (the prompt box's counter and completions, which know no model).
 */
export async function loadEmbeddingFolder(dirs: readonly string[], widths: number | readonly number[] | null): Promise<EmbeddingSet> {
  const expected = typeof widths === 'number' ? [widths] : widths;
  const set: EmbeddingSet = { usable: [], mismatched: [], unreadable: [] };
  const seen = new Set<string>();
  for (const dir of dirs) {
    for (const file of listEmbeddingFiles(dir)) {
      let e: TextualInversion | null;
      try {
        e = await cachedTextualInversion(file);
      } catch (err) {
        set.unreadable.push({ file, message: (err as Error).message });
        continue;
      }
      if (!e) continue;
      if (seen.has(e.name.toLowerCase())) continue;
      seen.add(e.name.toLowerCase());
      (expected === null || embeddingFits(e, expected) ? set.usable : set.mismatched).push(e);
    }
  }
  return set;
}

/** What an embedding is, in words, for messages. */
function describeEmbedding(e: TextualInversion): string {
  if (e.clipG) return `an SDXL embedding (clip_l ${e.width} + clip_g ${e.clipG.width} wide)`;
  const kind = e.width === 1024 ? 'an SD 2.x embedding ' : e.width === 768 ? 'an SD 1.x embedding ' : 'an embedding ';
  return `${kind}(${e.width} wide)`;
}

function describeModel(widths: readonly number[]): string {
  return widths.length === 1 ? `this model's text encoder is ${widths[0]} wide` : `this model's text encoders are ${widths.join(' + ')} wide`;
}

/**
 * The job warning for a prompt word naming an embedding made for another model family (A1111 lists such
 * files as skipped and reads the word as text): the file, what it is, what the model takes.
 */
export function mismatchWarning(e: TextualInversion, widths: readonly number[]): string {
  return `${e.file}: the embedding "${e.name}" is ${describeEmbedding(e)}, but ${describeModel(widths)}: skipped, "${e.name}" was read as plain text`;
}

function asTensor(value: unknown): NamedTensor | null {
  if (value && typeof value === 'object' && 'dims' in value && 'data' in value) return value as NamedTensor;
  return null;
}

function mapEntries(value: unknown): [string, unknown][] {
  if (value instanceof Map) return [...(value as Map<string, unknown>).entries()];
  // torch.nn.ParameterDict (the original textual_inversion repo): its parameters are in `_parameters`.
  if (value && typeof value === 'object' && 'state' in value) {
    const params = (value as { state: Map<string, unknown> }).state?.get?.('_parameters');
    if (params instanceof Map) return [...params.entries()];
  }
  return [];
}

/** safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, then the data. */
export function readSafetensors(bytes: Uint8Array): Map<string, unknown> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 8) throw new Error('file too short for safetensors');
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new Error('safetensors header runs past the end of the file');
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  const out = new Map<string, unknown>();
  for (const [key, info] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const [start, end] = info.data_offsets;
    out.set(key, { dims: info.shape, data: decodeFloats(bytes.subarray(base + start, base + end), info.dtype) } satisfies TorchTensor);
  }
  return out;
}
