/**
 * Errors of the schedulers. Both are caused by input, not by bugs, and are recognised by `name` (which
 * survives a process boundary, unlike `instanceof`). Misuse by engine code (step before setTimesteps,
 * arrays of different lengths, a missing rng) throws a plain Error: that is a bug.
 */

/** A scheduler_config.json (or sampler name) the engine cannot run: unknown names, bad values. */
export class SchedulerConfigError extends Error {
  override name = 'SchedulerConfigError';
}

/** A request the schedule cannot honour: step count or strength out of range. */
export class SchedulerInputError extends Error {
  override name = 'SchedulerInputError';
}
