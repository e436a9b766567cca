/**
 * The LoRA folder of the library: `<dataDir>/loras/<name>.safetensors`, where `<lora:name:…>` in a prompt
 * is looked up. Import copies a file in (after reading it as a LoRA, so a broken file never lands there),
 * list reads each file's header (family, trigger words, hash), remove deletes one.
 *
 * Only the LoRA reader is loaded (no onnxruntime), like the rest of the library.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { InvalidRequestError, StudioError } from '../shared/errors.js';
import { readLoraFile, type LoraFamily, type LoraFile } from '../engine/lora/lora-file.js';
import { extractLoraTags, isLcmLoraName } from '../engine/lora/prompt-tags.js';
import { closeMatches, listLoraFiles, LORA_EXTENSIONS } from '../engine/lora/resolve.js';

export const LORA_FOLDER = 'loras';

export function loraFolder(dataDir: string): string {
  return join(dataDir, LORA_FOLDER);
}

export interface LibraryLora {
  name: string;
  path: string;
  format: LoraFile['format'];
  family: LoraFamily;
  /** Why the family is what it is (metadata key or key shapes); empty when unknown. */
  familyReason: string;
  /** Trigger words: kohya's `ss_tag_frequency` tags, most frequent first (at most 20). */
  triggerWords: string[];
  /** A1111's short hash (`Lora hashes:`). */
  hash: string;
  modules: number;
  /** LCM-LoRA: a distillation LoRA that turns a model into a few-step LCM model. */
  lcm: boolean;
}

const MAX_TRIGGER_WORDS = 20;

/** `ss_tag_frequency` is `{"<n>_<concept>": {"tag": count, …}, …}` (sd-scripts train_util); tags summed over folders. */
export function triggerWords(metadata: Readonly<Record<string, string>>): string[] {
  const raw = metadata['ss_tag_frequency'];
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  const counts = new Map<string, number>();
  for (const folder of Object.values((parsed ?? {}) as Record<string, unknown>)) {
    for (const [tag, n] of Object.entries((folder ?? {}) as Record<string, unknown>)) {
      const t = tag.trim();
      if (t !== '' && typeof n === 'number') counts.set(t, (counts.get(t) ?? 0) + n);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, MAX_TRIGGER_WORDS).map(([t]) => t);
}

/** LCM-LoRA files (latent-consistency/lcm-lora-*) are named so (the engine's rule); their modules are plain LoRA. */
export function isLcmLora(lora: Pick<LoraFile, 'name'>): boolean {
  return isLcmLoraName(lora.name);
}

function describe(lora: LoraFile): LibraryLora {
  return {
    name: lora.name,
    path: lora.path,
    format: lora.format,
    family: lora.family,
    familyReason: lora.familyReason,
    triggerWords: triggerWords(lora.metadata),
    hash: lora.shortHash,
    modules: lora.modules.length,
    lcm: isLcmLora(lora),
  };
}

/** Every readable LoRA in the folder, by name; unreadable files are listed in `broken` with the reason. */
export async function listLoras(dir: string): Promise<{ loras: LibraryLora[]; broken: { path: string; error: string }[] }> {
  const loras: LibraryLora[] = [];
  const broken: { path: string; error: string }[] = [];
  for (const path of listLoraFiles(dir).values()) {
    try {
      loras.push(describe(await readLoraFile(path)));
    } catch (err) {
      broken.push({ path, error: (err as Error).message });
    }
  }
  return { loras, broken };
}

/** Copies a LoRA file into the folder under its own name; refuses a file that is not a readable LoRA or a name taken. */
export async function importLora(dir: string, file: string): Promise<LibraryLora> {
  if (!LORA_EXTENSIONS.includes(extname(file).toLowerCase())) {
    throw new InvalidRequestError(`${basename(file)}: LoRA files are .safetensors`);
  }
  const lora = await readLoraFile(file);
  const target = join(dir, basename(file));
  if (existsSync(target)) throw new StudioError('E_DUPLICATE', `a LoRA named "${lora.name}" is already in the library (${target})`);
  await mkdir(dir, { recursive: true });
  const staging = `${target}.importing-${process.pid}`;
  try {
    await copyFile(file, staging);
    await rename(staging, target);
  } finally {
    await rm(staging, { force: true });
  }
  return describe({ ...lora, path: target });
}

export async function removeLora(dir: string, name: string): Promise<void> {
  const files = listLoraFiles(dir);
  const path = files.get(name);
  if (!path) {
    const close = closeMatches(name, files.keys());
    throw new StudioError('E_NOT_FOUND', `no LoRA named "${name}" in the library${close.length > 0 ? `; did you mean ${close.map((c) => `"${c}"`).join(', ')}?` : ''}`);
  }
  await rm(path);
}

/**
 * Reusing a prompt from history or an A1111 infotext: each `<lora:NAME:…>` whose recorded hash
 * (`Lora hashes`) belongs to a library file of another name is renamed to that file (A1111's
 * infotext_pasted); the names found neither by name nor by hash are returned as missing.
 */
export async function restoreLoraTags(
  prompt: string,
  recorded: readonly { name: string; hash: string }[],
  dir: string,
): Promise<{ prompt: string; missing: string[] }> {
  const { loras } = extractLoraTags(prompt);
  if (loras.length === 0) return { prompt, missing: [] };
  const { loras: library } = await listLoras(dir);
  const byName = new Map(library.map((l) => [l.name, l]));
  const byHash = new Map(library.map((l) => [l.hash, l]));
  const hashOf = new Map(recorded.map((r) => [r.name, r.hash]));
  const renames = new Map<string, string>();
  const missing: string[] = [];
  for (const { name } of loras) {
    const hash = hashOf.get(name.replace(/[:,]/g, ''));
    const local = byName.get(name);
    if (local && (hash === undefined || local.hash === hash)) continue;
    const same = hash !== undefined ? byHash.get(hash) : undefined;
    if (same) renames.set(name, same.name);
    else if (!local) missing.push(name);
  }
  const restored = prompt.replace(/<(lora|lyco):([^:>]+)/g, (whole: string, type: string, name: string) => {
    const to = renames.get(name);
    return to ? `<${type}:${to}` : whole;
  });
  return { prompt: restored, missing: [...new Set(missing)] };
}
