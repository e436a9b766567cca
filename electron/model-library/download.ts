/**
 * Fetching a model folder's files into a temp folder, resumably.
 *
 * Each file goes to `<path>.part` and is renamed to `<path>` once its size and sha256 (when known) check
 * out, so on resume a file without `.part` is complete and a `.part` file continues with an HTTP Range
 * request from its length (RFC 9110 §14.2), guarded by If-Range with the validator the server gave
 * first, so a file that changed on the server starts over instead of being spliced. A connection that
 * drops mid-file is retried from where it stopped; a corrupt file is an error, never retried.
 */
import { mkdir, open, rename, rm, stat, statfs, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CancelledError } from '../shared/errors.js';
import { ModelLibraryError, type DownloadFileSpec, type DownloadPhase, type ModelDownloadProgress } from '../shared/model-library.js';
import { sha256File } from './content-hash.js';

export const PART_SUFFIX = '.part';
/** Progress events at most this often (ms), so a fast local download doesn't flood IPC. */
const PROGRESS_INTERVAL_MS = 100;
/** Speed is averaged over this window (ms): long enough to be steady, short enough to follow changes. */
const SPEED_WINDOW_MS = 3000;
/** Room left free beyond the download itself (bytes): the database and the app still need to write. */
export const DISK_HEADROOM_BYTES = 16 * 1024;

export interface Validator {
  etag?: string;
  lastModified?: string;
}

/** What fetchFiles reports: a download's progress without the library's fields (id, name, outcome). */
export type ProgressSnapshot = Omit<ModelDownloadProgress, 'downloadId' | 'name' | 'modelId' | 'error'>;

export interface FetchFilesOptions {
  files: readonly DownloadFileSpec[];
  /** The temp folder the files are assembled in. */
  dir: string;
  validators: Record<string, Validator>;
  /** Called when a file's validator is first seen, to persist it for a resume after restart. */
  saveValidators: (validators: Record<string, Validator>) => void;
  signal: AbortSignal;
  onProgress: (p: ProgressSnapshot) => void;
  /** Attempts per file after a dropped connection (default 5). */
  maxRetries?: number;
  /** First retry delay in ms, doubled each time (default 500). */
  retryDelayMs?: number;
  clock?: () => number;
}

/** A dropped connection or a server hiccup: worth retrying from the bytes we have. */
class TransientError extends Error {}

/** The connection kept failing after every retry: the bytes on disk stay, and the download can be resumed. */
export class InterruptedDownloadError extends ModelLibraryError {
  constructor(message: string, cause: unknown) {
    super('E_DOWNLOAD', message, { cause });
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new CancelledError('The download was cancelled.');
}

async function sizeOnDisk(file: string): Promise<number | null> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortReason(signal));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function isDiskFull(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOSPC';
}

function diskFull(needed: number, available: number, dir: string): ModelLibraryError {
  const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
  return new ModelLibraryError(
    'E_DISK_FULL',
    `Not enough disk space for this model: it needs ${mb(needed)} more but only ${mb(available)} is free on the disk of ${dir}.`,
  );
}

/** Throws E_DISK_FULL unless `needed` bytes (plus headroom) are free where `dir` lives. */
export async function checkDiskSpace(dir: string, needed: number): Promise<void> {
  const fs = await statfs(dir);
  const available = Number(fs.bavail) * Number(fs.bsize);
  if (needed + DISK_HEADROOM_BYTES > available) throw diskFull(needed, available, dir);
}

/** Bytes per second over a sliding window, and the ETA from it. */
class SpeedMeter {
  private readonly samples: Array<{ t: number; bytes: number }> = [];
  constructor(private readonly clock: () => number) {}

  add(totalBytesSoFar: number): void {
    const t = this.clock();
    this.samples.push({ t, bytes: totalBytesSoFar });
    while (this.samples.length > 2 && t - this.samples[0]!.t > SPEED_WINDOW_MS) this.samples.shift();
  }

