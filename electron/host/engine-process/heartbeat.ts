/**
 * The engine process's heartbeat, both ends, over a local socket (a Unix domain socket in a private
 * temp folder; a named pipe on Windows).
 *
 * A socket, because it is the one channel that both front doors can give the engine process: Node's
 * `fork` could hand over a spare pipe, but Electron's utilityProcess has only its message port and
 * stdio, and neither can be read while the process's main thread is busy or stopped in a useful way.
 * The socket's path and a one-time token reach the engine in its environment.
 *
 * The beat comes from a worker thread of the engine process, not its main thread: onnxruntime-node runs
 * a session synchronously on the main thread, so a long U-Net step would look like a hang there. The
 * beat stops when the whole process stops (SIGSTOP, a frozen machine), which the host's watchdog
 * (engine-client.ts) turns into a restart.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** The socket (or pipe) the engine connects to. */
export const HEARTBEAT_PATH_ENV = 'STUDIO_ENGINE_HEARTBEAT_PATH';
/** The token the engine sends first, so only the process this host started can beat for it. */
export const HEARTBEAT_TOKEN_ENV = 'STUDIO_ENGINE_HEARTBEAT_TOKEN';
/** How often the engine beats, in ms. */
export const HEARTBEAT_MS_ENV = 'STUDIO_ENGINE_HEARTBEAT_MS';
export const DEFAULT_HEARTBEAT_MS = 1000;

const TOKEN_BYTES = 16;

/** The host's end: one per engine process. */
export interface HeartbeatListener {
  /** What the engine process needs in its environment to beat here. */
  readonly env: Record<string, string>;
  readonly intervalMs: number;
  /** Called at each beat of the engine process that presented the token. */
  onBeat(listener: () => void): void;
  /** Stops listening and removes the socket. */
  close(): void;
}

/**
 * Listens for one engine process's heartbeat. A socket that fails to open is logged and leaves the
 * process without a watchdog (the watchdog arms only at the first beat), never without an engine.
 */
export function listenForHeartbeat(intervalMs: number = DEFAULT_HEARTBEAT_MS): HeartbeatListener {
  const token = randomBytes(TOKEN_BYTES);
  // A folder only this user can enter (mkdtemp makes it 0700); Windows pipes live in their own namespace.
  const folder = process.platform === 'win32' ? null : mkdtempSync(join(tmpdir(), 'studio-engine-'));
  const path = folder ? join(folder, 'heartbeat.sock') : `\\\\.\\pipe\\latent-studio-engine-${randomBytes(12).toString('hex')}`;
  const listeners: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let received = Buffer.alloc(0);
    let trusted = false;
    socket.on('data', (chunk: Buffer) => {
      if (!trusted) {
        received = Buffer.concat([received, chunk]);
        if (received.length < TOKEN_BYTES) return;
        if (!timingSafeEqual(received.subarray(0, TOKEN_BYTES), token)) {
          socket.destroy();
          return;
        }
        trusted = true;
      }
      for (const listener of listeners) listener();
    });
  });
  server.on('error', (err) => console.error(`studio host: the engine heartbeat socket failed (${err.message}); the engine runs without a watchdog.`));
  server.listen(path);
  server.unref();
  let closed = false;
  return {
    env: { [HEARTBEAT_PATH_ENV]: path, [HEARTBEAT_TOKEN_ENV]: token.toString('hex'), [HEARTBEAT_MS_ENV]: String(intervalMs) },
    intervalMs,
    onBeat(listener) {
      listeners.push(listener);
    },
    close() {
      if (closed) return;
      closed = true;
      listeners.length = 0;
      for (const socket of sockets) socket.destroy();
      server.close();
      if (folder) rmSync(folder, { recursive: true, force: true });
    },
  };
}

/**
 * The engine's end: beats from a worker thread to the socket named in `env`, when the host gave one.
 * A refused or lost connection is tried again at the next beat.
 */
export function startHeartbeat(env: NodeJS.ProcessEnv = process.env): void {
  const path = env[HEARTBEAT_PATH_ENV];
  const token = env[HEARTBEAT_TOKEN_ENV];
  if (!path || !token) return;
  const intervalMs = Number(env[HEARTBEAT_MS_ENV]) || DEFAULT_HEARTBEAT_MS;
  // Evaluated source (CommonJS), so the bundled engine entry needs no separate worker file.
  const source = `
    const { connect } = require('node:net');
    const { workerData } = require('node:worker_threads');
    const token = Buffer.from(workerData.token, 'hex');
    let socket = null;
    let connected = false;
    setInterval(() => {
      if (socket === null) {
        socket = connect(workerData.path, () => {
          connected = true;
          socket.write(token);
        });
        socket.on('error', () => undefined);
        socket.on('close', () => { socket = null; connected = false; });
      } else if (connected) {
        socket.write('.');
      }
    }, workerData.intervalMs);
  `;
  const worker = new Worker(source, { eval: true, workerData: { path, token, intervalMs } });
  // The beat must not keep the process alive on its own.
  worker.unref();
}
