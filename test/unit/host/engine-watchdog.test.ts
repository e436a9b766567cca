/**
 * The engine watchdog, with a real engine process frozen by SIGSTOP: its heartbeat stops, the host
 * notices within the timeout, ends and restarts the process, and says so — a running job fails with
 * "stopped responding … restarted", and a Cancel on a frozen engine is quick and says the same after
 * the user's reason, instead of a bare "Cancelled by the user." after 15 s.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { EngineClient } from '../../../electron/host/engine-process/engine-client.js';
import { ENGINE_CHILD_ENTRY, forkLauncher } from '../../../electron/host/engine-process/launcher.js';
import { Host } from '../../../electron/host/host.js';
import { FIXTURE_SIZE, jobFinished, nextEvent, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const HEARTBEAT_MS = 100;
const TIMEOUT_MS = 1500;
const launcher = forkLauncher(ENGINE_CHILD_ENTRY, ['--import', import.meta.resolve('tsx')], { heartbeatMs: HEARTBEAT_MS });
const scratch = tempDir('engine-watchdog');
const cleanup: Array<() => Promise<void>> = [];
const frozen: number[] = [];
after(async () => {
  for (const pid of frozen) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already ended by the watchdog
    }
  }
  for (const c of cleanup) await c();
  scratch.remove();
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const longRequest = { mode: 'txt2img' as const, prompt: 'x', seed: 1, steps: 1000, sampler: 'euler' as const, width: FIXTURE_SIZE, height: FIXTURE_SIZE };

// A bounded wait: without a watchdog a frozen engine hangs its job for ever.
const BOUNDED = { timeout: 60_000 };

test('a frozen engine fails its job with "stopped responding … restarted" within the timeout, and the next job runs on a new process', BOUNDED, async () => {
  const engine = new EngineClient({ launcher, settings: TEST_ENGINE_SETTINGS, heartbeatTimeoutMs: TIMEOUT_MS });
  cleanup.push(() => engine.close());
  await engine.start();
  const pid = engine.pid!;
  let stoppedAt = 0;
  const job = engine.generate(TINY_SD1, longRequest, {
    onProgress: () => {
      if (stoppedAt !== 0) return;
      stoppedAt = performance.now();
      frozen.push(pid);
      process.kill(pid, 'SIGSTOP');
    },
  });
  await assert.rejects(job, (err: { code: string; message: string }) => {
    assert.equal(err.code, 'E_ENGINE_UNRESPONSIVE');
    assert.match(err.message, /The engine stopped responding \(no sign of life for 1\.5 s\) and was restarted/);
    return true;
  });
  const detectedMs = performance.now() - stoppedAt;
  assert.ok(detectedMs < TIMEOUT_MS + 3000, `found after ${Math.round(detectedMs)} ms`);
  assert.equal(isAlive(pid), false, 'the frozen process was ended');
  const next = await engine.generate(TINY_SD1, { ...longRequest, steps: 2 });
  assert.equal(next.image.width, FIXTURE_SIZE);
  assert.notEqual(engine.pid, pid);
  assert.equal(engine.status.restarts, 1);
});

test('Cancel on a frozen engine ends quickly and says the engine was restarted', BOUNDED, async () => {
  const host = await Host.open({
    dataDir: join(scratch.dir, 'data'),
    engineSettings: TEST_ENGINE_SETTINGS,
    engineLauncher: launcher,
    // Long enough that only the cancel's shorter wait can explain a quick end.
    engineHeartbeatTimeoutMs: 60_000,
  });
  cleanup.push(() => host.close());
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
  const { jobId } = ok('generate', await host.invoke('generate', { ...longRequest }));
  await nextEvent(host, 'job.progress', (p) => p.jobId === jobId);
  const pid = host.engine.pid!;
  frozen.push(pid);
  process.kill(pid, 'SIGSTOP');
  const t0 = performance.now();
  assert.equal(ok('cancel', await host.invoke('cancel', { jobId })).status, 'cancelled');
  const cancelMs = performance.now() - t0;
  assert.ok(cancelMs < 5000, `cancel took ${Math.round(cancelMs)} ms`);
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'cancelled');
  assert.match(job.error?.message ?? '', /^Cancelled by the user\. The engine had stopped responding and was restarted\.$/);
  assert.equal(isAlive(pid), false);
  assert.equal(host.engine.status.restarts, 1);
});
