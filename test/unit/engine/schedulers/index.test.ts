import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SAMPLERS, type SamplerName } from '../../../../electron/shared/generation.js';
import {
  createScheduler,
  SchedulerConfigError,
  SchedulerInputError,
} from '../../../../electron/engine/schedulers/index.js';
import { goldens } from './goldens.js';

const sd15 = (): Record<string, unknown> => ({ ...goldens().configs.sd15 });

test('every sampler name builds from the SD 1.x folder config (a PNDMScheduler config), with diffusers order 1', () => {
  for (const name of SAMPLERS) {
    const s = createScheduler(name, sd15());
    assert.equal(s.name, name);
    assert.equal(s.order, 1);
    assert.equal(s.predictionType, 'epsilon');
    assert.deepEqual(s.timesteps, [], 'no timesteps before setTimesteps');
  }
  assert.equal(createScheduler('ddim', { ...sd15(), prediction_type: 'v_prediction' }).predictionType, 'v_prediction');
});

test('an unknown sampler name is a SchedulerConfigError that lists the known ones', () => {
  assert.throws(() => createScheduler('heun' as SamplerName, sd15()), (err: Error) => {
    assert.ok(err instanceof SchedulerConfigError);
    assert.equal(err.name, 'SchedulerConfigError');
    assert.match(err.message, /unknown sampler "heun".*euler_a/);
    return true;
  });
});

test('bad config values are SchedulerConfigErrors that name the key', () => {
  const cases: [string, unknown][] = [
    ['beta_schedule', 'cosine'],
    ['prediction_type', 'x0'],
    ['timestep_spacing', 'uniform'],
    ['beta_start', 'abc'],
    ['beta_start', -0.1],
    ['beta_end', 1.5],
    ['beta_end', null],
    ['num_train_timesteps', 0],
    ['num_train_timesteps', 999.5],
    ['steps_offset', 1.5],
    ['steps_offset', -1],
    ['trained_betas', [0.1, 0.2]],
    ['trained_betas', 'linear'],
  ];
  const expectRejected = (sampler: SamplerName, key: string, value: unknown): void => {
    assert.throws(
      () => createScheduler(sampler, { ...sd15(), [key]: value }),
      (err: Error) => err.name === 'SchedulerConfigError' && err.message.includes(key),
      `${sampler}: ${key} = ${JSON.stringify(value)}`,
    );
  };
  for (const sampler of SAMPLERS) {
    for (const [key, value] of cases) expectRejected(sampler, key, value);
  }
  // set_alpha_to_one is a key of PNDM, DDIM and LCM only
  for (const sampler of ['pndm', 'ddim', 'lcm'] as const) expectRejected(sampler, 'set_alpha_to_one', 'true');
  assert.throws(() => createScheduler('euler', [] as unknown as Record<string, unknown>), /JSON object/);
});

test('from_config: keys the target class does not know are ignored, even with values it would reject', () => {
  // skip_prk_steps belongs to PNDM; clip_sample to DDIM / LCM; the Euler samplers never read either.
  const config = { ...sd15(), skip_prk_steps: 'maybe', clip_sample: 42, solver_order: 'x' };
  createScheduler('euler', config).setTimesteps(5);
  createScheduler('euler_a', config).setTimesteps(5);
  assert.throws(() => createScheduler('pndm', config), /skip_prk_steps/);
  assert.throws(() => createScheduler('ddim', config), /clip_sample/);
});

test('from_config: a key the config lacks gets the target class default (timestep_spacing: leading for PNDM, DDIM, LCM; linspace for the rest)', () => {
  const { timestep_spacing: _spacing, ...config } = sd15();
  const first = (name: SamplerName): number => {
    const s = createScheduler(name, config);
    s.setTimesteps(10);
    return s.timesteps[0] as number;
  };
  assert.equal(first('pndm'), 901);
  assert.equal(first('ddim'), 901);
  assert.equal(first('euler'), 999);
  assert.equal(first('euler_a'), 999);
  assert.equal(first('dpmpp_2m'), 999);
});

