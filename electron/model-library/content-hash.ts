/**
 * A model folder's identity: its content hash, size on disk and a cheap fingerprint.
 *
 * Content hash = sha256 over every file of the folder, in ascending order of its relative path (with
 * `/`, compared by UTF-16 code units, so the order doesn't depend on the locale or the platform), of
 * `path`, a NUL byte, then the file's bytes. Names starting with "." (.DS_Store, .git, our own
 * .downloads) are not part of a model and are skipped. Files are streamed, so a 4 GB UNet is never
 * held in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ModelFile {
  /** Relative to the folder, with `/`. */
  path: string;
  size: number;
  mtimeMs: number;
}

export async function listModelFiles(dir: string): Promise<ModelFile[]> {
  const out: ModelFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(relPath);
      else if (entry.isFile()) {
        const st = await stat(join(dir, relPath));
        out.push({ path: relPath, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Names, sizes and mtimes: changes when any file is replaced, without reading the bytes. */
export function fingerprintOf(files: readonly ModelFile[]): string {
  return JSON.stringify(files.map((f) => [f.path, f.size, f.mtimeMs]));
}

export interface FolderIdentity {
  contentHash: string;
  sizeBytes: number;
  fingerprint: string;
}

export async function hashModelFolder(dir: string): Promise<FolderIdentity> {
  const files = await listModelFiles(dir);
  const sha = createHash('sha256');
  for (const f of files) {
    sha.update(f.path);
    sha.update('\0');
    for await (const chunk of createReadStream(join(dir, f.path))) sha.update(chunk as Buffer);
  }
  return {
    contentHash: sha.digest('hex'),
    sizeBytes: files.reduce((s, f) => s + f.size, 0),
    fingerprint: fingerprintOf(files),
  };
}

/** sha256 of one file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const sha = createHash('sha256');
  for await (const chunk of createReadStream(file)) sha.update(chunk as Buffer);
  return sha.digest('hex');
}
