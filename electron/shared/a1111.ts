/**
 * The AUTOMATIC1111 "infotext": the `parameters` text that A1111 (and Forge, SD.Next, Civitai…) write
 * into PNGs and read back. Pure TS, so the renderer can show and paste it too.
 *
 *   <prompt, any number of lines>
 *   Negative prompt: <negative prompt, any number of lines>
 *   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x512, Model hash: abcd1234, Model: name
 *
 * The format and the parser follow A1111's modules/infotext_utils.py (`create_infotext`, `quote`,
 * `parse_generation_parameters`): values with a comma, colon or newline are JSON-quoted; the last line
 * holds the settings only if at least 3 `Key: value` pairs are found in it; the "Negative prompt:" line
 * is left out when the negative prompt is empty.
 */
import type { GenerationMode, GenerationParams, HiresParams, RegionParams, SamplerName } from './generation.js';
import { DEFAULT_EMPHASIS, DEFAULT_HIRES_SCALE, DEFAULT_HIRES_UPSCALER, EMPHASIS_MODES, MAX_AESTHETIC_SCORE, MIN_AESTHETIC_SCORE } from './generation-limits.js';

/** Our sampler names as A1111 shows them (its `samplers_k_diffusion` / `samplers_data_compvis` labels). */
export const A1111_SAMPLER_NAMES: Readonly<Record<SamplerName, string>> = {
  euler: 'Euler',
  euler_a: 'Euler a',
  ddim: 'DDIM',
  pndm: 'PLMS',
  dpmpp_2m: 'DPM++ 2M',
  dpmpp_2m_karras: 'DPM++ 2M Karras',
  lcm: 'LCM',
};

/** A1111's "Model hash" is the first 10 hex digits of the sha256 of the weights (its "AutoV2" hash). */
export const A1111_MODEL_HASH_LENGTH = 10;

const NEGATIVE_PROMPT_PREFIX = 'Negative prompt:';
/** Our own setting (A1111 has no layout mode): the content hash of a layout run's label map. */
export const LABEL_MAP_HASH_KEY = 'Label map hash';
/** A1111's `re_param`: `Key: value` or `Key: "json string"`, separated by commas. */
const SETTING_PATTERN = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
/** A1111 treats the last line as settings only when it holds at least this many pairs. */
const MIN_SETTINGS_ON_LAST_LINE = 3;
const SIZE_PATTERN = /^(\d+)x(\d+)$/;

/** A1111's `quote`: a value containing a comma, newline or colon is written as a JSON string. */
function quote(value: string): string {
  if (!value.includes(',') && !value.includes('\n') && !value.includes(':')) return value;
  return JSON.stringify(value);
}

function unquote(value: string): string {
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'string') return parsed;
    } catch {
      // not valid JSON after all: A1111 keeps such a value as written
    }
  }
  return value;
}

/** A1111's infotext key for the LoRAs a run used (extensions-builtin/Lora): `"alias: hash12, alias: hash12"`. */
export const LORA_HASHES_KEY = 'Lora hashes';

export const CLIP_SKIP_KEY = 'Clip skip';
/** A1111's hires fix keys (processing.py `StableDiffusionProcessingTxt2Img.init`), spelled as it writes them. */
export const HIRES_UPSCALE_KEY = 'Hires upscale';
export const HIRES_RESIZE_KEY = 'Hires resize';
export const HIRES_STEPS_KEY = 'Hires steps';
export const HIRES_UPSCALER_KEY = 'Hires upscaler';
export const DENOISING_STRENGTH_KEY = 'Denoising strength';
/**
 * Our own setting (A1111 has regional prompts only in extensions, each with its own syntax): each region
 * as `<prompt> (area 41.2%, weight 0.7)`, joined by `; `. The masks are not in the text.
 */
export const REGIONS_KEY = 'Regions';
const REGION_ENTRY_PATTERN = /([\s\S]+?) \(area (\d+(?:\.\d+)?)%, weight (\d+(?:\.\d+)?)\)(?:; |$)/gy;

