/**
 * Live painting benchmark in Debian's Chromium (playwright-core) against a real `studio serve`: with
 * Live on, a scripted paint of `--seconds` (default 10) of real mouse drags (strokes of 2 s, a pointer
 * move every 16 ms) on a blank canvas at the model's native size. Prints one JSON object.
 *   npm run bench:live -- [--model DIR] [--contrast DIR] [--threads N] [--seconds S] [--steps N] [--stroke-steps N] [--picture N]
 *
 * For each model (the live model, then the contrast model, the 20-step one):
 * - fps: live frames that reached the screen per second of painting;
 * - latency_ms: stroke-to-pixels, p50/p95 over those frames: from the oldest pointer change a frame
 *   answers (the first mask dab after the previous request was sent) to the animation frame after the
 *   frame was drawn on the live layer (editor/live-layer.ts records it on the stage element);
 * - frame_engine_ms: the engine's own time per frame (text encode, VAE, U-Net, decode, paste);
 * - frame_round_trip_ms: from building a frame's request in the renderer to its answer there;
 * - frames_by_cpu_threads: how many frames ran on each thread count of a live copy of the model (engine.ts
 *   liveThreadsFor: one thread fewer than queued jobs on two cores), "engine" for the engine's own sessions;
 * - the steps, sampler and size the frames used, the Live panel's "Steps while painting" (frames during a
 *   stroke take at most that many; the frame after each stroke takes Steps) and how many frames took
 *   each step count, and the engine's CPU threads.
 * Defaults: --model the bundled LCM inpainting model (native-models/emoji-ldm-inpaint-lcm) when it is
 * there, else the text-to-image LCM (emoji-ldm-lcm: a 4-channel U-Net inpaints by latent blending),
 * else the bundled 20-step inpainting model (the result says which ran); --contrast the bundled 20-step
 * inpainting model (`--contrast none`: the live model only); --threads the machine's cores; --stroke-steps the app's default (0: Steps throughout);
 * --picture N paints on an N×N photo-like picture opened from a file (a PNG of a few MB at 1024) instead
 * of the blank canvas: the crops are then larger than the model's size and scaled down to it.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { openStudio } from '../test/e2e/support/browser.js';
import { waitForPageValue } from '../test/e2e/support/canvas.js';
import { ensureRendererBuilt, REPO_ROOT } from '../test/e2e/support/renderer-build.js';
import { startStudioServer, type StudioServer } from '../test/e2e/support/studio-server.js';

const NATIVE = join(REPO_ROOT, 'native-models');
const LCM_INPAINT = join(NATIVE, 'emoji-ldm-inpaint-lcm');
const LCM = join(NATIVE, 'emoji-ldm-lcm');
const INPAINT = join(NATIVE, 'emoji-ldm-inpaint');
const STROKE_MS = 2000;
const MOVE_EVERY_MS = 16;

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    contrast: { type: 'string' },
    threads: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    steps: { type: 'string' },
    'stroke-steps': { type: 'string' },
    picture: { type: 'string' },
  },
});
const hasModel = (dir: string): boolean => existsSync(join(dir, 'model_index.json'));
const liveModel = resolve(values.model ?? [LCM_INPAINT, LCM].find(hasModel) ?? INPAINT);
const contrastModel = resolve(values.contrast ?? INPAINT);
const threads = values.threads !== undefined ? Number(values.threads) : availableParallelism();
const seconds = Number(values.seconds);

function log(message: string): void {
  process.stderr.write(`[bench:live] ${message}\n`);
}

function stats(samples: number[]): { n: number; p50: number | null; p95: number | null; max: number | null } {
  if (samples.length === 0) return { n: 0, p50: null, p95: null, max: null };
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => round(s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!);
  return { n: s.length, p50: at(0.5), p95: at(0.95), max: round(s.at(-1)!) };
}

/**
 * Where stroke-to-pixels latency goes, per shown frame (p50/p95 of each part): wait (the oldest change
 * waits for the frame in flight), build (the request in the renderer), transport (round trip less the
 * host's time: WebSocket/IPC and (de)serialisation), host_other (host time less the engine call:
 * request decoding, RGBA answer), engine_ipc (engine call less the engine's own time), engine, receive
 * (answer to pixels), draw (to the live layer's canvas, React included), screen (to the next animation frame).
 */
