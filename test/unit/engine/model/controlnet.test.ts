/** ControlNet detection and loading: the U-Net's residual inputs, the ControlNet's outputs, and their shapes. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ControlNet, residualShapesFromUnet } from '../../../../electron/engine/model/controlnet.js';
import { openModelFolder, type LoadedModel } from '../../../../electron/engine/model/model-folder.js';
import { Engine } from '../../../../electron/engine/engine.js';
import { InvalidRequestError, ModelFolderError } from '../../../../electron/shared/errors.js';
import { FIXTURES, MODELS, modelDir } from '../../../support/engine-fixtures.js';

const settings = { providers: ['cpu'] as const, threads: 1 };
const CONTROL_DIR = join(MODELS, 'tiny-controlnet');
/** diffusers UNet2DConditionModel, block_out_channels (8, 16), layers_per_block 1, at an 8×8 latent. */
const TINY_RESIDUAL_SHAPES = [
  [8, 8, 8],
  [8, 8, 8],
  [8, 4, 4],
  [16, 4, 4],
  [16, 4, 4],
];

function inputs(size: number, hidden = 32) {
  return {
    sample: { data: new Float32Array(2 * 4 * size * size).map((_, i) => Math.sin(i)), dims: [2, 4, size, size] },
    states: { data: new Float32Array(2 * 77 * hidden).map((_, i) => Math.cos(i)), dims: [2, 77, hidden] },
    image: { data: new Float32Array(3 * 64 * 64).map((_, i) => (i % 7) / 7), width: size * 8, height: size * 8 },
  };
}

describe('a ControlNet-ready folder', () => {
  let model: LoadedModel;
  before(async () => {
    model = await openModelFolder(CONTROL_DIR, settings);
  });
  after(() => model.release());

  test('the U-Net residual inputs are found in block order, and the folder ControlNet with its scale input', () => {
    assert.deepEqual(model.info.control, {
      downInputs: ['down_block_0', 'down_block_1', 'down_block_2', 'down_block_3'],
      midInput: 'mid_block_additional_residual',
      folderControlNet: true,
      folderControlNetScaleInput: true,
    });
    assert.equal(model.info.kind, 'txt2img');
    assert.equal(model.info.exporter, 'optimum');
    assert.equal(model.sessions.providers['controlnet'], 'cpu');
    // ModelInfo stays plain data (it crosses IPC and is stored by the model library).
    assert.deepEqual(JSON.parse(JSON.stringify(model.info)), model.info);
  });

  test('naming the folder itself (or its controlnet/) reuses the folder ControlNet session', async () => {
    assert.equal(await model.controlNetFor(CONTROL_DIR), model.modules.controlNet);
    assert.equal(await model.controlNetFor(join(CONTROL_DIR, 'controlnet')), model.modules.controlNet);
    assert.equal(await model.controlNetFor(undefined), model.modules.controlNet);
  });

  test('plain U-Nets have no control', async () => {
    const plain = await openModelFolder(modelDir('tiny-sd1'), settings);
    try {
      assert.equal(plain.info.control, null);
      assert.equal(plain.modules.controlNet, null);
    } finally {
      await plain.release();
    }
  });

  test('the ControlNet outputs N down residuals then the mid one, the shapes the U-Net config implies', async () => {
    const cn = model.modules.controlNet!;
    assert.deepEqual(cn.outputOrder, ['down_block_0', 'down_block_1', 'down_block_2', 'down_block_3', 'mid_block_res_sample']);
    const { sample, states, image } = inputs(8);
    const out = await cn.run(sample, 500, states, image, 1);
    assert.deepEqual(
      out.map((t) => t.dims),
      TINY_RESIDUAL_SHAPES.map((s) => [2, ...s]),
    );
    const fromConfig = residualShapesFromUnet(model.modules.unet, model.info.control!, join(CONTROL_DIR, 'unet'), { height: 8, width: 8 });
    assert.deepEqual(fromConfig, TINY_RESIDUAL_SHAPES);
    // And at another latent size (16×8) the residuals follow.
    const wide = inputs(8);
    const outWide = await cn.run(
      { data: new Float32Array(2 * 4 * 8 * 16), dims: [2, 4, 8, 16] },
      500,
      wide.states,
      { data: new Float32Array(3 * 64 * 128), width: 128, height: 64 },
      1,
    );
    assert.deepEqual(
      outWide.map((t) => t.dims.slice(1)),
      residualShapesFromUnet(model.modules.unet, model.info.control!, join(CONTROL_DIR, 'unet'), { height: 8, width: 16 }),
    );
  });

  test('the export without conditioning_scale is scaled on the host to the same residuals', async () => {
    const noScale = await ControlNet.open(
      join(CONTROL_DIR, 'controlnet-noscale', 'model.onnx'),
      'controlnet-noscale/model.onnx',
      settings,
      model.info.control!,
    );
    try {
      assert.equal(noScale.scalesInGraph, false);
      assert.deepEqual(noScale.outputOrder, [
        'down_block_res_samples_0',
        'down_block_res_samples_1',
        'down_block_res_samples_2',
        'down_block_res_samples_3',
        'mid_block_res_sample',
      ]);
      const { sample, states, image } = inputs(8);
      const a = await model.modules.controlNet!.run(sample, 321, states, image, 0.7);
      const b = await noScale.run(sample, 321, states, image, 0.7);
      let worst = 0;
      let magnitude = 0;
      a.forEach((t, i) => {
        const x = t.data as Float32Array;
        const y = b[i]!.data as Float32Array;
        for (let k = 0; k < x.length; k++) {
          worst = Math.max(worst, Math.abs(x[k]! - y[k]!));
          magnitude = Math.max(magnitude, Math.abs(x[k]!));
        }
      });
      assert.ok(magnitude > 0.01, `residuals are ~0 (${magnitude}); the test would prove nothing`);
      assert.ok(worst <= 1e-6 * Math.max(1, magnitude), `in-graph vs host scaling differ by ${worst}`);
      // Scale 0 gives exact zeros either way.
      for (const t of await noScale.run(sample, 321, states, image, 0)) assert.ok((t.data as Float32Array).every((v) => v === 0));
    } finally {
      await noScale.release();
    }
  });
});

