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

/** The folders to create, outermost first, and the nearest one that exists. */
interface Plan {
  existing: string;
  missing: string[];
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

/** Checks `folder` and creates it (and its missing parents, one level at a time). Returns its absolute path. */
export function makeFolderSync(folder: string, what = 'folder'): string {
  const target = resolve(folder);
  checkPath(target, what);
  const plan: Plan = { existing: target, missing: [] };
  for (;;) {
    try {
      statSync(plan.existing);
      break;
    } catch (err) {
      statFailed(err, what, target);
      const parent = dirname(plan.existing);
      if (parent === plan.existing) throw refuse(what, target, 'no part of the path exists');
      plan.missing.unshift(plan.existing);
      plan.existing = parent;
    }
  }
  const st = statSync(plan.existing);
  let writable = true;
  try {
    accessSync(plan.existing, constants.W_OK);
  } catch {
    writable = false;
  }
  checkExisting(plan.existing, realpathSync(plan.existing), st.isDirectory(), st.isDirectory() ? Number(statfsSync(plan.existing).type) : 0, writable, what);
  for (const dir of plan.missing) {
    try {
      mkdirSync(dir);
    } catch (err) {
      if (errCode(err) !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
  return target;
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
  const target = resolve(folder);
  checkPath(target, what);
  const plan: Plan = { existing: target, missing: [] };
  for (;;) {
    try {
      await stat(plan.existing);
      break;
    } catch (err) {
      statFailed(err, what, target);
      const parent = dirname(plan.existing);
      if (parent === plan.existing) throw refuse(what, target, 'no part of the path exists');
      plan.missing.unshift(plan.existing);
      plan.existing = parent;
    }
  }
  const st = await stat(plan.existing);
  const writable = await access(plan.existing, constants.W_OK).then(() => true, () => false);
  const fsType = st.isDirectory() ? Number((await statfs(plan.existing)).type) : 0;
  checkExisting(plan.existing, await realpath(plan.existing), st.isDirectory(), fsType, writable, what);
  for (const dir of plan.missing) {
    try {
      await mkdir(dir);
    } catch (err) {
      if (errCode(err) !== 'EEXIST' || !(await stat(dir)).isDirectory()) throw err;
    }
  }
  return target;
}