function breakdown(rows: Array<Record<string, number | null>>): Record<string, ReturnType<typeof stats>> {
  const parts: Record<string, number[]> = { wait: [], build: [], transport: [], host_other: [], engine_ipc: [], engine: [], receive: [], draw: [], screen: [] };
  for (const r of rows) {
    const n = (k: string): number => Number(r[k] ?? 0);
    parts['wait']!.push(n('waitMs'));
    parts['build']!.push(n('buildMs'));
    parts['transport']!.push(n('roundTripMs') - n('buildMs') - n('hostMs'));
    parts['host_other']!.push(n('hostMs') - n('engineCallMs'));
    parts['engine_ipc']!.push(n('engineCallMs') - n('engineMs'));
    parts['engine']!.push(n('engineMs'));
    parts['receive']!.push(n('receiveMs'));
    parts['draw']!.push(n('drawMs') - n('receiveMs'));
    parts['screen']!.push(n('screenMs'));
  }
  return Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, stats(v)]));
}

function round(x: number, digits = 1): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}

/** Picks the model in the panel, sets its native size and the steps, and turns Live on. */
async function prepare(page: Page, server: StudioServer, dir: string): Promise<{ modelId: string; steps: number; sampler: string; size: string; cfg: number }> {
  const { models } = await server.invoke('models.list', {});
  let entry = models.find((m) => resolve(m.dir) === dir);
  if (!entry) entry = await server.invoke('models.import', { path: dir });
  const { info } = await server.invoke('models.info', { modelId: entry.id });
  await page.getByRole('combobox', { name: 'Model', exact: true }).selectOption(entry.id);
  const size = `${info.nativeResolution.width}x${info.nativeResolution.height}`;
  await page.getByRole('combobox', { name: 'Size' }).selectOption(size);
  // The model's own defaults (an LCM folder: its lcm sampler, few steps, embedded guidance).
  await page.getByRole('combobox', { name: 'Sampler', exact: true }).selectOption(info.defaults.sampler);
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill(values.steps ?? String(info.defaults.steps));
  await page.getByRole('spinbutton', { name: 'CFG', exact: true }).fill(String(info.defaults.cfg));
  await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a smiling yellow face');
  const steps = Number(await page.getByRole('spinbutton', { name: 'Steps', exact: true }).inputValue());
  const sampler = await page.getByRole('combobox', { name: 'Sampler', exact: true }).inputValue();
  return { modelId: entry.id, steps, sampler, size, cfg: info.defaults.cfg };
}

