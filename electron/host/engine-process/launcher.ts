/**
 * How the host starts the engine process. Everything the engine client needs from a process is the
 * small `EngineProcess` interface, so Electron's utilityProcess can replace Node's `fork` with one
 * adapter (electron/main) and nothing else changes.
 */
import { fork } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HEARTBEAT_MS, HEARTBEAT_FD_ENV, HEARTBEAT_MS_ENV, type EngineMessage, type HostMessage } from './protocol.js';

export interface EngineExit {
  code: number | null;
  signal: string | null;
}

export interface EngineProcess {
  readonly pid: number | undefined;
  send(message: HostMessage): void;
  onMessage(listener: (message: EngineMessage) => void): void;
  /** Called once, when the process has exited (or failed to start). */
  onExit(listener: (exit: EngineExit) => void): void;
  /** Ends the process now (also when it is stopped). */
  kill(): void;
  /**
   * Calls `listener` at each heartbeat of the engine process (about every `heartbeatMs`). A process
   * without one (an adapter that has no pipe for it) has no watchdog.
   */
  onHeartbeat?(listener: () => void): void;
  /** The interval the engine process beats at, when it has a heartbeat. */
  readonly heartbeatMs?: number;
}

export type EngineLauncher = () => EngineProcess;

/** The engine process's entry module. */
export const ENGINE_CHILD_ENTRY = fileURLToPath(new URL('./engine-child.ts', import.meta.url));

/**
 * Plain Node: `entry` in a child process (`fork`), with `execArgv` for the child's Node (a loader).
 * Messages use structured clone ("advanced" serialization), like utilityProcess.
 */
export function forkLauncher(entry: string, execArgv: string[] = [], options: { heartbeatMs?: number } = {}): EngineLauncher {
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  return () => {
    const child = fork(entry, [], {
      execArgv,
      // Structured clone instead of JSON: typed arrays (images, latents) cross as bytes.
      serialization: 'advanced',
      // fd 4: the heartbeat pipe (protocol.ts).
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      env: { ...process.env, [HEARTBEAT_FD_ENV]: '4', [HEARTBEAT_MS_ENV]: String(heartbeatMs) },
    });
    const beats = child.stdio[4] as Readable | null;
    // Always drained, so a full pipe never blocks the beat.
    beats?.resume();
    beats?.on('error', () => undefined);
    let exited = false;
    const exitListeners: Array<(exit: EngineExit) => void> = [];
    const finish = (exit: EngineExit): void => {
      if (exited) return;
      exited = true;
      for (const listener of exitListeners) listener(exit);
    };
    child.on('exit', (code, signal) => finish({ code, signal }));
    child.on('error', () => {
      // A failed spawn emits 'error' without 'exit'; a failed send after death emits it too (then 'exit' follows).
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) finish({ code: null, signal: null });
    });
    return {
      get pid() {
        return child.pid;
      },
      send(message) {
        if (child.connected) child.send(message);
      },
      onMessage(listener) {
        child.on('message', (message) => listener(message as EngineMessage));
      },
      onExit(listener) {
        exitListeners.push(listener);
      },
      kill() {
        child.kill('SIGKILL');
      },
      heartbeatMs,
      onHeartbeat(listener) {
        beats?.on('data', () => listener());
      },
    };
  };
}

/**
 * The default under plain Node: the TypeScript engine entry through tsx's loader, resolved from this
 * module (`--import tsx` alone would be resolved from the child's working directory).
 */
export const forkEngine: EngineLauncher = () => forkLauncher(ENGINE_CHILD_ENTRY, ['--import', import.meta.resolve('tsx')])();
