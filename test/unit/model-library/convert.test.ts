import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../../electron/engine/engine.js';
import { CONVERT_SCRIPT, convertCommand, venvPython } from '../../../electron/model-library/convert-command.js';
import { meanAbsDiff } from '../../support/engine-fixtures.js';
import { openLibrary, sandbox } from './support.js';

const PYTHON = venvPython();
const MAKE_CHECKPOINT = join(import.meta.dirname, 'make_tiny_checkpoint.py');
const noVenv = existsSync(PYTHON) ? false : `needs the Python venv at ${PYTHON} (native-models/tools/setup-venv.sh)`;
/** Two Python start-ups with torch + diffusers on a busy 2-core machine. */
const CONVERSION_TIMEOUT_MS = 240_000;

function python(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2' } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

test('the command shown for a .safetensors file', () => {
  const cmd = convertCommand({ source: "/home/me/My Models/dream'v1.safetensors", fp16: true, platform: 'linux' });
  assert.equal(cmd.out, "/home/me/My Models/dream'v1-onnx-fp16");
  assert.deepEqual(cmd.argv.slice(1), [CONVERT_SCRIPT, "/home/me/My Models/dream'v1.safetensors", "/home/me/My Models/dream'v1-onnx-fp16", '--config', '<diffusers config folder>', '--fp16']);
  assert.equal(cmd.display, `${venvPython('linux')} ${CONVERT_SCRIPT} '/home/me/My Models/dream'\\''v1.safetensors' '/home/me/My Models/dream'\\''v1-onnx-fp16' --config <diffusers config folder> --fp16`);
  assert.equal(cmd.missing.length, 1);
  const folder = convertCommand({ source: '/m/sd15-diffusers', out: '/m/sd15', platform: 'linux' });
  assert.deepEqual(folder.argv.slice(2), ['/m/sd15-diffusers', '/m/sd15']);
  assert.deepEqual(folder.missing, []);
  const withConfig = convertCommand({ source: '/m/a.safetensors', config: '/m/cfg', platform: 'linux' });
  assert.deepEqual(withConfig.argv.slice(4), ['--config', '/m/cfg']);
  assert.match(convertCommand({ source: 'C:\\x\\a b.safetensors', config: 'C:\\cfg', platform: 'win32' }).display, /python\.exe .*"/);
});

test('a tiny checkpoint, converted (single file --fp16, and a diffusers folder), generates in the engine', { skip: noVenv, timeout: CONVERSION_TIMEOUT_MS }, async () => {
  const box = sandbox('model-convert-');
  try {
    const made = python([MAKE_CHECKPOINT, box.dir]);
    assert.equal(made.status, 0, made.stderr);
    const checkpoint = join(box.dir, 'tiny-sd1.safetensors');

    // Without --config the tool refuses to guess (offline: no hub), naming what it needs.
    const refused = python([CONVERT_SCRIPT, checkpoint, join(box.dir, 'nope')]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /error: a single-file checkpoint needs --config DIR/);
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
      assert.deepEqual([fp16.kind, fp16.layout, fp16.precision], ['txt2img', 'optimum', 'mixed']);
      const fp32 = await lib.importFolder({ path: join(box.dir, 'onnx-from-folder'), copy: false, name: 'tiny fp32' });
      assert.deepEqual([fp32.kind, fp32.layout, fp32.precision, fp32.nativeResolution.width], ['txt2img', 'optimum', 'fp32', 64]);

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
