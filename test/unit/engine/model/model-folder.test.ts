/** Detection from session metadata plus config.json, and clear errors for broken folders. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import type { ModelInfo } from '../../../../electron/shared/model.js';
import { modelDir, type FixtureModel } from '../../../support/engine-fixtures.js';

const settings = { providers: ['cpu'] as const, threads: 1 };

type Expectation = Partial<Omit<ModelInfo, 'unet'>> & { unet: Partial<ModelInfo['unet']>; encoderOutput: string };
const expected: Record<FixtureModel, Expectation> = {
  'tiny-sd1': {
    exporter: 'diffusers', kind: 'txt2img', unetInChannels: 4, latentChannels: 4, vaeScaleFactor: 8, vaeScalingFactor: 0.18215,
    textHiddenSize: 32, padToken: '<|endoftext|>', padId: 1013, predictionType: 'epsilon', precision: 'fp32',
    unet: { timestepType: 'float32', timestepRank: 1, batchDynamic: true, timestepCondDim: null, externalData: 'weights.pb' },
    encoderOutput: 'latent_sample',
  },
  'tiny-sd1-inpaint': {
    exporter: 'diffusers', kind: 'inpaint', unetInChannels: 9, latentChannels: 4, textHiddenSize: 32,
    unet: { timestepType: 'float32', timestepRank: 1, externalData: 'weights.pb' }, encoderOutput: 'latent_sample',
  },
  'tiny-sd1-fp16': {
    kind: 'txt2img', unetInChannels: 4, precision: 'mixed',
    unet: { sampleType: 'float16', timestepType: 'float16', timestepRank: 1 }, encoderOutput: 'latent_sample',
  },
  'tiny-optimum': {
    exporter: 'optimum', kind: 'txt2img', unetInChannels: 4, vaeScalingFactor: 0.13025, textHiddenSize: 32,
    unet: { timestepType: 'float32', timestepRank: 0, externalData: 'model.onnx_data' }, encoderOutput: 'latent_parameters',
  },
  'tiny-sd2-v': {
    exporter: 'optimum', kind: 'txt2img', textHiddenSize: 48, padToken: '!', padId: 0, predictionType: 'v_prediction',
    unet: { timestepType: 'int64', timestepRank: 1, externalData: 'model.onnx_data' }, encoderOutput: 'latent_sample',
  },
  'tiny-lcm': {
    exporter: 'optimum', kind: 'txt2img', family: 'lcm', unet: { timestepCondDim: 24, timestepRank: 0 }, encoderOutput: 'latent_parameters',
  },
  // SDXL: the concatenated width of both encoders' penultimate hidden states (32 + 48 here, 768 + 1280 real).
  'tiny-sdxl': {
    exporter: 'optimum', kind: 'txt2img', family: 'sdxl', textHiddenSize: 80, vaeScalingFactor: 0.13025, vaeForceUpcast: true,
    supports: ['txt2img', 'img2img', 'inpaint'],
    sdxl: {
      variant: 'base', pooledSize: 40, timeIds: 6, forceZerosForEmptyPrompt: true,
      encoders: [
        { submodel: 'text_encoder', tokenizer: 'tokenizer', inputIdsType: 'int64', batchDynamic: true, hiddenOutput: 'hidden_states.1', hiddenSize: 32, pooledOutput: null },
        { submodel: 'text_encoder_2', tokenizer: 'tokenizer_2', inputIdsType: 'int64', batchDynamic: true, hiddenOutput: 'hidden_states.2', hiddenSize: 48, pooledOutput: 'text_embeds' },
      ],
    },
    defaults: { steps: 25, cfg: 5, sampler: 'euler', width: 64, height: 64 },
    unet: { timestepType: 'float32', timestepRank: 0, externalData: 'model.onnx_data' }, encoderOutput: 'latent_parameters',
  },
  'tiny-sdxl-inpaint': {
    kind: 'inpaint', family: 'sdxl', unetInChannels: 9, textHiddenSize: 80, unet: {}, encoderOutput: 'latent_parameters',
  },
  'tiny-sdxl-turbo': {
    kind: 'txt2img', family: 'sdxl', scheduler: { className: 'EulerAncestralDiscreteScheduler', defaultSampler: 'euler_a' },
    defaults: { steps: 1, cfg: 0, sampler: 'euler_a', width: 64, height: 64 },
    unet: {}, encoderOutput: 'latent_parameters',
  },
};

describe('detects what each fixture is', () => {
  for (const [name, want] of Object.entries(expected) as Array<[FixtureModel, Expectation]>) {
    test(name, async () => {
      const model = await openModelFolder(modelDir(name), settings);
      try {
        const { unet, encoderOutput, ...top } = want;
        for (const [k, v] of Object.entries(top)) assert.deepEqual(model.info[k as keyof ModelInfo], v, `${name}.${k}`);
        for (const [k, v] of Object.entries(unet)) assert.deepEqual(model.info.unet[k as keyof ModelInfo['unet']], v, `${name}.unet.${k}`);
        assert.equal(model.info.vaeEncoder?.output, encoderOutput);
        // Every encoder is seedable: latent_parameters by construction, latent_sample through the graph patch.
        assert.equal(model.info.vaeEncoder?.posteriorNoise, 'seeded');
        assert.deepEqual(new Set(Object.values(model.sessions.providers)), new Set(['cpu']));
        assert.equal(Object.keys(model.sessions.providers).length, name.startsWith('tiny-sdxl') ? 5 : 4);
      } finally {
        await model.release();
      }
    });
  }
});

describe('broken model folders give errors that name the file and the problem', () => {
  let root: string;
  const copy = (name: string): string => {
    const dir = join(root, `${name}-${Math.random().toString(36).slice(2)}`);
    cpSync(modelDir('tiny-sd1'), dir, { recursive: true });
    return dir;
  };
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'studio-broken-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ['a folder that does not exist', () => undefined, /model folder not found/],
    ['a missing submodel', (d) => rmSync(join(d, 'unet'), { recursive: true }), /unet\/model\.onnx.*missing unet\/model\.onnx/],
    ['a missing model_index.json', (d) => rmSync(join(d, 'model_index.json')), /model_index\.json/],
    ['a missing external weights file', (d) => rmSync(join(d, 'unet', 'weights.pb')), /unet\/model\.onnx: onnxruntime could not load it/],
    ['a non-ONNX file', (d) => writeFileSync(join(d, 'text_encoder', 'model.onnx'), 'this is not a model'), /text_encoder\/model\.onnx: not an ONNX model/],
    ['a truncated ONNX file', (d) => {
      const f = join(d, 'vae_decoder', 'model.onnx');
      writeFileSync(f, readFileSync(f).subarray(0, 200));
    }, /vae_decoder\/model\.onnx: onnxruntime could not load it/],
    ['an unknown scheduler', (d) => {
      const f = join(d, 'scheduler', 'scheduler_config.json');
      writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), _class_name: 'MysteryScheduler' }));
    }, /scheduler_config\.json: unknown scheduler class "MysteryScheduler"/],
    ['a bad scheduler value', (d) => {
      const f = join(d, 'scheduler', 'scheduler_config.json');
      writeFileSync(f, JSON.stringify({ ...JSON.parse(readFileSync(f, 'utf8')), beta_schedule: 'wiggly' }));
    }, /scheduler_config\.json: .*beta_schedule/],
    ['a scheduler config that is not JSON', (d) => writeFileSync(join(d, 'scheduler', 'scheduler_config.json'), '{nope'), /scheduler_config\.json: not valid JSON/],
    ['a corrupt vocab.json', (d) => writeFileSync(join(d, 'tokenizer', 'vocab.json'), '[1,2'), /vocab\.json/],
    ['wrong shapes: a text encoder of another width', (d) => {
      rmSync(join(d, 'text_encoder'), { recursive: true });
      cpSync(join(modelDir('tiny-sd2-v'), 'text_encoder'), join(d, 'text_encoder'), { recursive: true });
    }, /wrong shapes: the U-Net expects encoder_hidden_states of width 32 but the text encoder gives 48/],
    ['wrong shapes: a U-Net with the wrong channel count', (d) => {
      writeFileSync(join(d, 'unet', 'config.json'), JSON.stringify({ in_channels: 7 }));
    }, /wrong shapes: the U-Net takes 7 input channels/],
  ];
  for (const [what, breakIt, message] of cases) {
    test(what, async () => {
      const dir = what.startsWith('a folder that does not') ? join(root, 'nothing-here') : copy('m');
      breakIt(dir);
      await assert.rejects(openModelFolder(dir, settings), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_MODEL_FOLDER', `${err.name}: ${err.message}`);
        assert.match(err.message, message);
        return true;
      });
    });
  }
});