  bytesPerSecond(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

/**
 * Asks for the size of files whose manifest doesn't give one (HEAD, Content-Length). A server that won't
 * say leaves it unknown: then the total and the percentage are unknown until that file is fetched.
 */
async function probeSizes(files: readonly DownloadFileSpec[], signal: AbortSignal): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const f of files) {
    if (f.size !== undefined) {
      sizes.set(f.path, f.size);
      continue;
    }
    try {
      const res = await fetch(f.url, { method: 'HEAD', signal, redirect: 'follow' });
      const length = Number(res.headers.get('content-length'));
      if (res.ok && res.headers.has('content-length') && Number.isSafeInteger(length) && length >= 0) sizes.set(f.path, length);
    } catch {
      if (signal.aborted) throw abortReason(signal);
      // A failing HEAD is not fatal: the GET below says what is wrong.
    }
  }
  return sizes;
}

export async function fetchFiles(options: FetchFilesOptions): Promise<void> {
  const { files, dir, signal } = options;
  const clock = options.clock ?? Date.now;
  const maxRetries = options.maxRetries ?? 5;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const validators = { ...options.validators };

  await mkdir(dir, { recursive: true });
  options.onProgress({ phase: 'checking', receivedBytes: 0, totalBytes: null, percent: null, bytesPerSecond: 0, etaSeconds: null, file: null });
  const sizes = await probeSizes(files, signal);

  // What is already here (a resume): complete files and the parts of unfinished ones.
  const done = new Map<string, number>();
  const complete = new Set<string>();
  for (const f of files) {
    const final = await sizeOnDisk(join(dir, f.path));
    if (final !== null && (sizes.get(f.path) ?? final) === final) {
      done.set(f.path, final);
      complete.add(f.path);
    } else {
      done.set(f.path, (await sizeOnDisk(join(dir, f.path) + PART_SUFFIX)) ?? 0);
    }
  }
  const known = files.every((f) => sizes.has(f.path));
  let total: number | null = known ? files.reduce((s, f) => s + sizes.get(f.path)!, 0) : null;
  let received = [...done.values()].reduce((s, n) => s + n, 0);
  const stillNeeded = files.reduce((s, f) => s + Math.max(0, (sizes.get(f.path) ?? 0) - (done.get(f.path) ?? 0)), 0);
  await checkDiskSpace(dir, stillNeeded);

  const meter = new SpeedMeter(clock);
  meter.add(received);
  let lastEmit = 0;
  const emit = (phase: DownloadPhase, file: string | null, force = false): void => {
    const now = clock();
    if (!force && now - lastEmit < PROGRESS_INTERVAL_MS) return;
    lastEmit = now;
    const speed = meter.bytesPerSecond();
    options.onProgress({
      phase,
      receivedBytes: received,
      totalBytes: total,
      percent: total === null ? null : total === 0 ? 100 : Math.min(100, (received / total) * 100),
      bytesPerSecond: speed,
      etaSeconds: total === null || speed <= 0 ? null : Math.max(0, (total - received) / speed),
      file,
    });
  };
  emit('downloading', null, true);

  for (const f of files) {
    const finalPath = join(dir, f.path);
    const partPath = finalPath + PART_SUFFIX;
    if (complete.has(f.path)) continue;
    await mkdir(dirname(finalPath), { recursive: true });

    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw abortReason(signal);
      const have = (await sizeOnDisk(partPath)) ?? 0;
      try {
        const result = await fetchInto(f, partPath, have, validators, signal, {
          onValidator: (validator) => {
            // Saved before the body is read, so a resume after a drop (or a restart) can send If-Range.
            if (validator && JSON.stringify(validator) !== JSON.stringify(validators[f.path])) {
              validators[f.path] = validator;
              options.saveValidators({ ...validators });
            }
          },
          onBytes: (n) => {
            received += n;
            meter.add(received);
            emit('downloading', f.path);
          },
        });
        if (result.contentLength !== null && !sizes.has(f.path)) {
          sizes.set(f.path, result.contentLength);
          if (files.every((x) => sizes.has(x.path))) total = files.reduce((s, x) => s + sizes.get(x.path)!, 0);
        }
        const got = (await sizeOnDisk(partPath)) ?? 0;
        const expected = f.size ?? result.contentLength;
        if (expected !== null && got < expected) throw new TransientError(`connection ended after ${got} of ${expected} bytes`);
        if (expected !== null && got > expected) {
          await rm(partPath, { force: true });
          received -= got;
          throw new ModelLibraryError('E_CHECKSUM', `${f.path}: the server sent ${got} bytes, ${expected} were expected.`);
        }
        break;
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        if (!(err instanceof TransientError)) throw err;
        if (attempt >= maxRetries) {
          throw new InterruptedDownloadError(`${f.path}: the download kept failing (${(err as Error).message}); it can be resumed later.`, err);
        }
        await sleep(retryDelayMs * 2 ** attempt, signal);
      }
    }

    if (f.sha256) {
      emit('verifying', f.path, true);
      const actual = await sha256File(partPath);
      if (actual !== f.sha256.toLowerCase()) {
        await rm(partPath, { force: true });
        throw new ModelLibraryError('E_CHECKSUM', `${f.path} is corrupt: its sha256 is ${actual}, the manifest says ${f.sha256}.`);
      }
    }
    await rename(partPath, finalPath);
    emit('downloading', f.path, true);
  }
  if (total === null) total = received;
  emit('downloading', null, true);
}

