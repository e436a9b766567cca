/**
 * `<lora:name:…>` → a file: `name` is the file name without extension (A1111's alias), looked up as
 * `<dir>/<name>.safetensors` in the given folders, first folder first. An unknown name is an error that
 * lists the close matches.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { InvalidRequestError } from '../../shared/errors.js';
import { loraName } from './lora-file.js';

export const LORA_EXTENSIONS = ['.safetensors'];

/** The LoRA files in a folder, by name. */
export function listLoraFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const entry of entries.sort()) {
    if (!LORA_EXTENSIONS.includes(extname(entry).toLowerCase())) continue;
    const path = join(dir, entry);
    try {
      if (statSync(path).isFile()) out.set(loraName(entry), path);
    } catch {
      // vanished between readdir and stat
    }
  }
  return out;
}

/** Levenshtein distance, case-insensitive. */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** Up to `limit` known names close to `name`: same letters in another case, a substring, or a few edits away. */
export function closeMatches(name: string, known: Iterable<string>, limit = 5): string[] {
  const lower = name.toLowerCase();
  const scored: [string, number][] = [];
  for (const k of known) {
    const kl = k.toLowerCase();
    const d = kl === lower ? 0 : kl.includes(lower) || lower.includes(kl) ? 1 : distance(name, k);
    if (d <= Math.max(2, Math.floor(name.length / 3))) scored.push([k, d]);
  }
  return scored.sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).slice(0, limit).map(([k]) => k);
}

export function resolveLoraFile(name: string, dirs: readonly string[]): string {
  const known = new Map<string, string>();
  for (const dir of dirs) {
    for (const [n, path] of listLoraFiles(dir)) if (!known.has(n)) known.set(n, path);
  }
  const found = known.get(name);
  if (found) return found;
  const where = dirs.length === 0 ? 'no LoRA folder is set' : `not in ${dirs.filter((d) => existsSync(d)).join(', ') || dirs.join(', ')}`;
  const close = closeMatches(name, known.keys());
  throw new InvalidRequestError(
    `<lora:${name}>: no LoRA named "${name}" (${where})` +
      (close.length > 0 ? `; did you mean ${close.map((c) => `"${c}"`).join(', ')}?` : known.size > 0 ? `; ${known.size} LoRA files are there` : ''),
  );
}