test('a ControlNet that does not fit is refused with an error naming its file', async () => {
  const file = join(CONTROL_DIR, 'controlnet', 'model.onnx');
  await assert.rejects(
    ControlNet.open(file, 'controlnet/model.onnx', settings, { downInputs: ['down_block_0', 'down_block_1'], midInput: 'mid_block_additional_residual' }),
    (err) => err instanceof ModelFolderError && /controlnet\/model\.onnx/.test(err.message) && /gives 4 down-block residuals but the U-Net takes 2/.test(err.message),
  );
  await assert.rejects(
    ControlNet.open(join(CONTROL_DIR, 'vae_decoder', 'model.onnx'), 'vae_decoder/model.onnx', settings, { downInputs: ['d'], midInput: 'm' }),
    (err) => err instanceof ModelFolderError && /vae_decoder\/model\.onnx/.test(err.message) && /expected an input named "sample"/.test(err.message),
  );
});

describe('a control-ready folder without its own ControlNet', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'studio-controlnet-'));
    cpSync(CONTROL_DIR, dir, { recursive: true, filter: (src) => !basename(src).startsWith('controlnet') });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('is detected as control-ready with no folder ControlNet; zero residuals come from unet/config.json', async () => {
    const model = await openModelFolder(dir, settings);
    try {
      assert.equal(model.info.control?.folderControlNet, false);
      assert.equal(model.info.control?.folderControlNetScaleInput, null);
      const zeros = await model.zeroResiduals({ height: 8, width: 8 }, 2);
      assert.deepEqual(
        zeros.map((t) => t.dims),
        TINY_RESIDUAL_SHAPES.map((s) => [2, ...s]),
      );
      // No ControlNet anywhere and none named: a user error that says what is missing.
      await assert.rejects(model.controlNetFor(undefined), (err) => err instanceof InvalidRequestError && /control\.model/.test(err.message));
      await assert.rejects(model.controlNetFor(join(dir, 'tokenizer')), (err) => err instanceof InvalidRequestError && /no controlnet\/model\.onnx or model\.onnx/.test(err.message));
      // A ControlNet from another folder: the folder holding controlnet/, or the export folder itself.
      const a = await model.controlNetFor(CONTROL_DIR);
      const b = await model.controlNetFor(join(CONTROL_DIR, 'controlnet-noscale'));
      assert.equal(a.scalesInGraph, true);
      assert.equal(b.scalesInGraph, false);
      assert.equal(await model.controlNetFor(CONTROL_DIR), a, 'the session is cached');
    } finally {
      await model.release();
    }
  });
});

describe('a control-ready folder with neither a ControlNet nor unet/config.json', () => {
  let dir: string;
  const engine = new Engine({ providers: ['cpu'] });
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'studio-controlnet-bare-'));
    cpSync(CONTROL_DIR, dir, { recursive: true, filter: (src) => !basename(src).startsWith('controlnet') && !src.endsWith(join('unet', 'config.json')) });
  });
  after(async () => {
    await engine.unloadAll();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a run without control says the model needs a ControlNet; naming one works', async () => {
    const request = { mode: 'txt2img', prompt: 'a red apple', seed: 3, steps: 2, width: 64, height: 64 } as const;
    await assert.rejects(
      engine.generate(dir, request),
      (err) => err instanceof InvalidRequestError && /this model needs a ControlNet/.test(err.message),
    );
    const image = readFileSync(join(FIXTURES, 'parity', 'controlnet-seg-map.png'));
    const r = await engine.generate(dir, { ...request, control: { image, scale: 1, model: CONTROL_DIR } });
    assert.equal(r.image.width, 64);
  });
});
