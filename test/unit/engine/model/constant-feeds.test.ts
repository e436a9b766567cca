/**
 * `constant` feeds: a job's prompt states (and SDXL's added conditioning) are the same arrays every step,
 * so their float32 → float16 conversion for an fp16 graph is made once; the outputs are the same as with
 * a conversion per run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OnnxModule, type HostTensor } from '../../../../electron/engine/model/onnx-module.js';
import { SeededRng } from '../../../../electron/engine/tensor/rng.js';
import { MODELS } from '../../../support/engine-fixtures.js';

test('an fp16 U-Net converts constant states once and answers exactly as with per-run conversion', async () => {
  const unet = await OnnxModule.open(join(MODELS, 'tiny-sd1-fp16', 'unet', 'model.onnx'), 'unet/model.onnx', { providers: ['cpu'], threads: 1 });
  try {
    assert.equal(unet.requireInput('encoder_hidden_states').type, 'float16');
    const rng = new SeededRng(3);
    const states = rng.randn(2 * 77 * 32);
    const feeds = (t: number, constant: boolean): Record<string, HostTensor> => ({
      sample: { data: rng.randn(2 * 4 * 8 * 8), dims: [2, 4, 8, 8] },
      timestep: { data: Float32Array.of(t, t), dims: [2] },
      encoder_hidden_states: { data: states, dims: [2, 77, 32], ...(constant ? { constant: true as const } : {}) },
    });
    for (const t of [900, 500, 100]) {
      const a = feeds(t, false);
      const b: Record<string, HostTensor> = { ...a, encoder_hidden_states: { ...a['encoder_hidden_states']!, constant: true } };
      const [plain, once] = [await unet.run(a, ['out_sample']), await unet.run(b, ['out_sample'])];
      assert.deepEqual(once['out_sample']!.data, plain['out_sample']!.data, `step at t=${t}`);
    }
    // The converted tensor is kept with the array: the same one every run, and a new one for new dims.
    const probe = (unet as unknown as { constants: WeakMap<object, { dims: string; tensor: { type: string } }> }).constants;
    const entry = probe.get(states)!;
    assert.equal(entry.tensor.type, 'float16');
    await unet.run(feeds(500, true), ['out_sample']);
    assert.equal(probe.get(states)!.tensor, entry.tensor, 'converted once, reused');
  } finally {
    await unet.release();
  }
});
