/**
 * Run-time LoRA sessions for one loaded model.
 *
 * The first job with a LoRA reads the U-Net's and text encoder's ONNX bytes (and external data) once and
 * keeps them (onnx-weights.ts). A LoRA set then becomes, per component, one patched session built from
 * memory; the base session is never touched, so a job without LoRAs (or with all multipliers 0 for a
 * component) runs the base session: the same bytes as before, the same picture.
 *
 * Cache: per component, the patched session of the last LoRA set only, keyed by the files (path, size,
 * mtime) and their multipliers. Switching sets releases the old patched session before the new one is
 * built: at most one patched copy of a module sits beside the original.
 */
import { statSync } from 'node:fs';
import { InvalidRequestError } from '../../shared/errors.js';
import type { LoadedModel } from '../model/model-folder.js';
import { OnnxModule, type SessionSettings } from '../model/onnx-module.js';
import type { LoraComponent, LoraFamily, LoraFile } from './lora-file.js';
import { readLoraFile } from './lora-file.js';
import { gemmMerge } from './gemm-merge.js';
import { multiplierFor, planMerge, type ActiveLora } from './merge.js';
import { OnnxWeights } from './onnx-weights.js';
import { extractLoraTags } from './prompt-tags.js';
import { resolveLoraFile } from './resolve.js';
import { LoraFileError } from './safetensors.js';
import { registerGraphSource } from '../prompt/text-encoder.js';

/** What one LoRA did in a job (GenerateResult.loras). */
export interface LoraReport {
  name: string;
  path: string;
  /** A1111's short hash, for `Lora hashes:`. */
  hash: string;
  te: number;
  unet: number;
  /** Modules applied (found in the graph), over all components. */
  matched: number;
  /** Modules named by the file with no weight in this model's graph. */
  unmatched: number;
  /** A few unmatched module names, for the message. */
  unmatchedExamples: string[];
  /** Keys skipped because their kind isn't supported (LoHa, LoKr, …), by kind. */
  unsupported: Record<string, number>;
}

interface Patched {
  key: string;
  module: OnnxModule;
}

const COMPONENTS: LoraComponent[] = ['text_encoder', 'text_encoder_2', 'unet'];

/** LoRA files read once per (path, size, mtime); a handful are kept. */
const fileCache = new Map<string, Promise<LoraFile>>();
const FILE_CACHE_SIZE = 16;

