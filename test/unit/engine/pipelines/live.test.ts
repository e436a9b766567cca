/**
 * The live session (engine/pipelines/live.ts): a frame is the queued "only masked" inpaint, pixel for
 * pixel, whether it reuses the last frame's prompt and latents or not; frames follow strokes, prompt
 * edits and weight changes; cancellation; bad requests.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Engine, LIVE_COPY_MAX_UNET_BYTES, liveThreadsFor } from '../../../../electron/engine/engine.js';
import type { GenerateRequest } from '../../../../electron/engine/pipelines/types.js';
import { MODELS, REPO_ROOT, testPicture, toPng, withNativeSide64 } from '../../../support/engine-fixtures.js';

const W = 160;
const H = 120;

/** A mask PNG with white rectangles (x0, y0, x1, y1). */
async function maskPng(rects: Array<[number, number, number, number]>): Promise<Buffer> {
  const rgb = new Uint8Array(W * H * 3);
  for (const [x0, y0, x1, y1] of rects) {
    for (let y = y0; y < y1; y++) rgb.fill(255, (y * W + x0) * 3, (y * W + x1) * 3);
  }
  return toPng({ width: W, height: H, rgb });
}

describe('live frames', () => {
  const engine = new Engine({ providers: ['cpu'] });
  const temp = mkdtempSync(join(tmpdir(), 'live-test-'));
  // Frames run at the model's native size: 512 for these two fixtures, 64 for their copies.
  const small = { 'tiny-sd1-inpaint': withNativeSide64('tiny-sd1-inpaint', temp), 'tiny-sd1': withNativeSide64('tiny-sd1', temp) };
  const dirOf = (name: string): string => small[name as keyof typeof small] ?? join(MODELS, name);
  after(async () => {
    await engine.unloadAll();
    rmSync(temp, { recursive: true, force: true });
  });

  const cases = [
    { name: 'tiny-sd1-inpaint', extra: {} },
    { name: 'tiny-sd1', extra: { sampler: 'euler' } },
    { name: 'tiny-lcm', extra: { sampler: 'lcm', cfg: 1.5 } },
    // The LCM sampler on a model that is not an LCM (an LCM-LoRA's use): guidance is plain CFG, as queued.
    { name: 'tiny-sd1', extra: { sampler: 'lcm', cfg: 2 } },
    // SDXL (text_embeds and time_ids): the Turbo folder, no guidance.
    { name: 'tiny-sdxl-turbo', extra: { cfg: 0 } },
    // Below full strength (Generate's Strength on a picture): the init latents noised to the first step.
    { name: 'tiny-sd1-inpaint', extra: { strength: 0.6 } },
    { name: 'tiny-sd1', extra: { sampler: 'euler', strength: 0.6 } },
    { name: 'tiny-lcm', extra: { sampler: 'lcm', cfg: 1.5, strength: 0.5 } },
  ] as const;
  for (const { name, extra } of cases) {
    test(`${name}${Object.keys(extra).length > 0 ? ` ${JSON.stringify(extra)}` : ''}: every frame of a stroke equals the queued masked inpaint, byte for byte`, async () => {
      const picture = await toPng(testPicture(W, H));
      const base: GenerateRequest = {
        mode: 'inpaint',
        prompt: 'a red apple',
        seed: 5,
        steps: 3,
        // the Size setting, which frames do not use
        width: 96,
        height: 128,
        maskBlur: 2,
        maskPadding: 8,
        initImage: picture,
        mask: await maskPng([[40, 30, 60, 50]]),
        ...extra,
      };
      // A growing stroke, then a prompt edit (same mask: the latents are reused), then a weight change.
      const frames: GenerateRequest[] = [
        base,
        { ...base, mask: await maskPng([[40, 30, 60, 50], [60, 40, 80, 55]]) },
        { ...base, mask: await maskPng([[40, 30, 60, 50], [60, 40, 80, 55]]), prompt: 'a green pear' },
        { ...base, mask: await maskPng([[40, 30, 60, 50], [60, 40, 80, 55]]), prompt: 'a green pear', cfg: 'cfg' in extra ? extra.cfg + 0.3 : 3 },
      ];
      const reused = [];
      // Frames run at the model's native size whatever the request's Size (96×128 here): the queued
      // inpaint they equal is the one at that size.
      const { nativeResolution } = (await engine.loadModel(dirOf(name))).info;
      assert.equal(nativeResolution.width, 64);
      for (const request of frames) {
        const live = await engine.liveFrame(dirOf(name), request);
        const queued = await engine.generate(dirOf(name), { ...request, ...nativeResolution, inpaintArea: 'masked' });
        assert.deepEqual([live.params.width, live.params.height], [nativeResolution.width, nativeResolution.height]);
        assert.deepEqual(live.params, queued.params);
        // The frame carries its crop; put back into the picture (Keep) it is the queued inpaint.
        assert.deepEqual([live.image.width, live.image.height, live.picture.width, live.picture.height], [live.crop.width, live.crop.height, W, H]);
        const whole = await engine.composeLiveFrame(request.initImage!, live.crop, live.image);
        assert.deepEqual([whole.width, whole.height], [W, H]);
        assert.ok(Buffer.from(whole.rgb).equals(Buffer.from(queued.image.rgb)), `${name}: frame differs from the queued inpaint`);
        reused.push(live.reused);
      }
      assert.deepEqual(
        reused.map((r) => [r.prompt, r.latents]),
        [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ],
      );
      assert.ok(reused.slice(1).every((r) => r.picture));
    });
  }

  test('Clip skip, Emphasis and Pad conds reach the frame: each change re-encodes the prompt, and each frame is the queued inpaint', async () => {
    const dir = dirOf('tiny-sd1-inpaint');
    const { nativeResolution } = (await engine.loadModel(dir)).info;
    const base: GenerateRequest = {
      mode: 'inpaint',
      prompt: 'a (red:1.6) apple, [shiny]',
      // Longer than one 75-token chunk: Pad conds then pads the one-chunk prompt to two.
      negativePrompt: Array.from({ length: 90 }, (_, i) => `blur${i % 7}`).join(' '),
      seed: 11,
      steps: 2,
      maskBlur: 2,
      maskPadding: 8,
      initImage: await toPng(testPicture(W, H)),
      mask: await maskPng([[40, 30, 70, 60]]),
    };
    const frames: GenerateRequest[] = [base, { ...base, emphasis: 'No norm' }, { ...base, emphasis: 'No norm', clipSkip: 2 }, { ...base, emphasis: 'No norm', clipSkip: 2, padConds: true }];
    const crops: Buffer[] = [];
    for (const request of frames) {
      const live = await engine.liveFrame(dir, request);
      const queued = await engine.generate(dir, { ...request, ...nativeResolution, inpaintArea: 'masked' });
      assert.equal(live.reused.prompt, false, 'a changed encoding setting re-encodes the prompt');
      assert.equal(live.reused.latents, request !== base, 'the same mask keeps its latents');
      assert.deepEqual(live.params, queued.params);
      assert.deepEqual([live.params.emphasis, live.params.clipSkip, live.params.padConds], [request.emphasis === 'No norm' ? 'No norm' : undefined, request.clipSkip, request.padConds]);
      const whole = await engine.composeLiveFrame(request.initImage!, live.crop, live.image);
      assert.ok(Buffer.from(whole.rgb).equals(Buffer.from(queued.image.rgb)), `frame ${crops.length} differs from the queued inpaint`);
      crops.push(Buffer.from(live.image.rgb));
    }
    // The next stroke reuses the padded encoding, and the parameters still say it was padded.
    const next = await engine.liveFrame(dir, { ...frames[3]!, mask: await maskPng([[40, 30, 80, 64]]) });
    assert.deepEqual([next.reused.prompt, next.params.padConds], [true, true]);
    // Each setting changes the picture (so a frame that kept the last encoding would be caught above).
    for (const [i, setting] of ['Emphasis', 'Clip skip', 'Pad conds'].entries()) {
      assert.ok(!crops[i + 1]!.equals(crops[i]!), `${setting} changed nothing in the frame`);
    }
  });

  test('a raw mask rectangle (maskRect) gives the frame of its PNG mask and the queued inpaint, byte for byte, scaled crop or not', async () => {
    const dir = small['tiny-sd1-inpaint'];
    // A soft-edged stroke (grey levels 1–255) as the renderer paints it.
    const strokeMask = (w: number, h: number, cx: number, cy: number): Uint8Array => {
      const m = new Uint8Array(w * h);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) m[y * w + x] = Math.max(0, Math.min(255, Math.round(255 * (1.4 - Math.hypot(x - cx, (y - cy) * 2) / 8))));
      return m;
    };
    // 160×120: the crop is scaled to the native 64²; 64×64: the crop is the whole picture, unscaled.
    for (const [w, h, cx, cy] of [[W, H, 70, 50], [64, 64, 30, 34]] as const) {
      const mask = strokeMask(w, h, cx, cy);
      const bounds = { x0: w, y0: h, x1: 0, y1: 0 };
      mask.forEach((v, i) => {
        if (v === 0) return;
        const x = i % w, y = Math.floor(i / w);
        Object.assign(bounds, { x0: Math.min(bounds.x0, x), y0: Math.min(bounds.y0, y), x1: Math.max(bounds.x1, x + 1), y1: Math.max(bounds.y1, y + 1) });
      });
      const rectData = new Uint8Array((bounds.x1 - bounds.x0) * (bounds.y1 - bounds.y0));
      for (let y = bounds.y0; y < bounds.y1; y++) rectData.set(mask.subarray(y * w + bounds.x0, y * w + bounds.x1), (y - bounds.y0) * (bounds.x1 - bounds.x0));
      const maskRect = { x: bounds.x0, y: bounds.y0, width: bounds.x1 - bounds.x0, height: bounds.y1 - bounds.y0, data: rectData };
      const maskPngBytes = await sharp(Buffer.from(mask), { raw: { width: w, height: h, channels: 1 } }).png().toBuffer();
      const request: GenerateRequest = { mode: 'inpaint', prompt: 'a red apple', seed: 4, steps: 2, width: 64, height: 64, maskBlur: 3, maskPadding: 32, initImage: await toPng(testPicture(w, h)) };
      const fromRect = await engine.liveFrame(dir, { ...request, maskRect });
      const fromPng = await engine.liveFrame(dir, { ...request, mask: maskPngBytes });
      const queued = await engine.generate(dir, { ...request, mask: maskPngBytes, inpaintArea: 'masked' });
      assert.equal(fromRect.crop.width === 64, w === 64, `${w}×${h}: the crop is ${fromRect.crop.width} wide`);
      assert.ok(Buffer.from(fromRect.image.rgb).equals(Buffer.from(fromPng.image.rgb)), `${w}×${h}: maskRect frame differs from the PNG mask's`);
      const whole = await engine.composeLiveFrame(request.initImage!, fromRect.crop, fromRect.image);
      assert.ok(Buffer.from(whole.rgb).equals(Buffer.from(queued.image.rgb)), `${w}×${h}: maskRect frame differs from the queued inpaint`);
    }
  });

  test('a maskRect outside the picture, or with the wrong byte count, is refused clearly', async () => {
    const request: GenerateRequest = { mode: 'inpaint', prompt: 'x', seed: 1, steps: 1, width: 64, height: 64, initImage: await toPng(testPicture(W, H)) };
    const dir = small['tiny-sd1-inpaint'];
    await assert.rejects(engine.liveFrame(dir, { ...request, maskRect: { x: W - 4, y: 0, width: 8, height: 2, data: new Uint8Array(16).fill(255) } }), {
      code: 'E_INVALID_REQUEST',
      message: /maskRect: the rectangle 8×2 at \(156, 0\) is not inside the 160×120 picture/,
    });
    await assert.rejects(engine.liveFrame(dir, { ...request, maskRect: { x: 0, y: 0, width: 8, height: 2, data: new Uint8Array(15).fill(255) } }), {
      code: 'E_INVALID_REQUEST',
      message: /maskRect: 15 bytes for a 8×2 rectangle \(expected 16\)/,
    });
  });

  test('a job that arrives during a frame waits for that frame only; frames after it wait for the job', async () => {
    const dir = small['tiny-sd1-inpaint'];
    const request: GenerateRequest = {
      mode: 'inpaint',
      prompt: 'x',
      seed: 2,
      steps: 6,
      sampler: 'euler',
      width: 64,
      height: 64,
      initImage: await toPng(testPicture(W, H)),
      mask: await maskPng([[20, 20, 40, 40]]),
    };
    const order: string[] = [];
    const frame1 = engine.liveFrame(dir, request).then(() => order.push('frame 1 done'));
    const job = engine
      .generate(dir, { ...request, steps: 2 }, { onProgress: (p) => p.step === 1 && order.push('job started') })
      .then(() => order.push('job done'));
    // The strokes go on: frame 2 is superseded by frame 3 (the host aborts it), both behind the job.
    const superseded = new AbortController();
    const frame2 = engine.liveFrame(dir, request, { signal: superseded.signal }).then(
      () => order.push('frame 2 done'),
      (err: { code?: string }) => order.push(`frame 2 ${err.code}`),
    );
    superseded.abort();
    const frame3 = engine.liveFrame(dir, { ...request, seed: 3 }).then(() => order.push('frame 3 done'));
    await Promise.all([frame1, job, frame2, frame3]);
    assert.deepEqual(order, ['frame 1 done', 'job started', 'job done', 'frame 2 E_CANCELLED', 'frame 3 done']);
  });

  test('outside the crop every pixel of the kept picture stays the picture; a crop that does not fit is refused', async () => {
    const pictureRgb = testPicture(W, H);
    const initImage = await toPng(pictureRgb);
    const live = await engine.liveFrame(small['tiny-sd1-inpaint'], {
      mode: 'inpaint',
      prompt: 'x',
      seed: 1,
      steps: 2,
      width: 64,
      height: 64,
      maskPadding: 4,
      initImage,
      mask: await maskPng([[100, 80, 110, 90]]),
    });
    const { x, y, width, height } = live.crop;
    assert.ok(width < W && height < H, 'only the masked area is repainted');
    const whole = await engine.composeLiveFrame(initImage, live.crop, live.image);
    for (let py = 0; py < H; py++) {
      for (let px = 0; px < W; px++) {
        if (px >= x && px < x + width && py >= y && py < y + height) continue;
        const i = (py * W + px) * 3;
        assert.deepEqual([...whole.rgb.subarray(i, i + 3)], [...pictureRgb.rgb.subarray(i, i + 3)]);
      }
    }
    await assert.rejects(engine.composeLiveFrame(initImage, { ...live.crop, x: W - 2 }, live.image), /does not fit/);
  });

  test('an aborted frame stops with E_CANCELLED and the next one runs', async () => {
    const controller = new AbortController();
    controller.abort();
    const request: GenerateRequest = {
      mode: 'inpaint',
      prompt: 'x',
      seed: 1,
      steps: 2,
      width: 64,
      height: 64,
      initImage: await toPng(testPicture(W, H)),
      mask: await maskPng([[10, 10, 30, 30]]),
    };
    await assert.rejects(engine.liveFrame(small['tiny-sd1-inpaint'], request, { signal: controller.signal }), { code: 'E_CANCELLED' });
    const ok = await engine.liveFrame(small['tiny-sd1-inpaint'], request);
    assert.ok(ok.timings.stepsRun > 0);
  });

  test('a frame that is not an inpaint, or has an empty mask, is refused clearly', async () => {
    const picture = await toPng(testPicture(W, H));
    await assert.rejects(engine.liveFrame(small['tiny-sd1-inpaint'], { mode: 'txt2img', prompt: 'x', seed: 1 }), {
      code: 'E_INVALID_REQUEST',
      message: /live frame is an inpaint/,
    });
    await assert.rejects(
      engine.liveFrame(small['tiny-sd1-inpaint'], { mode: 'inpaint', prompt: 'x', seed: 1, initImage: picture, mask: await maskPng([]) }),
      { code: 'E_INVALID_REQUEST', message: /mask is empty/ },
    );
  });
});

