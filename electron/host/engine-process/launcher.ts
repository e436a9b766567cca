/**
 * How the host starts the engine process. Everything the engine client needs from a process is the
 * small `EngineProcess` interface. Both front doors start it the same way (`launchWithHeartbeat`):
 * plain Node with `fork` (here), Electron with utilityProcess (electron/main/engine-launcher.ts), each
 * only adapting its child to `EngineChild`; the heartbeat and its watchdog come with both.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HEARTBEAT_MS, listenForHeartbeat } from './heartbeat.js';
import type { EngineMessage, HostMessage } from './protocol.js';

export interface EngineExit {
  code: number | null;
  signal: string | null;
}

/** A started child process with a message channel, as a front door's process API gives it. */
export interface EngineChild {
  readonly pid: number | undefined;
  send(message: HostMessage): void;
  onMessage(listener: (message: EngineMessage) => void): void;
  /** Called once, when the process has exited (or failed to start). */
  onExit(listener: (exit: EngineExit) => void): void;
  /** Ends the process now, also when it is stopped (SIGSTOP): SIGKILL, not SIGTERM, which waits for SIGCONT. */
  kill(): void;
}

export interface EngineProcess extends EngineChild {
  /**
   * Calls `listener` at each heartbeat of the engine process (about every `heartbeatMs`). A process
   * without one has no watchdog.
   */
  onHeartbeat?(listener: () => void): void;
  /** The interval the engine process beats at, when it has a heartbeat. */
  readonly heartbeatMs?: number;
}

export type EngineLauncher = () => EngineProcess;

/**
 * The engine process's allocator settings (glibc, Linux; other C libraries ignore them): a fixed mmap
 * threshold of 1 MiB, so every large block (a session's weights, big tensors) is mapped on its own and
 * given back to the system when freed. glibc's default threshold rises to the largest block freed so far
 * (up to 32 MiB); after that onnxruntime's weight blocks come from the heap and stay there when a session
 * is released. Measured on bench/lora-fixture.ts's 509 MB fp16 U-Net (graph optimizations 'all'):
 * releasing its session gave back 0.7 GB of 1.3 GB by default, all of it with this setting, and creating
 * it peaked 0.5 GB lower. LoRA switching releases and creates such sessions. A value the user set wins.
 */
export function engineAllocatorEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env['MALLOC_MMAP_THRESHOLD_'] === undefined ? { MALLOC_MMAP_THRESHOLD_: String(1 << 20) } : {};
}

export interface LaunchOptions {
  /** How often the engine beats (DEFAULT_HEARTBEAT_MS). */
  heartbeatMs?: number;
}

/**
 * Starts an engine child with a heartbeat socket (heartbeat.ts): `start` gets the variables to add to
 * the child's environment (the heartbeat's and engineAllocatorEnv's). The socket closes when the child exits.
 */
export function launchWithHeartbeat(start: (env: Record<string, string>) => EngineChild, options: LaunchOptions = {}): EngineProcess {
  const heartbeat = listenForHeartbeat(options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  let child: EngineChild;
  try {
    child = start({ ...engineAllocatorEnv(), ...heartbeat.env });
  } catch (err) {
    heartbeat.close();
    throw err;
  }
  child.onExit(() => heartbeat.close());
  return {
    get pid() {
      return child.pid;
    },
    send: (message) => child.send(message),
    onMessage: (listener) => child.onMessage(listener),
    onExit: (listener) => child.onExit(listener),
    kill: () => child.kill(),
    heartbeatMs: heartbeat.intervalMs,
    onHeartbeat: (listener) => heartbeat.onBeat(listener),
  };
}

/** The engine process's entry module. */
export const ENGINE_CHILD_ENTRY = fileURLToPath(new URL('./engine-child.ts', import.meta.url));

/**
 * Plain Node: `entry` in a child process (`fork`), with `execArgv` for the child's Node (a loader).
 * Messages use structured clone ("advanced" serialization), like utilityProcess.
 */
export function forkLauncher(entry: string, execArgv: string[] = [], options: LaunchOptions = {}): EngineLauncher {
  return () =>
    launchWithHeartbeat((env) => {
      const child = fork(entry, [], {
        execArgv,
        // Structured clone instead of JSON: typed arrays (images, latents) cross as bytes.
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: { ...process.env, ...env },
      });
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
      };
    }, options);
}

/**
 * The default under plain Node: the TypeScript engine entry through tsx's loader, resolved from this
 * module (`--import tsx` alone would be resolved from the child's working directory).
 */
export const forkEngine: EngineLauncher = () => forkLauncher(ENGINE_CHILD_ENTRY, ['--import', import.meta.resolve('tsx')])();