/** Records every frame the live layer shows (number, latency) and every frame time the panel prints. */
async function record(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    const stage = document.querySelector('[data-testid="canvas-stage"]');
    for (const o of window.__liveObservers ?? []) o.disconnect();
    const rec = { frames: [], engineMs: [], roundTripMs: [], steps: {}, threads: {} };
    window.__live = rec;
    let lastText = '';
    const frames = new MutationObserver(() => {
      const seq = Number(stage.dataset.liveSeq ?? 0);
      const last = rec.frames.at(-1);
      if (seq > 0 && (!last || last.seq !== seq)) rec.frames.push({ seq, latency: Number(stage.dataset.liveLatencyMs), at: performance.now(), breakdown: JSON.parse(stage.dataset.liveBreakdown ?? '{}') });
    });
    frames.observe(stage, { attributes: true, attributeFilter: ['data-live-seq', 'data-live-latency-ms'] });
    const times = new MutationObserver(() => {
      const text = document.querySelector('[data-testid="live-frame-time"]')?.textContent ?? '';
      const m = /^Frame (\\d+) ms, (\\d+) steps?(?:, (\\d+) CPU threads?)? · (\\d+) ms round trip/.exec(text);
      if (m && text !== lastText) {
        rec.engineMs.push(Number(m[1]));
        rec.roundTripMs.push(Number(m[4]));
        rec.steps[m[2]] = (rec.steps[m[2]] ?? 0) + 1;
        const threads = m[3] ?? 'engine';
        rec.threads[threads] = (rec.threads[threads] ?? 0) + 1;
      }
      lastText = text;
    });
    times.observe(document.body, { subtree: true, childList: true, characterData: true });
    window.__liveObservers = [frames, times];
  })()`);
}

/** Paints strokes of STROKE_MS for `seconds`, a pointer move every MOVE_EVERY_MS, on a zigzag. */
async function paint(page: Page): Promise<{ startedAt: number; endedAt: number; moves: number }> {
  const box = (await page.getByTestId('canvas-stage').boundingBox())!;
  const at = (fx: number, fy: number): [number, number] => [box.x + fx * box.width, box.y + fy * box.height];
  const startedAt = (await page.evaluate('performance.now()')) as number;
  const t0 = Date.now();
  let moves = 0;
  let stroke = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const row = 0.3 + 0.1 * (stroke % 5);
    await page.mouse.move(...at(0.3, row));
    await page.mouse.down();
    const s0 = Date.now();
    while (Date.now() - s0 < STROKE_MS && Date.now() - t0 < seconds * 1000) {
      const f = (Date.now() - s0) / STROKE_MS;
      await page.mouse.move(...at(0.3 + 0.4 * f, row + 0.03 * Math.sin(f * 12)));
      moves++;
      const wait = MOVE_EVERY_MS - ((Date.now() - s0) % MOVE_EVERY_MS);
      await new Promise((r) => setTimeout(r, wait));
    }
    await page.mouse.up();
    stroke++;
  }
  const endedAt = (await page.evaluate('performance.now()')) as number;
  return { startedAt, endedAt, moves };
}

/** An N×N picture with the entropy of a photo: smooth colour fields plus grain (PNG, a few MB at 1024). */
async function photoLikePng(side: number): Promise<Buffer> {
  const rgb = Buffer.alloc(side * side * 3);
  let seed = 7;
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const grain = (seed >>> 24) % 24;
      const i = (y * side + x) * 3;
      rgb[i] = (120 + 100 * Math.sin(x / 90) + grain) & 255;
      rgb[i + 1] = (110 + 90 * Math.cos(y / 70) + grain) & 255;
      rgb[i + 2] = (100 + 60 * Math.sin((x + y) / 130) + grain) & 255;
    }
  }
  return sharp(rgb, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
}

async function measure(page: Page, server: StudioServer, dir: string): Promise<Record<string, unknown>> {
  log(`model ${dir}`);
  await page.getByRole('button', { name: 'Clear' }).click();
  const setup = await prepare(page, server, dir);
  // (After the Size choice: with a picture open, the Size is the picture's; live frames run at the model's own.)
  const picture = values.picture !== undefined ? await photoLikePng(Number(values.picture)) : null;
  if (picture) await page.getByLabel('Image file').setInputFiles({ name: 'picture.png', mimeType: 'image/png', buffer: picture });
  await page.getByRole('slider', { name: 'Brush size' }).fill('12');
  await page.getByRole('button', { name: 'Brush' }).click();
  await page.getByRole('switch', { name: 'Live' }).click();
  const strokeSteps = page.getByRole('spinbutton', { name: 'Steps while painting' });
  if (values['stroke-steps'] !== undefined) await strokeSteps.fill(values['stroke-steps']);
  const strokeStepsSetting = Number(await strokeSteps.inputValue());
  // Warm up: one dab, wait for its frame (opens the model's sessions).
  const box = (await page.getByTestId('canvas-stage').boundingBox())!;
  await page.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.8);
  await waitForPageValue(page, `document.querySelector('[data-testid="canvas-stage"]').dataset.liveSeq`, 300_000);
  await record(page);
  const load = loadavg()[0]!;
  const { startedAt, endedAt, moves } = await paint(page);
  // Frames that answer the painting and reach the screen up to the end of the last stroke.
  const live = (await page.evaluate('window.__live')) as {
    frames: Array<{ seq: number; latency: number; at: number; breakdown: Record<string, number | null> }>;
    engineMs: number[];
    roundTripMs: number[];
    steps: Record<string, number>;
    threads: Record<string, number>;
  };
  const frames = live.frames.filter((f) => f.at >= startedAt && f.at <= endedAt);
  await page.getByRole('switch', { name: 'Live' }).click();
  const elapsed = (endedAt - startedAt) / 1000;
  return {
    model: basename(dir),
    model_dir: dir,
    steps: setup.steps,
    steps_while_painting: strokeStepsSetting,
    frames_by_steps: live.steps,
    frames_by_cpu_threads: live.threads,
    sampler: setup.sampler,
    cfg: setup.cfg,
    size: setup.size,
    picture: picture ? { side: Number(values.picture), png_bytes: picture.length } : 'blank canvas',
    paint_seconds: round(elapsed, 2),
    pointer_moves: moves,
    frames: frames.length,
    fps: round(frames.length / elapsed, 2),
    latency_ms: stats(frames.map((f) => f.latency)),
    frame_engine_ms: stats(live.engineMs),
    frame_round_trip_ms: stats(live.roundTripMs),
    latency_breakdown_ms: breakdown(frames.map((f) => f.breakdown)),
    load_average_1m_at_start: round(load, 2),
  };
}

ensureRendererBuilt();
const server = await startStudioServer({ models: [], threads });
const studio = await openStudio(server.url);
try {
  const settings = await server.invoke('settings.get', {});
  const results = [];
  for (const dir of values.contrast === 'none' ? [liveModel] : [liveModel, contrastModel]) results.push(await measure(studio.page, server, dir));
  console.log(
    JSON.stringify(
      {
        bench: 'live',
        engine_threads: threads,
        cpu_threads_setting: settings.threads,
        cpu_cores: availableParallelism(),
        providers: settings.providers,
        live_model_is_lcm: basename(liveModel).endsWith('-lcm'),
        results,
      },
      null,
      2,
    ),
  );
} finally {
  await studio.close();
  await server.stop();
}
