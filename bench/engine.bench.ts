/**
 * Engine benchmark: prints one JSON object.
 *   npm run bench:engine -- [--model DIR] [--steps N] [--size PX] [--runs N] [--sampler NAME] [--threads N]
 * For one model, steps and seed it measures
 * - pipeline_ms_per_step: the denoising loop of a full txt2img run (CFG on) divided by its steps;
 * - bare_unet_ms_per_step: onnxruntime session.run of the U-Net alone with the same inputs (batch 2
 *   under CFG), one call per step, the floor the pipeline can reach;
 * - live_ms_per_step: the same for a live-painting frame (engine/pipelines/live.ts: an inpaint of the
 *   masked area with prepared tensors, no previews), the path the ≤ 1.03 target is for, and its
 *   overhead: the loop's time outside the U-Net's session runs, per step (less sensitive to machine
 *   load than a ratio of two loaded timings);
 * - the ratios to bare (median, and each round's ratio: the rounds interleave pipeline, live and bare
 *   so load drifts over all three alike), end-to-end ms (median of runs, model already loaded), cold start ms
 *   (open the model + first run), and peak RSS.
 * - lora: lora_apply_ms and the memory of switching LoRA sets, on SD 1.5's layer shapes (bench/lora.bench.ts;
 *   --skip-lora leaves it out).
 * Defaults: the bundled model if present, else the tiny-sd1 fixture; 40 rounds (one round's ratio ranged
 * 0.87–1.37 on a quiet shared 2-core machine, so the median of 5 moved by several hundredths from run to run).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Engine } from '../electron/engine/engine.js';
import { timestepTensor } from '../electron/engine/model/unet.js';
import type { HostTensor } from '../electron/engine/model/onnx-module.js';
import { SeededRng } from '../electron/engine/tensor/rng.js';
import { loraBench } from './lora.bench.js';
import { BUNDLED_MODEL_DIR, REPO_ROOT } from '../electron/host/cli.js';
import type { SamplerName } from '../electron/shared/generation.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    steps: { type: 'string', default: '20' },
    size: { type: 'string' },
    runs: { type: 'string', default: '40' },
    sampler: { type: 'string' },
    threads: { type: 'string', default: '0' },
    cfg: { type: 'string', default: '7.5' },
    'skip-lora': { type: 'boolean', default: false },
  },
});
const modelDir =
  values.model ?? (existsSync(join(BUNDLED_MODEL_DIR, 'model_index.json')) ? BUNDLED_MODEL_DIR : join(REPO_ROOT, 'test/fixtures/models/tiny-sd1'));
const steps = Number(values.steps);
const runs = Number(values.runs);
const cfg = Number(values.cfg);

let peakRss = process.memoryUsage().rss;
const sampleRss = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

// Live frames on the model's own sessions (no one-thread live copy on two cores): the same sessions as the bare U-Net.
const engine = new Engine({ providers: ['cpu'], threads: Number(values.threads), liveCopy: false });
const coldStart = performance.now();
const model = await engine.loadModel(modelDir);
const { info } = model;
const side = values.size ? Number(values.size) : info.defaults.width;
const request = {
  mode: 'txt2img' as const,
  prompt: 'red apple, food, fruit',
  negativePrompt: '',
  seed: 1,
  steps,
  cfg,
  width: side,
  height: side,
  ...(values.sampler ? { sampler: values.sampler as SamplerName } : {}),
};
await engine.generate(modelDir, request);
const coldStartMs = performance.now() - coldStart;

// The bare U-Net: the same inputs, session.run only, once per step.
const unet = model.modules.unet;
const f = info.vaeScaleFactor;
const doCfg = cfg > 1 && request.sampler !== 'lcm' && !(request.sampler === undefined && info.defaults.sampler === 'lcm');
const batch = doCfg && info.unet.batchDynamic ? 2 : 1;
const callsPerStep = doCfg && !info.unet.batchDynamic ? 2 : 1;
const h = side / f;
const w = side / f;
const rng = new SeededRng(2);
const feeds: Record<string, HostTensor> = {
  sample: { data: rng.randn(batch * info.unetInChannels * h * w), dims: [batch, info.unetInChannels, h, w] },
  timestep: timestepTensor(500, info.unet.timestepRank),
  encoder_hidden_states: { data: rng.randn(batch * info.maxTokens * info.textHiddenSize), dims: [batch, info.maxTokens, info.textHiddenSize] },
};
if (info.unet.timestepCondDim !== null) {
  feeds['timestep_cond'] = { data: rng.randn(batch * info.unet.timestepCondDim), dims: [batch, info.unet.timestepCondDim] };
}
if (info.sdxl) {
  // SDXL's added conditioning: pooled text_embeds and time_ids (orig size, crop, target) per batch item.
  const ids = Array.from({ length: batch }, () => [side, side, 0, 0, side, side].slice(0, info.sdxl!.timeIds)).flat();
  feeds['text_embeds'] = { data: rng.randn(batch * info.sdxl.pooledSize), dims: [batch, info.sdxl.pooledSize] };
  feeds['time_ids'] = { data: Float32Array.from(ids), dims: [batch, info.sdxl.timeIds] };
}
const out = unet.outputName(['out_sample']);

// The live path (engine/pipelines/live.ts): an inpaint frame of a side×side picture whose mask
// covers the middle, so the crop is the whole working size and the U-Net sees the same shapes.
const picture = await pngOf(side, side, (x, y) => [(x * 255) / side, (y * 255) / side, 128]);
const liveMask = await pngOf(side, side, (x, y) => (Math.abs(x - side / 2) < side / 4 && Math.abs(y - side / 2) < side / 4 ? [255, 255, 255] : [0, 0, 0]));
const liveRequest = { ...request, mode: 'inpaint' as const, initImage: picture, mask: liveMask, maskPadding: side };
await engine.liveFrame(modelDir, liveRequest);

// Interleaved rounds (pipeline, live frame, bare U-Net), so machine load drifts over all three alike.
const endToEnd: number[] = [];
const perStep: number[] = [];
const livePerStep: number[] = [];
const liveFrameMs: number[] = [];
const liveOverhead: number[] = [];
const bare: number[] = [];
let stepsRun = 0;
for (let i = 0; i < runs; i++) {
  // 1. The whole pipeline, as the app runs it (with progress and previews).
  const r = await engine.generate(modelDir, request, { onProgress: () => undefined });
  endToEnd.push(r.timings.totalMs);
  perStep.push(r.timings.denoiseMs / r.timings.stepsRun);
  stepsRun = r.timings.stepsRun;
  // 2. A live frame: its denoising loop per step.
  const live = await engine.liveFrame(modelDir, liveRequest);
  livePerStep.push(live.timings.denoiseMs / live.timings.stepsRun);
  liveFrameMs.push(live.timings.totalMs);
  liveOverhead.push((live.timings.denoiseMs - live.unetMs) / live.timings.stepsRun);
  // 3. The bare U-Net.
  const t0 = performance.now();
  for (let s = 0; s < stepsRun * callsPerStep; s++) await unet.run(feeds, [out]);
  bare.push((performance.now() - t0) / stepsRun);
}
clearInterval(sampleRss);
await engine.unloadAll();

const pipelineMsPerStep = median(perStep);
const bareUnetMsPerStep = median(bare);
console.log(
  JSON.stringify(
    {
      bench: 'engine',
      model: info.name,
      model_dir: modelDir,
      provider: model.sessions.providers['unet'],
      size: `${side}x${side}`,
      steps,
      steps_run: stepsRun,
      sampler: request.sampler ?? info.defaults.sampler,
      cfg,
      cfg_batched: doCfg && info.unet.batchDynamic,
      runs,
      pipeline_ms_per_step: round(pipelineMsPerStep),
      bare_unet_ms_per_step: round(bareUnetMsPerStep),
      pipeline_to_bare_ratio: round(pipelineMsPerStep / bareUnetMsPerStep, 3),
      pipeline_to_bare_ratio_runs: ratios(perStep, bare),
      live_ms_per_step: round(median(livePerStep)),
      live_to_bare_ratio: round(median(livePerStep) / bareUnetMsPerStep, 3),
      live_to_bare_ratio_runs: ratios(livePerStep, bare),
      live_overhead_ms_per_step: round(median(liveOverhead), 3),
      live_overhead_ms_per_step_runs: liveOverhead.map((x) => round(x, 3)).sort((p, q) => p - q),
      live_frame_ms: round(median(liveFrameMs)),
      live_frame_ms_runs: liveFrameMs.map((x) => round(x)),
      end_to_end_ms: round(median(endToEnd)),
      end_to_end_ms_runs: endToEnd.map((x) => round(x)),
      cold_start_ms: round(coldStartMs),
      peak_rss_mb: round(peakRss / 2 ** 20),
      // Run-time LoRA on SD 1.5's layer shapes (bench/lora.bench.ts), after the figures above.
      ...(values['skip-lora'] ? {} : { lora: await loraBench(Number(values.threads)) }),
    },
    null,
    2,
  ),
);

/** Each round's ratio (same round, so the same machine load), sorted: the spread of the median. */
function ratios(a: number[], b: number[]): number[] {
  return a.map((x, i) => round(x / b[i]!, 3)).sort((p, q) => p - q);
}

async function pngOf(width: number, height: number, pixel: (x: number, y: number) => number[]): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgb.set(pixel(x, y).map(Math.round), (y * width + x) * 3);
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

function round(x: number, digits = 2): number {
  const k = 10 ** digits;
  return Math.round(x * k) / k;
}