test('from_config: keys listed in _use_default_values are dropped, so the target class default applies', () => {
  const config = { ...sd15(), timestep_spacing: 'linspace', _use_default_values: ['timestep_spacing'] };
  const s = createScheduler('euler', config);
  s.setTimesteps(10);
  assert.equal(s.timesteps[0], 999); // Euler's own default, linspace
  const ddim = createScheduler('ddim', config);
  ddim.setTimesteps(10);
  assert.equal(ddim.timesteps[0], 901); // DDIM's default, leading (with the config's steps_offset 1)
});

test('steps must be a positive integer no larger than num_train_timesteps', () => {
  for (const name of SAMPLERS) {
    const s = createScheduler(name, sd15());
    for (const steps of [0, -1, 2.5, Number.NaN, 1001]) {
      assert.throws(() => s.setTimesteps(steps), SchedulerInputError, `${name}: ${steps} steps`);
    }
  }
});

test('strength must be in (0, 1] and leave at least one step', () => {
  for (const name of SAMPLERS) {
    const s = createScheduler(name, sd15());
    for (const strength of [0, -0.5, 1.5, Number.NaN]) {
      assert.throws(() => s.setTimesteps(10, { strength }), { name: 'SchedulerInputError' }, `${name}: ${strength}`);
    }
  }
  assert.throws(() => createScheduler('euler', sd15()).setTimesteps(10, { strength: 0.05 }), /no denoising step/);
});

test('strength truncates the schedule as torch get_timesteps does: timesteps = full[n − int(n·strength):]', () => {
  for (const name of SAMPLERS.filter((n) => n !== 'lcm')) {
    for (const [steps, strength] of [
      [10, 0.6],
      [25, 0.75],
      [20, 1],
      [7, 0.3],
    ] as const) {
      const full = createScheduler(name, sd15());
      full.setTimesteps(steps);
      const part = createScheduler(name, sd15());
      part.setTimesteps(steps, { strength });
      const start = steps - Math.min(Math.trunc(steps * strength), steps);
      assert.deepEqual(part.timesteps, full.timesteps.slice(start), `${name} ${steps} × ${strength}`);
    }
  }
});

test('addNoise is the forward process of each family at the given timestep', () => {
  const x0 = new Float32Array([0, 1, -2]);
  const noise = new Float32Array([1, 0, 0.5]);
  for (const name of SAMPLERS) {
    const s = createScheduler(name, sd15());
    s.setTimesteps(10);
    const t = s.timesteps[0] as number;
    const out = s.addNoise(x0, noise, t);
    if (name === 'euler' || name === 'euler_a') {
      // x0 + σ·ε, σ = σ_max of the schedule; with leading spacing initNoiseSigma = √(σ² + 1)
      const sigma = Math.sqrt(s.initNoiseSigma ** 2 - 1);
      assert.ok(Math.abs((out[0] as number) - sigma) < 1e-5, name);
      assert.equal(out[1], 1);
    } else {
      // √ᾱ·x0 + √(1 − ᾱ)·ε (DPM: α_t·x0 + σ_t·ε, the same thing): coefficients squared sum to 1
      const a = out[1] as number;
      const b = out[0] as number;
      assert.ok(Math.abs(a * a + b * b - 1) < 1e-6, name);
      assert.ok(Math.abs((out[2] as number) - (-2 * a + 0.5 * b)) < 1e-6, name);
    }
    assert.throws(() => s.addNoise(x0, new Float32Array(2), t), /length/, name);
  }
});

test('each job gets a fresh scheduler: two objects from one config do not share multistep state', () => {
  const x = new Float32Array([0.3, -0.7]);
  const e = new Float32Array([0.1, 0.2]);
  const firstStep = (s: ReturnType<typeof createScheduler>): Float32Array =>
    s.step(e, s.timesteps[0] as number, x).prevSample;
  const a = createScheduler('dpmpp_2m', sd15());
  const b = createScheduler('dpmpp_2m', sd15());
  a.setTimesteps(10);
  b.setTimesteps(10);
  const fromA = firstStep(a);
  a.step(e, a.timesteps[1] as number, fromA); // a now holds history; b must not see it
  assert.deepEqual([...firstStep(b)], [...fromA]);
});
