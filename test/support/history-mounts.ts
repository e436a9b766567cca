/**
 * Real file-system failures for the history tests: a small tmpfs fills up (ENOSPC), and a remount makes
 * it read-only (EROFS). Needs CAP_SYS_ADMIN (tests and CI run as root in their sandbox); where `mount`
 * is refused, `canMount()` is false and those tests are skipped with that reason.
 * As root, chmod can't make a folder read-only (root ignores permission bits), hence the mount.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(args: string[]): { ok: boolean; stderr: string } {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  return { ok: r.status === 0, stderr: r.stderr ?? String(r.error) };
}

let probed: boolean | undefined;

/** Whether this process may mount a tmpfs (probed once). */
export function canMount(): boolean {
  if (probed === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'history-mount-probe-'));
    probed = run(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).ok;
    if (probed) spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
  return probed;
}

/**
 * Makes one folder read-only in place (a read-only bind mount over itself), also while files elsewhere
 * on its file system are open, which a whole-file-system remount refuses. Returns the undo.
 */
export function bindReadOnly(dir: string): () => void {
  const bound = run(['--bind', dir, dir]);
  if (!bound.ok) throw new Error(`bind mount failed: ${bound.stderr}`);
  const ro = run(['-o', 'remount,bind,ro', dir]);
  if (!ro.ok) {
    spawnSync('umount', [dir]);
    throw new Error(`read-only remount failed: ${ro.stderr}`);
  }
  return () => {
    spawnSync('umount', [dir]);
  };
}

export interface SmallDisk {
  dir: string;
  setReadOnly(readOnly: boolean): void;
  dispose(): void;
}

/** A fresh tmpfs of `bytes` bytes mounted on a new temp folder. */
export function mountSmallDisk(bytes: number): SmallDisk {
  const base = mkdtempSync(join(tmpdir(), 'history-disk-'));
  const dir = join(base, 'mnt');
  mkdirSync(dir);
  const mounted = run(['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  if (!mounted.ok) throw new Error(`mount tmpfs failed: ${mounted.stderr}`);
  return {
    dir,
    setReadOnly(readOnly: boolean) {
      const r = run(['-o', `remount,${readOnly ? 'ro' : 'rw'}`, dir]);
      if (!r.ok) throw new Error(`remount ${readOnly ? 'ro' : 'rw'} failed: ${r.stderr}`);
    },
    dispose() {
      spawnSync('umount', ['-l', dir]);
      rmSync(base, { recursive: true, force: true });
    },
  };
}

/** Bytes the files under `dir` take (sizes, recursively): what a fresh data folder needs before any content. */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}
