/**
 * The engine process starts with engineAllocatorEnv's glibc setting (a fixed 1 MiB mmap threshold, so a
 * released session's weights go back to the system: bench/lora.bench.ts), beside the heartbeat's
 * variables; a value the user set is left alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HEARTBEAT_PATH_ENV } from '../../../electron/host/engine-process/heartbeat.js';
import { engineAllocatorEnv, launchWithHeartbeat, type EngineChild, type EngineExit } from '../../../electron/host/engine-process/launcher.js';

function launchCapturingEnv(): Record<string, string> {
  let seen: Record<string, string> = {};
  let exit: ((e: EngineExit) => void) | null = null;
  const child: EngineChild = { pid: 1, send: () => {}, onMessage: () => {}, onExit: (l) => (exit = l), kill: () => {} };
  launchWithHeartbeat((env) => {
    seen = env;
    return child;
  });
  (exit as ((e: EngineExit) => void) | null)?.({ code: 0, signal: null }); // closes the heartbeat socket
  return seen;
}

test('the engine child gets the allocator setting with the heartbeat variables', () => {
  const env = launchCapturingEnv();
  assert.ok(env[HEARTBEAT_PATH_ENV]);
  assert.equal(env['MALLOC_MMAP_THRESHOLD_'], process.env['MALLOC_MMAP_THRESHOLD_'] === undefined ? '1048576' : undefined);
});

test("a threshold the user set wins (nothing added; the child inherits the user's)", () => {
  assert.deepEqual(engineAllocatorEnv({ MALLOC_MMAP_THRESHOLD_: '65536' }), {});
  assert.deepEqual(engineAllocatorEnv({}), { MALLOC_MMAP_THRESHOLD_: '1048576' });
});