/** The `Regions` value for these regions. */
export function formatRegions(regions: readonly RegionParams[]): string {
  return regions.map((r) => `${r.prompt} (area ${Math.round(r.area * 1000) / 10}%, weight ${r.weight})`).join('; ');
}

/** Reads a `Regions` value back; null when it isn't one we wrote. */
export function parseRegions(value: string): RegionParams[] | null {
  const out: RegionParams[] = [];
  REGION_ENTRY_PATTERN.lastIndex = 0;
  let end = 0;
  for (const m of value.matchAll(REGION_ENTRY_PATTERN)) {
    out.push({ prompt: m[1]!, area: Math.round(Number(m[2]) * 10) / 1000, weight: Number(m[3]) });
    end = m.index + m[0].length;
  }
  return out.length > 0 && end === value.length ? out : null;
}
/**
 * A1111's soft inpainting switch (extensions-builtin/soft-inpainting). Our soft inpainting is differential
 * diffusion, not A1111's per-step mask power: we write only this key, and read it (A1111's own knobs,
 * "Soft inpainting schedule bias" and the rest, are kept in `settings` but do not apply to our method).
 */
export const SOFT_INPAINTING_KEY = 'Soft inpainting enabled';
export const TI_HASHES_KEY = 'TI hashes';
/** A1111's emphasis option, written when it is not Original and a prompt has brackets (sd_hijack_clip.py `forward`). */
export const EMPHASIS_KEY = 'Emphasis';
/** Written as `Pad conds: True` when the shorter of prompt and negative was padded (sd_samplers_kdiffusion.py). */
export const PAD_CONDS_KEY = 'Pad conds';
/**
 * Our own settings for an SDXL refiner's aesthetic scores: A1111 and Forge keep them as options
 * ("SDXL high / low aesthetic score", `sdxl_refiner_high/low_aesthetic_score`) that no infotext records,
 * so the names are diffusers' (`aesthetic_score`, `negative_aesthetic_score`) in A1111's key style.
 */
export const AESTHETIC_SCORE_KEY = 'Aesthetic score';
export const NEGATIVE_AESTHETIC_SCORE_KEY = 'Negative aesthetic score';

/** A1111's "name: hash, …" lists (Lora hashes, TI hashes): `:` and `,` leave the names. */
function hashList(items: readonly { name: string; hash: string }[]): string {
  return items.map((l) => `${l.name.replace(/[:,]/g, '')}: ${l.hash}`).join(', ');
}

/** The `Lora hashes` setting for `formatA1111Parameters`' extra (empty when no LoRA); `:` and `,` leave the names, as in A1111. */
export function loraHashesSetting(loras: readonly { name: string; hash: string }[]): Record<string, string> {
  if (loras.length === 0) return {};
  return { [LORA_HASHES_KEY]: hashList(loras) };
}

/** Reads `Lora hashes` back: name → hash, in order. */
export function parseLoraHashes(value: string | undefined): { name: string; hash: string }[] {
  if (!value) return [];
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.includes(':'))
    .map((part) => {
      const i = part.lastIndexOf(':');
      return { name: part.slice(0, i).trim(), hash: part.slice(i + 1).trim() };
    });
}

export interface A1111Model {
  /** Shown as "Model" (A1111 shows the checkpoint's file name without extension). */
  name?: string;
  /** Our content hash (hex); shortened to A1111's 10 digits. */
  hash?: string;
}

/**
 * Formats parameters as an A1111 infotext. `extra` settings are appended in order (e.g. a Version).
 * Denoising strength is written for img2img and inpaint, Mask blur for inpaint, as A1111 does. A layout
 * run's label map goes in `extra` as `Label map hash` (the history store adds it), which tells the mode back.
 */
