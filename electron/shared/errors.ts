/**
 * Errors that cross process boundaries. Electron's IPC and JSON keep only plain data, so every error
 * we mean to show a person is serialized as `{ name, code, message }` on purpose, and recognised again
 * by `name`/`code` (never by `instanceof`, which does not survive a boundary).
 *
 * `StudioError` is for problems caused by input or environment (a broken model folder, a bad request,
 * a cancelled job). A bug is any other Error: it is reported as `E_INTERNAL`.
 */

export type ErrorCode =
  | 'E_INVALID_REQUEST'
  | 'E_MODEL_FOLDER'
  | 'E_MODEL_RUNTIME'
  | 'E_UNSUPPORTED'
  | 'E_CANCELLED'
  | 'E_BAD_IMAGE'
  | 'E_NOT_FOUND'
  | 'E_IO'
  | 'E_DISK_FULL'
  | 'E_INTERNAL'
  | (string & {});

export interface SerializedError {
  name: string;
  code: ErrorCode;
  message: string;
}

export class StudioError extends Error {
  override name = 'StudioError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The engine's answer to a live frame that reuses a picture it no longer holds (its client then sends the picture). */
export const NO_LIVE_PICTURE = 'the engine holds no live picture to reuse';

/** A request that does not make sense (bad size, bad steps, unknown sampler): rejected before any work. */
export class InvalidRequestError extends StudioError {
  override name = 'InvalidRequestError';
  constructor(message: string) {
    super('E_INVALID_REQUEST', message);
  }
}

/** A model folder that is missing a file, has a non-ONNX file, wrong shapes, or an unknown scheduler. */
export class ModelFolderError extends StudioError {
  override name = 'ModelFolderError';
  constructor(
    message: string,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super('E_MODEL_FOLDER', file ? `${file}: ${message}` : message, options);
  }
}

/** The job was cancelled (between steps). */
export class CancelledError extends StudioError {
  override name = 'CancelledError';
  constructor(message = 'The job was cancelled.') {
    super('E_CANCELLED', message);
  }
}

/** An input image or mask that cannot be decoded. */
export class BadImageError extends StudioError {
  override name = 'BadImageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_BAD_IMAGE', message, options);
  }
}

/**
 * Absolute POSIX or Windows paths inside a message (`/home/me/x/y.onnx`, `C:\\a\\b.png`, `\\\\srv\\s\\c`):
 * a folder part followed by a last part without spaces or quotes.
 */
const ABSOLUTE_PATH_IN_TEXT = /(?:[A-Za-z]:[\\/]|\\\\|(?<![\w.~-])\/)(?:[^\s'"`<>|\\/]+[\\/])+([^\s'"`<>|\\/]*)/g;

/** Cuts every absolute path in `text` to `…/<last part>`: the file name says enough, the folders are the machine's business. */
export function redactPaths(text: string): string {
  return text.replace(ABSOLUTE_PATH_IN_TEXT, (_match, last: string) => `…/${last}`);
}

/** Node's file errors (`ENOENT`…) and better-sqlite3's (`SQLITE_…`): plain words, never the message (it holds the path). */
function systemError(err: Error & { code?: unknown; syscall?: unknown }): SerializedError | null {
  const code = typeof err.code === 'string' ? err.code : null;
  if (code === null) return null;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') {
    return { name: 'DiskFullError', code: 'E_DISK_FULL', message: 'The disk is full: free some space on the drive that holds the studio data (or the chosen folder), then try again.' };
  }
  if (code.startsWith('SQLITE_')) {
    return { name: 'StorageError', code: 'E_IO', message: `The studio's database could not be read or written (${code}).` };
  }
  if (!/^E[A-Z0-9]+$/.test(code) || typeof err.syscall !== 'string') return null;
  switch (code) {
    case 'ENOENT':
      return { name: 'NotFoundError', code: 'E_NOT_FOUND', message: `A file or folder the studio needed is missing (${code}).` };
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return { name: 'IoError', code: 'E_IO', message: `The studio is not allowed to write or read a file it needed (${code}).` };
    default:
      return { name: 'IoError', code: 'E_IO', message: `A file operation failed (${code}).` };
  }
}

/**
 * The error as data for a client. StudioErrors keep their words; file and database errors get plain
 * ones (E_DISK_FULL, E_NOT_FOUND, E_IO); anything else is a bug (E_INTERNAL), its paths cut short.
 */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof StudioError) return { name: err.name, code: err.code, message: err.message };
  // Before the serialized shape: a Node or SQLite error has a name, a code and a message too.
  if (typeof err === 'object' && err !== null) {
    const system = systemError(err as Error & { code?: unknown; syscall?: unknown });
    if (system) return system;
  }
  if (isSerializedError(err)) {
    const message = err.code === 'E_INTERNAL' ? redactPaths(err.message) : err.message;
    return { name: err.name, code: err.code, message };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { name: 'InternalError', code: 'E_INTERNAL', message: redactPaths(message) };
}

export function isSerializedError(value: unknown): value is SerializedError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SerializedError).name === 'string' &&
    typeof (value as SerializedError).code === 'string' &&
    typeof (value as SerializedError).message === 'string'
  );
}

export function isCancelled(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'E_CANCELLED';
}
