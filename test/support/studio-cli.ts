/** Runs the `studio` command (bin/studio.mjs) as a user would, in its own process from the repository root. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './engine-fixtures.js';

const run = promisify(execFile);
const STUDIO = join(REPO_ROOT, 'bin', 'studio.mjs');

export interface StudioRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Never throws for a failing command: its exit code and both streams come back to be asserted on. */
export async function studio(...args: string[]): Promise<StudioRun> {
  try {
    const { stdout, stderr } = await run(process.execPath, [STUDIO, ...args], { cwd: REPO_ROOT, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
