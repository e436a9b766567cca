/**
 * A LoRA file's modules, whatever tool wrote it (wave2-reference §3a–3c):
 *
 * - kohya-ss sd-scripts: `<lora_name>.lora_down.weight` [r, in(, kh, kw)], `.lora_up.weight` [out, r(, 1, 1)],
 *   `.alpha` (scalar), where lora_name = `lora_unet_` / `lora_te_` / `lora_te1_` / `lora_te2_` + the module
 *   path with every `.` as `_`. SD 1.x/2.x U-Nets use diffusers module names, SDXL the LDM (sgm) names, which
 *   are mapped to diffusers names here (ldm-names.ts). LoCon conv layers are the same keys with 4-D tensors.
 * - diffusers / PEFT: `unet.<path>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r] (also
 *   `text_encoder.` / `text_encoder_2.`; the newer `.lora.down/up` and `.lora_linear_layer.down/up` and the
 *   old attention-processor `…processor.to_q_lora.down` spellings). No per-module alpha: scale is
 *   lora_alpha / r from the LoraConfig saved in the `lora_adapter_metadata` metadata, else 1 (diffusers).
 *
 * Every module is keyed by its path with `.` as `_` (kohya's spelling), which is how the ONNX side is
 * indexed too (onnx-targets.ts). Keys this reader does not understand (LoHa, LoKr, Tucker `lora_mid`, DoRA)
 * are counted with their reason, never dropped silently.
 */
import { basename, extname } from 'node:path';
import { LoraFileError, SafetensorsFile } from './safetensors.js';
import { ldmToDiffusersKey } from './ldm-names.js';

/** Which ONNX submodel a module belongs to. */
export type LoraComponent = 'unet' | 'text_encoder' | 'text_encoder_2';

export interface LoraModule {
  component: LoraComponent;
  /** The module path with every `.` as `_`, e.g. `down_blocks_0_attentions_0_proj_in`. */
  key: string;
  /** The file's own name for it (for messages). */
  source: string;
  up: Float32Array;
  /** [out, r] or [out, r, 1, 1]. */
  upShape: number[];
  down: Float32Array;
  /** [r, in] or [r, in, kh, kw]. */
  downShape: number[];
  /** alpha / rank (PEFT: lora_alpha / r, or / √r with rsLoRA). */
  scale: number;
}

/** The model family a LoRA says it was trained for, when it says. */
export type { LoraFamily } from '../../shared/loras.js';
import type { LoraFamily } from '../../shared/loras.js';

export interface LoraFile {
  path: string;
  /** File name without extension: the name used in `<lora:name:…>`. */
  name: string;
  format: 'kohya' | 'peft';
  modules: LoraModule[];
  /** Keys that were not used, by reason ("LoHa", "DoRA", …) → count. */
  unsupported: Record<string, number>;
  family: LoraFamily;
  /** Why `family` was decided (metadata key or key shape), for the refusal message. */
  familyReason: string;
  metadata: Readonly<Record<string, string>>;
  /** A1111's short hash (`Lora hashes:` infotext). */
  shortHash: string;
}

const KOHYA_PREFIXES: [string, LoraComponent][] = [
  ['lora_unet_', 'unet'],
  ['lora_te1_', 'text_encoder'],
  ['lora_te2_', 'text_encoder_2'],
  ['lora_te_', 'text_encoder'],
];
const PEFT_PREFIXES: [string, LoraComponent][] = [
  ['unet.', 'unet'],
  ['text_encoder_2.', 'text_encoder_2'],
  ['text_encoder.', 'text_encoder'],
];

export function loraName(path: string): string {
  return basename(path, extname(path));
}

export async function readLoraFile(path: string): Promise<LoraFile> {
  const file = SafetensorsFile.read(path);
  const names = [...file.tensors.keys()];
  if (names.length === 0) throw new LoraFileError('holds no tensors', path);
  const isKohya = names.every((n) => KOHYA_PREFIXES.some(([p]) => n.startsWith(p)));
  const parsed = isKohya ? parseKohya(file) : parsePeft(file);
  if (parsed.modules.length === 0) {
    const skipped = Object.entries(parsed.unsupported)
      .filter(([why]) => why !== UNKNOWN_KEY)
      .map(([why, n]) => `${n} ${why}`);
    throw new LoraFileError(
      skipped.length > 0
        ? `has no LoRA modules this app can apply (${skipped.join(', ')})`
        : `is not a LoRA: none of its ${names.length} tensors is a lora_down/lora_up or lora_A/lora_B pair (first: "${names[0]}")`,
      path,
    );
  }
  const { family, reason } = detectFamily(file.metadata, parsed.modules);
  return {
    path,
    name: loraName(path),
    format: isKohya ? 'kohya' : 'peft',
    modules: parsed.modules,
    unsupported: parsed.unsupported,
    family,
    familyReason: reason,
    metadata: file.metadata,
    shortHash: await file.shortHash(),
  };
}

const UNKNOWN_KEY = 'unknown key';

