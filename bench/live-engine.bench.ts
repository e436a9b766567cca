/**
 * Live frames in the engine alone (no browser, no host): a scripted stroke of dabs on a white picture
 * at the model's native size, one live frame per dab, as bench:live's strokes send them. Prints one
 * JSON object with the per-frame breakdown (medians and p10–p90 over frames): wall and process CPU
 * time, VAE encode, U-Net (session runs) and the loop's own time, VAE decode, and the rest (mask
 * decode, crop, paste-back). `--threads 2,1`: one engine per thread count, their frames interleaved (each
 * on its sessions: the app's one-thread live copy on two cores is `--threads 1`).
 *   npm run bench:live-engine -- [--model DIR] [--threads N[,N…]] [--frames N] [--steps N] [--brush PX] [--mask raw|png]
 */
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../electron/engine/engine.js';
import type { RawMaskRect } from '../electron/engine/pipelines/live.js';
import { REPO_ROOT } from '../electron/host/cli.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string' },
    frames: { type: 'string', default: '40' },
    steps: { type: 'string' },
    brush: { type: 'string', default: '6' },
    mask: { type: 'string', default: 'raw' },
  },
});
const LCM_INPAINT = join(REPO_ROOT, 'native-models/emoji-ldm-inpaint-lcm');
const modelDir = values.model ?? (existsSync(join(LCM_INPAINT, 'model_index.json')) ? LCM_INPAINT : join(REPO_ROOT, 'test/fixtures/models/tiny-lcm'));
/** One engine per thread count, their frames interleaved (so machine load drifts over all alike). */
const threadCounts = (values.threads ?? String(availableParallelism())).split(',');
const frames = Number(values.frames);
const radius = Number(values.brush);

// Each engine's frames on its own thread count (no one-thread live copy: engine.ts liveThreadsFor).
const engines = threadCounts.map((threads) => new Engine({ providers: ['cpu'], threads: Number(threads), liveCopy: false }));
const model = await engines[0]!.loadModel(modelDir);
const { width, height } = model.info.nativeResolution;
const png = (channels: 1 | 3, data: Uint8Array): Promise<Buffer> =>
  sharp(Buffer.from(data), { raw: { width, height, channels } }).png().toBuffer();
const picture = await png(3, new Uint8Array(width * height * 3).fill(255));
const mask = new Uint8Array(width * height);
/** Dab i of a zigzag stroke across the middle 40% of the picture (bench:live's path). */
function dab(i: number): void {
  const f = (i % 60) / 60;
  const row = 0.3 + 0.1 * Math.floor(i / 60);
  const cx = (0.3 + 0.4 * f) * width;
  const cy = (row + 0.03 * Math.sin(f * 12)) * height;
  for (let y = Math.floor(cy - radius); y <= cy + radius; y++) {
    for (let x = Math.floor(cx - radius); x <= cx + radius; x++) {
      if (x >= 0 && y >= 0 && x < width && y < height && (x - cx) ** 2 + (y - cy) ** 2 <= radius * radius) mask[y * width + x] = 255;
    }
  }
}
const base = {
  mode: 'inpaint' as const,
  prompt: 'a smiling yellow face',
  seed: 7,
  ...(values.steps ? { steps: Number(values.steps) } : { steps: model.info.defaults.steps }),
  sampler: model.info.defaults.sampler,
  cfg: model.info.defaults.cfg,
  width,
  height,
  initImage: picture,
};
dab(0);
/** The mask as the renderer sends it: `--mask png` an encoded PNG, else raw (maskRect, the painted rectangle). */
async function maskField(): Promise<{ mask: Buffer } | { maskRect: RawMaskRect }> {
  if (values.mask === 'png') return { mask: await png(1, mask) };
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  mask.forEach((v, i) => {
    if (v === 0) return;
    const x = i % width, y = Math.floor(i / width);
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  });
  const w = x1 - x0 + 1;
  const data = new Uint8Array(w * (y1 - y0 + 1));
  for (let y = y0; y <= y1; y++) data.set(mask.subarray(y * width + x0, y * width + x1 + 1), (y - y0) * w);
  return { maskRect: { x: x0, y: y0, width: w, height: y1 - y0 + 1, data } };
}
for (const engine of engines) await engine.liveFrame(modelDir, { ...base, ...(await maskField()) }); // warm-up
const rows: Array<Array<Record<string, number>>> = engines.map(() => []);
const load = loadavg()[0]!;
for (let i = 1; i <= frames; i++) {
  dab(i);
  const request = { ...base, ...(await maskField()) };
  for (const [e, engine] of engines.entries()) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const frame = await engine.liveFrame(modelDir, request);
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const t = frame.timings;
  rows[e]!.push({
    wall,
    cpu: (c.user + c.system) / 1000,
    total: t.totalMs,
    vaeEncode: t.vaeEncodeMs ?? 0,
    unet: frame.unetMs,
    loop: (t.denoiseMs ?? 0) - frame.unetMs,
    vaeDecode: t.vaeDecodeMs ?? 0,
    rest: t.totalMs - (t.textEncodeMs ?? 0) - (t.vaeEncodeMs ?? 0) - (t.denoiseMs ?? 0) - (t.vaeDecodeMs ?? 0),
  });
  }
}
const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 10) / 10;
};
const results = threadCounts.map((threads, e) => {
  const summary: Record<string, { p50: number; p10: number; p90: number }> = {};
  for (const key of Object.keys(rows[e]![0]!)) {
    const xs = rows[e]!.map((r) => r[key]!);
    summary[key] = { p50: q(xs, 0.5), p10: q(xs, 0.1), p90: q(xs, 0.9) };
  }
  return { threads, ms_per_frame: summary };
});
console.log(JSON.stringify({ bench: 'live-engine', model: modelDir, mask: values.mask, size: `${width}x${height}`, steps: base.steps, sampler: base.sampler, frames, load_average_1m_at_start: Math.round(load * 100) / 100, results }, null, 2));
for (const engine of engines) await engine.unloadAll();
