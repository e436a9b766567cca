/**
 * The library's textual-inversion folder (<data dir>/embeddings), as A1111's `embeddings/`: every .pt,
 * .bin, .safetensors, .png or .webp embedding in it (and its subfolders), named by its file stem (a
 * picture by the name inside it).
 */
import { join } from 'node:path';
import { loadEmbeddingFolder } from '../engine/prompt/embeddings.js';

export const EMBEDDING_FOLDER = 'embeddings';

export function embeddingFolder(dataDir: string): string {
  return join(dataDir, EMBEDDING_FOLDER);
}

/** The prompt words the folder offers, sorted, for completions (files that are not embeddings left out). */
export async function embeddingNames(dir: string): Promise<string[]> {
  const found = await loadEmbeddingFolder([dir], null);
  return [...new Set([...found.usable, ...found.mismatched].map((e) => e.name))].sort((a, b) => a.localeCompare(b));
}
