/**
 * SDXL detection: base, inpainting, Turbo, Lightning-style and refiner folders, and precise errors for
 * the folders that are none of these (each naming the file).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import { OnnxModule } from '../../../../electron/engine/model/onnx-module.js';
import { detectSdxlTextEncoder, sdxlVariant } from '../../../../electron/engine/model/sdxl.js';
import { ClipTokenizer } from '../../../../electron/engine/tokenizer/clip-tokenizer.js';
import { ModelFolderError } from '../../../../electron/shared/errors.js';
import { Engine } from '../../../../electron/engine/engine.js';
import { MODELS, maxAbsDiff } from '../../../support/engine-fixtures.js';

const settings = { providers: ['cpu'] as const, threads: 1 };
const SDXL = join(MODELS, 'tiny-sdxl');

describe('SDXL folders are detected with their variant', () => {
  let root: string;
  before(() => (root = mkdtempSync(join(tmpdir(), 'studio-sdxl-'))));
  after(() => rmSync(root, { recursive: true, force: true }));

  test('the refiner: encoder 2 only, 5 time ids (aesthetic score), no zeroed negative, img2img and inpaint only', async () => {
    const model = await openModelFolder(join(MODELS, 'tiny-sdxl-refiner'), settings);
    try {
      assert.equal(model.info.family, 'sdxl-refiner');
      assert.deepEqual(model.info.supports, ['img2img', 'inpaint']);
      assert.equal(model.info.textHiddenSize, 48);
      assert.deepEqual(
        { variant: model.info.sdxl?.variant, timeIds: model.info.sdxl?.timeIds, zeros: model.info.sdxl?.forceZerosForEmptyPrompt },
        { variant: 'refiner', timeIds: 5, zeros: false },
      );
      assert.deepEqual(model.info.sdxl?.encoders.map((e) => e.submodel), ['text_encoder_2']);
      assert.deepEqual(Object.keys(model.sessions.providers).sort(), ['text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder']);
    } finally {
      await model.release();
    }
  });

  test('Turbo and Lightning are told by the scheduler config (trailing spacing), with few-step defaults', async () => {
    const dir = join(root, 'lightning');
    cpSync(SDXL, dir, { recursive: true });
    const file = join(dir, 'scheduler', 'scheduler_config.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), timestep_spacing: 'trailing' }));
    const model = await openModelFolder(dir, settings);
    try {
      assert.equal(model.info.sdxl?.variant, 'lightning');
      assert.deepEqual(model.info.defaults, { steps: 4, cfg: 0, sampler: 'euler', width: 64, height: 64 });
    } finally {
      await model.release();
    }
    assert.equal(sdxlVariant({ _class_name: 'EulerAncestralDiscreteScheduler', timestep_spacing: 'trailing' }, false), 'turbo');
    assert.equal(sdxlVariant({ _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'leading' }, false), 'base');
    assert.equal(sdxlVariant({ _class_name: 'EulerDiscreteScheduler', timestep_spacing: 'trailing' }, true), 'refiner');
  });

  test("each encoder's penultimate hidden state is hidden_states.{L−1}; an encoder without hidden states is refused", async () => {
    const tokenizer = await ClipTokenizer.fromFolder(join(SDXL, 'tokenizer'));
    const te = await OnnxModule.open(join(SDXL, 'text_encoder', 'model.onnx'), 'text_encoder/model.onnx', settings);
    const sd = await OnnxModule.open(join(MODELS, 'tiny-optimum', 'text_encoder', 'model.onnx'), 'text_encoder/model.onnx', settings);
    try {
      const info = await detectSdxlTextEncoder(te, tokenizer, null, { submodel: 'text_encoder', tokenizer: 'tokenizer' });
      assert.equal(info.hiddenOutput, 'hidden_states.1');
      assert.equal(info.hiddenSize, 32);
      await assert.rejects(
        detectSdxlTextEncoder(sd, tokenizer, null, { submodel: 'text_encoder', tokenizer: 'tokenizer' }),
        /text_encoder\/model\.onnx: SDXL conditions on the penultimate hidden state, but this encoder has no hidden_states\.N outputs/,
      );
    } finally {
      await Promise.all([te.release(), sd.release()]);
    }
  });
});

describe('folders that are not a working SDXL model give errors naming the file', () => {
  let root: string;
  before(() => (root = mkdtempSync(join(tmpdir(), 'studio-sdxl-bad-'))));
  after(() => rmSync(root, { recursive: true, force: true }));
  const copy = (from = SDXL): string => {
    const dir = join(root, Math.random().toString(36).slice(2));
    cpSync(from, dir, { recursive: true });
    return dir;
  };

  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ['an SDXL folder missing text_encoder_2', (d) => rmSync(join(d, 'text_encoder_2'), { recursive: true }), /^text_encoder_2\/model\.onnx: not a complete SDXL ONNX folder: missing text_encoder_2\/model\.onnx/],
    ['an SDXL folder missing tokenizer_2', (d) => rmSync(join(d, 'tokenizer_2'), { recursive: true }), /tokenizer_2\/vocab\.json: not a complete SDXL ONNX folder/],
    ['an SDXL folder whose U-Net has no time_ids (an SD U-Net)', (d) => {
      rmSync(join(d, 'unet'), { recursive: true });
      cpSync(join(MODELS, 'tiny-optimum', 'unet'), join(d, 'unet'), { recursive: true });
    }, /unet\/model\.onnx: this is an SDXL folder \(text_encoder_2\), but the U-Net has no text_embeds and time_ids input/],
    ['an SDXL U-Net in a folder without text_encoder_2 that does not say SDXL', (d) => {
      rmSync(join(d, 'text_encoder_2'), { recursive: true });
      writeFileSync(join(d, 'model_index.json'), JSON.stringify({ _class_name: 'StableDiffusionPipeline' }));
    }, /text_encoder_2\/model\.onnx: the U-Net takes SDXL's text_embeds and time_ids, but the folder has no text_encoder_2/],
  ];
  for (const [what, breakIt, message] of cases) {
    test(what, async () => {
      const dir = copy();
      breakIt(dir);
      await assert.rejects(openModelFolder(dir, settings), (err: Error) => {
        assert.ok(err instanceof ModelFolderError, `${err.name}: ${err.message}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe("an fp16 VAE decoder with force_upcast runs in fp32, and says why", () => {
  let root: string;
  before(() => (root = mkdtempSync(join(tmpdir(), 'studio-sdxl-fp16-'))));
  after(() => rmSync(root, { recursive: true, force: true }));
  const request = { mode: 'txt2img', prompt: 'a red apple', seed: 7, steps: 3, width: 64, height: 64 } as const;

  test('same picture as the fp32 decoder within fp16 weight rounding; force_upcast false keeps fp16', async () => {
    const dir = join(root, 'fp16-vae');
    cpSync(SDXL, dir, { recursive: true });
    rmSync(join(dir, 'vae_decoder'), { recursive: true });
    cpSync(join(MODELS, 'tiny-sdxl-fp16-vae', 'vae_decoder'), join(dir, 'vae_decoder'), { recursive: true });
    const engine = new Engine({ providers: ['cpu'] });
    try {
      const upcast = await engine.loadModel(dir);
      assert.equal(upcast.info.vaeDecoder.inputType, 'float32', 'the session was made from the fp32 rewrite');
      assert.match(upcast.info.warnings.join('\n'), /vae_decoder: runs in fp32 \(upcast from its fp16 weights\) because its config\.json sets force_upcast/);
      const [a, b] = [await engine.generate(dir, request), await engine.generate(SDXL, request)];
      assert.ok(maxAbsDiff(a.image, b.image) <= 2, `fp32 rewrite vs fp32 export: ${maxAbsDiff(a.image, b.image)}/255`);
      await engine.unloadAll();

      const config = join(dir, 'vae_decoder', 'config.json');
      writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), force_upcast: false }));
      const fp16 = await engine.loadModel(dir);
      assert.equal(fp16.info.vaeDecoder.inputType, 'float16');
      assert.doesNotMatch(fp16.info.warnings.join('\n'), /upcast/);
    } finally {
      await engine.unloadAll();
    }
  });
});
