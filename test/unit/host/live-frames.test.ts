/**
 * Live frames in the host (host/live-frames.ts), scheduling only: a slow fake engine that takes 150 ms
 * a frame and stops at once when cancelled. Stale frames are dropped (answered 'superseded', cancelled
 * in the engine, never run behind the newest), at most one frame is wanted at a time, Keep finds only
 * the newest frame, and stop() leaves no work running.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveFrame } from '../../../electron/engine/pipelines/live.js';
import type { GenerateRequest } from '../../../electron/engine/pipelines/types.js';
import { LiveFrames } from '../../../electron/host/live-frames.js';
import { CancelledError } from '../../../electron/shared/errors.js';

interface Call {
  seed: number;
  signal: AbortSignal;
  finished: boolean;
}

/** A fake engine: each frame takes `ms` unless cancelled; it records what it was asked and when. */
function slowEngine(msFor: number | ((seed: number) => number)) {
  const calls: Call[] = [];
  let running = 0;
  let maxRunning = 0;
  const run = (_dir: string, request: GenerateRequest, signal: AbortSignal): Promise<LiveFrame> => {
    const call: Call = { seed: request.seed, signal, finished: false };
    calls.push(call);
    running++;
    maxRunning = Math.max(maxRunning, running - calls.filter((c) => c.signal.aborted && !c.finished).length);
    return new Promise<LiveFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        running--;
        call.finished = true;
        resolve(fakeFrame(request.seed));
      }, typeof msFor === 'number' ? msFor : msFor(request.seed));
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        // The real engine stops between steps: a little later than the abort.
        setTimeout(() => {
          running--;
          call.finished = true;
          reject(new CancelledError());
        }, 5);
      });
    });
  };
  return { run, calls, running: () => running, maxRunning: () => maxRunning };
}

function fakeFrame(seed: number): LiveFrame {
  // The crop (4×3 at (2, 1)) of an 8×6 picture.
  const width = 4;
  const height = 3;
  const rgb = new Uint8Array(width * height * 3).fill(seed % 256);
  return {
    image: { width, height, rgb },
    picture: { width: 8, height: 6 },
    params: {
      mode: 'inpaint',
      prompt: 'p',
      negativePrompt: '',
      seed,
      steps: 2,
      cfg: 1,
      sampler: 'lcm',
      width: 64,
      height: 64,
      strength: 1,
      maskBlur: 4,
      inpaintArea: 'masked',
      maskPadding: 32,
    },
    timings: { totalMs: 1, textEncodeMs: 0, vaeEncodeMs: 0, denoiseMs: 1, vaeDecodeMs: 0, stepsRun: 2 },
    crop: { x: 2, y: 1, width: 4, height: 3 },
    loras: [],
    warnings: [],
    provider: 'cpu',
    unetMs: 1,
    reused: { prompt: false, picture: false, latents: false },
  };
}

const request = (seed: number): GenerateRequest => ({ mode: 'inpaint', prompt: 'p', seed, initImage: new Uint8Array(1), mask: new Uint8Array(1) });

describe('live frames in the host', () => {
  test('a burst of strokes: every stale frame is dropped at once and only the newest is computed', async () => {
    const engine = slowEngine(150);
    const live = new LiveFrames(engine.run, async () => undefined);
    const answers = [1, 2, 3, 4, 5].map((seed) => live.frame('m', '/m', request(seed)));
    // The four stale ones are answered before the newest is done, without waiting for the engine.
    const stale = await Promise.race([Promise.all(answers.slice(0, 4)), new Promise((r) => setTimeout(() => r('timeout'), 100))]);
    assert.deepEqual(stale, Array(4).fill({ status: 'superseded' }));
    const newest = await answers[4]!;
    assert.equal(newest.status, 'done');
    assert.ok(engine.calls.slice(0, 4).every((c) => c.signal.aborted), 'each stale frame was cancelled in the engine');
    assert.equal(engine.calls[4]!.signal.aborted, false);
    assert.equal(engine.maxRunning(), 1, 'never more than one frame wanted at a time');
    assert.equal(engine.calls.filter((c) => c.finished && !c.signal.aborted).length, 1, 'only the newest frame was computed to the end');
    if (newest.status !== 'done') return;
    assert.deepEqual(newest.crop, { x: 2, y: 1, width: 4, height: 3 });
    const rgba = Buffer.from(newest.rgba, 'base64');
    assert.equal(rgba.length, 4 * 3 * 4);
    assert.deepEqual([...rgba.subarray(0, 4)], [5, 5, 5, 255]);
    assert.equal(live.shownFrame(newest.frameId).request.seed, 5);
    await live.idle();
    assert.equal(engine.running(), 0);
  });

  test('Keep finds only the newest shown frame', async () => {
    const engine = slowEngine(10);
    const live = new LiveFrames(engine.run, async () => undefined);
    const first = await live.frame('m', '/m', request(1));
    const second = await live.frame('m', '/m', request(2));
    assert.ok(first.status === 'done' && second.status === 'done');
    assert.throws(() => live.shownFrame(first.frameId), { code: 'E_NOT_FOUND' });
    assert.equal(live.shownFrame(second.frameId).frame.params.seed, 2);
  });

  test('Live off: the frame in flight is cancelled, the engine session freed, and no work is left running', async () => {
    const engine = slowEngine((seed) => (seed === 9 ? 1 : 10_000));
    let ended = 0;
    const live = new LiveFrames(engine.run, async () => {
      ended++;
    });
    const shown = await live.frame('m', '/m', request(9));
    const answer = live.frame('m', '/m', request(1));
    assert.equal(live.busy, true);
    assert.equal(await live.stop(), true);
    assert.deepEqual(await answer, { status: 'superseded' });
    assert.equal(live.busy, false);
    assert.equal(ended, 1, 'the engine was told to free its live session');
    const t0 = performance.now();
    await live.idle();
    assert.ok(performance.now() - t0 < 1000, 'the cancelled frame settled at once, not after its 10 s');
    assert.equal(engine.running(), 0);
    assert.ok(engine.calls[1]!.signal.aborted);
    assert.ok(shown.status === 'done');
    assert.throws(() => live.shownFrame(shown.frameId), { code: 'E_NOT_FOUND' });
    assert.equal(await live.stop(), false, 'stopping again has nothing to cancel');
    assert.equal(ended, 1, 'nor a live session to free (the engine is not woken for it)');
  });

  test('an engine error reaches the caller of the newest frame', async () => {
    const live = new LiveFrames(async () => {
      throw new CancelledError('boom');
    }, async () => undefined);
    await assert.rejects(live.frame('m', '/m', request(1)), /boom/);
    assert.equal(live.busy, false);
  });
});
