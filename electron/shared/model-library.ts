/**
 * The model library's data: what the studio knows about each model folder, download requests and their
 * progress events, and the library's errors. Plain serializable types (sent over IPC as they are).
 */
import { StudioError } from './errors.js';
import type { ExecutionProviderName, GenerationMode } from './generation.js';
import type { ModelFamily, ModelInfo, ModelKind, Precision, PredictionType } from './model.js';

/**
 * Where a model came from, which also says who owns its folder:
 * - `bundled`: ships with the app (native-models/); read-only, never removed.
 * - `referenced`: a folder the person imported in place; removing forgets it but never deletes it.
 * - `copied`: imported by copying into the app's models folder; removing deletes the copy.
 * - `downloaded`: fetched into the app's models folder; removing deletes it.
 */
export type ModelOrigin = 'bundled' | 'referenced' | 'copied' | 'downloaded';
export const MODEL_ORIGINS: readonly ModelOrigin[] = ['bundled', 'referenced', 'copied', 'downloaded'];

export interface LibraryModel {
  /** Stable key: letters, digits, ". _ -" and spaces, at most 128 characters (the contract's model id rule). */
  id: string;
  name: string;
  origin: ModelOrigin;
  /** The folder imported (path) or the URL(s) downloaded from; for bundled models, the bundled folder. */
  source: string;
  /** The folder the engine opens. */
  dir: string;
  /** Bundled models can't be removed. */
  readOnly: boolean;
  /** False when the folder has gone (a referenced folder moved or deleted): shown as missing. */
  available: boolean;
  isDefault: boolean;
  kind: ModelKind;
  family: ModelFamily;
  predictionType: PredictionType;
  precision: Precision;
  exporter: ModelInfo['exporter'];
  nativeResolution: { width: number; height: number };
  supports: GenerationMode[];
  /** Execution providers the model's sessions have run on (from imports and generations). */
  providers: ExecutionProviderName[];
  sizeBytes: number;
  /** sha256 over the folder's files (see model-library/content-hash.ts for the exact definition). */
  contentHash: string;
  /** ms since the epoch; bundled models get the time they were first seen. */
  addedAt: number;
}

/** Import a model folder, either in place (`copy: false`) or copied into the app's models folder. */
export interface ModelImportRequest {
  path: string;
  copy: boolean;
  /** Display name; default: the folder's name. */
  name?: string;
}

/** One file of a model folder to download. `path` is relative to the model folder, with `/`. */
export interface DownloadFileSpec {
  path: string;
  url: string;
  /** Expected size in bytes, checked when known (else the server's Content-Length is used, if any). */
  size?: number;
  /** Expected sha256 (lowercase hex), checked when known. */
  sha256?: string;
}

/**
 * A download: a manifest of files, or a plain list of file URLs (for example a Hugging Face repo's ONNX
 * branch, `…/resolve/onnx/unet/model.onnx`), whose paths are the URL paths below their common folder.
 */
export type ModelDownloadRequest =
  | { name: string; files: DownloadFileSpec[] }
  | { name: string; urls: string[] };

export type DownloadPhase = 'checking' | 'downloading' | 'verifying' | 'installing' | 'done' | 'failed' | 'cancelled';

/** Streamed while a download runs (throttled), and once at the end with the final phase. */
export interface ModelDownloadProgress {
  downloadId: string;
  name: string;
  phase: DownloadPhase;
  /** Bytes on disk so far, resumed bytes included. */
  receivedBytes: number;
  /** Null while some file's size is unknown. */
  totalBytes: number | null;
  /** 0–100, null while the total is unknown. */
  percent: number | null;
  /** Over the last few seconds. */
  bytesPerSecond: number;
  etaSeconds: number | null;
  /** The file being fetched. */
  file: string | null;
  /** Set with phase 'done'. */
  modelId?: string;
  /** Set with phase 'failed'. */
  error?: { code: string; message: string };
}

/** A download that was not finished when the app stopped; `resume` continues it from the bytes on disk. */
export interface PendingDownload {
  downloadId: string;
  name: string;
  source: string;
  receivedBytes: number;
  totalBytes: number | null;
  createdAt: number;
}

export type ModelLibraryErrorCode =
  | 'E_DUPLICATE'
  | 'E_READ_ONLY'
  | 'E_NOT_FOUND'
  | 'E_DISK_FULL'
  | 'E_DOWNLOAD'
  | 'E_CHECKSUM'
  | 'E_INVALID_REQUEST'
  | 'E_IO'
  /** The library's tables were written by a newer Latent Studio. */
  | 'E_SCHEMA_TOO_NEW';

/** A library failure caused by input or environment (a duplicate, a bad URL, a full disk, a corrupt file). */
export class ModelLibraryError extends StudioError {
  override name = 'ModelLibraryError';
  constructor(
    override readonly code: ModelLibraryErrorCode,
    message: string,
    options?: { cause?: unknown; existingId?: string },
  ) {
    super(code, message, options);
    this.existingId = options?.existingId;
  }
  /** E_DUPLICATE: the model already in the library. */
  readonly existingId: string | undefined;
}
