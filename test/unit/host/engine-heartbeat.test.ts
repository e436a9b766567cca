/**
 * The heartbeat's transport (heartbeat.ts), the one both front doors use: a local socket whose path and
 * token reach the child in its environment. A real child process beats on it from a worker thread; the
 * beat stops while the child is stopped (SIGSTOP) and comes back after SIGCONT; a connection without
 * the token counts for nothing; closing removes the socket's folder.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { HEARTBEAT_PATH_ENV, listenForHeartbeat } from '../../../electron/host/engine-process/heartbeat.js';

const CHILD = fileURLToPath(new URL('./support/heartbeat-child.ts', import.meta.url));
const INTERVAL_MS = 50;
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
});

function startChild(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CHILD], { stdio: 'inherit', env: { ...process.env, ...env } });
  children.push(child);
  return child;
}

async function beatsWithin(count: () => number, ms: number): Promise<number> {
  const before = count();
  await sleep(ms);
  return count() - before;
}

test('a child beats over the socket; SIGSTOP silences it, SIGCONT brings it back', { timeout: 60_000 }, async () => {
  const heartbeat = listenForHeartbeat(INTERVAL_MS);
  let beats = 0;
  heartbeat.onBeat(() => beats++);
  const child = startChild(heartbeat.env);
  const deadline = performance.now() + 30_000;
  while (beats < 3 && performance.now() < deadline) await sleep(20);
  assert.ok(beats >= 3, `only ${beats} beats arrived`);

  child.kill('SIGSTOP');
  await sleep(INTERVAL_MS * 2); // a beat already in the socket may still arrive
  assert.equal(await beatsWithin(() => beats, INTERVAL_MS * 8), 0, 'a stopped child does not beat');

  child.kill('SIGCONT');
  const resumeBy = performance.now() + 10_000;
  const stoppedAt = beats;
  while (beats === stoppedAt && performance.now() < resumeBy) await sleep(20);
  assert.ok(beats > stoppedAt, 'the beat comes back after SIGCONT');
  heartbeat.close();
});

test('a connection without the token counts for nothing', { timeout: 10_000 }, async () => {
  const heartbeat = listenForHeartbeat(INTERVAL_MS);
  let beats = 0;
  heartbeat.onBeat(() => beats++);
  const closed = new Promise<void>((resolve) => {
    const socket = connect(heartbeat.env[HEARTBEAT_PATH_ENV]!, () => {
      socket.write(Buffer.alloc(16, 7));
      socket.write('....');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
  await closed; // the host hangs up on a wrong token
  assert.equal(beats, 0);
  heartbeat.close();
});

test('closing the listener removes its socket', { skip: process.platform === 'win32' ? 'a named pipe has no file' : false }, () => {
  const heartbeat = listenForHeartbeat(INTERVAL_MS);
  const folder = dirname(heartbeat.env[HEARTBEAT_PATH_ENV]!);
  assert.ok(existsSync(folder));
  heartbeat.close();
  assert.equal(existsSync(folder), false);
});
