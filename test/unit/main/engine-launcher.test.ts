/**
 * The desktop app's engine launcher (electron/main/engine-launcher.ts, the code path main.ts calls)
 * gets the same heartbeat and watchdog as `studio serve`. Electron's binary isn't available to tests,
 * so `utilityProcess` is a stand-in with its API and behaviour: `fork(entry, args, {env, …})`,
 * `postMessage`, 'message' with the data, 'exit' with a code only, and `kill()` sending SIGTERM — which
 * a stopped process only receives after SIGCONT. The engine child is the real one, frozen by SIGSTOP.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { utilityEngineLauncher, type UtilityProcessModule } from '../../../electron/main/engine-launcher.js';
import { EngineClient } from '../../../electron/host/engine-process/engine-client.js';
import { HEARTBEAT_PATH_ENV, HEARTBEAT_TOKEN_ENV } from '../../../electron/host/engine-process/heartbeat.js';
import { ENGINE_CHILD_ENTRY } from '../../../electron/host/engine-process/launcher.js';
import { FIXTURE_SIZE, TEST_ENGINE_SETTINGS, TINY_SD1 } from '../host/support/host-fixtures.js';

const forkedEnvs: NodeJS.ProcessEnv[] = [];
const pids: number[] = [];

/** Electron's utilityProcess, as far as the launcher uses it, on Node's fork. */
const utilityProcess: UtilityProcessModule = {
  fork(modulePath, args, options) {
    forkedEnvs.push(options.env);
    const child = fork(modulePath, args, {
      execArgv: ['--import', import.meta.resolve('tsx')],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: options.env,
    });
    if (child.pid !== undefined) pids.push(child.pid);
    const events = new EventEmitter();
    child.on('message', (message) => events.emit('message', message));
    // utilityProcess reports a code only.
    child.on('exit', (code) => events.emit('exit', code ?? 1));
    return Object.assign(events, {
      get pid() {
        return child.pid;
      },
      postMessage(message: unknown) {
        if (child.connected) child.send(message as never);
      },
      kill() {
        return child.kill('SIGTERM');
      },
    });
  },
};

const cleanup: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanup) await c();
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already ended
    }
  }
});

test('the desktop launcher gives the engine a heartbeat: a frozen engine fails its job as unresponsive, is ended and restarted', { timeout: 90_000 }, async () => {
  const launcher = utilityEngineLauncher(ENGINE_CHILD_ENTRY, utilityProcess, { heartbeatMs: 100 });
  const engine = new EngineClient({ launcher, settings: TEST_ENGINE_SETTINGS, heartbeatTimeoutMs: 1500 });
  cleanup.push(() => engine.close());
  await engine.start();
  const env = forkedEnvs.at(-1)!;
  assert.ok(env[HEARTBEAT_PATH_ENV] && env[HEARTBEAT_TOKEN_ENV], 'the engine gets the heartbeat socket in its environment');
  const pid = engine.pid!;
  let stoppedAt = 0;
  const job = engine.generate(TINY_SD1, { mode: 'txt2img', prompt: 'x', seed: 1, steps: 1000, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE }, {
    onProgress: () => {
      if (stoppedAt !== 0) return;
      stoppedAt = performance.now();
      process.kill(pid, 'SIGSTOP');
    },
  });
  await assert.rejects(job, (err: { code: string; message: string }) => {
    assert.equal(err.code, 'E_ENGINE_UNRESPONSIVE');
    assert.match(err.message, /stopped responding .* and was restarted/);
    return true;
  });
  assert.ok(performance.now() - stoppedAt < 1500 + 3000, 'found within the timeout');
  assert.throws(() => process.kill(pid, 0), 'the stopped process was ended (SIGKILL: SIGTERM would wait for SIGCONT)');
  const next = await engine.generate(TINY_SD1, { mode: 'txt2img', prompt: 'x', seed: 1, steps: 2, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE });
  assert.equal(next.image.width, FIXTURE_SIZE);
  assert.notEqual(engine.pid, pid);
});
