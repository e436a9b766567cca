/**
 * File paths that clients send (export folder, output folder, import paths, model folders) are checked
 * for the platform the host runs on. The contract's schemas (electron/shared) accept both POSIX and
 * Windows forms because shared code knows no platform; here, on Linux, `C:\x` is a relative name that
 * would resolve against the server's working folder (and write into the app's own folder), and on
 * Windows `/x` is relative to the current drive. Both are refused before any handler sees them.
 */
import { posix, win32 } from 'node:path';
import type { z } from 'zod';
import { InvalidRequestError } from '../shared/errors.js';
import { FILE_PATH_META, requestSchemas, type SchemaChannel } from '../shared/contract-schemas.js';

/** A drive root (`C:\`, `C:/`) or a UNC share (`\\server\share`): what Windows resolves without a current folder. */
const WINDOWS_FULL_PATH = /^(?:[A-Za-z]:[\\/]|[\\/]{2}[^\\/]+[\\/][^\\/]+)/;

/** Why `path` is not a full path on `platform`, or null when it is one. */
export function clientPathProblem(path: string, platform: NodeJS.Platform = process.platform): string | null {
  const absolute = platform === 'win32' ? win32.isAbsolute(path) && WINDOWS_FULL_PATH.test(path) : posix.isAbsolute(path);
  if (absolute) return null;
  const example = platform === 'win32' ? 'C:\\Users\\me\\Pictures' : '/home/me/Pictures';
  return `is not an absolute path on this computer (${platform === 'win32' ? 'Windows' : 'a POSIX system'}); give a full path such as ${example}`;
}

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  options?: z.ZodType[];
}

function isFilePathSchema(schema: z.ZodType): boolean {
  return (schema.meta() as { kind?: string } | undefined)?.kind === FILE_PATH_META.kind;
}

/** Walks a parsed value beside its schema and collects the strings whose schema is a file path. */
function collect(schema: z.ZodType, value: unknown, field: string[], out: Array<{ field: string; path: string }>): void {
  if (value === undefined || value === null) return;
  if (isFilePathSchema(schema)) {
    if (typeof value === 'string') out.push({ field: field.join('.'), path: value });
    return;
  }
  const def = schema.def as unknown as ZodDef;
  switch (def.type) {
    case 'object':
      if (typeof value === 'object') {
        for (const [key, child] of Object.entries(def.shape ?? {})) collect(child, (value as Record<string, unknown>)[key], [...field, key], out);
      }
      return;
    case 'array':
      if (Array.isArray(value) && def.element) value.forEach((item, i) => collect(def.element!, item, [...field, String(i)], out));
      return;
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'nonoptional':
      if (def.innerType) collect(def.innerType, value, field, out);
      return;
    case 'pipe':
      if (def.in) collect(def.in, value, field, out);
      return;
    case 'union':
      for (const option of def.options ?? []) collect(option, value, field, out);
      return;
    default:
      return;
  }
}

/** Every file path in a parsed request, with its field (`paths.1`, `control.controlnetPath`). */
export function clientPathsOf(channel: SchemaChannel, request: unknown): Array<{ field: string; path: string }> {
  const out: Array<{ field: string; path: string }> = [];
  collect(requestSchemas[channel] as z.ZodType, request, [], out);
  // A union may list the same field twice; each path is reported once.
  return out.filter((p, i) => out.findIndex((q) => q.field === p.field) === i);
}

/** Throws E_INVALID_REQUEST naming the field when a request carries a path that is not a full path here. */
export function assertClientPaths(channel: SchemaChannel, request: unknown, platform: NodeJS.Platform = process.platform): void {
  for (const { field, path } of clientPathsOf(channel, request)) {
    const problem = clientPathProblem(path, platform);
    if (problem) throw new InvalidRequestError(`${channel}: ${field}: ${problem}`);
  }
}
