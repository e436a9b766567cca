/**
 * The size picker's presets: SDXL folders get SDXL's aspect buckets at their native side, the native square
 * first (the default), in the U-Net's size multiple; SD 1.x keeps its square/4:3/16:9 ladder. Model info
 * from the engine's detection of the real fixtures; the real SDXL base is that info at its own native
 * size (U-Net sample_size 128 × VAE factor 8) and size multiple (8 × 2² for three U-Net levels).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import type { ModelInfo } from '../../../../electron/shared/model.js';
import { SDXL_SIZE_BUCKETS, sizePresets } from '../../../../renderer/src/session/size-presets.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'models');

async function infoOf(name: string): Promise<ModelInfo> {
  const model = await openModelFolder(join(FIXTURES, name), { providers: ['cpu'], threads: 1 });
  await model.release();
  return model.info;
}

const sizes = (info: ModelInfo): string[] => sizePresets(info).map((p) => `${p.width}x${p.height}`);

describe('size presets', () => {
  let sdxl: ModelInfo;
  let refiner: ModelInfo;
  let sd1: ModelInfo;
  before(async () => {
    [sdxl, refiner, sd1] = await Promise.all([infoOf('tiny-sdxl'), infoOf('tiny-sdxl-refiner'), infoOf('tiny-sd1')]);
  });

  it("a real SDXL base (1024², multiple 32) is offered exactly SDXL's buckets, 1024² first", () => {
    const real = { ...sdxl, nativeResolution: { width: 1024, height: 1024 }, sizeMultiple: 32, defaults: { ...sdxl.defaults, width: 1024, height: 1024 } };
    assert.deepEqual(sizes(real), ['1024x1024', '1152x896', '896x1152', '1216x832', '832x1216', '1344x768', '768x1344', '1536x640', '640x1536']);
    assert.deepEqual(SDXL_SIZE_BUCKETS.map(([w, h]) => `${w}x${h}`), sizes(real));
    assert.deepEqual(sizePresets(real).slice(0, 3).map((p) => p.label), ['1024 × 1024', '1152 × 896 (1.29:1)', '896 × 1152 (1:1.29)']);
    // The default the panel picks: the model's defaults (its native square) are the first preset.
    assert.deepEqual([real.defaults.width, real.defaults.height], [1024, 1024]);
  });

  it('the tiny SDXL folders get the buckets scaled to their native 64 px, in their size multiple, native first', () => {
    for (const info of [sdxl, refiner]) {
      assert.deepEqual([info.nativeResolution.width, info.defaults.width, info.defaults.height, info.sizeMultiple], [64, 64, 64, 16]);
      assert.deepEqual(sizes(info), ['64x64', '80x64', '64x80', '80x48', '48x80', '96x48', '48x96']);
      for (const p of sizePresets(info)) assert.ok(p.width % info.sizeMultiple === 0 && p.height % info.sizeMultiple === 0);
    }
  });

  it('SD 1.x keeps its own ladder', () => {
    assert.equal(sd1.family === 'sdxl', false);
    assert.ok(sizes(sd1).includes('512x512') && sizes(sd1).includes('704x384') && !sizes(sd1).includes('1216x832'));
  });
});
