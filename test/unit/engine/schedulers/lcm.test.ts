import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../../electron/engine/schedulers/index.js';
import { SeededRng } from '../../../../electron/engine/tensor/rng.js';
import { goldenSuite } from './golden-suite.js';

goldenSuite(['lcm']);

/** An LCM folder config: the class defaults (scaled_linear 0.00085–0.012, original_inference_steps 50). */
const LCM_CONFIG = { _class_name: 'LCMScheduler' };

test('skipping-step timesteps match sd-onnx-reference §4.6', () => {
  const s = createScheduler('lcm', LCM_CONFIG);
  s.setTimesteps(4);
  assert.deepEqual(s.timesteps, [999, 759, 499, 259]);
  s.setTimesteps(8);
  assert.deepEqual(s.timesteps, [999, 879, 759, 639, 499, 379, 259, 139]);
});

test('strength limits the distillation timesteps, as the LCM img2img pipeline does', () => {
  const s = createScheduler('lcm', LCM_CONFIG);
  s.setTimesteps(4, { strength: 0.5 });
  // int(50·0.5) = 25 timesteps 19 … 499, then 4 of them from the top
  assert.deepEqual(s.timesteps, [499, 379, 259, 139]);
  assert.throws(() => s.setTimesteps(4, { strength: 0.06 }), { name: 'SchedulerInputError', message: /strength/ });
});

test('more steps than original_inference_steps is a user error', () => {
  const s = createScheduler('lcm', { ...LCM_CONFIG, original_inference_steps: 8 });
  s.setTimesteps(8);
  assert.throws(() => s.setTimesteps(9), { name: 'SchedulerInputError', message: /original_inference_steps = 8/ });
});

test('the rng is needed between steps but not on the last one, which returns denoised as prevSample', () => {
  const s = createScheduler('lcm', LCM_CONFIG);
  s.setTimesteps(2);
  const x = new Float32Array([0.5, -1, 2]);
  const e = new Float32Array([0.1, 0.2, -0.3]);
  const [t0, t1] = s.timesteps as [number, number];
  assert.throws(() => s.step(e, t0, x), /GaussianSource/);
  const first = s.step(e, t0, x, new SeededRng(1));
  const last = s.step(e, t1, first.prevSample);
  assert.deepEqual([...last.prevSample], [...(last.predOriginal ?? [])]);
});

test('a step with buffers writes into them, sample and prevSample may be one array, and the values are the allocating step’s', () => {
  const n = 64;
  const rngData = new SeededRng(9);
  const x = rngData.randn(n);
  const outputs = [rngData.randn(n), rngData.randn(n), rngData.randn(n), rngData.randn(n)];
  for (const config of [LCM_CONFIG, { ...LCM_CONFIG, prediction_type: 'v_prediction' }, { ...LCM_CONFIG, clip_sample: true, clip_sample_range: 0.5 }]) {
    const plain = createScheduler('lcm', config);
    const inPlace = createScheduler('lcm', config);
    assert.equal(inPlace.writesInto, true);
    plain.setTimesteps(4);
    inPlace.setTimesteps(4);
    const buffers = { prevSample: new Float32Array(n), predOriginal: new Float32Array(n), scratch: new Float32Array(n) };
    const rngA = new SeededRng(3);
    const rngB = new SeededRng(3);
    let a: Float32Array = Float32Array.from(x);
    let b: Float32Array = Float32Array.from(x);
    for (const [i, t] of plain.timesteps.entries()) {
      const ra = plain.step(outputs[i]!, t, a, rngA);
      const rb = inPlace.step(outputs[i]!, t, b, rngB, buffers);
      assert.equal(rb.prevSample, buffers.prevSample);
      assert.equal(rb.predOriginal, buffers.predOriginal);
      assert.deepEqual([...rb.prevSample], [...ra.prevSample], `step ${i}`);
      assert.deepEqual([...rb.predOriginal!], [...ra.predOriginal!], `step ${i}`);
      a = ra.prevSample;
      b = rb.prevSample; // from the second step on, sample is buffers.prevSample itself
    }
  }
  const s = createScheduler('lcm', LCM_CONFIG);
  s.setTimesteps(2);
  assert.throws(() => s.step(x, s.timesteps[0]!, x, new SeededRng(1), { prevSample: new Float32Array(3), predOriginal: new Float32Array(n), scratch: new Float32Array(n) }), /length/);
});
