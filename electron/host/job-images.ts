/**
 * A queued job's input images as files in the data folder, not in its database row:
 *
 *   <data>/jobs/<jobId>/init-image.png   (mask.png, label-map.png, control.png, region-1-mask.png …)
 *
 * At enqueue each base64 image of the request is decoded once, a few MiB at a time, straight into its
 * file (written to a temp name, fsynced, renamed, and the folder fsynced, as history writes its images),
 * and the row keeps only the file names. When the job runs, the engine process reads the files itself:
 * the host never holds a job's images again. Four queued 79 MiB uploads grew the host by ~720 MB when
 * the images lived in the row (the row's text, its parsed copy, the decoded bytes, two transfers to the
 * engine); now a job costs the host nothing after its request has been answered.
 *
 * A job's folder goes when it finishes, fails or is cancelled; at start the queue removes every folder
 * that no queued job owns (a crash between writing the files and storing the row, or before removing them).
 */
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Requests } from '../shared/contract.js';
import { imageHeaderFromBase64 } from '../shared/image-header.js';
import { StudioError } from '../shared/errors.js';

/** The folder under the data folder that holds queued jobs' images. */
export const JOB_IMAGES_FOLDER = 'jobs';

/** Base64 characters decoded and written at a time (a multiple of 4: each chunk decodes on its own). */
const CHUNK_CHARS = 4 * 1024 * 1024;

type GenerateRequest = Requests['generate'];
type Control = NonNullable<GenerateRequest['control']>;
type Region = NonNullable<GenerateRequest['regions']>[number];

/** A generate request with its images moved to files: everything else as the client sent it. */
export type JobRequest = Omit<GenerateRequest, 'initImage' | 'mask' | 'labelMap' | 'control' | 'regions'> & {
  seed: number;
  control?: Omit<Control, 'image'>;
  regions?: Array<Omit<Region, 'mask'>>;
};

/** A job's image files: names inside its folder (in the row), or absolute paths (handed to the runner). */
export interface JobImageFiles {
  initImage?: string;
  mask?: string;
  labelMap?: string;
  control?: string;
  /** One per region, in the request's order. */
  regions?: string[];
}

/** Whether a request (a stored row's, from before images moved to files) still carries base64 images. */
export function hasInlineImages(request: Partial<GenerateRequest>): boolean {
  return request.initImage !== undefined || request.mask !== undefined || request.labelMap !== undefined || request.control !== undefined || (request.regions?.length ?? 0) > 0;
}

/** The file name for an image: its role and the format its header names (bin when it names none). */
function fileName(role: string, base64: string): string {
  const format = imageHeaderFromBase64(base64)?.format;
  return `${role}.${format === 'jpeg' ? 'jpg' : format ?? 'bin'}`;
}

export class JobImages {
  constructor(readonly dir: string) {}

  jobDir(id: string): string {
    return join(this.dir, id);
  }

  /**
   * Writes the request's images to the job's folder and returns the request without them, with their
   * file names. Throws E_DISK_FULL (or E_IO) in words when the disk refuses them, having removed
   * whatever it wrote: nothing of the job is left behind.
   */
  async stash(id: string, request: GenerateRequest & { seed: number }): Promise<{ request: JobRequest; files: JobImageFiles }> {
    const { initImage, mask, labelMap, control, regions, ...rest } = request;
    const images: Array<{ role: string; base64: string; put: (files: JobImageFiles, name: string) => void }> = [];
    if (initImage !== undefined) images.push({ role: 'init-image', base64: initImage, put: (f, n) => (f.initImage = n) });
    if (mask !== undefined) images.push({ role: 'mask', base64: mask, put: (f, n) => (f.mask = n) });
    if (labelMap !== undefined) images.push({ role: 'label-map', base64: labelMap, put: (f, n) => (f.labelMap = n) });
    if (control !== undefined) images.push({ role: 'control', base64: control.image, put: (f, n) => (f.control = n) });
    (regions ?? []).forEach((region, i) => images.push({ role: `region-${i + 1}-mask`, base64: region.mask, put: (f, n) => (f.regions ??= []).push(n) }));
    const stripped: JobRequest = {
      ...rest,
      ...(control !== undefined ? { control: (({ image: _, ...c }) => c)(control) } : {}),
      ...(regions !== undefined ? { regions: regions.map(({ mask: _, ...r }) => r) } : {}),
    };
    const files: JobImageFiles = {};
    if (images.length === 0) return { request: stripped, files };
    const dir = this.jobDir(id);
    try {
      await mkdir(dir, { recursive: true });
      for (const image of images) {
        const name = fileName(image.role, image.base64);
        await writeBase64(join(dir, name), image.base64);
        image.put(files, name);
      }
      await fsyncDirectory(dir);
      await fsyncDirectory(this.dir);
    } catch (err) {
      await this.remove(id);
      throw storeError(err, images.reduce((n, i) => n + Math.floor((i.base64.length * 3) / 4), 0));
    }
    return { request: stripped, files };
  }