interface FetchResult {
  contentLength: number | null;
}

interface FetchCallbacks {
  /** The response's validator (ETag, else Last-Modified), as soon as the headers arrive. */
  onValidator: (validator: Validator | null) => void;
  /** Bytes written (negative when the server ignored the Range and the part starts over). */
  onBytes: (n: number) => void;
}

/** One GET of one file, appended to its part file. */
async function fetchInto(
  f: DownloadFileSpec,
  partPath: string,
  have: number,
  validators: Record<string, Validator>,
  signal: AbortSignal,
  { onValidator, onBytes }: FetchCallbacks,
): Promise<FetchResult> {
  const headers: Record<string, string> = {};
  const known = validators[f.path];
  if (have > 0) {
    headers['range'] = `bytes=${have}-`;
    const ifRange = known?.etag ?? known?.lastModified;
    if (ifRange) headers['if-range'] = ifRange;
  }
  let res: Response;
  try {
    res = await fetch(f.url, { headers, signal, redirect: 'follow' });
  } catch (err) {
    if (signal.aborted) throw abortReason(signal);
    throw new TransientError((err as Error).message);
  }
  if (res.status === 416 && have > 0 && f.size === have) {
    await res.body?.cancel();
    return { contentLength: have };
  }
  if (res.status >= 500 || res.status === 408 || res.status === 429) {
    await res.body?.cancel();
    throw new TransientError(`HTTP ${res.status}`);
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    throw new ModelLibraryError('E_DOWNLOAD', `${f.path}: the server answered HTTP ${res.status} ${res.statusText} for ${f.url}.`);
  }
  let offset = have;
  if (res.status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== have) {
      await res.body?.cancel();
      throw new ModelLibraryError('E_DOWNLOAD', `${f.path}: the server answered a range request for byte ${have} with "${res.headers.get('content-range')}".`);
    }
  } else if (have > 0) {
    // 200 to a range request: the server can't resume, or the file changed (If-Range): start over.
    await truncate(partPath, 0);
    onBytes(-have);
    offset = 0;
  }
  const lengthHeader = res.headers.get('content-length');
  const contentLength = lengthHeader === null ? null : offset + Number(lengthHeader);
  const etag = res.headers.get('etag');
  const lastModified = res.headers.get('last-modified');
  // A weak ETag may not be used in If-Range (RFC 9110 §13.1.5).
  onValidator(etag && !etag.startsWith('W/') ? { etag } : lastModified ? { lastModified } : null);

  const out = await open(partPath, offset === 0 ? 'w' : 'a');
  try {
    if (!res.body) throw new TransientError('no response body');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        onBytes(chunk.byteLength);
      }
    } catch (err) {
      if (signal.aborted) throw abortReason(signal);
      if (isDiskFull(err)) throw err;
      throw new TransientError((err as Error).message);
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { contentLength };
}
