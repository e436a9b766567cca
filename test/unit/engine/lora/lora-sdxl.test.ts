/**
 * Run-time LoRA on SDXL folders: `lora_te1_` modules go to CLIP-L (`text_encoder`), `lora_te2_` to
 * OpenCLIP bigG (`text_encoder_2`). A refiner has encoder 2 only, so its te2 modules patch that encoder and
 * its te1 modules are reported unmatched (never applied to bigG, whose module paths are the same).
 * The LoRAs are written here with the tiny fixtures' shapes (CLIP-L 32 wide, bigG 48 wide).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import type { GenerateRequest } from '../../../../electron/engine/pipelines/types.js';
import { encodePng } from '../../../../electron/history/png.js';
import { MODELS, PARITY } from '../../../support/engine-fixtures.js';
import { safetensorsBytes, type TestTensor } from '../../../support/safetensors.js';

const Q_PROJ = 'text_model_encoder_layers_0_self_attn_q_proj';

/** A rank-2 kohya module for a width×width linear, with a fixed pseudo-random pattern. */
function module(prefix: string, width: number, seed: number): Record<string, TestTensor> {
  const values = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 0.37 + k) * 0.5);
  return {
    [`${prefix}_${Q_PROJ}.lora_down.weight`]: { dtype: 'F32', shape: [2, width], values: values(2 * width, 1) },
    [`${prefix}_${Q_PROJ}.lora_up.weight`]: { dtype: 'F32', shape: [width, 2], values: values(2 * width, 2) },
    [`${prefix}_${Q_PROJ}.alpha`]: { dtype: 'F32', shape: [], values: [2] },
  };
}

describe('LoRA on SDXL text encoders', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const tmp = mkdtempSync(join(tmpdir(), 'lora-sdxl-'));
  const refiner = join(MODELS, 'tiny-sdxl-refiner');
  const base = join(MODELS, 'tiny-sdxl');
  const refine: GenerateRequest = {
    mode: 'img2img',
    prompt: 'a red apple',
    negativePrompt: 'blurry',
    initImage: readFileSync(join(PARITY, 'sdxl-init.png')),
    strength: 0.6,
    seed: 3,
    steps: 4,
    width: 64,
    height: 64,
  };
  const png = async (dir: string, req: GenerateRequest, tags = ''): Promise<{ png: Buffer; loras: Awaited<ReturnType<Engine['generate']>>['loras'] }> => {
    const r = await engine.generate(dir, { ...req, prompt: `${req.prompt}${tags}`, loraDirs: [tmp] });
    return { png: Buffer.from(await encodePng(r.image)), loras: r.loras };
  };
  before(() => {
    // te1 is CLIP-L's width (32); te2 is bigG's (48).
    writeFileSync(join(tmp, 'both.safetensors'), safetensorsBytes({ ...module('lora_te1', 32, 1), ...module('lora_te2', 48, 2) }, { ss_base_model_version: 'sdxl_base_v1-0' }));
    writeFileSync(join(tmp, 'te2.safetensors'), safetensorsBytes(module('lora_te2', 48, 2), { ss_base_model_version: 'sdxl_base_v1-0' }));
    writeFileSync(join(tmp, 'te1.safetensors'), safetensorsBytes(module('lora_te1', 32, 1), { ss_base_model_version: 'sdxl_base_v1-0' }));
  });
  after(async () => {
    await engine.unloadAll();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('on a refiner, te2 modules patch its one encoder (bigG) and te1 modules are reported unmatched', async () => {
    const plain = await png(refiner, refine);
    const both = await png(refiner, refine, ' <lora:both:1>');
    assert.deepEqual(
      both.loras.map((l) => [l.name, l.matched, l.unmatched, l.unmatchedExamples]),
      [['both', 1, 1, [`lora_te1_${Q_PROJ}`]]],
    );
    assert.ok(!both.png.equals(plain.png), 'the te2 module changed nothing');
    // The te1 module did nothing: the same picture as the te2 module alone.
    const te2 = await png(refiner, refine, ' <lora:te2:1>');
    assert.deepEqual(te2.loras.map((l) => [l.matched, l.unmatched]), [[1, 0]]);
    assert.ok(both.png.equals(te2.png), 'te1 keys changed the refiner');
    // A file with te1 modules only has nothing for a refiner: a clear error, and the model still works.
    await assert.rejects(
      engine.generate(refiner, { ...refine, prompt: `${refine.prompt} <lora:te1:1>`, loraDirs: [tmp] }),
      /te1\.safetensors: none of its 1 modules is in .*lora_te1_text_model_encoder_layers_0_self_attn_q_proj/,
    );
    assert.ok((await png(refiner, refine)).png.equals(plain.png));
  });

  test('on a base folder, te1 goes to CLIP-L and te2 to bigG', async () => {
    const req: GenerateRequest = { mode: 'txt2img', prompt: 'a red apple', negativePrompt: 'blurry', seed: 3, steps: 3, width: 64, height: 64 };
    const plain = await png(base, req);
    const both = await png(base, req, ' <lora:both:1>');
    assert.deepEqual(both.loras.map((l) => [l.matched, l.unmatched]), [[2, 0]]);
    const te1 = await png(base, req, ' <lora:te1:1>');
    const te2 = await png(base, req, ' <lora:te2:1>');
    assert.deepEqual([te1.loras[0]!.matched, te2.loras[0]!.matched], [1, 1]);
    for (const p of [both, te1, te2]) assert.ok(!p.png.equals(plain.png));
    assert.ok(!te1.png.equals(te2.png) && !both.png.equals(te1.png) && !both.png.equals(te2.png));
  });
});