describe('live frames on fewer CPU threads (liveThreadsFor)', () => {
  test('on two cores a small CPU U-Net gets a one-thread live copy; more cores, one thread already, a GPU or a large U-Net share the model', () => {
    const small = { provider: 'cpu' as const, unetBytes: 20 * 2 ** 20 };
    assert.equal(liveThreadsFor({ ...small, cores: 2, threads: 0 }), 1);
    assert.equal(liveThreadsFor({ ...small, cores: 2, threads: 2 }), 1);
    assert.equal(liveThreadsFor({ ...small, cores: 2, threads: 4 }), 1);
    assert.equal(liveThreadsFor({ ...small, cores: 2, threads: 1 }), null);
    assert.equal(liveThreadsFor({ ...small, cores: 1, threads: 0 }), null);
    assert.equal(liveThreadsFor({ ...small, cores: 8, threads: 0 }), null);
    assert.equal(liveThreadsFor({ ...small, provider: 'webgpu', cores: 2, threads: 0 }), null);
    assert.equal(liveThreadsFor({ ...small, unetBytes: LIVE_COPY_MAX_UNET_BYTES + 1, cores: 2, threads: 0 }), null);
  });

  // The bundled LCM inpainting model: large enough that onnxruntime splits its work over the threads.
  const bundled = join(REPO_ROOT, 'native-models', 'emoji-ldm-inpaint-lcm');
  test('the bundled model: frames run on a one-thread copy and equal the queued inpaint on two threads; Live off frees the copy', async () => {
    const engine = new Engine({ providers: ['cpu'], threads: 2, cores: 2 });
    try {
      const side = 200;
      const picture = await toPng(testPicture(side, side));
      const rgb = new Uint8Array(side * side * 3);
      for (let y = 60; y < 110; y++) rgb.fill(255, (y * side + 70) * 3, (y * side + 140) * 3);
      const request: GenerateRequest = { mode: 'inpaint', prompt: 'smiling face', seed: 9, steps: 2, initImage: picture, mask: await toPng({ width: side, height: side, rgb }) };
      const live = await engine.liveFrame(bundled, request);
      assert.equal(live.threads, 1);
      assert.equal(engine.liveCopyThreads(), 1);
      const { nativeResolution } = (await engine.loadModel(bundled)).info;
      const queued = await engine.generate(bundled, { ...request, ...nativeResolution, inpaintArea: 'masked' });
      const whole = await engine.composeLiveFrame(picture, live.crop, live.image);
      assert.ok(Buffer.from(whole.rgb).equals(Buffer.from(queued.image.rgb)), 'the one-thread frame differs from the two-thread queued inpaint');
      engine.endLive();
      assert.equal(engine.liveCopyThreads(), null);
      // Live on again: a new copy; unloading the model frees it with the model.
      assert.equal((await engine.liveFrame(bundled, request)).threads, 1);
      await engine.unload(bundled);
      assert.equal(engine.liveCopyThreads(), null);
    } finally {
      await engine.unloadAll();
    }
  });

  test('one thread for queued jobs too: frames run on the model itself, with no threads in the frame', async () => {
    const engine = new Engine({ providers: ['cpu'], threads: 1, cores: 2 });
    try {
      const side = 64;
      const rgb = new Uint8Array(side * side * 3);
      for (let y = 20; y < 40; y++) rgb.fill(255, (y * side + 20) * 3, (y * side + 40) * 3);
      const request: GenerateRequest = { mode: 'inpaint', prompt: 'x', seed: 1, steps: 1, initImage: await toPng(testPicture(side, side)), mask: await toPng({ width: side, height: side, rgb }) };
      const live = await engine.liveFrame(bundled, request);
      assert.equal(live.threads, undefined);
      assert.equal(engine.liveCopyThreads(), null);
    } finally {
      await engine.unloadAll();
    }
  });
});
