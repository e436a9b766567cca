/**
 * Payloads for contract tests: one valid example per channel, and a generator of payloads that are
 * bad by construction (wrong types, missing fields, unknown keys, huge strings, NaN, negative sizes,
 * path traversal in file fields), derived from the channel's zod schema so that a new field is fuzzed
 * without touching this file.
 */
import type { z } from 'zod';
import type { ChannelName, RequestInputs } from '../../../../electron/shared/contract.js';
import { FILE_PATH_META } from '../../../../electron/shared/contract-schemas.js';

const UUID = '0b5b8f46-4f2e-4a8f-9a39-1f4e1d1a2b3c';
const HASH = 'a'.repeat(64);
/** A 1×1 PNG (valid base64 of real PNG bytes). */
export const TINY_PNG_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC';

/** One valid request per channel (valid for the schema; the host may still answer "not found"). */
export const EXAMPLES: { [C in ChannelName]: RequestInputs[C] } = {
  generate: { mode: 'txt2img', prompt: 'a red fox', negativePrompt: '', seed: 1, steps: 4, cfg: 7, sampler: 'euler', width: 64, height: 64 },
  cancel: { jobId: UUID },
  'queue.list': {},
  'queue.reorder': { jobIds: [UUID] },
  'queue.clear': { includeRunning: false },
  'history.page': { filter: { favorite: true, mode: 'txt2img', view: 'active' }, cursor: null, limit: 10 },
  'history.search': { text: 'fox', limit: 5 },
  'history.get': { id: 1 },
  'history.lineage': { id: 1 },
  'history.counts': {},
  'history.setFavorite': { ids: [1, 2], favorite: true },
  'history.setTags': { id: 1, tags: ['fox'] },
  'history.delete': { ids: [1] },
  'history.restore': { ids: [1] },
  'history.purge': { ids: [1], deletedBefore: 0 },
  'history.import': { paths: ['/tmp/some.png'] },
  'history.export': { ids: [1], folder: '/tmp/export' },
  'history.image': { hash: HASH, thumbnail: true },
  'history.reveal': { id: 1 },
  'models.list': {},
  'models.info': { modelId: 'tiny-sd1' },
  'models.import': { path: '/models/tiny-sd1', copy: true, name: 'Tiny SD1' },
  'models.download': {
    name: 'tiny-sd1',
    files: [{ path: 'unet/model.onnx', url: 'https://example.com/repo/resolve/onnx/unet/model.onnx', size: 1024, sha256: HASH }],
  },
  'models.cancelDownload': { downloadId: HASH },
  'models.remove': { modelId: 'tiny-sd1' },
  'models.setDefault': { modelId: 'tiny-sd1' },
  'models.select': { modelId: 'tiny-sd1' },
  'models.convertCommand': { path: '/models/checkpoint.safetensors', fp16: true },
  'loras.list': { modelId: 'tiny-sd1' },
  'loras.restore': { prompt: 'a fox <lora:style:0.8>', loras: [{ name: 'style', hash: '0123456789ab' }] },
  'settings.get': {},
  'settings.set': { providers: ['cpu'], threads: 2, outputFolder: '/tmp/out' },
  'app.info': {},
  tokenize: { text: 'a red fox', modelId: 'tiny-sd1' },
  'embeddings.list': {},
  'live.frame': { prompt: 'a red fox', seed: 1, steps: 2, initImage: TINY_PNG_BASE64, mask: TINY_PNG_BASE64, modelId: 'tiny-sd1-inpaint' },
  'live.keep': { frameId: UUID },
  'live.stop': {},
};

/** mulberry32: a small seeded PRNG, so a failing payload can be reproduced from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One string of 1 MiB, shared: longer than every string limit but the image ones. */
const HUGE_STRING = 'x'.repeat(1024 * 1024);

interface Shape {
  base: z.ZodType;
  optional: boolean;
  nullable: boolean;
}

/** Strips optional/nullable/default wrappers. */
function unwrap(schema: z.ZodType): Shape {
  let s = schema;
  let optional = false;
  let nullable = false;
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType };
    if (def.type === 'optional' || def.type === 'default') optional = true;
    else if (def.type === 'nullable') nullable = true;
    else break;
    s = def.innerType!;
  }
  return { base: s, optional, nullable };
}

interface Checks {
  min?: number;
  max?: number;
  isInt?: boolean;
  minLength?: number;
  maxLength?: number;
}

function checksOf(schema: z.ZodType): Checks {
  const out: Checks = {};
  const s = schema as unknown as { minValue?: number | null; maxValue?: number | null; isInt?: boolean; minLength?: number | null; maxLength?: number | null };
  if (typeof s.minValue === 'number' && Number.isFinite(s.minValue)) out.min = s.minValue;
  if (typeof s.maxValue === 'number' && Number.isFinite(s.maxValue)) out.max = s.maxValue;
  if (s.isInt) out.isInt = true;
  if (typeof s.minLength === 'number') out.minLength = s.minLength;
  if (typeof s.maxLength === 'number') out.maxLength = s.maxLength;
  // Arrays keep their length limits as checks.
  for (const check of (schema.def as { checks?: Array<{ _zod: { def: { check: string; minimum?: number; maximum?: number } } }> }).checks ?? []) {
    const d = check._zod.def;
    if (d.check === 'min_length' && d.minimum !== undefined) out.minLength = d.minimum;
    if (d.check === 'max_length' && d.maximum !== undefined) out.maxLength = d.maximum;
  }
  return out;
}

function isFilePath(schema: z.ZodType): boolean {
  return (schema.meta() as { kind?: string } | undefined)?.kind === FILE_PATH_META.kind;
}

