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
import { CONVERT_SCRIPT, venvPython } from '../../../electron/model-library/convert-command.js';
import { FIXTURES, maxAbsDiff, meanAbsDiff } from '../../support/engine-fixtures.js';
import { sandbox } from './support.js';

const PYTHON = venvPython();
const MAKE_CHECKPOINT = join(import.meta.dirname, 'make_tiny_checkpoint.py');
const noVenv = existsSync(PYTHON) ? false : `needs the Python venv at ${PYTHON} (native-models/tools/setup-venv.sh)`;
const LORAS = join(FIXTURES, 'loras');
/** Three Python start-ups with torch + diffusers on a busy 2-core machine. */
const TIMEOUT_MS = 360_000;

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

    const halfResult = await engine.generate(fp16, { ...request, prompt: request.prompt + tags });
    assert.ok(halfResult.loras.every((l) => l.unmatched === 0), JSON.stringify(halfResult.loras));
    const halfDiff = meanAbsDiff(runTime.image, halfResult.image);
    assert.ok(halfDiff < 4, `fp16 vs fp32 with the same LoRAs: mean ${halfDiff.toFixed(2)} levels`);
  } finally {
    await engine.unloadAll();
    box.cleanup?.();
  }
});
