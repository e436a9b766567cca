/**
 * The layout contract between the Python model tooling and the TypeScript engine: the toy run of the
 * whole chain (`native-models/tools/build.sh --toy`, which .ci/run runs first) exports the three folders,
 * and the engine loads and runs them like any SD ONNX folder. For the layout model the chain also writes
 * a held-out image's label map painted in the labels.json colours and the tensor training computes for
 * it (native-models/training/labels.py); the engine must read the PNG into the same tensor. The chain's
 * distillation stages export the two latent consistency folders (LCMScheduler, a U-Net with
 * `timestep_cond`), which the engine must detect as LCM and run in a few steps without a CFG batch.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, prepareJob } from '../../../electron/engine/engine.js';
import { readNpyFloat32 } from '../../../electron/engine/tensor/npy.js';
import { REPO_ROOT, maxAbsDiff, meanAbsDiff, readRgb, testPicture, toPng } from '../../support/engine-fixtures.js';

const TOY = join(REPO_ROOT, 'native-models', '.work', 'emoji-ldm-toy');
const EXPORT = join(TOY, 'export');
const present = existsSync(join(EXPORT, 'emoji-ldm', 'model_index.json'));
// CI always builds the toy chain first, so there a missing export is a failure, not a skip.
const skip = !present && process.env['CI'] !== 'true' ? 'no toy export: run native-models/tools/build.sh --toy' : false;

describe('the toy chain export runs in the engine', { skip }, () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  test('text-to-image folder: detected as the optimum layout and generates', async () => {
    assert.ok(present, `missing ${EXPORT}/emoji-ldm (did build.sh --toy run?)`);
    const dir = join(EXPORT, 'emoji-ldm');
    const { info } = await engine.info(dir);
    assert.equal(info.kind, 'txt2img');
    assert.equal(info.exporter, 'optimum');
    const r = await engine.generate(dir, { mode: 'txt2img', prompt: 'red apple', seed: 1, steps: 3 });
    assert.equal(r.image.width, info.defaults.width);
    assert.ok(new Set(r.image.rgb).size > 4);
  });

  test('inpainting folder: a 9-channel U-Net that keeps unmasked pixels', async () => {
    const dir = join(EXPORT, 'emoji-ldm-inpaint');
    const { info } = await engine.info(dir);
    assert.equal(info.kind, 'inpaint');
    const side = info.defaults.width;
    const picture = testPicture(side, side);
    const mask = new Uint8Array(side * side * 3);
    mask.fill(255, 0, (side * side * 3) / 2); // top half
    const r = await engine.generate(dir, {
      mode: 'inpaint', prompt: 'red apple', seed: 1, steps: 3, maskBlur: 0,
      initImage: await toPng(picture), mask: await toPng({ width: side, height: side, rgb: mask }),
    });
    assert.deepEqual(r.image.rgb.subarray(mask.length / 2), picture.rgb.subarray(mask.length / 2));
  });

  test('layout folder: labels.json read, the label map tensor equals training\'s, and the map steers the picture', async () => {
    const dir = join(EXPORT, 'emoji-ldm-layout');
    const { info } = await engine.info(dir);
    assert.equal(info.kind, 'layout');
    const labels = info.layout?.labels ?? [];
    assert.deepEqual(labels.map((l) => l.name), ['background', 'outline', 'gray', 'red', 'orange', 'yellow', 'green', 'blue', 'purple']);
    const labelMap = readFileSync(join(TOY, 'layout_contract', 'label_map.png'));
    const expected = readNpyFloat32(readFileSync(join(TOY, 'layout_contract', 'label_map.npy')), 'label_map.npy');
    const side = info.defaults.width;
    const request = { mode: 'layout', prompt: 'red apple', seed: 1, steps: 3, width: side, height: side, labelMap } as const;
    const job = await prepareJob(await engine.loadModel(dir), request);
    assert.equal(job.labelMap?.length, expected.data.length, `engine label map ${job.labelMap?.length} values, training ${expected.shape.join('x')}`);
    let worst = 0;
    expected.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(job.labelMap![i]! - v))));
    assert.ok(worst < 1e-6, `engine and training label maps differ by ${worst}`);

    const painted = await engine.generate(dir, request);
    assert.deepEqual([painted.image.width, painted.image.height], [side, side]);
    const white = new Uint8Array(side * side * 3).fill(255);
    const blank = await engine.generate(dir, { ...request, labelMap: await toPng({ width: side, height: side, rgb: white }) });
    assert.ok(meanAbsDiff(painted.image, blank.image) > 0, 'the label map did not change the picture');
  });

  test('LCM text-to-image folder: detected as LCM from timestep_cond and LCMScheduler, generates in 4 steps', async () => {
    const dir = join(EXPORT, 'emoji-ldm-lcm');
    const { info } = await engine.info(dir);
    assert.equal(info.kind, 'txt2img');
    assert.equal(info.family, 'lcm');
    assert.equal(info.scheduler.className, 'LCMScheduler');
    assert.equal(info.defaults.sampler, 'lcm');
    assert.equal(info.unet.timestepCondDim, 256);
    // (The toy distillation's few steps barely move the guidance projection, which starts at zero, so
    // the picture is not compared across scales here.)
    const r = await engine.generate(dir, { mode: 'txt2img', prompt: 'red apple', seed: 1, steps: 4, cfg: 8, sampler: 'lcm' });
    assert.equal(r.image.width, info.defaults.width);
    assert.equal(r.timings.stepsRun, 4);
    assert.ok(new Set(r.image.rgb).size > 4);
  });

  test('LCM text-to-image folder: one step from given latents draws the evaluation pipeline\'s picture (within 2/255)', async () => {
    const dir = join(EXPORT, 'emoji-ldm-lcm');
    const contractDir = join(TOY, 'lcm_contract');
    const spec = JSON.parse(readFileSync(join(contractDir, 'contract.json'), 'utf8')) as { prompt: string; guidance_scale: number; steps: number };
    const latents = readNpyFloat32(readFileSync(join(contractDir, 'latents.npy')), 'latents.npy');
    const r = await engine.generate(dir, {
      mode: 'txt2img', prompt: spec.prompt, seed: 1, steps: spec.steps, cfg: spec.guidance_scale, sampler: 'lcm', latents: latents.data,
    });
    const expected = await readRgb(join(contractDir, 'expected.png'));
    assert.deepEqual([r.image.width, r.image.height], [expected.width, expected.height]);
    const worst = maxAbsDiff(r.image, expected);
    assert.ok(worst <= 2, `engine and the Python LCM pipeline differ by ${worst}/255`);
  });

  test('LCM inpainting folder: a 9-channel LCM U-Net that keeps unmasked pixels in 4 steps', async () => {
    const dir = join(EXPORT, 'emoji-ldm-inpaint-lcm');
    const { info } = await engine.info(dir);
    assert.equal(info.kind, 'inpaint');
    assert.equal(info.family, 'lcm');
    assert.equal(info.unet.timestepCondDim, 256);
    const side = info.defaults.width;
    const picture = testPicture(side, side);
    const mask = new Uint8Array(side * side * 3);
    mask.fill(255, 0, (side * side * 3) / 2); // top half
    const r = await engine.generate(dir, {
      mode: 'inpaint', prompt: 'red apple', seed: 1, steps: 4, cfg: 8, sampler: 'lcm', maskBlur: 0,
      initImage: await toPng(picture), mask: await toPng({ width: side, height: side, rgb: mask }),
    });
    assert.deepEqual(r.image.rgb.subarray(mask.length / 2), picture.rgb.subarray(mask.length / 2));
  });

  test('LCM folders: the evaluation wrote eval.json with 4- and 2-step rows against the teacher, and a samples grid', () => {
    const text = JSON.parse(readFileSync(join(EXPORT, 'emoji-ldm-lcm', 'eval.json'), 'utf8')) as {
      text_fidelity: { runs: Array<{ steps: number; train?: { top5: number } }>; meets_bar: boolean };
    };
    assert.deepEqual([...new Set(text.text_fidelity.runs.map((r) => r.steps))], [4, 2]);
    for (const run of text.text_fidelity.runs) assert.ok(Number.isFinite(run.train?.top5), `steps ${run.steps}: no top-5`);
    assert.equal(typeof text.text_fidelity.meets_bar, 'boolean');
    const inpaint = JSON.parse(readFileSync(join(EXPORT, 'emoji-ldm-inpaint-lcm', 'eval.json'), 'utf8')) as {
      inpaint: { teacher: { masked_psnr_db_vs_itself_other_noise: number }; runs: Array<{ steps: number; masked_psnr_db_vs_teacher: number }>; meets_bar: boolean };
    };
    // 4 and 2 steps, and 1 (the consistency function alone); the teacher against itself from other noise beside them.
    assert.deepEqual([...new Set(inpaint.inpaint.runs.map((r) => r.steps))], [4, 2, 1]);
    for (const run of inpaint.inpaint.runs) assert.ok(Number.isFinite(run.masked_psnr_db_vs_teacher));
    assert.ok(Number.isFinite(inpaint.inpaint.teacher.masked_psnr_db_vs_itself_other_noise));
    for (const name of ['emoji-ldm-lcm', 'emoji-ldm-inpaint-lcm']) assert.ok(existsSync(join(EXPORT, name, 'samples.png')), name);
  });
});

