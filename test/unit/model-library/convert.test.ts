import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../../electron/engine/engine.js';
import { CONVERT_SCRIPT, convertCommand, venvPython } from '../../../electron/model-library/convert-command.js';
import { meanAbsDiff } from '../../support/engine-fixtures.js';
import { fakeCheckpoint, openLibrary, runVenvPython, sandbox } from './support.js';

const PYTHON = venvPython();
const MAKE_CHECKPOINT = join(import.meta.dirname, 'make_tiny_checkpoint.py');
const noVenv = existsSync(PYTHON) ? false : `needs the Python venv at ${PYTHON} (native-models/tools/setup-venv.sh)`;
/** Two Python start-ups with torch + diffusers: ~60 s quiet, ~500 s seen on a 2-core machine at load 30. */
const CONVERSION_TIMEOUT_MS = 600_000;

const CONV_IN = 'model.diffusion_model.input_blocks.0.0.weight';
const CROSS_K = 'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight';
const SD1_TEXT = 'cond_stage_model.transformer.text_model.embeddings.position_embedding.weight';
const SD2_TEXT = 'cond_stage_model.model.positional_embedding';

test('the command shown for a .safetensors file', () => {
  const cmd = convertCommand({ source: "/home/me/My Models/dream'v1.safetensors", fp16: true, platform: 'linux' });
  assert.equal(cmd.out, "/home/me/My Models/dream'v1-onnx-fp16");
  assert.deepEqual(cmd.argv.slice(1), [CONVERT_SCRIPT, "/home/me/My Models/dream'v1.safetensors", "/home/me/My Models/dream'v1-onnx-fp16", '--fp16']);
  assert.equal(cmd.display, `${venvPython('linux')} ${CONVERT_SCRIPT} '/home/me/My Models/dream'\\''v1.safetensors' '/home/me/My Models/dream'\\''v1-onnx-fp16' --fp16`);
  const folder = convertCommand({ source: '/m/sd15-diffusers', out: '/m/sd15', platform: 'linux' });
  assert.deepEqual(folder.argv.slice(2), ['/m/sd15-diffusers', '/m/sd15']);
  const sd2 = convertCommand({ source: '/m/a.safetensors', config: '/m/cfg', predictionType: 'epsilon', platform: 'linux' });
  assert.deepEqual(sd2.argv.slice(4), ['--config', '/m/cfg', '--prediction-type', 'epsilon']);
  assert.match(convertCommand({ source: 'C:\\x\\a b.safetensors', platform: 'win32' }).display, /python\.exe .*"/);
});

test('the architecture of an SD 1.x/2.x single file is read from its weights, offline (dry run)', { skip: noVenv }, () => {
  const box = sandbox('model-convert-plan-');
  try {
    const plan = (tensors: Record<string, number[]>, extra: string[] = []): { status: number | null; plan?: { config: string }; stderr: string } => {
      const file = join(box.dir, 'model.safetensors');
      fakeCheckpoint(file, tensors);
      const r = runVenvPython([CONVERT_SCRIPT, file, join(box.dir, 'out'), '--dry-run', ...extra]);
      return { status: r.status, plan: r.status === 0 ? JSON.parse(r.stdout) : undefined, stderr: r.stderr };
    };
    const sd1 = { [CONV_IN]: [320, 4, 3, 3], [CROSS_K]: [320, 768], [SD1_TEXT]: [77, 768] };
    const sd2 = { [CONV_IN]: [320, 4, 3, 3], [CROSS_K]: [320, 1024], [SD2_TEXT]: [77, 1024] };
    assert.equal(plan(sd1).plan?.config, 'sd15');
    assert.equal(plan({ ...sd1, [CONV_IN]: [320, 9, 3, 3] }).plan?.config, 'sd15-inpainting');
    const v = plan(sd2);
    assert.equal(v.plan?.config, 'sd21');
    assert.match(v.stderr, /assumed SD 2\.x 768-v .* pass --prediction-type epsilon/);
    assert.equal(plan(sd2, ['--prediction-type', 'epsilon']).plan?.config, 'sd21-base');
    assert.equal(plan({ ...sd2, [CONV_IN]: [320, 9, 3, 3] }).plan?.config, 'sd2-inpainting');
    const refusals: Array<[Record<string, number[]>, RegExp]> = [
      [{ [CONV_IN]: [320, 4, 3, 3], [CROSS_K]: [320, 768] }, /no CLIP text encoder/],
      [{ [SD1_TEXT]: [77, 768] }, /not a single-file Stable Diffusion checkpoint/],
      [{ ...sd1, [CROSS_K]: [320, 4096] }, /4096 wide: neither SD 1\.x \(768\) nor SD 2\.x \(1024\)\. For other architectures pass --config DIR/],
    ];
    for (const [tensors, message] of refusals) {
      const r = plan(tensors);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
    }
    writeFileSync(join(box.dir, 'model.ckpt'), 'pickle');
    const pickled = runVenvPython([CONVERT_SCRIPT, join(box.dir, 'model.ckpt'), join(box.dir, 'out')]);
    assert.match(pickled.stderr, /pickled checkpoints can run code when loaded; only \.safetensors/);
    writeFileSync(join(box.dir, 'model.safetensors'), 'not safetensors at all');
    assert.match(runVenvPython([CONVERT_SCRIPT, join(box.dir, 'model.safetensors'), join(box.dir, 'out')]).stderr, /not a readable \.safetensors file/);
  } finally {
    box.cleanup();
  }
});

test('a tiny checkpoint, converted (single file --fp16, and a diffusers folder), generates in the engine', { skip: noVenv, timeout: CONVERSION_TIMEOUT_MS }, async () => {
  const box = sandbox('model-convert-');
  try {
    const made = runVenvPython([MAKE_CHECKPOINT, box.dir]);
    assert.equal(made.status, 0, made.stderr);
    const checkpoint = join(box.dir, 'tiny-sd1.safetensors');

    // The tiny architecture is no SD preset: without --config the tool refuses (offline: no hub lookup).
    const refused = runVenvPython([CONVERT_SCRIPT, checkpoint, join(box.dir, 'nope')]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /error: tiny-sd1\.safetensors: the U-Net's cross-attention is 32 wide: .* pass --config DIR/);
    assert.equal(existsSync(join(box.dir, 'nope')), false);

    const cmd = convertCommand({ source: checkpoint, config: join(box.dir, 'config'), fp16: true });
    const converted = spawnSync(cmd.argv[0]!, cmd.argv.slice(1), { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
    assert.equal(converted.status, 0, converted.stderr);
    const report = JSON.parse(converted.stdout.trim().split('\n').at(-1)!) as { fp16: boolean; max_relative_diff: Record<string, number> };
    assert.equal(report.fp16, true);
    for (const [part, diff] of Object.entries(report.max_relative_diff)) assert.ok(diff < 1e-4, `${part}: ONNX vs torch ${diff}`);
    assert.deepEqual(readdirSync(box.dir).filter((n) => n.includes('converting')), [], 'no staging folder left');

    const lib = await openLibrary(box);
    const engine = new Engine({ providers: ['cpu'], threads: 1 });
    try {
      const fp16 = await lib.importFolder({ path: cmd.out, copy: false, name: 'tiny fp16' });
      assert.deepEqual([fp16.kind, fp16.exporter, fp16.precision], ['txt2img', 'optimum', 'mixed']);
      const fp32 = await lib.importFolder({ path: join(box.dir, 'onnx-from-folder'), copy: false, name: 'tiny fp32' });
      assert.deepEqual([fp32.kind, fp32.exporter, fp32.precision, fp32.nativeResolution.width], ['txt2img', 'optimum', 'fp32', 64]);

      const request = { mode: 'txt2img' as const, prompt: 'a red apple', negativePrompt: '', seed: 11, steps: 4, cfg: 7.5, width: 64, height: 64, sampler: 'ddim' as const };
      const a = await engine.generate(fp32.dir, request);
      const b = await engine.generate(fp16.dir, request);
      for (const result of [a, b]) {
        assert.deepEqual([result.image.width, result.image.height], [64, 64]);
        assert.ok(new Set(result.image.rgb).size > 32, 'a real image, not a constant');
      }
      // Same weights through two routes (folder fp32, single file fp16): the same picture up to fp16 rounding.
      const diff = meanAbsDiff(a.image, b.image);
      assert.ok(diff < 4, `mean |fp32 - fp16| = ${diff.toFixed(2)} levels`);
      const other = await engine.generate(fp32.dir, { ...request, seed: 12 });
      assert.ok(meanAbsDiff(a.image, other.image) > diff, 'another seed differs more than fp16 rounding does');
    } finally {
      await engine.unloadAll();
      await lib.close();
    }
  } finally {
    box.cleanup();
  }
});
