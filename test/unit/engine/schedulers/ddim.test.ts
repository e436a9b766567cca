import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../../electron/engine/schedulers/index.js';
import { goldenSuite } from './golden-suite.js';
import { goldens } from './goldens.js';

goldenSuite(['ddim']);

const sd15 = (): Record<string, unknown> => ({ ...goldens().configs.sd15 });

function lastStep(config: Record<string, unknown>, modelOutput: number): { prev: Float32Array; x0: Float32Array } {
  const s = createScheduler('ddim', config);
  s.setTimesteps(10);
  const t = s.timesteps[s.timesteps.length - 1] as number;
  const sample = new Float32Array([0.5, -0.25, 3]);
  const out = s.step(new Float32Array(3).fill(modelOutput), t, sample);
  assert.ok(out.predOriginal);
  return { prev: out.prevSample, x0: out.predOriginal };
}

test('final step: with set_alpha_to_one (the DDIM default) x_prev is exactly the predicted x0', () => {
  const { prev, x0 } = lastStep({ ...sd15(), set_alpha_to_one: true }, 0.1);
  assert.deepEqual([...prev], [...x0]);
  const alphaZero = lastStep({ ...sd15(), set_alpha_to_one: false }, 0.1);
  assert.notDeepEqual([...alphaZero.prev], [...alphaZero.x0]);
});

test('clip_sample defaults to true for DDIM when the config lacks it: x0 is clamped to [−1, 1]', () => {
  const { clip_sample: _dropped, ...withoutClip } = sd15();
  const clipped = lastStep(withoutClip, -30);
  assert.ok(clipped.x0.every((v) => Math.abs(v) <= 1));
  assert.ok(clipped.x0.some((v) => v === 1));
  const unclipped = lastStep({ ...sd15(), clip_sample: false }, -30);
  assert.ok(unclipped.x0.some((v) => Math.abs(v) > 1));
  const range = lastStep({ ...withoutClip, clip_sample_range: 2 }, -30);
  assert.ok(range.x0.some((v) => v === 2));
});

test('"sample" prediction: predOriginal is the model output', () => {
  const s = createScheduler('ddim', { ...sd15(), prediction_type: 'sample' });
  assert.equal(s.predictionType, 'sample');
  s.setTimesteps(10);
  const x0 = new Float32Array([0.25, -0.5]);
  const out = s.step(x0, s.timesteps[0] as number, new Float32Array([3, 1]));
  assert.deepEqual([...(out.predOriginal ?? [])], [0.25, -0.5]);
});

test('timesteps outside [0, num_train_timesteps) are rejected', () => {
  const s = createScheduler('ddim', sd15());
  s.setTimesteps(10);
  assert.throws(() => s.step(new Float32Array(2), 1000, new Float32Array(2)), /timestep 1000/);
  assert.throws(() => s.addNoise(new Float32Array(2), new Float32Array(2), 2.5), /timestep 2.5/);
});