interface Parsed {
  modules: LoraModule[];
  unsupported: Record<string, number>;
}

function count(map: Record<string, number>, why: string): void {
  map[why] = (map[why] ?? 0) + 1;
}

/** Reasons for keys that are LoRA-like but not plain low-rank pairs. */
function unsupportedReason(suffix: string): string | null {
  if (suffix.startsWith('hada_')) return 'LoHa';
  if (suffix.startsWith('lokr_')) return 'LoKr';
  if (suffix.startsWith('lora_mid')) return 'Tucker (lora_mid)';
  if (suffix === 'dora_scale') return 'DoRA';
  if (suffix.startsWith('diff') || suffix === 'weight' || suffix === 'bias') return 'full weight (diff)';
  return null;
}

function parseKohya(file: SafetensorsFile): Parsed {
  const groups = new Map<string, Map<string, string>>();
  for (const key of file.tensors.keys()) {
    const dot = key.indexOf('.');
    const name = dot < 0 ? key : key.slice(0, dot);
    const suffix = dot < 0 ? '' : key.slice(dot + 1);
    let g = groups.get(name);
    if (!g) groups.set(name, (g = new Map()));
    g.set(suffix, key);
  }
  const modules: LoraModule[] = [];
  const unsupported: Record<string, number> = {};
  for (const [name, parts] of groups) {
    const [prefix, component] = KOHYA_PREFIXES.find(([p]) => name.startsWith(p))!;
    const down = parts.get('lora_down.weight');
    const up = parts.get('lora_up.weight');
    const other = [...parts.keys()].map(unsupportedReason).find((r) => r !== null);
    if (other && (other !== 'DoRA' || !down)) {
      count(unsupported, other);
      continue;
    }
    if (parts.has('lora_mid.weight')) {
      count(unsupported, 'Tucker (lora_mid)');
      continue;
    }
    if (!down || !up) {
      count(unsupported, 'incomplete pair');
      continue;
    }
    if (parts.has('dora_scale')) {
      count(unsupported, 'DoRA');
      continue;
    }
    const raw = name.slice(prefix.length);
    const key = component === 'unet' ? ldmToDiffusersKey(raw) : raw;
    const downShape = file.tensors.get(down)!.shape;
    const rank = downShape[0]!;
    const alphaKey = parts.get('alpha');
    // No alpha: scale 1 (kohya's loader uses alpha = dim, A1111 scale 1.0). Alpha 0 means rank in kohya.
    const alpha = alphaKey !== undefined ? file.float32(alphaKey)[0]! : rank;
    modules.push(module(file, component, key, name, up, down, (alpha === 0 ? rank : alpha) / rank));
  }
  return { modules, unsupported };
}

function module(file: SafetensorsFile, component: LoraComponent, key: string, source: string, up: string, down: string, scale: number): LoraModule {
  const upShape = file.tensors.get(up)!.shape;
  const downShape = file.tensors.get(down)!.shape;
  const rank = downShape[0];
  const upOk = (upShape.length === 2 || (upShape.length === 4 && upShape[2] === 1 && upShape[3] === 1)) && upShape[1] === rank;
  if (!upOk || (downShape.length !== 2 && downShape.length !== 4)) {
    throw new LoraFileError(`${source}: up ${JSON.stringify(upShape)} and down ${JSON.stringify(downShape)} are not a LoRA pair`, file.path);
  }
  return { component, key, source, up: file.float32(up), upShape, down: file.float32(down), downShape, scale };
}

/** PEFT LoraConfig fields that set a module's scale (peft tuners/lora/config.py). */
interface PeftScaleConfig {
  r?: number;
  lora_alpha?: number;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  use_rslora?: boolean;
}

const PEFT_PAIRS: [RegExp, 'up' | 'down'][] = [
  [/\.lora_A(?:\.[\w-]+)?\.weight$/, 'down'],
  [/\.lora_B(?:\.[\w-]+)?\.weight$/, 'up'],
  [/\.lora(?:_linear_layer)?\.down\.weight$/, 'down'],
  [/\.lora(?:_linear_layer)?\.up\.weight$/, 'up'],
];

