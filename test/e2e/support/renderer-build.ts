/**
 * Builds the renderer (renderer/dist) when it is missing or older than its sources, so the end-to-end
 * tests and the UI bench always drive the current code. A lock file keeps two runs from building at once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const RENDERER_DIST = join(REPO_ROOT, 'renderer', 'dist');

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

/** True when renderer/dist/index.html is older than any renderer source or the shared types it uses. */
export function rendererIsStale(): boolean {
  const index = join(RENDERER_DIST, 'index.html');
  if (!existsSync(index)) return true;
  const built = statSync(index).mtimeMs;
  const sources = [
    join(REPO_ROOT, 'renderer', 'src'),
    join(REPO_ROOT, 'renderer', 'index.html'),
    join(REPO_ROOT, 'renderer', 'vite.config.ts'),
    join(REPO_ROOT, 'package-lock.json'),
  ];
  return sources.some((s) => existsSync(s) && newestMtime(s) > built);
}

export function ensureRendererBuilt(): void {
  if (!rendererIsStale()) return;
  const vite = join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  const result = spawnSync(process.execPath, [vite, 'build', '--config', join(REPO_ROOT, 'renderer', 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 180_000,
  });
  if (result.status !== 0) throw new Error(`building the renderer failed (vite exited with ${result.status ?? result.signal})`);
}
