/**
 * Run-time LoRA cost on SD 1.5's layer shapes (bench/lora-fixture.ts writes the graph and three LoRAs to a
 * temp folder first; ~0.5 GB of fp16 weights):
 * - lora_first_apply_ms: the first LoRA on a freshly opened model (reads the ONNX and its external data once);
 * - lora_apply_ms: median (with min/max) of applying a LoRA set whose patched session is not cached: merge
 *   into the kept weights, write the patched copy, create the session;
 * - memory while switching between three LoRA sets ten times: peak RSS over the start (after the first
 *   apply), against the size of one model copy (the fp16 weights).
 * Used by bench:engine (its `lora` section, unless --skip-lora); alone: npm run bench:lora -- [--rank R]
 * [--switches N] [--threads N] [--default-allocator]. Alone it runs under the engine process's allocator
 * setting (engineAllocatorEnv: it starts itself again with it); --default-allocator keeps glibc's default.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadLoraFile, LoraSessions } from '../electron/engine/lora/sessions.js';
import type { LoadedModel } from '../electron/engine/model/model-folder.js';
import { OnnxModule, type SessionSettings } from '../electron/engine/model/onnx-module.js';
import { engineAllocatorEnv } from '../electron/host/engine-process/launcher.js';
import { writeKohyaLora, writeSd15ShapedUnet } from './lora-fixture.js';

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
const mb = (bytes: number): number => round(bytes / 2 ** 20);

export async function loraBench(threads = 0, switches = 10, rank = 32): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'lora-bench-'));
  try {
    const weightBytes = writeSd15ShapedUnet(dir);
    const files = [0, 1, 2].map((seed) => {
      const file = join(dir, `lora-${seed}.safetensors`);
      writeKohyaLora(file, seed + 1, rank);
      return file;
    });
    const settings: SessionSettings = { providers: ['cpu'], threads };
    const unet = await OnnxModule.open(join(dir, 'unet', 'model.onnx'), 'unet/model.onnx', settings);
    // The LoRA code needs a model's U-Net, name and family; the bench graph has only the U-Net layers.
    // releasePromptEncoder: switching sets asks the model to drop a text encoder's prompt state (none here).
    const model = {
      info: { name: 'sd15-lora-shapes', family: 'sd1', textHiddenSize: 768 },
      modules: { unet, textEncoder: null },
      settings,
      releasePromptEncoder: async () => {},
    } as unknown as LoadedModel;
    const sessions = new LoraSessions(model, settings);
    const loras = await Promise.all(files.map((f) => loadLoraFile(f)));

    let t0 = performance.now();
    await sessions.apply([{ file: loras[0]!, te: 1, unet: 1 }]);
    const firstApplyMs = performance.now() - t0;

    const sets = [
      [{ file: loras[0]!, te: 1, unet: 0.8 }],
      [{ file: loras[1]!, te: 1, unet: 1 }],
      [
        { file: loras[1]!, te: 1, unet: 0.5 },
        { file: loras[2]!, te: 1, unet: 0.7 },
      ],
    ];
    global.gc?.();
    const startRss = process.memoryUsage().rss;
    let peakRss = startRss;
    const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);
    const applyMs: number[] = [];
    for (let i = 0; i < switches; i++) {
      for (const set of sets) {
        t0 = performance.now();
        const { reports } = await sessions.apply(set);
        applyMs.push(performance.now() - t0);
        if (reports.some((r) => r.unmatched > 0)) throw new Error('bench LoRA modules unmatched');
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }
    }
    clearInterval(sample);
    const endRss = process.memoryUsage().rss;
    await sessions.release();
    await unet.release();
    const sorted = [...applyMs].sort((a, b) => a - b);
    return {
      lora_layers: loras[0]!.modules.length,
      lora_rank: loras[0]!.modules[0]!.downShape[0],
      model_weights_mb: mb(weightBytes),
      lora_first_apply_ms: round(firstApplyMs),
      lora_apply_ms: round(sorted[Math.floor(sorted.length / 2)]!),
      lora_apply_ms_min: round(sorted[0]!),
      lora_apply_ms_max: round(sorted[sorted.length - 1]!),
      lora_switches: applyMs.length,
      lora_switch_start_rss_mb: mb(startRss),
      lora_switch_peak_rss_mb: mb(peakRss),
      lora_switch_end_rss_mb: mb(endRss),
      lora_switch_peak_over_start_mb: mb(peakRss - startRss),
      lora_switch_peak_within_one_model_copy: peakRss - startRss <= weightBytes,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: {
      threads: { type: 'string', default: '0' },
      switches: { type: 'string', default: '10' },
      rank: { type: 'string', default: '32' },
      'default-allocator': { type: 'boolean', default: false },
    },
  });
  const allocator = engineAllocatorEnv();
  if (!values['default-allocator'] && Object.keys(allocator).length > 0) {
    // The C library reads it at start: run again with it, as the host starts the engine process.
    const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, ...allocator } });
    process.exit(child.status ?? 1);
  }
  const setting = process.env['MALLOC_MMAP_THRESHOLD_'];
  console.log(
    JSON.stringify(
      { bench: 'lora', allocator: setting === undefined ? 'default' : `MALLOC_MMAP_THRESHOLD_=${setting}`, ...(await loraBench(Number(values.threads), Number(values.switches), Number(values.rank))) },
      null,
      2,
    ),
  );
}
