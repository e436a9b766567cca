/**
 * The engine process under Electron: a utilityProcess (Chromium's sandboxed-service process, with
 * Node), adapted to the host's `EngineProcess` interface. This is the one adapter that replaces Node's
 * `fork` (electron/host/engine-process/launcher.ts); the engine entry is the same module, which finds
 * its parent through `process.parentPort`.
 */
import { utilityProcess } from 'electron';
import type { EngineExit, EngineLauncher } from '../host/engine-process/launcher.js';
import type { EngineMessage } from '../host/engine-process/protocol.js';

export function utilityEngineLauncher(entry: string): EngineLauncher {
  return () => {
    const child = utilityProcess.fork(entry, [], { serviceName: 'Latent Studio engine', stdio: 'inherit' });
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
        child.kill();
      },
    };
  };
}
