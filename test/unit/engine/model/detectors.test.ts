/**
 * Each module's detector on its own (text encoder, U-Net, VAE, ControlNet): one session from a fixture
 * folder, and what the detector says about it. openModelFolder (model-folder.test.ts) puts them together.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFolderControl } from '../../../../electron/engine/model/controlnet.js';
import { readJson } from '../../../../electron/engine/model/folder-config.js';
import { OnnxModule } from '../../../../electron/engine/model/onnx-module.js';
import { detectTextEncoder } from '../../../../electron/engine/model/text-encoder.js';
import { detectUnet, unetOutChannels, type UnetContext } from '../../../../electron/engine/model/unet.js';
import { detectVaeDecoder, detectVaeEncoder, openVaeEncoder } from '../../../../electron/engine/model/vae.js';
import { ClipTokenizer } from '../../../../electron/engine/tokenizer/clip-tokenizer.js';
import { ModelFolderError } from '../../../../electron/shared/errors.js';
import { MODELS, modelDir } from '../../../support/engine-fixtures.js';

const settings = { providers: ['cpu'] as const, threads: 1 };

/** Opens `sub/model.onnx` of a fixture folder, runs `fn` on it, releases it. */
async function withModule<T>(dir: string, sub: string, fn: (m: OnnxModule) => Promise<T>): Promise<T> {
  const m = await OnnxModule.open(join(dir, sub, 'model.onnx'), `${sub}/model.onnx`, settings);
  try {
    return await fn(m);
  } finally {
    await m.release();
  }
}

describe('text encoder', () => {
  test('a diffusers-script export: int32 ids, dynamic batch, width from a probe run (no config.json)', async () => {
    const dir = modelDir('tiny-sd1');
    const tokenizer = await ClipTokenizer.fromFolder(join(dir, 'tokenizer'));
    const got = await withModule(dir, 'text_encoder', (m) => detectTextEncoder(m, tokenizer, null));
    assert.deepEqual(got, {
      info: { inputIdsType: 'int32', batchDynamic: true },
      outputName: 'last_hidden_state',
      outputType: 'float32',
      hiddenSize: 32,
      maxTokens: 77,
    });
  });

  test('an optimum export: int64 ids, width from config.json', async () => {
    const dir = modelDir('tiny-optimum');
    const tokenizer = await ClipTokenizer.fromFolder(join(dir, 'tokenizer'));
    const config = { ...readJson(dir, 'text_encoder/config.json', true), hidden_size: 99 };
    const got = await withModule(dir, 'text_encoder', (m) => detectTextEncoder(m, tokenizer, config));
    assert.equal(got.info.inputIdsType, 'int64');
    assert.equal(got.hiddenSize, 99, 'config.json is believed before a probe');
  });
});

describe('VAE', () => {
  test('a decoder without config.json: channels and factor from a probe, SD 1.x scaling', async () => {
    const got = await withModule(modelDir('tiny-sd1'), 'vae_decoder', (m) => detectVaeDecoder(m, null, undefined));
    assert.deepEqual(got, { info: { inputType: 'float32' }, outputName: 'sample', latentChannels: 4, vaeScaleFactor: 8, vaeScalingFactor: 0.18215 });
  });

  test('a decoder with config.json: scaling_factor, latent_channels and block count from it', async () => {
    const dir = modelDir('tiny-optimum');
    const got = await withModule(dir, 'vae_decoder', (m) => detectVaeDecoder(m, readJson(dir, 'vae_decoder/config.json', true), undefined));
    assert.equal(got.vaeScalingFactor, 0.13025);
    assert.equal(got.latentChannels, 4);
    assert.equal(got.vaeScaleFactor, 8);
  });

  test('an optimum encoder gives latent_parameters, seeded by the job', async () => {
    const warnings: string[] = [];
    const got = await withModule(modelDir('tiny-optimum'), 'vae_encoder', async (m) => detectVaeEncoder(m, warnings));
    assert.deepEqual(got, { output: 'latent_parameters', inputType: 'float32', posteriorNoise: 'seeded' });
    assert.deepEqual(warnings, []);
  });

  test('a diffusers-script encoder samples in its graph until openVaeEncoder patches it', async () => {
    const dir = modelDir('tiny-sd1');
    const warnings: string[] = [];
    const plain = await withModule(dir, 'vae_encoder', async (m) => detectVaeEncoder(m, warnings));
    assert.equal(plain.posteriorNoise, 'in-graph');
    assert.match(warnings[0]!, /inside the graph/);
    const patched = await openVaeEncoder(dir, settings, []);
    try {
      assert.equal(detectVaeEncoder(patched, []).posteriorNoise, 'seeded');
    } finally {
      await patched.release();
    }
  });
});

