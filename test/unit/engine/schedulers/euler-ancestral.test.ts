import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../../electron/engine/schedulers/index.js';
import { SeededRng } from '../../../../electron/engine/tensor/rng.js';
import { goldenSuite } from './golden-suite.js';
import { decode, fakeModel, goldens } from './goldens.js';

goldenSuite(['euler_a']);

const sd15 = (): Record<string, unknown> => ({ ...goldens().configs.sd15 });

function run(seed: number): Float32Array {
  const s = createScheduler('euler_a', sd15());
  s.setTimesteps(8);
  const rng = new SeededRng(seed);
  let x: Float32Array = decode(goldens().initNoise).map((z) => z * s.initNoiseSigma);
  for (const t of s.timesteps) x = s.step(fakeModel(s.scaleModelInput(x, t), t), t, x, rng).prevSample;
  return x;
}

test('the ancestral noise comes from the rng: same seed, same result; another seed, another result', () => {
  assert.deepEqual([...run(7)], [...run(7)]);
  assert.notDeepEqual([...run(7)], [...run(8)]);
});

test('step without an rng is an error', () => {
  const s = createScheduler('euler_a', sd15());
  s.setTimesteps(4);
  const t = s.timesteps[0] as number;
  assert.throws(() => s.step(new Float32Array(4), t, new Float32Array(4)), /GaussianSource/);
});

test('Euler ancestral rejects the "sample" prediction type, as diffusers does', () => {
  assert.throws(() => createScheduler('euler_a', { ...sd15(), prediction_type: 'sample' }), {
    name: 'SchedulerConfigError',
  });
});
