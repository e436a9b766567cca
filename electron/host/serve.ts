/**
 * `studio serve`: the host behind the browser-mode server, until SIGINT/SIGTERM. Prints one JSON line
 * on stdout when it is listening: `{"url": …, "token": …, "host": …, "port": …, "dataDir": …}` (for
 * scripts), and one sentence on stderr telling a person where to open the studio (`readyMessage`).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EXECUTION_PROVIDERS } from '../shared/contract-schemas.js';
import { InvalidRequestError } from '../shared/errors.js';
import type { ExecutionProviderName } from '../shared/generation.js';
import { Host } from './host.js';
import { DEFAULT_SERVE_HOST, DEFAULT_SERVE_PORT, isLoopbackHost, startServer } from './server.js';

/** The product name Electron uses for `app.getPath('userData')`, so both front doors share one data folder. */
const PRODUCT_NAME = 'Latent Studio';
export const DEFAULT_STATIC_ROOT = fileURLToPath(new URL('../../renderer/dist', import.meta.url));

export const SERVE_USAGE = `Usage:
  studio serve [--port N] [--host 127.0.0.1] [--data-dir DIR] [--static-root DIR] [--max-upload-mb N]
               [--allowed-host NAME …] [--providers cpu,webgpu,…] [--threads N]

Serves the studio (renderer + contract over HTTP and WebSocket) on ${DEFAULT_SERVE_HOST}:${DEFAULT_SERVE_PORT} by default,
with a random token that every request must carry. --host 0.0.0.0 exposes it to the network.`;

/** Where Electron keeps `userData` for this app on each platform. */
export function defaultDataDir(): string {
  const home = homedir();
  if (process.platform === 'win32') return join(process.env['APPDATA'] ?? join(home, 'AppData', 'Roaming'), PRODUCT_NAME);
  if (process.platform === 'darwin') return join(home, 'Library', 'Application Support', PRODUCT_NAME);
  return join(process.env['XDG_CONFIG_HOME'] ?? join(home, '.config'), PRODUCT_NAME);
}

function intOption(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidRequestError(`--${name} must be an integer from ${min} to ${max}, got "${String(value)}"`);
  }
  return n;
}

/** What a person reads on stderr once the studio listens: where to open it, token included. */
export function readyMessage(url: string): string {
  return `Latent Studio is ready: open ${url} in a browser (Ctrl+C stops it).`;
}

export async function runServe(argv: string[], bundledModelDir: string | null): Promise<unknown> {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'data-dir': { type: 'string' },
        'static-root': { type: 'string' },
        'max-upload-mb': { type: 'string' },
        'allowed-host': { type: 'string', multiple: true },
        providers: { type: 'string' },
        threads: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new InvalidRequestError(`${(err as Error).message}\n\n${SERVE_USAGE}`);
  }
  const port = intOption(values['port'], 'port', 0, 65535) ?? DEFAULT_SERVE_PORT;
  const maxUploadMb = intOption(values['max-upload-mb'], 'max-upload-mb', 1, 4096);
  const threads = intOption(values['threads'], 'threads', 0, 256);
  const providers = typeof values['providers'] === 'string' ? values['providers'].split(',').map((p) => p.trim()) : undefined;
  for (const p of providers ?? []) {
    if (!(EXECUTION_PROVIDERS as readonly string[]).includes(p)) {
      throw new InvalidRequestError(`unknown execution provider "${p}"; choose from ${EXECUTION_PROVIDERS.join(', ')}`);
    }
  }
  const bindHost = typeof values['host'] === 'string' ? values['host'] : DEFAULT_SERVE_HOST;
  const dataDir = resolve(typeof values['data-dir'] === 'string' ? values['data-dir'] : defaultDataDir());

  const host = await Host.open({
    dataDir,
    frontDoor: 'serve',
    bundledModelDir,
    engineSettings: {
      ...(providers ? { providers: providers as ExecutionProviderName[] } : {}),
      ...(threads !== undefined ? { threads } : {}),
    },
  });
  let server;
  try {
    server = await startServer(host, {
      host: bindHost,
      port,
      staticRoot: typeof values['static-root'] === 'string' ? values['static-root'] : DEFAULT_STATIC_ROOT,
      ...(maxUploadMb !== undefined ? { maxUploadBytes: maxUploadMb * 1024 * 1024 } : {}),
      allowedHosts: (values['allowed-host'] as string[] | undefined) ?? [],
    });
  } catch (err) {
    await host.close();
    throw err;
  }
  if (!isLoopbackHost(bindHost)) {
    process.stderr.write(`studio serve: listening on ${bindHost}, reachable from other machines; anyone with the token can use this studio.\n`);
  }
  process.stdout.write(`${JSON.stringify({ url: server.url, token: server.token, host: server.host, port: server.port, dataDir })}\n`);
  process.stderr.write(`${readyMessage(server.url)}\n`);

  const signal = await new Promise<string>((resolveStop) => {
    process.once('SIGINT', () => resolveStop('SIGINT'));
    process.once('SIGTERM', () => resolveStop('SIGTERM'));
  });
  await server.close();
  await host.close();
  return { stopped: signal };
}
