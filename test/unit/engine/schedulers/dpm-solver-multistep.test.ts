import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createScheduler } from '../../../../electron/engine/schedulers/index.js';
import { goldenSuite } from './golden-suite.js';
import { decode, fakeModel, goldens } from './goldens.js';

goldenSuite(['dpmpp_2m', 'dpmpp_2m_karras']);

const sd15 = (): Record<string, unknown> => ({ ...goldens().configs.sd15 });

test('Karras timesteps for SD with linspace spacing match sd-onnx-reference §4.5', () => {
  const { timestep_spacing: _spacing, steps_offset: _offset, ...config } = sd15();
  const s = createScheduler('dpmpp_2m_karras', config);
  s.setTimesteps(20);
  assert.deepEqual(
    s.timesteps,
    [999, 962, 921, 876, 827, 772, 710, 640, 561, 474, 380, 285, 197, 123, 69, 35, 15, 6, 2, 0],
  );
  assert.equal(s.initNoiseSigma, 1);
});

test('the sampler name decides use_karras_sigmas, whatever the folder config says', () => {
  const plain = createScheduler('dpmpp_2m', { ...sd15(), use_karras_sigmas: true });
  const karras = createScheduler('dpmpp_2m_karras', { ...sd15(), use_karras_sigmas: false });
  plain.setTimesteps(10);
  karras.setTimesteps(10);
  assert.deepEqual(plain.timesteps, [901, 811, 721, 631, 541, 451, 361, 271, 181, 91]);
  assert.deepEqual(karras.timesteps, [999, 916, 815, 687, 523, 327, 146, 41, 7, 0]);
});

test('a folder config that sets sigma_min / sigma_max bounds the Karras sigmas (diffusers keeps unknown keys on config)', () => {
  const s = createScheduler('dpmpp_2m_karras', { ...sd15(), sigma_min: 0.1, sigma_max: 10 });
  s.setTimesteps(10);
  const x = new Float32Array([1]);
  // addNoise of x0 = 0, ε = 1 at the first step gives σ_t = σ/√(σ² + 1) with σ = sigma_max
  const noised = s.addNoise(new Float32Array([0]), x, s.timesteps[0] as number);
  assert.ok(Math.abs((noised[0] as number) - 10 / Math.sqrt(101)) < 1e-6);
});

test('a zero-length last step (Karras + final σ_min + heun, no lower-order final) is the identity, where diffusers gives NaN', () => {
  const s = createScheduler('dpmpp_2m_karras', { ...goldens().configs.dpm_variants, lower_order_final: false });
  s.setTimesteps(10);
  let x = decode(goldens().initNoise);
  let before = x;
  for (const t of s.timesteps) {
    before = x;
    x = s.step(fakeModel(x, t), t, x).prevSample;
  }
  assert.ok(x.every(Number.isFinite));
  assert.deepEqual([...x], [...before]);
});

test('DPM-Solver options the engine does not implement are refused', () => {
  for (const [key, value] of [
    ['use_lu_lambdas', true],
    ['use_exponential_sigmas', true],
    ['use_flow_sigmas', true],
    ['variance_type', 'learned_range'],
  ] as const) {
    assert.throws(() => createScheduler('dpmpp_2m', { ...sd15(), [key]: value }), {
      name: 'SchedulerConfigError',
      message: new RegExp(key),
    });
  }
  assert.throws(() => createScheduler('dpmpp_2m', { ...sd15(), solver_type: 'rk4' }), /solver_type/);
});
