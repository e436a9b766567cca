/**
 * Folders the studio is asked to write into (an export, the output folder): checked before anything is
 * created. Node 20's recursive mkdir spins forever on some pseudo file systems (`/proc/x` loops at
 * 100% CPU and ignores SIGTERM), so folders are made one level at a time, and only under a real
 * directory on a writable, real file system: never under /proc, /sys or /dev.
 */
import { constants, accessSync, mkdirSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { access, mkdir, realpath, stat, statfs } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { HistoryError } from './errors.js';

/** Kernel and device trees: nothing of ours belongs there (Linux; harmless elsewhere). */
const SYSTEM_ROOTS = ['/proc', '/sys', '/dev'];
/**
 * statfs magic numbers of pseudo file systems (linux/magic.h): proc, sysfs, devpts, cgroup, cgroup2,
 * debugfs, tracefs, securityfs, efivarfs, bpf, pstore, configfs.
 */
const PSEUDO_FILE_SYSTEMS = new Set([0x9fa0, 0x62656572, 0x1cd1, 0x27e0eb, 0x63677270, 0x64626720, 0x74726163, 0x73636673, 0xde5e81e4, 0xcafe4a11, 0x6165676c, 0x62656570]);
/** How long checking and creating a folder may take (a hung network mount must not hang a request). */
export const FOLDER_TIMEOUT_MS = 5000;

function underSystemRoot(path: string): boolean {
  if (process.platform === 'win32') return false;
  return SYSTEM_ROOTS.some((root) => path === root || path.startsWith(root + sep));
}

function refuse(what: string, path: string, why: string, code: 'E_INVALID' | 'E_READ_ONLY' | 'E_IO' = 'E_INVALID'): HistoryError {
  return new HistoryError(code, `${what}: can't use ${path} as a folder: ${why}.`);
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | null)?.code ?? '';
}

/** A missing part is fine (it is created); anything else stops here. */
function statFailed(err: unknown, what: string, target: string): void {
  const code = errCode(err);
  if (code === 'ENOENT') return;
  if (code === 'ENOTDIR') throw refuse(what, target, 'a part of the path is a file, not a folder');
  throw refuse(what, target, code || (err as Error).message, code === 'EACCES' ? 'E_READ_ONLY' : 'E_IO');
}

function checkPath(target: string, what: string): void {
  if (underSystemRoot(target)) throw refuse(what, target, 'it is inside a system folder (/proc, /sys or /dev)');
}

function checkExisting(existing: string, real: string, isDirectory: boolean, fsType: number, writable: boolean, what: string): void {
  if (!isDirectory) throw refuse(what, existing, 'it is not a folder');
  if (underSystemRoot(real)) throw refuse(what, existing, `it leads into a system folder (${real})`);
  if (PSEUDO_FILE_SYSTEMS.has(fsType)) throw refuse(what, existing, 'it is on a kernel file system, not a disk');
  if (!writable) throw refuse(what, existing, 'it is not writable', 'E_READ_ONLY');
}

/**
 * The file-system questions the walk asks. The walk itself (folderWalk) is written once, as a
 * generator that yields each question; a synchronous and an asynchronous driver answer them.
 */
interface FolderOps {
  /** Throws (ENOENT, ENOTDIR, EACCES…) when the path can't be stat'ed. */
  isDirectory: boolean;
  writable: boolean;
  realpath: string;
  fsType: number;
  mkdir: void;
}
type FolderOp = keyof FolderOps;
interface Question {
  op: FolderOp;
  path: string;
}
type Walk<T> = Generator<Question, T, unknown>;

const syncOps: { [K in FolderOp]: (path: string) => FolderOps[K] } = {
  isDirectory: (path) => statSync(path).isDirectory(),
  writable: (path) => {
    try {
      accessSync(path, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  },
  realpath: (path) => realpathSync(path),
  fsType: (path) => Number(statfsSync(path).type),
  mkdir: (path) => {
    mkdirSync(path);
  },
};

const asyncOps: { [K in FolderOp]: (path: string) => Promise<FolderOps[K]> } = {
  isDirectory: async (path) => (await stat(path)).isDirectory(),
  writable: (path) => access(path, constants.W_OK).then(() => true, () => false),
  realpath: (path) => realpath(path),
  fsType: async (path) => Number((await statfs(path)).type),
  mkdir: async (path) => {
    await mkdir(path);
  },
};

function* ask<K extends FolderOp>(op: K, path: string): Walk<FolderOps[K]> {
  return (yield { op, path }) as FolderOps[K];
}

/** The one walk behind makeFolderSync and makeFolder: checks the path, then creates what is missing. */
function* folderWalk(folder: string, what: string): Walk<string> {
  const target = resolve(folder);
  checkPath(target, what);
  // The nearest folder that exists, and those to create under it, outermost first.
  let existing = target;
  const missing: string[] = [];
  let isDirectory: boolean | undefined;
  while (isDirectory === undefined) {
    try {
      isDirectory = yield* ask('isDirectory', existing);
    } catch (err) {
      statFailed(err, what, target);
      const parent = dirname(existing);
      if (parent === existing) throw refuse(what, target, 'no part of the path exists');
      missing.unshift(existing);
      existing = parent;
    }
  }
  const writable = yield* ask('writable', existing);
  const fsType = isDirectory ? yield* ask('fsType', existing) : 0;
  checkExisting(existing, yield* ask('realpath', existing), isDirectory, fsType, writable, what);
  for (const dir of missing) {
    try {
      yield* ask('mkdir', dir);
    } catch (err) {
      if (errCode(err) !== 'EEXIST' || !(yield* ask('isDirectory', dir))) throw err;
    }
  }
  return target;
}

type Answer = { value: unknown } | { error: unknown };

/** Hands the walk its answer (or throws the error at the question) and returns its next question or its result. */
function resume<T>(walk: Walk<T>, answer: Answer): IteratorResult<Question, T> {
  return 'error' in answer ? walk.throw(answer.error) : walk.next(answer.value);
}

function answerSync({ op, path }: Question): Answer {
  try {
    return { value: syncOps[op](path) };
  } catch (error) {
    return { error };
  }
}

/** Checks `folder` and creates it (and its missing parents, one level at a time). Returns its absolute path. */
export function makeFolderSync(folder: string, what = 'folder'): string {
  const walk = folderWalk(folder, what);
  let step = walk.next();
  while (!step.done) step = resume(walk, answerSync(step.value));
  return step.value;
}

/** makeFolderSync without blocking the event loop, and with a time limit (E_IO when it runs out). */
export async function makeFolder(folder: string, what = 'folder', timeoutMs = FOLDER_TIMEOUT_MS): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(refuse(what, resolve(folder), `checking it took longer than ${timeoutMs / 1000} s`, 'E_IO')), timeoutMs);
  });
  try {
    return await Promise.race([makeFolderAsync(folder, what), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function makeFolderAsync(folder: string, what: string): Promise<string> {
  const walk = folderWalk(folder, what);
  let step = walk.next();
  while (!step.done) {
    const { op, path } = step.value;
    step = resume(walk, await asyncOps[op](path).then((value): Answer => ({ value }), (error: unknown): Answer => ({ error })));
  }
  return step.value;
}
