/**
 * Hires fix (pipelines/hires.ts): the latent upscale against torch's F.interpolate, the ONNX upscaler
 * against torch, and the second pass against the img2img path it claims to be.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Engine, prepareJob } from '../../../../electron/engine/engine.js';
import { findUpscaler, OnnxUpscaler } from '../../../../electron/engine/model/upscaler.js';
import { imageToImage } from '../../../../electron/engine/pipelines/img2img.js';
import { textToLatents } from '../../../../electron/engine/pipelines/txt2img.js';
import { readNpyFloat32 } from '../../../../electron/engine/tensor/npy.js';
import { interpolateLatents, resizeImage, type InterpolateMode } from '../../../../electron/engine/tensor/upscale.js';
import { hiresSize } from '../../../../electron/shared/generation-limits.js';
import { FIXTURES, modelDir, PARITY, testPicture, toPng } from '../../../support/engine-fixtures.js';

const UPSCALERS = join(FIXTURES, 'upscalers');

describe('latent upscale = torch F.interpolate (native-models/tools/make_hires_goldens.py)', () => {
  const golden = JSON.parse(readFileSync(join(PARITY, 'hires-interpolate.json'), 'utf8')) as {
    input: { shape: number[]; data: number[] };
    cases: { mode: InterpolateMode; size: [number, number]; output: number[] }[];
  };
  const [, c, h, w] = golden.input.shape as [number, number, number, number];
  for (const k of golden.cases) {
    test(`${k.mode} ${h}×${w} → ${k.size[0]}×${k.size[1]}`, () => {
      const out = interpolateLatents(Float32Array.from(golden.input.data), c, h, w, k.size[0], k.size[1], k.mode);
      assert.equal(out.length, k.output.length);
      let worst = 0;
      out.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - k.output[i]!))));
      assert.ok(worst < 1e-5, `max |engine − torch| = ${worst}`);
    });
  }
});

describe('hires sizes (A1111 rules, sides rounded down to 8)', () => {
  test('scale, one side, both sides (cover, then crop the middle)', () => {
    assert.deepEqual(hiresSize(64, 48, { scale: 2, resizeWidth: 0, resizeHeight: 0 }).target, { width: 128, height: 96 });
    assert.deepEqual(hiresSize(64, 64, { scale: 1.3, resizeWidth: 0, resizeHeight: 0 }).target, { width: 80, height: 80 });
    assert.deepEqual(hiresSize(64, 48, { scale: 2, resizeWidth: 96, resizeHeight: 0 }).target, { width: 96, height: 72 });
    assert.deepEqual(hiresSize(64, 64, { scale: 2, resizeWidth: 128, resizeHeight: 96 }), {
      upscaleTo: { width: 128, height: 128 },
      target: { width: 128, height: 96 },
    });
  });
});

describe('ONNX upscaler (a tiny ESRGAN made by native-models/tools/make_upscaler_fixture.py)', () => {
  test('is found by name, runs ×4 and matches torch within 1/255', async () => {
    const file = findUpscaler([UPSCALERS], 'tiny-esrgan-x4');
    const model = await OnnxUpscaler.open(file, { providers: ['cpu'], threads: 0 });
    try {
      const image = readNpyFloat32(readFileSync(join(UPSCALERS, 'upscaler-image.npy')));
      const expected = readNpyFloat32(readFileSync(join(UPSCALERS, 'upscaler-expected.npy')));
      const [height, width] = image.shape as [number, number];
      const out = await model.upscale({ width, height, rgb: Uint8Array.from(image.data) });
      assert.deepEqual([out.height, out.width], [height * 4, width * 4]);
      let worst = 0;
      out.rgb.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - expected.data[i]!))));
      assert.ok(worst <= 1, `max difference ${worst}/255`);
    } finally {
      await model.release();
    }
  });

  test('an unknown name is refused, naming the upscalers there are', () => {
    assert.throws(() => findUpscaler([UPSCALERS], 'RealESRGAN_x4plus'), /no upscaler named "RealESRGAN_x4plus".*ONNX upscalers found: tiny-esrgan-x4/);
    assert.throws(() => findUpscaler([join(UPSCALERS, 'nowhere')], 'x'), /no ONNX upscaler \(\.onnx\) was found/);
  });

  test('a model that is not image → image is refused with the reason', async () => {
    await assert.rejects(OnnxUpscaler.open(join(modelDir('tiny-sd1'), 'text_encoder', 'model.onnx'), { providers: ['cpu'], threads: 0 }), /not an image upscaler/);
  });
});

describe('hires fix end to end (tiny-sd1)', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());
  const base = { mode: 'txt2img', prompt: 'a red apple', seed: 31, steps: 6, width: 64, height: 64 } as const;

  for (const upscaler of ['Lanczos', 'tiny-esrgan-x4'] as const) {
    test(`${upscaler}: the second pass is byte for byte img2img on the upscaled first pass (same seed, strength, steps)`, async () => {
      const hires = { upscaler, scale: 2, steps: 4, strength: 0.5 };
      const r = await engine.generate(modelDir('tiny-sd1'), { ...base, hires, upscalerDirs: [UPSCALERS] });
      assert.deepEqual([r.image.width, r.image.height], [128, 128]);
      assert.deepEqual(r.params.hires, { upscaler, scale: 2, resizeWidth: 0, resizeHeight: 0, steps: 4, strength: 0.5 });
      assert.deepEqual([r.params.width, r.params.height, r.params.mode], [64, 64, 'txt2img']);
      assert.ok(r.timings.stepsRun > 6, 'both passes counted');

      const first = await engine.generate(modelDir('tiny-sd1'), base);
      let upscaled;
      if (upscaler === 'Lanczos') {
        upscaled = await resizeImage(first.image, 128, 128, 'lanczos3');
      } else {
        const model = await OnnxUpscaler.open(join(UPSCALERS, 'tiny-esrgan-x4.onnx'), { providers: ['cpu'], threads: 0 });
        upscaled = await resizeImage(await model.upscale(first.image), 128, 128, 'lanczos3');
        await model.release();
      }
      const img2img = await engine.generate(modelDir('tiny-sd1'), {
        mode: 'img2img', prompt: base.prompt, seed: base.seed, steps: 4, strength: 0.5, width: 128, height: 128, initImage: await toPng(upscaled),
      });
      assert.ok(Buffer.from(r.image.rgb).equals(Buffer.from(img2img.image.rgb)), 'hires second pass ≠ img2img on the upscaled picture');
    });
  }

  for (const upscaler of ['Latent', 'Latent (bicubic)', 'Latent (nearest)'] as const) {
    test(`${upscaler}: the second pass is the img2img pipeline from the interpolated first-pass latents`, async () => {
      const model = await engine.loadModel(modelDir('tiny-sd1'));
      const r = await engine.generate(modelDir('tiny-sd1'), { ...base, hires: { upscaler, scale: 3, strength: 0.6 } });
      assert.deepEqual([r.image.width, r.image.height], [192, 192]);

      const firstJob = await prepareJob(model, base);
      const latents = await textToLatents(firstJob);
      const mode = ({ Latent: 'bilinear', 'Latent (bicubic)': 'bicubic', 'Latent (nearest)': 'nearest' } as const)[upscaler];
      const up = interpolateLatents(latents, 4, 8, 8, 24, 24, mode);
      // The img2img job the same seed makes at 192×192 (its init picture is not used: the latents replace it).
      const secondJob = await prepareJob(model, { mode: 'img2img', prompt: base.prompt, seed: base.seed, steps: 6, strength: 0.6, width: 192, height: 192, initImage: await toPng(testPicture(192, 192)) });
      const expected = await imageToImage(secondJob, up);
      assert.ok(Buffer.from(r.image.rgb).equals(Buffer.from(expected.rgb)));
    });
  }

  test('a target of another aspect ratio: upscaled to cover it, the middle cut out', async () => {
    const r = await engine.generate(modelDir('tiny-sd1'), { ...base, hires: { upscaler: 'Latent', resizeWidth: 192, resizeHeight: 128, strength: 0.5 } });
    assert.deepEqual([r.image.width, r.image.height], [192, 128]);
    const p = await engine.generate(modelDir('tiny-sd1'), { ...base, hires: { upscaler: 'Nearest', resizeWidth: 128, resizeHeight: 192, strength: 0.5 } });
    assert.deepEqual([p.image.width, p.image.height], [128, 192]);
    // tiny-sd1 takes multiples of 64: a scale of 1.5 gives 96, rounded down to 64 on each side.
    const q = await engine.generate(modelDir('tiny-sd1'), { ...base, width: 128, height: 64, hires: { upscaler: 'Latent', scale: 1.5, strength: 0.5 } });
    assert.deepEqual([q.image.width, q.image.height], [192, 64]);
  });

  test('a 9-channel model upscales pixels; latent upscalers are refused for it', async () => {
    const r = await engine.generate(modelDir('tiny-sd1-inpaint'), { ...base, hires: { upscaler: 'Lanczos', strength: 0.5 } });
    assert.deepEqual([r.image.width, r.image.height], [128, 128]);
    await assert.rejects(engine.generate(modelDir('tiny-sd1-inpaint'), { ...base, hires: { upscaler: 'Latent' } }), /inpainting model.*pixel upscaler/);
  });

  test('regional prompts follow the upscale: the region masks are resized for the second pass', async () => {
    const data = Buffer.alloc(64 * 64);
    for (let i = 0; i < data.length; i++) data[i] = i % 64 < 32 ? 255 : 0;
    const mask = await sharp(data, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
    const r = await engine.generate(modelDir('tiny-sd1'), { ...base, steps: 3, regions: [{ prompt: 'a green leaf', mask }], hires: { upscaler: 'Latent', strength: 0.5 } });
    assert.deepEqual([r.image.width, r.image.height], [128, 128]);
    assert.deepEqual(r.params.regions, [{ prompt: 'a green leaf', weight: 1, area: 0.5 }]);
  });

  test('bad settings are refused before anything runs', async () => {
    const dir = modelDir('tiny-sd1');
    await assert.rejects(engine.generate(dir, { ...base, mode: 'img2img', initImage: await toPng(testPicture(64, 64)), hires: {} }), /hires fix is a txt2img setting/);
    await assert.rejects(engine.generate(dir, { ...base, hires: { scale: 9 } }), /hires scale must be a number from 1 to 4/);
    await assert.rejects(engine.generate(dir, { ...base, hires: { upscaler: 'Lanczos', strength: 0 } }), /strength 0/);
    await assert.rejects(engine.generate(dir, { ...base, hires: { upscaler: '4x-UltraSharp' }, upscalerDirs: [UPSCALERS] }), /no upscaler named "4x-UltraSharp"/);
    await assert.rejects(engine.generate(dir, { ...base, width: 2048, height: 2048, hires: { scale: 4 } }), /sides must be from 8 to 4096/);
  });

  test('progress counts both passes as one run', async () => {
    const seen: Array<[number, number]> = [];
    const r = await engine.generate(modelDir('tiny-sd1'), { ...base, sampler: 'euler', hires: { upscaler: 'Latent', strength: 0.5, steps: 4 } }, { onProgress: (p) => seen.push([p.step, p.total]) });
    assert.equal(r.timings.stepsRun, 6 + 2);
    assert.deepEqual(seen, [[1, 8], [2, 8], [3, 8], [4, 8], [5, 8], [6, 8], [7, 8], [8, 8]]);
  });
});
