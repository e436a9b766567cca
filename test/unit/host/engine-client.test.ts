/**
 * The engine client's process handling with real child processes: a process that dies before it is
 * ready, a cancel that the engine doesn't honour in time (its process is ended and restarted), and
 * close().
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EngineStatus } from '../../../electron/shared/contract.js';
import { EngineClient } from '../../../electron/host/engine-process/engine-client.js';
import { forkEngine, forkLauncher, type EngineProcess } from '../../../electron/host/engine-process/launcher.js';
import type { HostMessage } from '../../../electron/host/engine-process/protocol.js';
import { testPicture, toPng } from '../../support/engine-fixtures.js';
import { FIXTURE_SIZE, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1, TINY_SD1_INPAINT } from './support/host-fixtures.js';

const scratch = tempDir('engine-client');
const clients: EngineClient[] = [];
after(async () => {
  for (const c of clients) await c.close();
  scratch.remove();
});

function client(options: ConstructorParameters<typeof EngineClient>[0]): { engine: EngineClient; statuses: EngineStatus[] } {
  const statuses: EngineStatus[] = [];
  const engine = new EngineClient({ settings: TEST_ENGINE_SETTINGS, onStatus: (s) => statuses.push(s), ...options });
  clients.push(engine);
  return { engine, statuses };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a process that exits before it is ready fails the request with E_ENGINE_CRASHED and is not restarted in a loop', async () => {
  const entry = join(scratch.dir, 'exits.mjs');
  writeFileSync(entry, 'process.exit(3);\n');
  const { engine, statuses } = client({ launcher: forkLauncher(entry) });
  await assert.rejects(engine.info(TINY_SD1), (err: { code: string; message: string }) => {
    assert.equal(err.code, 'E_ENGINE_CRASHED');
    assert.match(err.message, /failed to start \(exit code 3\)/);
    return true;
  });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(statuses.filter((s) => s.state === 'starting').length, 1, 'no restart until the next request');
  assert.equal(engine.status.state, 'crashed');
  await assert.rejects(engine.info(TINY_SD1), /failed to start/);
  assert.equal(statuses.filter((s) => s.state === 'starting').length, 2);
});

test('a cancel the engine does not honour in time ends its process; the job is cancelled and the engine restarts', async () => {
  // A grace of 0 ms: the process is ended at once, as a hung stage would be after the real grace.
  const { engine } = client({ launcher: forkEngine, cancelGraceMs: 0 });
  const controller = new AbortController();
  const request = { mode: 'txt2img' as const, prompt: 'x', seed: 1, steps: 1000, sampler: 'euler' as const, width: FIXTURE_SIZE, height: FIXTURE_SIZE };
  // The process is stopped (SIGSTOP) before the cancel, so it can't answer it first on a loaded machine:
  // only the grace timer's kill (SIGKILL, which a stopped process still takes) can end the job.
  const stopThenCancel = (): void => {
    if (controller.signal.aborted) return;
    process.kill(engine.pid!, 'SIGSTOP');
    controller.abort();
  };
  const first = engine.generate(TINY_SD1, request, { signal: controller.signal, onProgress: stopThenCancel });
  await engine.start();
  const pid = engine.pid!;
  await assert.rejects(first, (err: { code: string; message: string }) => {
    assert.equal(err.code, 'E_CANCELLED');
    assert.match(err.message, /did not stop within 0 ms and was restarted/);
    return true;
  });
  const next = await engine.generate(TINY_SD1, { ...request, steps: 2 });
  assert.equal(next.image.width, FIXTURE_SIZE);
  assert.notEqual(engine.pid, pid);
  assert.equal(engine.status.restarts, 1);
  assert.equal(isAlive(pid), false);
});

test('close() ends the process and fails what was pending with E_ENGINE_CLOSED', async () => {
  const { engine } = client({ launcher: forkEngine });
  await engine.start();
  const pid = engine.pid!;
  const pending = engine.generate(TINY_SD1, { mode: 'txt2img', prompt: 'x', seed: 1, steps: 1000, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE });
  await engine.close();
  await assert.rejects(pending, { code: 'E_ENGINE_CLOSED' });
  assert.equal(engine.status.state, 'stopped');
  assert.equal(isAlive(pid), false);
  await assert.rejects(engine.info(TINY_SD1), { code: 'E_ENGINE_CLOSED' });
});

test('a live picture crosses into the engine process once; a process that lost it is sent it again, and a restarted one too', async () => {
  const sent: HostMessage[] = [];
  let current: EngineProcess | null = null;
  const { engine } = client({
    launcher: () => {
      const proc = forkEngine();
      const send = proc.send.bind(proc);
      proc.send = (message) => {
        sent.push(message);
        send(message);
      };
      current = proc;
      return proc;
    },
  });
  const W = FIXTURE_SIZE;
  const mask = new Uint8Array(W * W * 3);
  for (let y = 20; y < 40; y++) mask.fill(255, (y * W + 20) * 3, (y * W + 40) * 3);
  const request = { mode: 'inpaint' as const, prompt: 'x', seed: 1, steps: 1, width: W, height: W, initImage: await toPng(testPicture(W, W)), mask: await toPng({ width: W, height: W, rgb: mask }) };
  const lives = (): Array<Extract<HostMessage, { type: 'live' }>> => sent.filter((m): m is Extract<HostMessage, { type: 'live' }> => m.type === 'live');
  const first = await engine.liveFrame(TINY_SD1_INPAINT, request);
  const second = await engine.liveFrame(TINY_SD1_INPAINT, request);
  assert.ok(lives()[0]!.request.initImage);
  assert.equal(lives()[1]!.request.initImage, undefined, 'not sent again');
  assert.equal(lives()[1]!.request.reusePicture, true);
  assert.ok(Buffer.from(second.image.rgb).equals(Buffer.from(first.image.rgb)), 'the same picture, the same frame');
  // The process forgot it (its live session ended behind the client's back): it says so, and gets it.
  current!.send({ type: 'liveEnd', id: 1_000_000 });
  const third = await engine.liveFrame(TINY_SD1_INPAINT, request);
  assert.deepEqual(lives().slice(2).map((m) => [m.request.reusePicture ?? false, m.request.initImage !== undefined]), [[true, false], [false, true]]);
  assert.ok(Buffer.from(third.image.rgb).equals(Buffer.from(first.image.rgb)));
  // A new process: the picture goes with the first frame.
  const old = current!;
  const exited = new Promise<void>((r) => old.onExit(() => r()));
  old.kill();
  await exited;
  await engine.liveFrame(TINY_SD1_INPAINT, request);
  assert.ok(lives().at(-1)!.request.initImage, 'sent to the new process');
});
