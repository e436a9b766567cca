import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../../electron/engine/schedulers/index.js';
import { goldenSuite } from './golden-suite.js';
import { goldens } from './goldens.js';

goldenSuite(['pndm']);

const sd15 = (): Record<string, unknown> => ({ ...goldens().configs.sd15 });

test('SD 1.x PLMS schedule repeats the second timestep (n + 1 UNet calls), as in sd-onnx-reference §4.1', () => {
  const s = createScheduler('pndm', sd15());
  s.setTimesteps(10);
  assert.deepEqual(s.timesteps, [901, 801, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  s.setTimesteps(50);
  assert.equal(s.timesteps.length, 51);
  assert.deepEqual(s.timesteps.slice(0, 4), [981, 961, 961, 941]);
  assert.equal(s.initNoiseSigma, 1);
  assert.equal(s.order, 1);
});

test('with skip_prk_steps false it runs the 12 Runge-Kutta warm-up calls first (diffusers test values)', () => {
  const s = createScheduler('pndm', { ...sd15(), skip_prk_steps: false });
  s.setTimesteps(10);
  assert.deepEqual(
    s.timesteps,
    [901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601, 601, 501, 401, 301, 201, 101, 1],
  );
  assert.throws(() => s.setTimesteps(3), { name: 'SchedulerInputError', message: /at least 4 steps/ });
});

test('scaleModelInput is the identity and returns the same array', () => {
  const s = createScheduler('pndm', sd15());
  s.setTimesteps(5);
  const x = new Float32Array([1, 2, 3]);
  assert.equal(s.scaleModelInput(x, s.timesteps[0] as number), x);
});

test('PNDM rejects the "sample" prediction type, which diffusers does not implement for it', () => {
  assert.throws(() => createScheduler('pndm', { ...sd15(), prediction_type: 'sample' }), {
    name: 'SchedulerConfigError',
    message: /prediction_type/,
  });
});

test('step before setTimesteps, or with arrays of different lengths, is a bug and throws', () => {
  const s = createScheduler('pndm', sd15());
  assert.throws(() => s.step(new Float32Array(4), 901, new Float32Array(4)), /setTimesteps/);
  s.setTimesteps(10);
  assert.throws(() => s.step(new Float32Array(4), 901, new Float32Array(5)), /length/);
});