function parsePeft(file: SafetensorsFile): Parsed {
  const configs = peftConfigs(file.metadata);
  const pairs = new Map<string, { component: LoraComponent; up?: string; down?: string; alpha?: string }>();
  const unsupported: Record<string, number> = {};
  for (const key of file.tensors.keys()) {
    let component: LoraComponent = 'unet';
    let rest = key;
    const prefix = PEFT_PREFIXES.find(([p]) => key.startsWith(p));
    if (prefix) {
      component = prefix[1];
      rest = key.slice(prefix[0].length);
    }
    // Old attention-processor format: …attn1.processor.to_q_lora.down.weight → …attn1.to_q.lora.down.weight.
    rest = rest.replace(/\.processor\.(to_q|to_k|to_v)_lora\./, '.$1.lora.').replace(/\.processor\.to_out_lora\./, '.to_out.0.lora.');
    const match = PEFT_PAIRS.find(([re]) => re.test(rest));
    if (!match && rest.endsWith('.alpha')) {
      const path = rest.slice(0, -'.alpha'.length);
      const entry = pairs.get(`${component}:${path}`) ?? { component };
      entry.alpha = key;
      pairs.set(`${component}:${path}`, entry);
      continue;
    }
    if (!match) {
      count(unsupported, UNKNOWN_KEY);
      continue;
    }
    const path = rest.replace(match[0], '');
    const entry = pairs.get(`${component}:${path}`) ?? { component };
    entry[match[1]] = key;
    pairs.set(`${component}:${path}`, entry);
  }
  const modules: LoraModule[] = [];
  for (const [id, entry] of pairs) {
    const path = id.slice(id.indexOf(':') + 1);
    if (!entry.up || !entry.down) {
      count(unsupported, 'incomplete pair');
      continue;
    }
    const rank = file.tensors.get(entry.down)!.shape[0]!;
    let scale = 1;
    if (entry.alpha) scale = file.float32(entry.alpha)[0]! / rank;
    else {
      const config = configs[entry.component];
      if (config) scale = peftScale(config, path, rank);
    }
    modules.push(module(file, entry.component, path.replaceAll('.', '_'), path, entry.up, entry.down, scale));
  }
  return { modules, unsupported };
}

/** diffusers writes each component's LoraConfig, keys prefixed `unet.` / `text_encoder.`, as JSON. */
function peftConfigs(metadata: Readonly<Record<string, string>>): Partial<Record<LoraComponent, PeftScaleConfig>> {
  const raw = metadata['lora_adapter_metadata'];
  if (!raw) return {};
  let flat: Record<string, unknown>;
  try {
    flat = JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return {};
  }
  const out: Partial<Record<LoraComponent, PeftScaleConfig>> = {};
  for (const [prefix, component] of PEFT_PREFIXES) {
    const config: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(flat)) if (k.startsWith(prefix)) config[k.slice(prefix.length)] = v;
    if (Object.keys(config).length > 0) out[component] = config as PeftScaleConfig;
  }
  return out;
}

/** peft: a pattern key matches a module whose path ends with it (`re.match(rf"(.*\.)?({key})$", path)`). */
function patternValue(patterns: Record<string, number> | undefined, path: string): number | undefined {
  for (const [pattern, value] of Object.entries(patterns ?? {})) {
    try {
      if (new RegExp(`^(.*\\.)?(${pattern})$`).test(path)) return value;
    } catch {
      if (path === pattern || path.endsWith(`.${pattern}`)) return value;
    }
  }
  return undefined;
}

function peftScale(config: PeftScaleConfig, path: string, rank: number): number {
  const r = patternValue(config.rank_pattern, path) ?? config.r ?? rank;
  const alpha = patternValue(config.alpha_pattern, path) ?? config.lora_alpha ?? r;
  return config.use_rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/**
 * The family, from kohya's metadata (`ss_base_model_version`, `ss_v2`, `modelspec.architecture`), else from
 * the keys: a second text encoder means SDXL; the text encoder's width (768 CLIP-L, 1024 OpenCLIP-H) SD 1 / 2.
 */
function detectFamily(metadata: Readonly<Record<string, string>>, modules: LoraModule[]): { family: LoraFamily; reason: string } {
  const version = metadata['ss_base_model_version'];
  if (version) {
    if (version.startsWith('sdxl')) return { family: 'sdxl', reason: `its metadata says ss_base_model_version=${version}` };
    if (version.startsWith('sd_v1')) return { family: 'sd1', reason: `its metadata says ss_base_model_version=${version}` };
    if (version.startsWith('sd_v2')) return { family: 'sd2', reason: `its metadata says ss_base_model_version=${version}` };
  }
  const arch = metadata['modelspec.architecture'];
  if (arch) {
    if (arch.startsWith('stable-diffusion-xl')) return { family: 'sdxl', reason: `its metadata says modelspec.architecture=${arch}` };
    if (arch.startsWith('stable-diffusion-v1')) return { family: 'sd1', reason: `its metadata says modelspec.architecture=${arch}` };
    if (arch.startsWith('stable-diffusion-v2')) return { family: 'sd2', reason: `its metadata says modelspec.architecture=${arch}` };
  }
  if (modules.some((m) => m.component === 'text_encoder_2')) return { family: 'sdxl', reason: 'it has modules for a second text encoder (lora_te2_)' };
  if (metadata['ss_v2'] === 'True') return { family: 'sd2', reason: 'its metadata says ss_v2=True' };
  const q = modules.find((m) => m.component === 'text_encoder' && m.key.endsWith('self_attn_q_proj'));
  const width = q?.downShape[1];
  if (width === 768) return { family: 'sd1', reason: 'its text encoder modules are 768 wide (CLIP ViT-L)' };
  if (width === 1024) return { family: 'sd2', reason: 'its text encoder modules are 1024 wide (OpenCLIP ViT-H)' };
  return { family: 'unknown', reason: '' };
}
