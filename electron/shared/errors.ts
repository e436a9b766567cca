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

export function serializeError(err: unknown): SerializedError {
  if (err instanceof StudioError) return { name: err.name, code: err.code, message: err.message };
  if (isSerializedError(err)) return { name: err.name, code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { name: 'InternalError', code: 'E_INTERNAL', message };
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
