/**
 * The diffusion schedulers, one algorithm per file, behind one interface that mirrors diffusers so its
 * reference values carry over (docs/architecture.md "The engine's contracts", sd-onnx-reference §4).
 * Schedulers know nothing of ONNX.
 */

import { SAMPLERS, type SamplerName } from '../../shared/generation.js';
import { SchedulerConfigReader, type RawSchedulerConfig } from './config.js';
import { DdimScheduler } from './ddim.js';
import { DpmSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { SchedulerConfigError } from './errors.js';
import { EulerAncestralScheduler } from './euler-ancestral.js';
import { EulerScheduler } from './euler.js';
import { LcmScheduler } from './lcm.js';
import { PndmScheduler } from './pndm.js';
import type { Scheduler } from './types.js';

export { SchedulerConfigError, SchedulerInputError } from './errors.js';
export type { RawSchedulerConfig } from './config.js';
export type { PredictionType, Scheduler, SetTimestepsOptions, StepResult } from './types.js';

/** The diffusers class each sampler name builds, and the config values the name implies. */
const SAMPLER_CLASSES: Record<SamplerName, { className: string; overrides: RawSchedulerConfig }> = {
  euler: { className: 'EulerDiscreteScheduler', overrides: {} },
  euler_a: { className: 'EulerAncestralDiscreteScheduler', overrides: {} },
  ddim: { className: 'DDIMScheduler', overrides: {} },
  pndm: { className: 'PNDMScheduler', overrides: {} },
  // "DPM++ 2M": DPM-Solver++ of order 2, multistep; "Karras": σ spaced as in Karras et al. 2022, eq. 5.
  dpmpp_2m: {
    className: 'DPMSolverMultistepScheduler',
    overrides: { algorithm_type: 'dpmsolver++', solver_order: 2, use_karras_sigmas: false },
  },
  dpmpp_2m_karras: {
    className: 'DPMSolverMultistepScheduler',
    overrides: { algorithm_type: 'dpmsolver++', solver_order: 2, use_karras_sigmas: true },
  },
  lcm: { className: 'LCMScheduler', overrides: {} },
};

/**
 * A fresh scheduler for one job, as diffusers' `SchedulerClass.from_config(config)`: `config` is the
 * scheduler_config.json object of a model folder, whatever class it names; keys the target class knows
 * are taken from it, the others get that class's defaults. Throws SchedulerConfigError for an unknown
 * sampler name or a value the scheduler cannot use.
 */
export function createScheduler(name: SamplerName, config: Record<string, unknown>): Scheduler {
  if (!(SAMPLERS as readonly string[]).includes(name)) {
    throw new SchedulerConfigError(`unknown sampler ${JSON.stringify(name)}; expected one of ${SAMPLERS.join(', ')}`);
  }
  const { className, overrides } = SAMPLER_CLASSES[name];
  const reader = new SchedulerConfigReader(className, config, overrides);
  switch (name) {
    case 'euler':
      return new EulerScheduler(name, reader);
    case 'euler_a':
      return new EulerAncestralScheduler(name, reader);
    case 'ddim':
      return new DdimScheduler(name, reader);
    case 'pndm':
      return new PndmScheduler(name, reader);
    case 'dpmpp_2m':
    case 'dpmpp_2m_karras':
      return new DpmSolverMultistepScheduler(name, reader);
    case 'lcm':
      return new LcmScheduler(name, reader);
  }
}
