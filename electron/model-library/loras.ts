/**
 * The LoRA folder of the library: `<dataDir>/loras/<name>.safetensors`, where `<lora:name:…>` in a prompt
 * is looked up. Import copies a file in (after reading it as a LoRA, so a broken file never lands there),
 * list gives each file's record (family, trigger words, hash), remove deletes one.
 *
 * The records are kept in `<dataDir>/loras/.loras.json` (name → record with the file's size and mtime):
 * written at import, and for a file put into the folder by hand the first time it is listed, so listing
 * and the family check before a job is queued don't read and hash every LoRA again.
 *
 * Only the LoRA reader is loaded (no onnxruntime), like the rest of the library.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { InvalidRequestError, StudioError } from '../shared/errors.js';
import { loraFamilyProblem, type LoraInfo } from '../shared/loras.js';
import type { ModelInfo } from '../shared/model.js';
import { readLoraFile, type LoraFile } from '../engine/lora/lora-file.js';
import { extractLoraTags, isLcmLoraName } from '../engine/lora/prompt-tags.js';
import { closeMatches, listLoraFiles, LORA_EXTENSIONS } from '../engine/lora/resolve.js';

export const LORA_FOLDER = 'loras';

export function loraFolder(dataDir: string): string {
  return join(dataDir, LORA_FOLDER);
}

/** A LoRA of the library: its record and where the file is. */
export interface LibraryLora extends LoraInfo {
  path: string;
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

const INDEX_FILE = '.loras.json';
type IndexEntry = LoraInfo & { size: number; mtimeMs: number };

async function readIndex(dir: string): Promise<Map<string, IndexEntry>> {
  try {
    const parsed = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8')) as Record<string, IndexEntry>;
    return new Map(Object.entries(parsed ?? {}).filter(([, e]) => e && typeof e === 'object' && typeof e.hash === 'string'));
  } catch {
    return new Map(); // none yet, or unreadable: the files are read again and it is written anew
  }
}

async function writeIndex(dir: string, index: ReadonlyMap<string, IndexEntry>): Promise<void> {
  const file = join(dir, INDEX_FILE);
  const staging = `${file}.${process.pid}`;
  try {
    await writeFile(staging, JSON.stringify(Object.fromEntries(index)));
    await rename(staging, file);
  } catch {
    // A read-only folder still lists (slower): the records are a cache of what the files say.
    await rm(staging, { force: true });
  }
}

function record(lora: LibraryLora, size: number, mtimeMs: number): IndexEntry {
  const { path: _path, ...info } = lora;
  return { ...info, size, mtimeMs };
}

/** Every readable LoRA in the folder, by name (from the records, a file read when it has none or changed); unreadable files are listed in `broken` with the reason. */
export async function listLoras(dir: string): Promise<{ loras: LibraryLora[]; broken: { path: string; error: string }[] }> {
  const loras: LibraryLora[] = [];
  const broken: { path: string; error: string }[] = [];
  const index = await readIndex(dir);
  const seen = new Set<string>();
  let changed = false;
  for (const [name, path] of listLoraFiles(dir)) {
    seen.add(name);
    try {
      const s = await stat(path);
      const known = index.get(name);
      if (known && known.size === s.size && known.mtimeMs === s.mtimeMs) {
        const { size: _size, mtimeMs: _mtime, ...info } = known;
        loras.push({ ...info, name, path });
        continue;
      }
      const lora = describe(await readLoraFile(path));
      index.set(name, record(lora, s.size, s.mtimeMs));
      changed = true;
      loras.push(lora);
    } catch (err) {
      broken.push({ path, error: (err as Error).message });
    }
  }
  for (const name of index.keys()) {
    if (!seen.has(name)) {
      index.delete(name);
      changed = true;
    }
  }
  if (changed && existsSync(dir)) await writeIndex(dir, index);
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
  const described = describe({ ...lora, path: target });
  // The record (family, trigger words, hash) is made now, from the file just read.
  const s = await stat(target);
  const index = await readIndex(dir);
  index.set(lora.name, record(described, s.size, s.mtimeMs));
  await writeIndex(dir, index);
  return described;
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

/**
 * Before a job is queued: every `<lora:NAME…>` tag of the prompt names a LoRA of the library (else the
 * close matches are offered) that fits the model's family (else the reason). Nothing is read but records.
 */
export async function checkPromptLoras(dir: string, prompt: string, model: Pick<ModelInfo, 'family' | 'textHiddenSize' | 'name'>): Promise<void> {
  const { loras: tags } = extractLoraTags(prompt);
  if (tags.length === 0) return;
  const { loras } = await listLoras(dir);
  const byName = new Map(loras.map((l) => [l.name, l]));
  for (const tag of tags) {
    const lora = byName.get(tag.name);
    if (!lora) {
      // The engine's own lookup (resolve.ts) also reads files broken here, and says why.
      if (listLoraFiles(dir).has(tag.name)) continue;
      const close = closeMatches(tag.name, byName.keys());
      throw new StudioError(
        'E_NOT_FOUND',
        `<lora:${tag.name}>: no LoRA named "${tag.name}" in the library` +
          (close.length > 0 ? `; did you mean ${close.map((c) => `"${c}"`).join(', ')}?` : loras.length === 0 ? ' (it has none: import one first)' : ''),
      );
    }
    const problem = loraFamilyProblem(lora, model);
    if (problem) throw new StudioError('E_LORA_FILE', `${problem}: it can't be applied`);
  }
}
