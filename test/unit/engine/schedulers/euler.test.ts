import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../../electron/engine/schedulers/index.js';
import { goldenSuite } from './golden-suite.js';
import { goldens } from './goldens.js';

goldenSuite(['euler']);

const sd15 = (): Record<string, unknown> => ({ ...goldens().configs.sd15 });

test('SDXL-style leading spacing and linspace spacing give the values of sd-onnx-reference §4.3', () => {
  const leading = createScheduler('euler', { ...sd15(), timestep_spacing: 'leading', steps_offset: 1 });
  leading.setTimesteps(30);
  assert.deepEqual(leading.timesteps.slice(0, 3), [958, 925, 892]);
  assert.deepEqual(leading.timesteps.slice(-2), [34, 1]);
  assert.ok(Math.abs(leading.initNoiseSigma - 11.520334) < 1e-5);

  const { timestep_spacing: _spacing, ...config } = sd15();
  const linspace = createScheduler('euler', config); // EulerDiscreteScheduler's default spacing: linspace
  linspace.setTimesteps(30);
  assert.equal(linspace.timesteps[0], 999);
  assert.ok(Math.abs((linspace.timesteps[1] as number) - 964.5517) < 1e-4);
  assert.ok(Math.abs(linspace.initNoiseSigma - 14.614647) < 1e-5);
});

test('scaleModelInput divides by √(σ² + 1) of the current step', () => {
  const s = createScheduler('euler', sd15());
  s.setTimesteps(10);
  const x = new Float32Array([1, -2]);
  const scaled = s.scaleModelInput(x, s.timesteps[0] as number);
  const sigma = Math.sqrt(s.initNoiseSigma ** 2 - 1); // leading: init = √(σ_max² + 1)
  assert.ok(Math.abs((scaled[0] as number) - 1 / Math.sqrt(sigma * sigma + 1)) < 1e-6);
  assert.notEqual(scaled, x);
});

test('a timestep that is not in the schedule is an error', () => {
  const s = createScheduler('euler', sd15());
  s.setTimesteps(10);
  assert.throws(() => s.scaleModelInput(new Float32Array(2), 500.5), /not in this schedule/);
});

test('"original_sample" is read as the "sample" prediction type', () => {
  const s = createScheduler('euler', { ...sd15(), prediction_type: 'original_sample' });
  assert.equal(s.predictionType, 'sample');
});

test('sigma schedules and interpolation the engine does not implement are refused, not ignored', () => {
  for (const [key, value] of [
    ['interpolation_type', 'log_linear'],
    ['use_exponential_sigmas', true],
    ['use_beta_sigmas', true],
    ['timestep_type', 'continuous'],
  ] as const) {
    assert.throws(() => createScheduler('euler', { ...sd15(), [key]: value }), {
      name: 'SchedulerConfigError',
      message: new RegExp(`${key}.*not supported`),
    });
  }
  // their defaults (and null for the bool | None flags) are fine
  createScheduler('euler', { ...sd15(), interpolation_type: 'linear', use_exponential_sigmas: null });
});
