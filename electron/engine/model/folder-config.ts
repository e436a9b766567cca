/**
 * Reading a model folder's JSON files and the facts session metadata can give (static dims, float
 * types), shared by the per-module detectors (text-encoder.ts, unet.ts, vae.ts, controlnet.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFolderError } from '../../shared/errors.js';

export type JsonObject = Record<string, unknown>;

/** A JSON object file of the folder; a missing optional file is null, a broken one an error naming it. */
export function readJson(dir: string, rel: string, required: true): JsonObject;
export function readJson(dir: string, rel: string, required: false): JsonObject | null;
export function readJson(dir: string, rel: string, required: boolean): JsonObject | null {
  const file = join(dir, rel);
  if (!existsSync(file)) {
    if (required) throw new ModelFolderError('file is missing', rel);
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelFolderError(`not valid JSON (${(err as Error).message})`, rel, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ModelFolderError('expected a JSON object', rel);
  }
  return parsed as JsonObject;
}

/** A finite number from a config, else undefined. */
export function num(config: JsonObject | null, key: string): number | undefined {
  const v = config?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A static (numeric, positive) dimension of a session input/output shape, else undefined (symbolic). */
export function staticDim(shape: ReadonlyArray<number | string>, axis: number): number | undefined {
  const d = shape[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

export function isFloatType(t: string): boolean {
  return t === 'float32' || t === 'float16' || t === 'float64';
}
