/**
 * The generation history store as the host, the renderer and the CLI see it: records, queries, results
 * and error codes. Pure types and constants: no node, electron or DOM imports.
 *
 * The store itself is electron/history/store.ts (`HistoryStore`); these are the shapes its methods take
 * and return, so that the IPC contract can name them without importing the store.
 */
import type { EmphasisMode } from './generation-limits.js';
import type {
  ExecutionProviderName,
  GenerationMode,
  GenerationParams,
  GenerationTimings,
  HiresParams,
  InpaintArea,
  RegionParams,
  SamplerName,
} from './generation.js';

/** Raw 8-bit RGB pixels, row-major, `rgb.length === width * height * 3` (what the engine returns). */
export interface RgbImage {
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** Thumbnails fit inside this square (px), never enlarged: big enough for a dense grid on a HiDPI screen. */
export const THUMBNAIL_SIZE = 256;
/** WebP quality for thumbnails: visually clean at grid size, ~10 KB each. */
export const THUMBNAIL_QUALITY = 80;

/**
 * An input image already decoded, checked and thumbnailed by the engine process, which is where a
 * user's image bytes are decoded (a decompression bomb costs that process, not the host): the store
 * keeps it as given. `png` is the image as sent when it was a PNG (reuse hands back the same bytes).
 */
export interface PreparedImage {
  png: Uint8Array;
  /** WebP, inside THUMBNAIL_SIZE². */
  thumbnail: Uint8Array;
  width: number;
  height: number;
}

/**
 * An input image (img2img init image, inpaint mask) handed to the store: raw pixels, PNG bytes (decoded
 * by the store to check them), an image prepared by the engine process, or the content hash of an image
 * already in the store (for example the parent's output in an inpaint chain).
 */
export type ImageInput = RgbImage | { png: Uint8Array } | { prepared: PreparedImage } | { hash: string };

export const GENERATION_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;
export type GenerationStatus = (typeof GENERATION_STATUSES)[number];

/** Where a history item came from: a run of our engine, or a PNG made elsewhere and imported. */
export type GenerationSource = 'generated' | 'imported';

/** What the queue hands the store after a run. */
export interface NewGeneration {
  params: GenerationParams;
  /** Model id (its folder name) and content hash (hex digest of its weights). */
  model: { id: string; hash: string };
  /** Default 'succeeded'; a succeeded generation must carry `output`. */
  status?: GenerationStatus;
  output?: RgbImage;
  initImage?: ImageInput;
  mask?: ImageInput;
  /** layout: the label map the picture was drawn from (an RGB PNG in the model's label colours). */
  labelMap?: ImageInput;
  /** Regional prompts: each region's mask (gray PNG, white = the region), in the order of `params.regions`. */
  regionMasks?: ImageInput[];
  /** The generation this one was made from (inpaint chains form a tree). */
  parentId?: number | null;
  executionProvider?: ExecutionProviderName | null;
  timings?: GenerationTimings | null;
  /** Failed runs: what went wrong, for the history row. */
  error?: string | null;
  tags?: string[];
  favorite?: boolean;
  /** The full request, embedded as JSON in the PNG; default: `EmbeddedGeneration` built from the above. */
  request?: unknown;
  /** The LoRAs the prompt's `<lora:…>` tags applied (name, A1111 short hash): written as `Lora hashes`. */
  loras?: { name: string; hash: string }[];
}

/** The JSON that the store embeds in each PNG it writes (PNG text keyword `latent-studio`). */
export interface EmbeddedGeneration {
  format: typeof EMBEDDED_GENERATION_FORMAT;
  params: GenerationParams;
  model: { id: string; hash: string };
  initImageHash?: string;
  maskHash?: string;
  labelMapHash?: string;
  /** Regional prompts: the content hashes of the regions' masks, in the order of `params.regions`. */
  regionMaskHashes?: string[];
  /** The LoRAs applied (name, A1111 short hash), as in the infotext's `Lora hashes`. */
  loras?: { name: string; hash: string }[];
}
export const EMBEDDED_GENERATION_FORMAT = 'latent-studio/generation@1';

/** A stored image: a content hash (sha256 hex of the file bytes) and its size. */
export interface ImageRef {
  hash: string;
  width: number;
  height: number;
  /** Set by reconcile when the file is gone from disk; the row is kept and reported, never dropped. */
  fileMissing: boolean;
}

/**
 * The parameters recorded with an item. For our own generations every value is set; an imported PNG
 * may not say everything (or may name a sampler we don't have), and those values are null.
 */
export interface RecordedParams {
  mode: GenerationMode;
  prompt: string;
  negativePrompt: string;
  seed: number | null;
  steps: number | null;
  cfg: number | null;
  sampler: SamplerName | null;
  width: number;
  height: number;
  strength: number | null;
  maskBlur: number | null;
  /** inpaint: set when the run said (GenerationParams.inpaintArea); absent for older items and imports. */
  inpaintArea?: InpaintArea;
  /** inpaint, 'masked' area: the context padding in pixels, when recorded. */
  maskPadding?: number;
  /** Set when a ControlNet guided the run: its conditioning scale. */
  controlScale?: number;
  /** A1111's "Clip skip", when it was not 1. */
  clipSkip?: number;
  /** The textual-inversion embeddings the prompts used (A1111 "TI hashes"). */
  embeddings?: { name: string; hash: string }[];
  /** txt2img: the hires fix it ran with (A1111 "Hires upscale", "Hires steps", …). */
  hires?: HiresParams;
  /** inpaint: ran with soft inpainting (A1111 "Soft inpainting enabled: True"). */
  softInpaint?: boolean;
  /** The LoRAs the prompt's `<lora:…>` tags applied (name as tagged, A1111 short hash; "Lora hashes"). */
  loras?: { name: string; hash: string }[];
  /** Regional prompts: prompt, weight and covered area of each region (their masks: HistoryItem.regions). */
  regions?: RegionParams[];
  /** A1111's "Emphasis" when not Original. */
  emphasis?: EmphasisMode;
  /** A1111's "Pad conds": the shorter of prompt and negative was padded with empty chunks. */
  padConds?: true;
  /** An SDXL refiner's aesthetic scores (prompt, negative), when recorded. */
  aestheticScore?: number;
  negativeAestheticScore?: number;
}

/** One regional prompt of a history item: what it was, and its stored mask. */
export interface HistoryRegion extends RegionParams {
  mask: ImageRef;
}

export interface HistoryItem {
  id: number;
  /** Milliseconds since the epoch, when the item entered history. */
  createdAt: number;
  source: GenerationSource;
  status: GenerationStatus;
  mode: GenerationMode;
  model: { id: string | null; hash: string | null };
  params: RecordedParams;
  output: ImageRef | null;
  initImage: ImageRef | null;
  mask: ImageRef | null;
  /** layout: the label map the picture was drawn from; null for other modes. */
  labelMap: ImageRef | null;
  /** Regional prompts, in order, with their masks; absent when the item has none. */
  regions?: HistoryRegion[];
  parentId: number | null;
  executionProvider: ExecutionProviderName | null;
  timings: GenerationTimings | null;
  error: string | null;
  favorite: boolean;
  tags: string[];
  /** Set while the item is in the trash. */
  deletedAt: number | null;
  /** Imported items: the file name it came from and its raw A1111 `parameters` text, if any. */
  imported: { fileName: string; parameters: string | null } | null;
}

export interface HistoryFilter {
  favorite?: boolean;
  modelId?: string;
  mode?: GenerationMode;
  /** Inclusive lower bound on createdAt (ms since the epoch). */
  createdFrom?: number;
  /** Exclusive upper bound on createdAt (ms since the epoch). */
  createdTo?: number;
  /** 'active' (default): items not in the trash; 'trash': only items in the trash. */
  view?: 'active' | 'trash';
}

/** Newest first; `cursor` is the `nextCursor` of the previous page (opaque). */
export interface HistoryPageQuery {
  filter?: HistoryFilter;
  cursor?: string | null;
  /** Default 100, at most HISTORY_PAGE_MAX. */
  limit?: number;
}
export const HISTORY_PAGE_DEFAULT = 100;
export const HISTORY_PAGE_MAX = 500;

/**
 * Full-text search over prompt, negative prompt and tags. `text` is words as a person types them:
 * every word must match; `word*` matches by prefix; `"two words"` matches a phrase;
 * `prompt:`/`negative:`/`tag:` before a word limits it to one field.
 */
export interface HistorySearchQuery extends HistoryPageQuery {
  text: string;
}

export interface HistoryPage {
  items: HistoryItem[];
  /** null on the last page. */
  nextCursor: string | null;
}

export interface HistoryLineage {
  item: HistoryItem;
  /** Parent first, then its parent, up to the root. */
  ancestors: HistoryItem[];
  /** Children and their children, breadth first; `depth` 1 for a child. Items in the trash are included. */
  descendants: Array<{ depth: number; item: HistoryItem }>;
}

export interface HistoryCounts {
  /** Items not in the trash. */
  total: number;
  favorites: number;
  trash: number;
  byMode: Record<GenerationMode, number>;
  /** Items (in or out of the trash) whose output file is missing on disk. */
  missingFiles: number;
}

export type ImportOutcome =
  | { path: string; status: 'imported'; id: number }
  | { path: string; status: 'duplicate'; existingId: number }
  | { path: string; status: 'failed'; error: HistoryErrorData };

export interface ImportReport {
  results: ImportOutcome[];
  imported: number;
  duplicates: number;
  failed: number;
}

export interface ExportReport {
  folder: string;
  /** One per exported item: the PNG written (its metadata embedded) next to the manifest. */
  files: Array<{ id: number; file: string }>;
  /** The JSON manifest with every exported item's full record. */
  manifest: string;
}

/** What startup reconciliation found and did. */
export interface ReconcileReport {
  /** Image and thumbnail files with no row, and temp files left by a crash: removed. */
  orphanFilesRemoved: string[];
  /** Stored images whose file is missing: marked (`fileMissing`), rows kept. */
  missingImages: string[];
  /** Items whose output is among `missingImages`. */
  affectedItems: number[];
  /** Images that went missing earlier and whose file is back. */
  restoredImages: string[];
  /** Images whose thumbnail was missing and has been made again. */
  thumbnailsRebuilt: number;
}

export interface IntegrityReport {
  ok: boolean;
  /** `PRAGMA integrity_check` lines ("ok" when healthy) followed by `foreign_key_check` findings. */
  messages: string[];
}

export const HISTORY_ERROR_CODES = [
  /** A file offered for import is not a PNG at all. */
  'E_NOT_PNG',
  /** A PNG that fails its checksums or can't be decoded. */
  'E_CORRUPT_IMAGE',
  /** A PNG with neither A1111 `parameters` nor our own metadata chunk. */
  'E_NO_METADATA',
  /** The image is already in history (same content hash). */
  'E_DUPLICATE',
  /** No such item (or image). */
  'E_NOT_FOUND',
  /** A request the store can't carry out as asked (bad tag, missing output, unknown parent…). */
  'E_INVALID',
  /** The data directory (or the database) can't be written. */
  'E_READ_ONLY',
  /** The disk (or quota) is full. */
  'E_DISK_FULL',
  /** The database file is damaged or not a database. */
  'E_DB_CORRUPT',
  /** The database was written by a newer version of the app. */
  'E_SCHEMA_TOO_NEW',
  /** Another file-system error, with the system's code in the message. */
  'E_IO',
] as const;
export type HistoryErrorCode = (typeof HISTORY_ERROR_CODES)[number];

/** A history error as it crosses a process boundary. */
export interface HistoryErrorData {
  name: 'HistoryError';
  code: HistoryErrorCode;
  message: string;
}

/** Matches on `name` and `code`, so it still works after the error was serialized. */
export function isHistoryErrorData(value: unknown): value is HistoryErrorData {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    v['name'] === 'HistoryError' &&
    typeof v['message'] === 'string' &&
    (HISTORY_ERROR_CODES as readonly unknown[]).includes(v['code'])
  );
}
