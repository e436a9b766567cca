/**
 * Starts a real `studio serve` (bin/studio.mjs) on a free port with a fresh data folder, registers a
 * fixture model through the contract, and stops it again. What the end-to-end tests and the UI bench
 * run against.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChannelName, InvokeResult, RequestInputs, Responses } from '../../../electron/shared/contract.js';
import { REPO_ROOT, RENDERER_DIST } from './renderer-build.js';

export const FIXTURE_MODELS = join(REPO_ROOT, 'test', 'fixtures', 'models');
/** A 9-channel inpainting fixture that also does txt2img and img2img (64 px is one latent tile of 8). */
export const INPAINT_MODEL_DIR = join(FIXTURE_MODELS, 'tiny-sd1-inpaint');

export interface StudioServer {
  url: string;
  origin: string;
  token: string;
  dataDir: string;
  invoke<C extends ChannelName>(channel: C, request: RequestInputs[C]): Promise<Responses[C]>;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;

export interface StudioServerOptions {
  /** Kept after stop; a fresh temporary folder (removed at stop) when absent. */
  dataDir?: string;
  /** Model folders to import; the first is selected. Default: the inpainting fixture. */
  models?: string[];
  /** The engine's CPU threads (default 1: tests share two slow cores). */
  threads?: number;
}

export async function startStudioServer(options: StudioServerOptions = {}): Promise<StudioServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'studio-e2e-'));
  const child: ChildProcess = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'studio.mjs'), 'serve', '--port', '0', '--data-dir', dataDir, '--static-root', RENDERER_DIST, '--providers', 'cpu', '--threads', String(options.threads ?? 1)],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`studio serve did not start in ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      clearTimeout(timer);
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`studio serve exited with ${code}:\n${stderr}`));
    });
  });
  const info = JSON.parse(line) as { url: string; token: string; port: number };
  const origin = `http://127.0.0.1:${info.port}`;

  async function invoke<C extends ChannelName>(channel: C, request: RequestInputs[C]): Promise<Responses[C]> {
    const res = await fetch(`${origin}/api/invoke/${channel}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${info.token}` },
      body: JSON.stringify(request),
    });
    const body = (await res.json()) as InvokeResult<C>;
    if (!body.ok) throw new Error(`${channel}: ${body.error.code}: ${body.error.message}`);
    return body.result;
  }

  const server: StudioServer = {
    url: info.url,
    origin,
    token: info.token,
    dataDir,
    invoke,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    for (const dir of options.models ?? [INPAINT_MODEL_DIR]) await invoke('models.import', { path: dir });
    const first = options.models?.[0] ?? INPAINT_MODEL_DIR;
    const { models } = await invoke('models.list', {});
    const entry = models.find((m) => m.dir === first);
    if (entry) await invoke('models.select', { modelId: entry.id });
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
