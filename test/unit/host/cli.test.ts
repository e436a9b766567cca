/** The `studio` CLI as a user runs it: a real process, real files, JSON on stdout. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPngMetadata } from '../../../electron/history/png.js';
import { writeNpyFloat32 } from '../../../electron/engine/tensor/npy.js';
import { SeededRng } from '../../../electron/engine/tensor/rng.js';
import { Engine } from '../../../electron/engine/engine.js';
import { webgpuUnavailableReason } from '../../../electron/engine/model/onnx-module.js';
import { assertProviderContract } from '../../support/provider-contract.js';
import { modelDir, readRgb, testPicture, toPng } from '../../support/engine-fixtures.js';
import { studio } from '../../support/studio-cli.js';



/** The error JSON is the last line on stderr (a GPU provider that can't start may print before it). */
function lastJsonLine(text: string): { error: { code: string; message: string } } {
  const lines = text.trim().split('\n').filter((l) => l.startsWith('{'));
  return JSON.parse(lines[lines.length - 1]!);
}

describe('studio CLI', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'studio-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('generate writes a PNG with A1111 parameters and prints the path and timings', async () => {
    const out = join(dir, 'a.png');
    const r = await studio('generate', '--model', modelDir('tiny-sd1'), '--prompt', 'a red apple', '--negative', 'blurry',
      '--steps', '4', '--cfg', '5', '--sampler', 'euler_a', '--seed', '42', '--width', '64', '--height', '64', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { path: string; seed: number; timings: { totalMs: number; stepsRun: number } };
    assert.equal(printed.path, out);
    assert.equal(printed.seed, 42);
    assert.equal(printed.timings.stepsRun, 4);
    assert.ok(printed.timings.totalMs > 0);
    const meta = readPngMetadata(readFileSync(out));
    assert.equal(meta.width, 64);
    assert.match(meta.parameters ?? '', /^a red apple\nNegative prompt: blurry\nSteps: 4, Sampler: Euler a, CFG scale: 5, Seed: 42, Size: 64x64/);
  });

  test('without --model, generate uses the bundled model (works offline on a fresh install)', async () => {
    const out = join(dir, 'bundled.png');
    const r = await studio('generate', '--prompt', 'red apple', '--out', out, '--providers', 'cpu');
    assert.equal(r.code, 0, r.stderr);
    const meta = readPngMetadata(readFileSync(out));
    assert.match(meta.parameters ?? '', /Model: emoji-ldm/);
    // The bundled model's native size: its 64×64 pictures are exported with every pixel doubled (diffusers' factor 8).
    assert.equal(meta.width, 128);
  });

  test('the same command twice gives byte-identical files', async () => {
    const args = ['generate', '--model', modelDir('tiny-optimum'), '--prompt', 'cat', '--steps', '3', '--seed', '7', '--width', '64', '--height', '64'];
    assert.equal((await studio(...args, '--out', join(dir, 'x.png'))).code, 0);
    assert.equal((await studio(...args, '--out', join(dir, 'y.png'))).code, 0);
    assert.ok(readFileSync(join(dir, 'x.png')).equals(readFileSync(join(dir, 'y.png'))));
  });

  test('--latents feeds caller-supplied initial latents (the seed no longer matters)', async () => {
    const latents = join(dir, 'l.npy');
    writeFileSync(latents, writeNpyFloat32(new SeededRng(99).randn(4 * 8 * 8), [1, 4, 8, 8]));
    const common = ['generate', '--model', modelDir('tiny-sd1'), '--prompt', 'cat', '--steps', '3', '--width', '64', '--height', '64', '--latents', latents];
    assert.equal((await studio(...common, '--seed', '1', '--out', join(dir, 'l1.png'))).code, 0);
    assert.equal((await studio(...common, '--seed', '2', '--out', join(dir, 'l2.png'))).code, 0);
    const [a, b] = await Promise.all([readRgb(join(dir, 'l1.png')), readRgb(join(dir, 'l2.png'))]);
    assert.deepEqual(a.rgb, b.rgb);
  });

  test('inpaint with --init and --mask keeps the unmasked half', async () => {
    const pic = testPicture(64, 64);
    writeFileSync(join(dir, 'init.png'), await toPng(pic));
    const mask = new Uint8Array(64 * 64 * 3);
    for (let y = 32; y < 64; y++) mask.fill(255, y * 64 * 3, (y + 1) * 64 * 3); // bottom half
    writeFileSync(join(dir, 'mask.png'), await toPng({ width: 64, height: 64, rgb: mask }));
    const out = join(dir, 'inpainted.png');
    const r = await studio('generate', '--model', modelDir('tiny-sd1-inpaint'), '--prompt', 'grass', '--init', join(dir, 'init.png'),
      '--mask', join(dir, 'mask.png'), '--steps', '3', '--seed', '5', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).mode, 'inpaint');
    const img = await readRgb(out);
    assert.deepEqual(img.rgb.subarray(0, 32 * 64 * 3), pic.rgb.subarray(0, 32 * 64 * 3));
  });

  test('history import brings generated PNGs into the history, and history export writes them out again', async () => {
    const png = join(dir, 'for-history.png');
    const gen = await studio('generate', '--model', modelDir('tiny-sd1'), '--prompt', 'a blue bird', '--steps', '2', '--seed', '11',
      '--width', '64', '--height', '64', '--out', png);
    assert.equal(gen.code, 0, gen.stderr);
    const dataDir = join(dir, 'data');
    const imported = await studio('history', 'import', png, '--data-dir', dataDir);
    assert.equal(imported.code, 0, imported.stderr);
    const report = JSON.parse(imported.stdout) as { imported: number; results: Array<{ status: string; id: number }> };
    assert.equal(report.imported, 1);
    const id = report.results[0]!.id;
    const again = JSON.parse((await studio('history', 'import', png, '--data-dir', dataDir)).stdout) as { imported: number; duplicates: number };
    assert.equal(again.imported, 0);
    assert.equal(again.duplicates, 1);
    const out = join(dir, 'exported');
    const exported = await studio('history', 'export', String(id), '--to', out, '--data-dir', dataDir);
    assert.equal(exported.code, 0, exported.stderr);
    const files = (JSON.parse(exported.stdout) as { files: Array<{ id: number; file: string }> }).files;
    assert.deepEqual(files.map((f) => f.id), [id]);
    assert.match(readPngMetadata(readFileSync(files[0]!.file)).parameters ?? '', /^a blue bird\n/);
    const missing = await studio('history', 'export', '999', '--to', out, '--data-dir', dataDir);
    assert.equal(missing.code, 1);
  });

  test('tokenize prints A1111 chunks with their ids and weights', async () => {
    const r = await studio('tokenize', '--model', modelDir('tiny-sd1'), '--data-dir', dir, 'a (red:1.3) apple');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { tokenCount: number; limit: number; chunks: { ids: number[]; weights: number[] }[] };
    assert.equal(out.tokenCount, 4);
    assert.equal(out.limit, 75);
    assert.equal(out.chunks.length, 1);
    assert.equal(out.chunks[0]!.ids.length, 77);
    assert.deepEqual(out.chunks[0]!.ids.slice(0, 6), [1012, 320, 736, 882, 579, 1013]);
    assert.deepEqual(out.chunks[0]!.weights.slice(0, 6), [1, 1, 1.3, 1, 1, 1]);
    const long = JSON.parse((await studio('tokenize', '--model', modelDir('tiny-sd1'), '--data-dir', dir, 'a '.repeat(100))).stdout);
    assert.equal(long.chunks.length, 2);
    assert.equal(long.limit, 150);
  });

  test('info prints what was detected, and which provider each session runs on with the reasons for any fallback', async () => {
    const r = await studio('info', '--model', modelDir('tiny-sd2-v'));
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.predictionType, 'v_prediction');
    assert.equal(info.padId, 0);
    // The platform's own order (GPU providers first): whatever this machine has, the report says why a
    // session isn't on the first one.
    assertProviderContract(info.sessions, new Engine().sessionSettings.providers);
    if (webgpuUnavailableReason() !== null) {
      assert.match(info.sessions.fallbacks.find((f: { provider: string }) => f.provider === 'webgpu').error, /Couldn't load Vulkan/);
    }
  });

  test('no native warning reaches stderr when a GPU provider is missing (the reason is in the report instead)', async () => {
    // Default providers: WebGPU and CUDA are tried first, on this machine or any other.
    const out = join(dir, 'quiet.png');
    for (const args of [['info', '--model', modelDir('tiny-sd1')], ['generate', '--model', modelDir('tiny-sd1'), '--prompt', 'x', '--steps', '1', '--width', '64', '--height', '64', '--out', out]]) {
      const r = await studio(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /Couldn't load Vulkan|Warning:|\.(cc|cpp):\d+/, `${args[0]} printed native log lines`);
    }
  });

  test('bad input: exit 1 and a JSON error naming the problem, no output file', async () => {
    const out = join(dir, 'never.png');
    const bad: Array<[string[], RegExp]> = [
      [['generate', '--model', modelDir('tiny-sd1'), '--prompt', 'x', '--width', '60', '--out', out], /multiples of 8/],
      [['generate', '--model', modelDir('tiny-sd1'), '--prompt', 'x', '--sampler', 'nope', '--out', out], /unknown sampler/],
      [['generate', '--model', join(dir, 'no-model'), '--prompt', 'x', '--out', out], /model folder not found/],
      [['generate', '--model', modelDir('tiny-sd1'), '--prompt', 'x', '--init', join(dir, 'mask.png'), '--mask', join(dir, 'missing.png'), '--out', out], /mask not found/],
      [['generate', '--model', modelDir('tiny-sd1'), '--prompt', 'x', '--steps', 'many', '--out', out], /--steps must be a number/],
      [['frobnicate'], /unknown command/],
    ];
    for (const [args, message] of bad) {
      const r = await studio(...args);
      assert.equal(r.code, 1, args.join(' '));
      const err = lastJsonLine(r.stderr).error as { code: string; message: string };
      assert.match(err.message, message);
    }
    writeFileSync(join(dir, 'corrupt.png'), Buffer.from('\x89PNG\r\n\x1a\nnot really'));
    const r = await studio('generate', '--model', modelDir('tiny-sd1'), '--prompt', 'x', '--init', join(dir, 'corrupt.png'), '--width', '64', '--height', '64', '--out', out);
    assert.equal(r.code, 1);
    assert.equal(lastJsonLine(r.stderr).error.code, 'E_BAD_IMAGE');
    assert.equal(existsSync(out), false);
  });
});
