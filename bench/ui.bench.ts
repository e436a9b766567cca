/**
 * Renderer benchmark in Debian's Chromium (playwright-core) against a real `studio serve` with the tiny
 * inpainting fixture. Prints one JSON object. Run: npm run bench:ui
 *
 * - paint: a 200-point brush stroke on a 2048×2048 image, real mouse events. Frame time is measured
 *   with the frame-rate limit off (--disable-frame-rate-limit --disable-gpu-vsync
 *   --run-all-compositor-stages-before-draw: an idle page then turns frames in ~0.2 ms), so a frame's rAF
 *   interval is the time it took to produce it rather than the display's 16.7 ms; the statistic is over
 *   the frames that handled a pointer event and the frames right after them, where the mask redraw
 *   lands (target: p95 ≤ 16 ms). Also the time spent in the pointermove handlers themselves.
 * - history: 10,000 items (32 real images behind 10,000 rows); the time from navigation to the first
 *   thumbnail drawn, then, while the grid scrolls 300 px per frame to the end with infinite loading,
 *   each frame's main-thread time (rAF → a message posted in rAF: scroll handlers, React, style, layout,
 *   paint; target: p95 ≤ 16 ms), the frame intervals at 60 Hz and the share of missed frames.
 * - heap: the renderer's JS heap (after a forced GC) after 5 and after 50 generations made through the
 *   UI (Generate, wait for the staged result, Discard); the growth per generation should be small and
 *   explained by what stays visible (history grid rows).
 * - accepts: a 2048×2048 picture with a painted mask, then 200 "only masked" inpaints through the UI,
 *   each Accepted (so each is an undo step that replaces the picture and keeps the mask). The renderer's
 *   real memory after a forced GC, every 50 accepts: the V8 heap, the ArrayBuffer backing stores
 *   (Runtime.getHeapUsage's backingStorageSize: the mask, layout and undo bytes live there) and the
 *   renderer process's resident set (/proc), with the undo history's own byte count; then the paint
 *   measurement above on that document (target: p95 ≤ 8 ms per frame with that history).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium, type Page } from 'playwright-core';
import { openDatabase } from '../electron/history/database.js';
import { HistoryRepository } from '../electron/history/repository.js';
import { DATABASE_FILE, HistoryStore } from '../electron/history/store.js';
import { GENERATION_MODES, SAMPLERS } from '../electron/shared/generation.js';
import { generation, seededRandom, noiseImage } from '../test/support/history-fixtures.js';
import { CHROMIUM_PATH } from '../test/e2e/support/browser.js';
import { waitForPageValue } from '../test/e2e/support/canvas.js';
import { ensureRendererBuilt, REPO_ROOT } from '../test/e2e/support/renderer-build.js';
import { startStudioServer } from '../test/e2e/support/studio-server.js';

const PAINT_SIDE = 2048;
const STROKE_POINTS = 200;
const HISTORY_ROWS = Number(process.env['UI_BENCH_HISTORY_ROWS'] ?? 10_000);
const HISTORY_IMAGES = 32;
const SCROLL_PX_PER_FRAME = 300;
/** The scroll stops here even if the end was not reached (the result says how far it got). */
const SCROLL_TIME_LIMIT_MS = 90_000;
const GENERATIONS = Number(process.env['UI_BENCH_GENERATIONS'] ?? 50);
const WARMUP_GENERATIONS = 5;
const FRAME_BUDGET_MS = 16;
const ACCEPTS = Number(process.env['UI_BENCH_ACCEPTS'] ?? 200);
const ACCEPT_PAINT_BUDGET_MS = 8;
const UNDO_BUDGET_MB = 256;

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-frame-rate-limit', '--disable-gpu-vsync', '--run-all-compositor-stages-before-draw', '--enable-precise-memory-info',
];

/** The same browser at the display's 60 Hz pace. */
const VSYNC_ARGS = CHROMIUM_ARGS.filter((a) => !['--disable-frame-rate-limit', '--disable-gpu-vsync', '--run-all-compositor-stages-before-draw'].includes(a));
/** One 60 Hz display frame. */
const VSYNC_MS = 1000 / 60;

function log(message: string): void {
  process.stderr.write(`[bench:ui] ${message}\n`);
}