const pick = <T>(rng: () => number, list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;

/** Values that are invalid for the field's schema, whatever else the payload holds. */
function badValuesFor(field: Shape, example: unknown): unknown[] {
  const { base, nullable, optional } = field;
  const type = (base.def as { type: string }).type;
  const out: unknown[] = [];
  if (!nullable) out.push(null);
  if (!optional) out.push(undefined);
  switch (type) {
    case 'number': {
      const c = checksOf(base);
      out.push('12', true, {}, [], NaN, Infinity, -Infinity);
      if (c.isInt) out.push(1.5, 2 ** 60);
      if (c.min !== undefined) out.push(c.min - 1, -1e9);
      if (c.max !== undefined) out.push(c.max + 1, 1e300);
      break;
    }
    case 'string': {
      const c = checksOf(base);
      out.push(42, true, {}, ['x']);
      if (c.maxLength !== undefined && c.maxLength < HUGE_STRING.length) out.push(HUGE_STRING);
      if (c.minLength !== undefined && c.minLength > 0) out.push('');
      const format = (base.def as { format?: string }).format;
      const checks = (base.def as { checks?: Array<{ _zod: { def: { check: string } } }> }).checks ?? [];
      const hasPattern = format !== undefined || checks.some((check) => check._zod.def.check === 'string_format');
      if (isFilePath(base)) {
        out.push('../../etc/passwd', 'relative/path.png', '/tmp/../../etc/passwd', '/tmp/a\0b', 'C:\\models\\..\\..\\Windows', '\\\\server\\share\\..\\x');
      } else if (hasPattern && c.maxLength === undefined) {
        out.push('../../etc/passwd', '$(rm -rf /)');
      } else if (hasPattern) {
        // regex-checked ids, hashes, base64: none of these characters is allowed in any of them
        out.push('../../etc/passwd', '<script>', '%%%');
      }
      break;
    }
    case 'boolean':
      out.push('true', 1, 0, {}, []);
      break;
    case 'enum':
      out.push('bogus', '', 1, {}, String((base as unknown as { options: string[] }).options[0]).toUpperCase() + '!');
      break;
    case 'array': {
      const c = checksOf(base);
      out.push('x', 1, {}, true);
      if (c.minLength !== undefined && c.minLength > 0) out.push([]);
      const element = (base.def as unknown as { element: z.ZodType }).element;
      const sample = Array.isArray(example) && example.length > 0 ? example[0] : undefined;
      if (c.maxLength !== undefined && sample !== undefined) out.push(Array.from({ length: c.maxLength + 1 }, () => sample));
      for (const bad of badValuesFor({ ...unwrap(element), optional: false }, sample).slice(0, 8)) {
        if (bad !== undefined) out.push(sample === undefined ? [bad] : [sample, bad]);
      }
      break;
    }
    case 'object': {
      out.push('x', 1, [], true, { unknownKey: 1 });
      const shape = (base as unknown as { shape: Record<string, z.ZodType> }).shape;
      for (const [key, child] of Object.entries(shape)) {
        for (const bad of badValuesFor(unwrap(child), (example as Record<string, unknown> | undefined)?.[key]).slice(0, 4)) {
          if (bad !== undefined) out.push({ ...(example as object), [key]: bad });
        }
      }
      break;
    }
    default:
      out.push(Symbol.for('never valid'));
  }
  return out;
}

export interface BadPayload {
  payload: unknown;
  /** The field the rejection must name ('(request)' for the payload as a whole). */
  field: string;
  what: string;
}

/** `count` payloads that the channel's schema must reject. */
export function badPayloads(schema: z.ZodType, example: Record<string, unknown>, count: number, rng: () => number): BadPayload[] {
  const shape = (schema as unknown as { shape: Record<string, z.ZodType> }).shape;
  const fields = Object.entries(shape).map(([key, s]) => ({ key, field: unwrap(s) }));
  const required = fields.filter((f) => !f.field.optional);
  const notObjects: unknown[] = [null, undefined, 42, 'generate', [], [example], true, NaN];
  const out: BadPayload[] = [];
  while (out.length < count) {
    const kind = rng();
    if (kind < 0.1 || fields.length === 0) {
      if (fields.length === 0 && rng() < 0.6) {
        const key = pick(rng, ['x', 'constructor', 'prompt', '../etc', HUGE_STRING.slice(0, 5000)]);
        out.push({ payload: { [key]: pick(rng, [1, 'a', null, {}]) }, field: '(request)', what: `unknown key ${key.slice(0, 20)}` });
      } else {
        out.push({ payload: pick(rng, notObjects), field: '(request)', what: 'not an object' });
      }
    } else if (kind < 0.2) {
      out.push({ payload: { ...example, [`extra${Math.floor(rng() * 1000)}`]: 'x' }, field: '(request)', what: 'unknown key' });
    } else if (kind < 0.3 && required.length > 0) {
      const { key } = pick(rng, required);
      const payload = { ...example };
      delete payload[key];
      out.push({ payload, field: key, what: `missing ${key}` });
    } else {
      const { key, field } = pick(rng, fields);
      const bad = badValuesFor(field, example[key]).filter((v) => v !== undefined || !field.optional);
      const value = pick(rng, bad);
      const payload = { ...example, [key]: value };
      if (value === undefined) delete payload[key];
      out.push({ payload, field: key, what: `${key} = ${describe(value)}` });
    }
  }
  return out;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 30));
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return `array(${value.length})`;
  return JSON.stringify(value)?.slice(0, 40) ?? String(value);
}
