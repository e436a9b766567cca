/**
 * The library's textual-inversion folder (<data dir>/embeddings), as A1111's `embeddings/`: every .pt,
 * .bin or .safetensors file in it (and its subfolders) is an embedding named by its file stem.
 */
import { basename, extname, join } from 'node:path';
import { listEmbeddingFiles } from '../engine/prompt/embeddings.js';

export const EMBEDDING_FOLDER = 'embeddings';

export function embeddingFolder(dataDir: string): string {
  return join(dataDir, EMBEDDING_FOLDER);
}

/** The prompt words the folder offers (file stems), sorted, for completions. */
export function embeddingNames(dir: string): string[] {
  return [...new Set(listEmbeddingFiles(dir).map((f) => basename(f, extname(f))))].sort((a, b) => a.localeCompare(b));
}