function stats(samples: number[]): { n: number; p50: number; p95: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => Number((s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN).toFixed(2));
  return { n: s.length, p50: at(0.5), p95: at(0.95), max: Number((s.at(-1) ?? NaN).toFixed(2)) };
}

async function launch(url: string) {
  const profile = mkdtempSync(join(tmpdir(), 'studio-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1600, height: 1000 } });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(60_000);
  await page.goto(url);
  return {
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Records every frame's interval and how many pointer events it handled. (A string: no DOM types here.) */
const FRAME_RECORDER = `(() => {
  const w = window;
  w.__frames = []; w.__moves = 0; w.__recording = true; w.__handlerMs = [];
  let eventStart = 0;
  addEventListener('pointermove', () => { w.__moves++; eventStart = performance.now(); }, { capture: true });
  addEventListener('pointermove', () => { w.__handlerMs.push(performance.now() - eventStart); });
  let last = performance.now(); let movesAtLast = 0;
  const tick = () => {
    const now = performance.now();
    w.__frames.push({ dt: now - last, moves: w.__moves - movesAtLast });
    last = now; movesAtLast = w.__moves;
    if (w.__recording) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})()`;

async function stopFrames(page: Page): Promise<Array<{ dt: number; moves: number }>> {
  return (await page.evaluate('(() => { window.__recording = false; return window.__frames; })()')) as Array<{ dt: number; moves: number }>;
}

/** A 200-point spiral brush stroke with real mouse events; the painting frames' times. */
async function measureStroke(page: Page, targetP95Ms: number): Promise<unknown> {
    await page.getByRole('slider', { name: 'Brush size' }).fill('96');
    await page.waitForTimeout(500);
    if (process.env['UI_BENCH_HIDE_MASK'] === '1') await page.keyboard.press('h');
    const box = (await page.getByTestId('canvas-stage').boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    const r = Math.min(box.width, box.height) * 0.35;
    await page.evaluate(FRAME_RECORDER);
    await page.mouse.move(cx + r, cy);
    await page.mouse.down();
    const t0 = Date.now();
    for (let i = 1; i <= STROKE_POINTS; i++) {
      // A spiral: every sample moves, with long and short segments.
      const a = (i / STROKE_POINTS) * Math.PI * 4;
      const rr = r * (1 - i / (STROKE_POINTS * 1.5));
      await page.mouse.move(cx + Math.cos(a) * rr, cy + Math.sin(a) * rr);
    }
    await page.mouse.up();
    const strokeMs = Date.now() - t0;
    await page.waitForTimeout(200);
    const frames = await stopFrames(page);
    const handlerMs = (await page.evaluate('window.__handlerMs')) as number[];
    // A pointer event is handled in one frame and its mask redraw (Konva's batchDraw) runs in the
    // next one: count both frames.
    const painting = new Set<number>();
    frames.forEach((f, i) => {
      if (f.moves > 0) {
        painting.add(i);
        if (i + 1 < frames.length) painting.add(i + 1);
      }
    });
    return {
      image: `${PAINT_SIDE}x${PAINT_SIDE}`, points: STROKE_POINTS, brushSize: 96,
      paintingFrameMs: stats([...painting].map((i) => frames[i]!.dt)),
      pointerHandlerMs: stats(handlerMs),
      targetP95Ms,
      strokeWallMs: strokeMs,
    };
}

/** A 2048² picture (a gradient) as PNG. */
async function bigPicture(): Promise<Buffer> {
  const rgb = Buffer.alloc(PAINT_SIDE * PAINT_SIDE * 3);
  for (let y = 0; y < PAINT_SIDE; y++) for (let x = 0; x < PAINT_SIDE; x++) {
    const i = (y * PAINT_SIDE + x) * 3;
    rgb[i] = x >> 3; rgb[i + 1] = y >> 3; rgb[i + 2] = 128;
  }
  return sharp(rgb, { raw: { width: PAINT_SIDE, height: PAINT_SIDE, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

async function benchPaint(): Promise<unknown> {
  const server = await startStudioServer();
  const b = await launch(server.url);
  try {
    const { page } = b;
    await page.getByLabel('Image file').setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: await bigPicture() });
    await page.getByText(`${PAINT_SIDE} × ${PAINT_SIDE} · big.png`).waitFor();
    return await measureStroke(page, FRAME_BUDGET_MS);
  } finally {
    await b.close();
    await server.stop();
  }
}

/** 32 real images through the store (PNG + thumbnail), then HISTORY_ROWS rows pointing at them. */
async function seedHistory(dataDir: string): Promise<void> {
  const historyDir = join(dataDir, 'history');
  const store = await HistoryStore.open(historyDir);
  const hashes: string[] = [];
  for (let i = 0; i < HISTORY_IMAGES; i++) {
    const item = await store.add({ ...generation(1000 + i), output: noiseImage(1000 + i, 64, 64) });
    hashes.push(item.output!.hash);
  }
  store.close();
  const db = openDatabase(join(historyDir, DATABASE_FILE));
  const repo = new HistoryRepository(db);
  const random = seededRandom(7);
  const words = 'fox owl castle forest night sunset lake snow portrait city dragon garden rain golden misty ancient'.split(' ');
  const start = Date.UTC(2025, 0, 1);
  db.transaction(() => {
    for (let n = 0; n < HISTORY_ROWS - HISTORY_IMAGES; n++) {
      const mode = GENERATION_MODES[n % 3]!;
      repo.insertGeneration({
        createdAt: start + n * 1000, source: 'generated', status: 'succeeded', mode, modelId: 'tiny-sd1-inpaint', modelHash: 'ab'.repeat(32),
        prompt: Array.from({ length: 6 }, () => words[Math.floor(random() * words.length)]).join(' '), negativePrompt: 'blurry',
        seed: Math.floor(random() * 2 ** 32), steps: 20, cfg: 7, sampler: SAMPLERS[n % SAMPLERS.length]!, width: 64, height: 64,
        strength: mode === 'txt2img' ? 1 : 0.75, maskBlur: 4, initImageHash: null, maskHash: null, labelMapHash: null, outputHash: hashes[n % hashes.length]!,
        parentId: null, executionProvider: 'cpu', timings: null, error: null, favorite: random() < 0.05, tags: [], sourceFile: null, sourceParameters: null,
      });
    }
  })();
  db.close();
}

async function benchHistory(): Promise<unknown> {
  const dataDir = mkdtempSync(join(tmpdir(), 'studio-bench-history-'));
  try {
    const t0 = Date.now();
    await seedHistory(dataDir);
    const seedMs = Date.now() - t0;
    log(`history: seeded ${HISTORY_ROWS} rows in ${seedMs} ms`);
    const server = await startStudioServer({ dataDir });
    const profile = mkdtempSync(join(tmpdir(), 'studio-bench-chromium-'));
    // Scrolling is timed at the display's pace (vsync): with the frame-rate limit off, back-to-back
    // frames starve the page's WebSocket and image tasks, and infinite scroll never gets its pages.
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM_PATH, headless: true, args: VSYNC_ARGS, viewport: { width: 1600, height: 1000 } });
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      page.setDefaultTimeout(60_000);
      page.on('crash', () => console.error('bench: the page crashed'));
      page.on('pageerror', (e) => console.error('bench: page error:', e.message));
      // The first thumbnail that finishes loading, in ms since navigation started.
      await page.addInitScript(`document.addEventListener('load', (e) => {
        if (window.__firstThumbMs === undefined && e.target instanceof HTMLImageElement && e.target.closest('.thumb')) window.__firstThumbMs = performance.now();
      }, true);`);
      await page.goto(server.url);
      try {
        await waitForPageValue(page, 'window.__firstThumbMs !== undefined', 60_000);
      } catch (err) {
        await page.screenshot({ path: join(REPO_ROOT, 'test-results', 'renderer', 'bench-history-failed.png') });
        throw err;
      }
      const firstThumbMs = (await page.evaluate('window.__firstThumbMs')) as number;
      log(`history: first thumbnail after ${firstThumbMs.toFixed(0)} ms; scrolling`);
      await page.evaluate(FRAME_RECORDER);
      const scrolled = (await page.evaluate(`new Promise((resolve) => {
        const grid = document.querySelector('.history-grid');
        let frames = 0;
        const started = performance.now();
        // Main-thread work per frame: from this rAF callback (the scroll) until a message posted here
        // is delivered, i.e. after the frame's scroll handlers, React work, style, layout and paint.
        window.__frameWorkMs = [];
        const step = () => {
          const t0 = performance.now();
          const done = new MessageChannel();
          done.port1.onmessage = () => window.__frameWorkMs.push(performance.now() - t0);
          done.port2.postMessage(0);
          grid.scrollTop += ${SCROLL_PX_PER_FRAME};
          frames++;
          const atEnd = grid.scrollTop + grid.clientHeight >= grid.scrollHeight - 2;
          const count = Number(grid.getAttribute('data-count'));
          if ((atEnd && count >= ${HISTORY_ROWS}) || performance.now() - started > ${SCROLL_TIME_LIMIT_MS}) resolve({ frames, count, scrollHeight: grid.scrollHeight, atEnd });
          else requestAnimationFrame(step);
        };
        requestAnimationFrame(step);
      })`)) as { frames: number; count: number; scrollHeight: number; atEnd: boolean };
      const frames = await stopFrames(page);
      const intervals = frames.map((f) => f.dt);
      // A frame interval over 1.5 vsyncs means at least one display frame was missed.
      const missed = intervals.filter((dt) => dt > VSYNC_MS * 1.5).length;
      const domThumbs = (await page.evaluate(`document.querySelectorAll('.thumb').length`)) as number;
      const frameWork = (await page.evaluate('window.__frameWorkMs')) as number[];
      return {
        items: HISTORY_ROWS, seedMs, firstThumbnailMs: Number(firstThumbMs.toFixed(1)), scrollFrames: scrolled.frames, itemsLoaded: scrolled.count, reachedEnd: scrolled.atEnd,
        scrollFrameWorkMs: stats(frameWork),
        scrollFrameIntervalMs: stats(intervals), missedFramePercent: Number(((missed / Math.max(1, intervals.length)) * 100).toFixed(2)),
        note: 'scrollFrameWorkMs is the frame time held to the target: main-thread work from the scroll in rAF to the end of the frame (a message posted in rAF). scrollFrameIntervalMs is the display pace at 60 Hz vsync: 16.7 ms is a frame on time, so its p95 shows jitter; missedFramePercent counts intervals over 1.5 vsyncs',
        thumbnailsInDom: domThumbs, targetP95Ms: FRAME_BUDGET_MS,
      };
    } finally {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      await server.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function benchHeap(): Promise<unknown> {
  const server = await startStudioServer();
  const b = await launch(server.url);
  try {
    const { page } = b;
    const cdp = await page.context().newCDPSession(page);
    const heap = async (): Promise<number> => {
      await cdp.send('HeapProfiler.collectGarbage');
      await page.waitForTimeout(100);
      await cdp.send('HeapProfiler.collectGarbage');
      const { usedSize } = await cdp.send('Runtime.getHeapUsage');
      return usedSize;
    };
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a lighthouse at dusk');
    const initial = await heap();
    let afterWarmup = 0;
    const t0 = Date.now();
    for (let i = 1; i <= GENERATIONS; i++) {
      await page.getByRole('button', { name: 'Generate' }).click();
      await page.getByRole('button', { name: 'Discard' }).click();
      await page.getByRole('button', { name: 'Discard' }).waitFor({ state: 'detached' });
      if (i === WARMUP_GENERATIONS) afterWarmup = await heap();
    }
    const wallMs = Date.now() - t0;
    await page.waitForTimeout(500);
    const final = await heap();
    const mb = (n: number): number => Number((n / 2 ** 20).toFixed(2));
    return {
      generations: GENERATIONS, wallMs, heapMB: { initial: mb(initial), [`after${WARMUP_GENERATIONS}`]: mb(afterWarmup), [`after${GENERATIONS}`]: mb(final) },
      growthKBPerGenerationAfterWarmup: Number(((final - afterWarmup) / 1024 / (GENERATIONS - WARMUP_GENERATIONS)).toFixed(1)),
      historyThumbnailsInDom: await page.evaluate(`document.querySelectorAll('.thumb').length`),
    };
  } finally {
    await b.close();
    await server.stop();
  }
}

/** The renderer process's resident set in MiB: the largest Chromium renderer process under `browserPid`. */
function rendererRssMb(): number | null {
  let best: number | null = null;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer') || !cmd.includes('studio-bench-chromium-')) continue;
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) best = Math.max(best ?? 0, Number(m[1]) / 1024);
    } catch {
      // The process ended while we looked.
    }
  }
  return best === null ? null : Number(best.toFixed(1));
}

async function benchAccepts(): Promise<unknown> {
  const server = await startStudioServer();
  const b = await launch(server.url);
  try {
    const { page } = b;
    page.setDefaultTimeout(60_000);
    const cdp = await page.context().newCDPSession(page);
    const mb = (n: number): number => Number((n / 2 ** 20).toFixed(2));
    const memory = async (accepted: number): Promise<Record<string, number | null>> => {
      await cdp.send('HeapProfiler.collectGarbage');
      await page.waitForTimeout(100);
      await cdp.send('HeapProfiler.collectGarbage');
      const usage = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number; totalSize: number; backingStorageSize?: number; embedderHeapUsedSize?: number };
      const undoBytes = Number(await page.getByTestId('canvas-stage').getAttribute('data-undo-bytes'));
      return {
        accepted,
        v8HeapUsedMB: mb(usage.usedSize),
        arrayBuffersMB: usage.backingStorageSize === undefined ? null : mb(usage.backingStorageSize),
        embedderHeapMB: usage.embedderHeapUsedSize === undefined ? null : mb(usage.embedderHeapUsedSize),
        rendererRssMB: rendererRssMb(),
        undoHistoryMB: mb(undoBytes),
      };
    };
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByLabel('Image file').setInputFiles({ name: 'big.png', mimeType: 'image/png', buffer: await bigPicture() });
    await page.getByText(`${PAINT_SIDE} × ${PAINT_SIDE} · big.png`).waitFor();
    // Two steps at strength 1: one U-Net call of the 64² crop each.
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    await page.getByRole('spinbutton', { name: 'Strength' }).fill('1');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a red apple');
    await page.getByRole('slider', { name: 'Brush size' }).fill('64');
    // A blob of mask in the middle: the inpaint repaints a crop around it at the model's size.
    const box = (await page.getByTestId('canvas-stage').boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await page.mouse.move(cx - 20, cy);
    await page.mouse.down();
    for (let i = 0; i <= 12; i++) await page.mouse.move(cx - 20 + i * 4, cy + Math.sin(i) * 10);
    await page.mouse.up();
    await page.getByRole('combobox', { name: 'Inpaint area' }).selectOption('masked');
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    const samples = [await memory(0)];
    const t0 = Date.now();
    for (let i = 1; i <= ACCEPTS; i++) {
      await page.getByRole('button', { name: 'Generate' }).click();
      try {
        await page.getByRole('button', { name: 'Accept', exact: true }).waitFor();
      } catch (err) {
        const alerts = await page.getByRole('alert').allInnerTexts().catch(() => []);
        await page.screenshot({ path: join(REPO_ROOT, 'test-results', 'renderer', 'bench-accepts-failed.png') });
        throw new Error(`accept ${i}: no staged result (${alerts.join(' | ') || 'no message'})`, { cause: err });
      }
      await page.getByRole('button', { name: 'Accept', exact: true }).click();
      await page.getByRole('button', { name: 'Accept', exact: true }).waitFor({ state: 'detached' });
      if (i % 50 === 0 || i === ACCEPTS) {
        samples.push(await memory(i));
        log(`accepts: ${JSON.stringify(samples.at(-1))}`);
      }
    }
    const wallMs = Date.now() - t0;
    const paint = await measureStroke(page, ACCEPT_PAINT_BUDGET_MS);
    return {
      image: `${PAINT_SIDE}x${PAINT_SIDE}`, accepts: ACCEPTS, wallMs, undoBudgetMB: UNDO_BUDGET_MB, memory: samples,
      paintAfterAccepts: paint,
      note: 'arrayBuffersMB is V8\'s ArrayBuffer backing storage (typed arrays: mask, layout, undo steps); rendererRssMB the renderer process\'s resident set',
    };
  } finally {
    await b.close();
    await server.stop();
  }
}

async function main(): Promise<void> {
  ensureRendererBuilt();
  const only = process.env['UI_BENCH_ONLY'];
  const result: Record<string, unknown> = { machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown' }, chromium: CHROMIUM_PATH };
  const sections: Array<[string, () => Promise<unknown>]> = [['paint', benchPaint], ['history', benchHistory], ['heap', benchHeap], ['accepts', benchAccepts]];
  for (const [name, run] of sections) {
    if (only && only !== name) continue;
    result[name] = await run();
    log(`${name}: ${JSON.stringify(result[name])}`);
  }
  console.log(JSON.stringify(result, null, 2));
}

await main();
