/**
 * The image files of the store, content-addressed:
 *
 *   <dataDir>/images/ab/abcdef….png    the PNG, named by the sha256 of its bytes
 *   <dataDir>/thumbs/ab/abcdef….webp   its thumbnail
 *   <dataDir>/tmp/                     files being written (emptied by reconciliation)
 *
 * Writes are atomic and durable: the bytes go to a temp file on the same file system, which is
 * fsynced, renamed into place (rename is atomic on POSIX and NTFS), and then the folder is fsynced so
 * the new name itself survives a power cut. A reader therefore sees a complete file or none.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { THUMBNAIL_QUALITY, THUMBNAIL_SIZE } from '../shared/history.js';
const HASH_FILE = /^([0-9a-f]{64})\.(png|webp)$/;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Makes a thumbnail of an image the host made itself (an output): fits inside THUMBNAIL_SIZE², never
 * enlarged. User-supplied inputs are thumbnailed by the engine process (engine/tensor/stored-image.ts).
 */
export async function makeThumbnail(png: Uint8Array): Promise<Buffer> {
  return sharp(png)
    .resize(THUMBNAIL_SIZE, THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
    .webp({ quality: THUMBNAIL_QUALITY })
    .toBuffer();
}

export class ImageFiles {
  readonly imagesDir: string;
  readonly thumbsDir: string;
  readonly tmpDir: string;
  private tempCounter = 0;

  constructor(readonly dataDir: string) {
    this.imagesDir = join(dataDir, 'images');
    this.thumbsDir = join(dataDir, 'thumbs');
    this.tmpDir = join(dataDir, 'tmp');
  }

  /** Creates the folders (a no-op when they exist). */
  ensureLayout(): void {
    for (const dir of [this.imagesDir, this.thumbsDir, this.tmpDir]) mkdirSync(dir, { recursive: true });
  }

  imagePath(hash: string): string {
    return join(this.imagesDir, hash.slice(0, 2), `${hash}.png`);
  }

  thumbPath(hash: string): string {
    return join(this.thumbsDir, hash.slice(0, 2), `${hash}.webp`);
  }

  /**
   * Writes bytes to `path` atomically and durably (see the file comment). On failure the temp file is
   * removed and nothing appears at `path`. `tempDir` must be on the same file system as `path`.
   */
  writeAtomic(path: string, bytes: Uint8Array, tempDir: string = this.tmpDir): void {
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true });
    const temp = join(tempDir, `.${process.pid}-${++this.tempCounter}-${randomBytes(4).toString('hex')}.part`);
    try {
      const fd = openSync(temp, 'wx');
      try {
        writeFileSync(fd, bytes);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, path);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
    fsyncDirectory(dir);
  }

  /** Removes a file if it is there; true when one was removed. */
  remove(path: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  exists(path: string): boolean {
    return existsSync(path);
  }

  /** Hashes of the files under images/ (or thumbs/) that are named like ours; other files are not ours to judge. */
  listHashes(kind: 'images' | 'thumbs'): Map<string, string> {
    const root = kind === 'images' ? this.imagesDir : this.thumbsDir;
    const ext = kind === 'images' ? 'png' : 'webp';
    const found = new Map<string, string>();
    for (const shard of safeReaddir(root)) {
      for (const name of safeReaddir(join(root, shard))) {
        const m = HASH_FILE.exec(name);
        if (m && m[2] === ext && m[1]!.startsWith(shard)) found.set(m[1]!, join(root, shard, name));
      }
    }
    return found;
  }

  /** Paths of every leftover temp file. */
  listTempFiles(): string[] {
    return safeReaddir(this.tmpDir).map((name) => join(this.tmpDir, name));
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/**
 * fsync on a folder makes a rename in it durable (POSIX). Windows can't open a folder this way and
 * makes renames durable on its own (NTFS journals metadata), so there it is skipped.
 */
export function fsyncDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
