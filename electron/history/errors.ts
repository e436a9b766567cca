/**
 * The one error class of the history store. Every user-facing failure (bad file, full disk, read-only
 * folder, unknown id) is a HistoryError with a code from HISTORY_ERROR_CODES; anything else that escapes
 * the store is a bug.
 */
import type { HistoryErrorCode, HistoryErrorData } from '../shared/history.js';

export class HistoryError extends Error {
  override readonly name = 'HistoryError' as const;
  readonly code: HistoryErrorCode;

  constructor(code: HistoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** What crosses IPC: Electron would pass only `message`. */
  toJSON(): HistoryErrorData {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/** Node's system error codes that mean "this location can't be written". */
const READ_ONLY_CODES = new Set(['EROFS', 'EACCES', 'EPERM']);
/** ENOSPC: no space left; EDQUOT: quota exceeded. */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Turns a file-system or SQLite error into a HistoryError that names what was being done.
 * A HistoryError passes through unchanged; anything that isn't an I/O error (a bug) is rethrown as is.
 */
export function toHistoryError(err: unknown, doing: string): HistoryError {
  if (err instanceof HistoryError) return err;
  const code = errorCode(err) ?? '';
  const detail = err instanceof Error ? err.message : String(err);
  if (READ_ONLY_CODES.has(code) || code.startsWith('SQLITE_READONLY')) {
    return new HistoryError('E_READ_ONLY', `Can't ${doing}: the history folder is read-only (${detail}).`, { cause: err });
  }
  if (DISK_FULL_CODES.has(code) || code === 'SQLITE_FULL') {
    return new HistoryError('E_DISK_FULL', `Can't ${doing}: the disk is full (${detail}).`, { cause: err });
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return new HistoryError('E_DB_CORRUPT', `Can't ${doing}: the history database is damaged (${detail}).`, { cause: err });
  }
  if (code === 'ENOENT') {
    return new HistoryError('E_NOT_FOUND', `Can't ${doing}: ${detail}.`, { cause: err });
  }
  if (code.startsWith('E') || code.startsWith('SQLITE_')) {
    return new HistoryError('E_IO', `Can't ${doing}: ${detail}.`, { cause: err });
  }
  // Not an I/O failure: a bug, which must not be disguised as a user-facing error.
  throw err;
}
