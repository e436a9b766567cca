/**
 * Baking a LoRA at conversion (`convert.py --lora FILE:WEIGHT`, diffusers fuse_lora) gives the same picture
 * as applying it at run time on the plain conversion; and run time works on the converter's fp16 output
 * (fp16 initializers in model.onnx_data, node paths under the exporter's wrapper modules).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../../electron/engine/engine.js';
import { readLoraFile } from '../../../electron/engine/lora/lora-file.js';
import { mergedValues, planMerge } from '../../../electron/engine/lora/merge.js';
import { OnnxWeights } from '../../../electron/engine/lora/onnx-weights.js';
import { CONVERT_SCRIPT, venvPython } from '../../../electron/model-library/convert-command.js';
import { FIXTURES, maxAbsDiff, meanAbsDiff } from '../../support/engine-fixtures.js';
import { sandbox } from './support.js';

const PYTHON = venvPython();
const MAKE_CHECKPOINT = join(import.meta.dirname, 'make_tiny_checkpoint.py');
const noVenv = existsSync(PYTHON) ? false : `needs the Python venv at ${PYTHON} (native-models/tools/setup-venv.sh)`;
const LORAS = join(FIXTURES, 'loras');
/** Three Python start-ups with torch + diffusers (each conversion took 3.5 min on a 2-core machine at load 18). */
const TIMEOUT_MS = 900_000;

function python(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2', HF_HUB_OFFLINE: '1' } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

test('convert.py --lora bakes what <lora:…> applies at run time (≤ 2/255); run time on an fp16 conversion', { skip: noVenv, timeout: TIMEOUT_MS }, async () => {
  const box = sandbox('convert-lora-');
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  try {
    const made = python([MAKE_CHECKPOINT, box.dir]);
    assert.equal(made.status, 0, made.stderr);
    const baked = join(box.dir, 'baked');
    const bake = python([CONVERT_SCRIPT, join(box.dir, 'diffusers'), baked, '--skip-check', '--lora', `${join(LORAS, 'tiny-kohya.safetensors')}:0.5`, '--lora', `${join(LORAS, 'tiny-locon.safetensors')}:0.8`]);
    assert.equal(bake.status, 0, bake.stderr);
    const report = JSON.parse(bake.stdout.trim().split('\n').at(-1)!) as { loras: { weight: number }[] };
    assert.deepEqual(report.loras.map((l) => l.weight), [0.5, 0.8]);
    const missing = python([CONVERT_SCRIPT, join(box.dir, 'diffusers'), join(box.dir, 'nope'), '--lora', join(LORAS, 'absent.safetensors')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /error: --lora .*absent\.safetensors: file not found/);
    const fp16 = join(box.dir, 'fp16');
    const half = python([CONVERT_SCRIPT, join(box.dir, 'diffusers'), fp16, '--skip-check', '--fp16']);
    assert.equal(half.status, 0, half.stderr);

    const request = { mode: 'txt2img' as const, prompt: 'a red apple', negativePrompt: '', seed: 11, steps: 6, cfg: 7.5, width: 64, height: 64, loraDirs: [LORAS] };
    const tags = ' <lora:tiny-kohya:0.5> <lora:tiny-locon:0.8>';
    const plain = join(box.dir, 'onnx-from-folder');
    const base = await engine.generate(plain, request);
    const runTime = await engine.generate(plain, { ...request, prompt: request.prompt + tags });
    assert.ok(runTime.loras.every((l) => l.unmatched === 0 && l.matched > 0), JSON.stringify(runTime.loras));
    const bakedResult = await engine.generate(baked, request);
    const diff = maxAbsDiff(runTime.image, bakedResult.image);
    assert.ok(diff <= 2, `run time vs baked: ${diff}/255`);
    assert.ok(meanAbsDiff(base.image, runTime.image) > 5, 'the LoRAs change the picture');

    // fp16: every module found, and each merged weight is the fp32 merge up to fp16 rounding.
    const kohya = await readLoraFile(join(LORAS, 'tiny-kohya.safetensors'));
    for (const component of ['unet', 'text_encoder'] as const) {
      const file = component === 'unet' ? 'unet/model.onnx' : 'text_encoder/model.onnx';
      const w32 = OnnxWeights.read(join(plain, file), file);
      const w16 = OnnxWeights.read(join(fp16, file), file);
      const set = [{ file: kohya, te: 0.5, unet: 0.5 }];
      const p32 = planMerge(w32, component, set);
      const p16 = planMerge(w16, component, set);
      assert.deepEqual(p16.matches.map((m) => m.unmatched), [[]]);
      assert.equal(p16.plan.size, p32.plan.size);
      for (const entry of p16.plan.values()) assert.equal(entry.target.dtype, 'float16');
      assert.ok(p32.plan.size > 0);
      for (const [name32, entry32] of p32.plan) {
        const module = entry32.parts[0]!.module;
        const name16 = [...p16.plan].find(([, e]) => e.parts[0]!.module === module)![0];
        const a = mergedValues(w32, name32, entry32);
        const b = mergedValues(w16, name16, p16.plan.get(name16)!);
        // fp16 keeps 11 significant bits: half an ulp is ≤ 4.9e-4 for |w| < 1.
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(a[i]!)));
        assert.ok(worst < 1e-3, `${module.source}: fp16 merge off by ${worst}`);
      }
    }
    const halfResult = await engine.generate(fp16, { ...request, prompt: `${request.prompt} <lora:tiny-kohya:0.5>` });
    assert.ok(halfResult.loras.every((l) => l.unmatched === 0 && l.matched > 0), JSON.stringify(halfResult.loras));
  } finally {
    await engine.unloadAll();
    box.cleanup?.();
  }
});
