/**
 * The engine process under Electron: a utilityProcess (Chromium's sandboxed-service process, with
 * Node), adapted to the host's `EngineChild` and started through the same `launchWithHeartbeat` as
 * Node's `fork` (electron/host/engine-process/launcher.ts), so the desktop app has the same heartbeat
 * and watchdog. The engine entry is the same module, which finds its parent through
 * `process.parentPort`.
 *
 * Electron's `utilityProcess` is passed in (main.ts passes the real one), so this adapter runs under
 * plain Node in tests with a stand-in that has the same API.
 */
import type { UtilityProcess } from 'electron';
import { launchWithHeartbeat, type EngineExit, type EngineLauncher, type LaunchOptions } from '../host/engine-process/launcher.js';
import type { EngineMessage } from '../host/engine-process/protocol.js';

/** The part of Electron's `utilityProcess` module this adapter uses. */
export interface UtilityProcessModule {
  fork(modulePath: string, args: string[], options: { serviceName: string; stdio: 'inherit'; env: NodeJS.ProcessEnv }): Pick<UtilityProcess, 'pid' | 'postMessage' | 'kill'> & {
    on(event: 'exit', listener: (code: number) => void): unknown;
    on(event: 'message', listener: (message: unknown) => void): unknown;
  };
}

export function utilityEngineLauncher(entry: string, utilityProcess: UtilityProcessModule, options: LaunchOptions = {}): EngineLauncher {
  return () =>
    launchWithHeartbeat((env) => {
      const child = utilityProcess.fork(entry, [], { serviceName: 'Latent Studio engine', stdio: 'inherit', env: { ...process.env, ...env } });
      let exited = false;
      const exitListeners: Array<(exit: EngineExit) => void> = [];
      child.on('exit', (code) => {
        if (exited) return;
        exited = true;
        // utilityProcess reports only a code; a crash (signal, OOM) shows as a non-zero code.
        for (const listener of exitListeners) listener({ code, signal: null });
      });
      return {
        get pid() {
          return child.pid;
        },
        send(message) {
          if (!exited) child.postMessage(message);
        },
        onMessage(listener) {
          child.on('message', (message: unknown) => listener(message as EngineMessage));
        },
        onExit(listener) {
          exitListeners.push(listener);
        },
        kill() {
          // utilityProcess.kill() sends SIGTERM, which a stopped (frozen) process only receives after
          // SIGCONT: the watchdog's kill would never land. SIGKILL ends it stopped or not.
          const pid = child.pid;
          if (pid === undefined || exited) return;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            child.kill();
          }
        },
      };
    }, options);
}