export function formatA1111Parameters(
  params: GenerationParams,
  model: A1111Model = {},
  extra: Record<string, string | number> = {},
): string {
  const settings: Array<[string, string | number]> = [
    ['Steps', params.steps],
    ['Sampler', A1111_SAMPLER_NAMES[params.sampler]],
    ['CFG scale', params.cfg],
    ['Seed', params.seed],
    ['Size', `${params.width}x${params.height}`],
  ];
  if (model.hash) settings.push(['Model hash', model.hash.slice(0, A1111_MODEL_HASH_LENGTH)]);
  if (model.name) settings.push(['Model', model.name]);
  // Only the modes that start from an image: a layout run draws from noise, like txt2img.
  if (params.mode === 'img2img' || params.mode === 'inpaint') settings.push([DENOISING_STRENGTH_KEY, params.strength]);
  // Hires fix: its strength is the txt2img run's "Denoising strength".
  if (params.mode === 'txt2img' && params.hires) settings.push([DENOISING_STRENGTH_KEY, params.hires.strength]);
  // A1111 writes Clip skip only when it is not 1, and the embeddings a prompt used as "TI hashes".
  if (params.clipSkip !== undefined && params.clipSkip > 1) settings.push([CLIP_SKIP_KEY, params.clipSkip]);
  if (params.mode === 'inpaint') settings.push(['Mask blur', params.maskBlur]);
  if (params.mode === 'inpaint' && params.softInpaint) settings.push([SOFT_INPAINTING_KEY, 'True']);
  if (params.embeddings && params.embeddings.length > 0) settings.push([TI_HASHES_KEY, hashList(params.embeddings)]);
  if (params.mode === 'txt2img' && params.hires) settings.push(...hiresSettings(params.hires));
  if (params.regions && params.regions.length > 0) settings.push([REGIONS_KEY, formatRegions(params.regions)]);
  const brackets = /[([]/.test(params.prompt) || /[([]/.test(params.negativePrompt);
  if (params.emphasis !== undefined && params.emphasis !== DEFAULT_EMPHASIS && brackets) settings.push([EMPHASIS_KEY, params.emphasis]);
  if (params.padConds) settings.push([PAD_CONDS_KEY, 'True']);
  if (params.aestheticScore !== undefined) settings.push([AESTHETIC_SCORE_KEY, params.aestheticScore]);
  if (params.negativeAestheticScore !== undefined) settings.push([NEGATIVE_AESTHETIC_SCORE_KEY, params.negativeAestheticScore]);
  for (const [k, v] of Object.entries(extra)) settings.push([k, v]);

  const settingsLine = settings.map(([k, v]) => `${k}: ${quote(String(v))}`).join(', ');
  const negative = params.negativePrompt === '' ? '' : `\n${NEGATIVE_PROMPT_PREFIX} ${params.negativePrompt}`;
  return `${params.prompt}${negative}\n${settingsLine}`;
}

/**
 * A1111's hires keys in its order: "Hires upscale" only without a resize, "Hires resize" with one,
 * "Hires steps" only when not 0 (0 = the first pass's), "Hires upscaler" always.
 */
function hiresSettings(h: HiresParams): Array<[string, string | number]> {
  const out: Array<[string, string | number]> = [];
  if (h.resizeWidth === 0 && h.resizeHeight === 0) out.push([HIRES_UPSCALE_KEY, h.scale]);
  else out.push([HIRES_RESIZE_KEY, `${h.resizeWidth}x${h.resizeHeight}`]);
  if (h.steps !== 0) out.push([HIRES_STEPS_KEY, h.steps]);
  out.push([HIRES_UPSCALER_KEY, h.upscaler]);
  return out;
}

/**
 * Reads a hires fix back as A1111's paste does: on when "Denoising strength" is there with "Hires upscale",
 * "Hires upscaler" or "Hires resize" (A1111 also turns it on for any pasted img2img text, through the
 * "Hires resize-1" it always inserts; we don't). Missing values take A1111's defaults.
 */
function parseHires(settings: Record<string, string>): HiresParams | undefined {
  const strength = toNumber(settings[DENOISING_STRENGTH_KEY]);
  const resize = SIZE_PATTERN.exec(settings[HIRES_RESIZE_KEY] ?? '');
  if (strength === undefined || (settings[HIRES_UPSCALE_KEY] === undefined && settings[HIRES_UPSCALER_KEY] === undefined && !resize)) return undefined;
  return {
    upscaler: settings[HIRES_UPSCALER_KEY] ?? DEFAULT_HIRES_UPSCALER,
    scale: toNumber(settings[HIRES_UPSCALE_KEY]) ?? DEFAULT_HIRES_SCALE,
    resizeWidth: resize ? Number(resize[1]) : 0,
    resizeHeight: resize ? Number(resize[2]) : 0,
    steps: toInteger(settings[HIRES_STEPS_KEY]) ?? 0,
    strength,
  };
}

export interface ParsedA1111Parameters {
  prompt: string;
  negativePrompt: string;
  /** Every `Key: value` of the settings line, unquoted, in order; unknown keys are kept. */
  settings: Record<string, string>;
  /** The values we understand, mapped to our names; absent when the text doesn't say (or says something we can't use). */
  params: Partial<GenerationParams>;
  /** The mode as far as the settings tell: layout with a Label map hash, inpaint with a Mask blur, img2img with a Denoising strength (and no hires fix). */
  mode: GenerationMode;
  model: { name?: string; hash?: string };
  /** The sampler as written, also when it has no counterpart among ours. */
  samplerLabel?: string;
  /** `Lora hashes`: the LoRAs the prompt's tags applied, by the name the tag used, with A1111's short hash. */
  loras: { name: string; hash: string }[];
}

const SAMPLERS_BY_LABEL: ReadonlyMap<string, SamplerName> = new Map(
  Object.entries(A1111_SAMPLER_NAMES).map(([ours, label]) => [label.toLowerCase(), ours as SamplerName]),
);

function toInteger(v: string | undefined): number | undefined {
  if (v === undefined || !/^-?\d+$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

function toNumber(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** A1111's newer versions split "DPM++ 2M Karras" into "Sampler: DPM++ 2M" + "Schedule type: Karras". */
function mapSampler(label: string, scheduleType: string | undefined): SamplerName | undefined {
  const key = label.trim().toLowerCase();
  if (key === 'dpm++ 2m' && scheduleType?.trim().toLowerCase() === 'karras') return 'dpmpp_2m_karras';
  return SAMPLERS_BY_LABEL.get(key);
}

/** Parses an A1111 infotext, as A1111's own `parse_generation_parameters` does. */
export function parseA1111Parameters(text: string): ParsedA1111Parameters {
  const lines = text.trim().replace(/\r\n?/g, '\n').split('\n');
  let lastLine = lines.pop() ?? '';
  if ([...lastLine.matchAll(SETTING_PATTERN)].length < MIN_SETTINGS_ON_LAST_LINE) {
    lines.push(lastLine);
    lastLine = '';
  }

  const promptLines: string[] = [];
  const negativeLines: string[] = [];
  let inNegative = false;
  for (const raw of lines) {
    let line = raw.trim();
    if (line.startsWith(NEGATIVE_PROMPT_PREFIX)) {
      inNegative = true;
      line = line.slice(NEGATIVE_PROMPT_PREFIX.length).trim();
    }
    (inNegative ? negativeLines : promptLines).push(line);
  }

  const settings: Record<string, string> = {};
  for (const match of lastLine.matchAll(SETTING_PATTERN)) {
    const key = match[1]!.trim();
    settings[key] = unquote(match[2]!.trim());
  }

  const params: Partial<GenerationParams> = {
    prompt: promptLines.join('\n'),
    negativePrompt: negativeLines.join('\n'),
  };
  const steps = toInteger(settings['Steps']);
  if (steps !== undefined) params.steps = steps;
  const cfg = toNumber(settings['CFG scale']);
  if (cfg !== undefined) params.cfg = cfg;
  const seed = toInteger(settings['Seed']);
  if (seed !== undefined) params.seed = seed;
  const size = SIZE_PATTERN.exec(settings['Size'] ?? '');
  if (size) {
    params.width = Number(size[1]);
    params.height = Number(size[2]);
  }
  const strength = toNumber(settings['Denoising strength']);
  if (strength !== undefined) params.strength = strength;
  const maskBlur = toNumber(settings['Mask blur']);
  if (maskBlur !== undefined) params.maskBlur = maskBlur;
  // A1111 reads a missing Clip skip as 1; we leave 1 out of params, as a run with clip skip 1 does.
  const clipSkip = toInteger(settings[CLIP_SKIP_KEY]);
  if (clipSkip !== undefined && clipSkip > 1) params.clipSkip = clipSkip;
  const embeddings = parseLoraHashes(settings[TI_HASHES_KEY]);
  if (embeddings.length > 0) params.embeddings = embeddings;
  const regions = settings[REGIONS_KEY] !== undefined ? parseRegions(settings[REGIONS_KEY]) : null;
  if (regions) params.regions = regions;
  // Missing means Original (A1111's default); an unknown value falls back to Original too (sd_emphasis.get_current_option).
  const emphasis = EMPHASIS_MODES.find((m) => m === settings[EMPHASIS_KEY]?.trim());
  if (emphasis !== undefined && emphasis !== DEFAULT_EMPHASIS) params.emphasis = emphasis;
  if (settings[PAD_CONDS_KEY]?.trim() === 'True') params.padConds = true;
  // Out of range: kept in `settings` only (a refiner's time ids take 0 to 10).
  const score = (key: string): number | undefined => {
    const v = toNumber(settings[key]);
    return v !== undefined && v >= MIN_AESTHETIC_SCORE && v <= MAX_AESTHETIC_SCORE ? v : undefined;
  };
  const aestheticScore = score(AESTHETIC_SCORE_KEY);
  if (aestheticScore !== undefined) params.aestheticScore = aestheticScore;
  const negativeAestheticScore = score(NEGATIVE_AESTHETIC_SCORE_KEY);
  if (negativeAestheticScore !== undefined) params.negativeAestheticScore = negativeAestheticScore;
  const samplerLabel = settings['Sampler'];
  if (samplerLabel !== undefined) {
    const sampler = mapSampler(samplerLabel, settings['Schedule type']);
    if (sampler !== undefined) params.sampler = sampler;
  }

  // Hires fix writes a Denoising strength in txt2img too; its "Hires upscale"/"Hires steps" give it away.
  const hasHires = Object.keys(settings).some((k) => k.startsWith('Hires'));
  const mode: GenerationMode =
    settings[LABEL_MAP_HASH_KEY] !== undefined
      ? 'layout'
      : settings['Mask blur'] !== undefined
        ? 'inpaint'
        : strength !== undefined && !hasHires
          ? 'img2img'
          : 'txt2img';
  params.mode = mode;
  if (mode === 'inpaint' && settings[SOFT_INPAINTING_KEY]?.toLowerCase() === 'true') params.softInpaint = true;
  const hires = mode === 'txt2img' ? parseHires(settings) : undefined;
  if (hires) {
    params.hires = hires;
    // In a hires txt2img text the strength is the second pass's, not the run's.
    delete params.strength;
  }

  const result: ParsedA1111Parameters = {
    prompt: params.prompt ?? '',
    negativePrompt: params.negativePrompt ?? '',
    settings,
    params,
    mode,
    model: {},
    loras: parseLoraHashes(settings[LORA_HASHES_KEY]),
  };
  if (settings['Model'] !== undefined) result.model.name = settings['Model'];
  if (settings['Model hash'] !== undefined) result.model.hash = settings['Model hash'];
  if (samplerLabel !== undefined) result.samplerLabel = samplerLabel;
  return result;
}
