/**
 * A tokenizer file (vocab.json, merges.txt, special_tokens_map.json, tokenizer_config.json) that is
 * missing or does not hold what CLIP's tokenizer needs. This is a problem with a model folder, not a
 * bug: the message names the file and what is wrong with it.
 *
 * Recognise it by `name` (see `isTokenizerFileError`), which survives IPC and JSON where `instanceof`
 * does not. `code` is the model-folder error code of electron/shared/errors.ts, so the host can
 * serialize it like any other model-folder problem.
 */
export class TokenizerFileError extends Error {
  override readonly name = 'TokenizerFileError';
  readonly code = 'E_MODEL_FOLDER';

  constructor(
    /** The file as the caller named it (a path, or a bare file name for in-memory data). */
    readonly file: string,
    /** What is wrong with it, without the file name. */
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

export function isTokenizerFileError(error: unknown): error is TokenizerFileError {
  return error instanceof Error && error.name === 'TokenizerFileError';
}