describe('U-Net', () => {
  const context = (dir: string, over: Partial<UnetContext> = {}): UnetContext => ({
    dir,
    config: readJson(dir, 'unet/config.json', false),
    latentChannels: 4,
    textHiddenSize: 32,
    control: null,
    addedConditioning: null,
    warnings: [],
    ...over,
  });

  test('symbolic channels are probed: 4 is text-to-image, 9 is inpainting', async () => {
    for (const [name, kind, channels] of [['tiny-sd1', 'txt2img', 4], ['tiny-sd1-inpaint', 'inpaint', 9]] as const) {
      const dir = modelDir(name);
      const got = await withModule(dir, 'unet', (m) => detectUnet(m, context(dir)));
      assert.equal(got.kind, kind, name);
      assert.equal(got.inChannels, channels, name);
      assert.deepEqual(got.info, { sampleType: 'float32', timestepType: 'float32', timestepRank: 1, batchDynamic: true, timestepCondDim: null, externalData: 'weights.pb', sequenceLength: null });
      assert.equal(got.levels, 4, 'no config.json: four levels assumed');
    }
  });

  test('an optimum U-Net: rank-0 timestep, LCM timestep_cond width from config.json', async () => {
    const dir = modelDir('tiny-lcm');
    const got = await withModule(dir, 'unet', (m) => detectUnet(m, context(dir)));
    assert.equal(got.info.timestepRank, 0);
    assert.equal(got.info.timestepCondDim, 24);
    assert.equal(got.info.externalData, 'model.onnx_data');
  });

  test('a layout U-Net reads its labels; a U-Net of the wrong text width or channels is refused', async () => {
    const layout = join(MODELS, 'tiny-sd1-layout');
    const got = await withModule(layout, 'unet', (m) => detectUnet(m, context(layout)));
    assert.equal(got.kind, 'layout');
    assert.ok(got.labels && got.labels.length > 1);
    const dir = modelDir('tiny-optimum');
    await withModule(dir, 'unet', async (m) => {
      await assert.rejects(detectUnet(m, context(dir, { textHiddenSize: 48 })), /unet\/model\.onnx: wrong shapes: the U-Net expects encoder_hidden_states of width 32 but the text encoder gives 48/);
      await assert.rejects(detectUnet(m, context(dir, { config: { in_channels: 7 } })), /wrong shapes: the U-Net takes 7 input channels/);
      assert.equal(unetOutChannels(m), 4, 'out_sample keeps its static channel axis');
    });
  });
});

describe('ControlNet', () => {
  let root: string;
  before(() => (root = mkdtempSync(join(tmpdir(), 'studio-detect-'))));
  after(() => rmSync(root, { recursive: true, force: true }));

  test("a control-ready U-Net gets the folder's ControlNet", async () => {
    const dir = join(MODELS, 'tiny-controlnet');
    const warnings: string[] = [];
    const got = await withModule(dir, 'unet', (m) => openFolderControl(dir, m, settings, warnings));
    try {
      assert.deepEqual([...got.control!.downInputs, got.control!.midInput].length, 5, 'four down-block residuals and the mid one');
      assert.equal(got.control?.folderControlNet, true);
      assert.equal(got.control?.folderControlNetScaleInput, true);
      assert.deepEqual(warnings, []);
    } finally {
      await got.controlNet?.module.release();
    }
  });

  test('a plain U-Net has no control, and a controlnet/ beside it is ignored with a warning', async () => {
    const dir = join(root, 'plain');
    cpSync(modelDir('tiny-sd1'), dir, { recursive: true });
    cpSync(join(MODELS, 'tiny-controlnet', 'controlnet'), join(dir, 'controlnet'), { recursive: true });
    const warnings: string[] = [];
    const got = await withModule(dir, 'unet', (m) => openFolderControl(dir, m, settings, warnings));
    assert.deepEqual(got, { control: null, controlNet: null });
    assert.match(warnings[0]!, /controlnet\/ is ignored/);
  });

  test('a ControlNet that does not fit the U-Net is refused naming its file', async () => {
    const dir = join(root, 'mismatch');
    cpSync(join(MODELS, 'tiny-controlnet'), dir, { recursive: true });
    rmSync(join(dir, 'controlnet'), { recursive: true });
    cpSync(join(MODELS, 'tiny-controlnet', 'vae_decoder'), join(dir, 'controlnet'), { recursive: true });
    await withModule(dir, 'unet', (m) =>
      assert.rejects(openFolderControl(dir, m, settings, []), (err) => err instanceof ModelFolderError && /controlnet\/model\.onnx/.test(err.message)),
    );
  });
});