  /** The files' absolute paths, for the runner. */
  paths(id: string, files: JobImageFiles): JobImageFiles {
    const dir = this.jobDir(id);
    const at = (name: string) => join(dir, name);
    return {
      ...(files.initImage !== undefined ? { initImage: at(files.initImage) } : {}),
      ...(files.mask !== undefined ? { mask: at(files.mask) } : {}),
      ...(files.labelMap !== undefined ? { labelMap: at(files.labelMap) } : {}),
      ...(files.control !== undefined ? { control: at(files.control) } : {}),
      ...(files.regions !== undefined ? { regions: files.regions.map(at) } : {}),
    };
  }

  /** Removes a job's folder (no error when there is none; a failure is logged, not thrown: the next start retries). */
  async remove(id: string): Promise<void> {
    try {
      await rm(this.jobDir(id), { recursive: true, force: true });
    } catch (err) {
      console.error(`studio host: the images of job ${id} could not be removed (removed at the next start): ${(err as Error).message}`);
    }
  }

  /** Removes every job folder (and stray file) whose name is not in `keep`. Returns the names removed. */
  async removeAllBut(keep: ReadonlySet<string>): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') console.error(`studio host: the jobs' image folder could not be listed: ${(err as Error).message}`);
      return [];
    }
    const orphans = names.filter((name) => !keep.has(name));
    for (const name of orphans) await this.remove(name);
    return orphans;
  }
}

/** Decodes base64 into a file a chunk at a time (never the whole image in memory), atomically and durably. */
async function writeBase64(path: string, base64: string): Promise<void> {
  const temp = `${path}.part`;
  const file = await open(temp, 'w');
  try {
    for (let at = 0; at < base64.length; at += CHUNK_CHARS) {
      const bytes = Buffer.from(base64.slice(at, at + CHUNK_CHARS), 'base64');
      // A write may take fewer bytes than given (a disk that is filling up): the rest goes again, and
      // the disk then says ENOSPC.
      for (let done = 0; done < bytes.length; ) done += (await file.write(bytes, done, bytes.length - done)).bytesWritten;
    }
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
}

/**
 * fsync on a folder makes a rename in it durable (POSIX); Windows can't open a folder this way and
 * journals renames itself. Asynchronous (history/files.ts has the synchronous one): enqueue must not
 * hold the event loop while the disk flushes.
 */
async function fsyncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A file-system failure while storing a job's images, in words and without the data folder's path. */
function storeError(err: unknown, bytes: number): StudioError {
  const code = (err as NodeJS.ErrnoException).code;
  const size = `${Math.max(1, Math.round(bytes / 1024 / 1024))} MB`;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StudioError('E_DISK_FULL', `Can't queue the job: the disk is full (its images need about ${size}). Free some space and generate again.`);
  }
  if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') {
    return new StudioError('E_READ_ONLY', `Can't queue the job: the data folder is read-only (${code}).`);
  }
  return new StudioError('E_IO', `Can't queue the job: its images could not be written (${code ?? (err as Error).message}).`);
}