export async function loadLoraFile(path: string): Promise<LoraFile> {
  let stamp: string;
  try {
    const s = statSync(path);
    stamp = `${path}\0${s.size}\0${s.mtimeMs}`;
  } catch (err) {
    throw new LoraFileError(`cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, path, { cause: err });
  }
  let p = fileCache.get(stamp);
  if (!p) {
    p = readLoraFile(path);
    fileCache.set(stamp, p);
    p.catch(() => fileCache.delete(stamp));
    while (fileCache.size > FILE_CACHE_SIZE) fileCache.delete(fileCache.keys().next().value!);
  }
  return p;
}

/** The family of a loaded model, as far as a LoRA's family can be compared with it. */
function modelFamily(model: LoadedModel): LoraFamily {
  if ((model.info.family as string) === 'sdxl' || componentModule(model, 'text_encoder_2')) return 'sdxl';
  if (model.info.textHiddenSize === 768) return 'sd1';
  if (model.info.textHiddenSize === 1024) return 'sd2';
  return 'unknown';
}

const FAMILY_NAMES: Record<LoraFamily, string> = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL', unknown: 'unknown' };

/** Refuses a LoRA made for another family, with the reason (before any weight is touched). */
export function checkFamily(model: LoadedModel, file: LoraFile): void {
  const family = modelFamily(model);
  const needsSecondEncoder = file.modules.some((m) => m.component === 'text_encoder_2');
  if (file.family === 'sdxl' && family !== 'sdxl') {
    throw new LoraFileError(
      `is an SDXL LoRA (${file.familyReason}); ${model.info.name} is ${family === 'unknown' ? 'not SDXL' : FAMILY_NAMES[family]} with one text encoder`,
      file.path,
    );
  }
  if (needsSecondEncoder && family !== 'sdxl') {
    throw new LoraFileError(`has modules for a second text encoder (SDXL); ${model.info.name} has one`, file.path);
  }
  if (file.family !== 'unknown' && family !== 'unknown' && file.family !== family) {
    throw new LoraFileError(`is a ${FAMILY_NAMES[file.family]} LoRA (${file.familyReason}); ${model.info.name} is ${FAMILY_NAMES[family]}`, file.path);
  }
}

/**
 * The model's session for a LoRA component, or null when the model has no such module. An SDXL refiner
 * has encoder 2 (OpenCLIP bigG) only: its `textEncoder` field holds that same session, so `lora_te1_`
 * modules (CLIP-L) have no encoder there and are reported unmatched instead of patching bigG.
 */
function componentModule(model: LoadedModel, component: LoraComponent): OnnxModule | null {
  const { modules } = model;
  if (component === 'unet') return modules.unet;
  if (component === 'text_encoder_2') return modules.textEncoder2;
  const sdxl = modules.sdxlTextEncoders;
  if (sdxl && !sdxl.some((e) => e.info.submodel === 'text_encoder')) return null;
  return modules.textEncoder;
}

function moduleField(component: LoraComponent): string {
  return component === 'unet' ? 'unet' : component === 'text_encoder' ? 'textEncoder' : 'textEncoder2';
}

export class LoraSessions {
  private readonly weights = new Map<LoraComponent, OnnxWeights>();
  private readonly patched = new Map<LoraComponent, Patched>();

  constructor(
    private readonly model: LoadedModel,
    private readonly settings: SessionSettings,
  ) {}

  /**
   * The model with the LoRA set applied (a view sharing everything but the patched sessions), and what
   * each LoRA did. An empty set, or multipliers that are all 0, give the model itself.
   */
  async apply(loras: readonly ActiveLora[]): Promise<{ model: LoadedModel; reports: LoraReport[] }> {
    for (const lora of loras) checkFamily(this.model, lora.file);
    const reports: LoraReport[] = loras.map((l) => ({
      name: l.file.name,
      path: l.file.path,
      hash: l.file.shortHash,
      te: l.te,
      unet: l.unet,
      matched: 0,
      unmatched: 0,
      unmatchedExamples: [],
      unsupported: l.file.unsupported,
    }));
    // 1. Merge every component first: a bad file throws here, before any session changes.
    const plans: { component: LoraComponent; key: string; build: (() => ReturnType<OnnxWeights['build']>) | null }[] = [];
    const threads = this.settings.threads;
    for (const component of COMPONENTS) {
      const base = componentModule(this.model, component);
      const users = loras.filter((l) => l.file.modules.some((m) => m.component === component));
      if (users.length === 0) continue;
      if (!base) {
        // No such module in this model (a refiner's missing CLIP-L): every module of it is unmatched.
        for (const l of users) {
          const report = reports[loras.indexOf(l)]!;
          const names = l.file.modules.filter((m) => m.component === component).map((m) => m.source);
          report.unmatched += names.length;
          report.unmatchedExamples.push(...names.slice(0, Math.max(0, 5 - report.unmatchedExamples.length)));
        }
        continue;
      }
      const weights = this.weightsOf(component, base);
      const { plan, matches } = planMerge(weights, component, users);
      users.forEach((l, i) => {
        const report = reports[loras.indexOf(l)]!;
        report.matched += matches[i]!.matched;
        report.unmatched += matches[i]!.unmatched.length;
        report.unmatchedExamples.push(...matches[i]!.unmatched.slice(0, 5 - report.unmatchedExamples.length));
      });
      const key = JSON.stringify(users.filter((l) => multiplierFor(l, component) !== 0).map((l) => [l.file.path, l.file.shortHash, multiplierFor(l, component)]));
      plans.push({
        component,
        key,
        build: plan.size > 0 ? () => weights.build(plan.keys(), (name) => gemmMerge(weights.stored(name), plan.get(name)!, threads)) : null,
      });
    }
    for (const [i, report] of reports.entries()) {
      if (report.matched === 0) {
        throw new LoraFileError(
          `none of its ${loras[i]!.file.modules.length} modules is in ${this.model.info.name} (e.g. ${report.unmatchedExamples.slice(0, 2).join(', ')}); it was made for a different model`,
          loras[i]!.file.path,
        );
      }
    }
    // 2. Sessions: reuse the cached patched one for the same set, else replace it.
    const overrides: Record<string, OnnxModule> = {};
    for (const plan of plans) {
      if (!plan.build) continue;
      const cached = this.patched.get(plan.component);
      if (cached?.key === plan.key) {
        overrides[moduleField(plan.component)] = cached.module;
        continue;
      }
      if (cached) {
        this.patched.delete(plan.component);
        await this.model.releasePromptEncoder(cached.module);
        await cached.module.release();
      }
      const base = componentModule(this.model, plan.component)!;
      const { bytes, externalData } = await plan.build();
      const module = await OnnxModule.open(base.file, base.label, this.settings, bytes, externalData);
      // Clip skip and embeddings rewrite the text encoder's graph: the patched one, built again when asked
      // (the bytes are not kept beside the session).
      if (plan.component !== 'unet') registerGraphSource(module, plan.build);
      this.patched.set(plan.component, { key: plan.key, module });
      overrides[moduleField(plan.component)] = module;
    }
    if (Object.keys(overrides).length === 0) return { model: this.model, reports };
    return { model: withModules(this.model, overrides), reports };
  }

  private weightsOf(component: LoraComponent, base: OnnxModule): OnnxWeights {
    let w = this.weights.get(component);
    if (!w) {
      w = OnnxWeights.read(base.file, base.label);
      this.weights.set(component, w);
    }
    return w;
  }

  async release(): Promise<void> {
    const all = [...this.patched.values()];
    this.patched.clear();
    this.weights.clear();
    await Promise.all(all.map(async (p) => {
      await this.model.releasePromptEncoder(p.module);
      await p.module.release();
    }));
  }
}

/** A view of `model` whose `modules` has some sessions replaced; everything else is shared. */
function withModules(model: LoadedModel, overrides: Record<string, OnnxModule>): LoadedModel {
  const view = Object.create(model) as LoadedModel;
  const modules = { ...model.modules, ...overrides };
  // A refiner's `textEncoder` is its encoder 2: keep the two fields the same session.
  if (overrides['textEncoder2'] && model.modules.textEncoder === model.modules.textEncoder2) modules.textEncoder = overrides['textEncoder2'];
  Object.defineProperty(view, 'modules', { value: modules, enumerable: true });
  return view;
}

const sessionsByModel = new WeakMap<LoadedModel, LoraSessions>();

/** The model's LoRA sessions (created on first use). */
export function loraSessions(model: LoadedModel, settings: SessionSettings): LoraSessions {
  let s = sessionsByModel.get(model);
  if (!s) sessionsByModel.set(model, (s = new LoraSessions(model, settings)));
  return s;
}

/** Frees a model's patched sessions and kept weights (with the model). */
export async function releaseLoraSessions(model: LoadedModel): Promise<void> {
  const s = sessionsByModel.get(model);
  sessionsByModel.delete(model);
  await s?.release();
}

/** A multiplier from a tag or request: finite, within a sane range. */
export function checkMultiplier(name: string, value: number): void {
  if (!Number.isFinite(value) || Math.abs(value) > 100) {
    throw new InvalidRequestError(`<lora:${name}:…>: the weight must be a number from -100 to 100, got ${value}`);
  }
}

/**
 * The prompt's `<lora:…>` tags applied to the model: names resolved in `dirs`, files read (cached), the
 * family checked, the patched sessions built or reused. No tags: the model itself.
 */
export async function applyPromptLoras(
  model: LoadedModel,
  prompt: string,
  dirs: readonly string[],
): Promise<{ model: LoadedModel; reports: LoraReport[] }> {
  const { loras: tags } = extractLoraTags(prompt);
  if (tags.length === 0) return { model, reports: [] };
  const active: ActiveLora[] = [];
  for (const tag of tags) {
    checkMultiplier(tag.name, tag.te);
    checkMultiplier(tag.name, tag.unet);
    active.push({ file: await loadLoraFile(resolveLoraFile(tag.name, dirs)), te: tag.te, unet: tag.unet });
  }
  return loraSessions(model, model.settings).apply(active);
}
