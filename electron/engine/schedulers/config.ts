/**
 * Reading a scheduler_config.json the way diffusers' `SchedulerClass.from_config(folder_config, **overrides)`
 * does (configuration_utils.py `extract_init_dict`):
 * - keys listed in `_use_default_values` are dropped (the saving class filled them with its own defaults),
 *   and so are keys starting with `_` (`_class_name`, `_diffusers_version`);
 * - a key the target class knows is taken from the config, whatever class the config names;
 * - a key the target class knows but the config lacks gets the target class's default;
 * - keys the target class does not know are ignored.
 * Overrides (what a sampler name implies, e.g. use_karras_sigmas for dpmpp_2m_karras) win over the config.
 *
 * Unlike diffusers, every value read is checked here, so a bad file fails with a message that names the
 * key, instead of a numpy error halfway through set_timesteps.
 */

import { SchedulerConfigError } from './errors.js';

export type RawSchedulerConfig = Record<string, unknown>;

interface NumberRule {
  integer?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Inclusive upper bound. */
  max?: number;
  /** Exclusive upper bound. */
  below?: number;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export class SchedulerConfigReader {
  private readonly values: Map<string, unknown>;

  /**
   * @param className the diffusers class being built (named in error messages)
   * @param raw the parsed scheduler_config.json
   * @param overrides values the sampler name imposes
   */
  constructor(
    readonly className: string,
    raw: unknown,
    overrides: RawSchedulerConfig = {},
  ) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new SchedulerConfigError(`scheduler config must be a JSON object, got ${describe(raw)}`);
    }
    const config = raw as RawSchedulerConfig;
    const usedDefaults = Array.isArray(config._use_default_values) ? config._use_default_values : [];
    this.values = new Map();
    for (const [key, value] of Object.entries(config)) {
      if (key.startsWith('_') || usedDefaults.includes(key)) continue;
      this.values.set(key, value);
    }
    for (const [key, value] of Object.entries(overrides)) this.values.set(key, value);
  }

  private fail(key: string, value: unknown, expected: string): never {
    throw new SchedulerConfigError(
      `scheduler config: ${key} must be ${expected}, got ${describe(value)} (${this.className})`,
    );
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  number(key: string, fallback: number, rule: NumberRule = {}): number {
    const value = this.values.has(key) ? this.values.get(key) : fallback;
    return this.checkNumber(key, value, rule);
  }

  /** A number key whose Python default is None (null in JSON). */
  optionalNumber(key: string, rule: NumberRule = {}): number | null {
    const value = this.values.get(key);
    if (value === undefined || value === null) return null;
    return this.checkNumber(key, value, rule);
  }

  private checkNumber(key: string, value: unknown, rule: NumberRule): number {
    const parts: string[] = [rule.integer ? 'an integer' : 'a number'];
    if (rule.min !== undefined) parts.push(`≥ ${rule.min}`);
    if (rule.above !== undefined) parts.push(`> ${rule.above}`);
    if (rule.max !== undefined) parts.push(`≤ ${rule.max}`);
    if (rule.below !== undefined) parts.push(`< ${rule.below}`);
    const expected = parts.join(' ');
    if (typeof value !== 'number' || Number.isNaN(value)) this.fail(key, value, expected);
    const ok =
      (!rule.integer || Number.isSafeInteger(value)) &&
      (rule.min === undefined || value >= rule.min) &&
      (rule.above === undefined || value > rule.above) &&
      (rule.max === undefined || value <= rule.max) &&
      (rule.below === undefined || value < rule.below) &&
      (Number.isFinite(value) || (rule.min === undefined && rule.above === undefined && value === -Infinity));
    if (!ok) this.fail(key, value, expected);
    return value;
  }

  /** A boolean key. `nullable` keys (Python `bool | None`) read null as false, as Python's truthiness does. */
  bool(key: string, fallback: boolean, nullable = false): boolean {
    const value = this.values.has(key) ? this.values.get(key) : fallback;
    if (value === null && nullable) return false;
    if (typeof value !== 'boolean') this.fail(key, value, 'true or false');
    return value;
  }

  choice<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const value = this.values.has(key) ? this.values.get(key) : fallback;
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      this.fail(key, value, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    }
    return value as T;
  }

  /** An optional string key (Python default None); null and absent read as null. */
  optionalChoice<T extends string>(key: string, allowed: readonly T[]): T | null {
    const value = this.values.get(key);
    if (value === undefined || value === null) return null;
    return this.choice(key, allowed[0] as T, allowed);
  }

  /** A list of numbers or null (trained_betas). */
  optionalNumberArray(key: string): number[] | null {
    const value = this.values.get(key);
    if (value === undefined || value === null) return null;
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      this.fail(key, value, 'null or an array of finite numbers');
    }
    return value as number[];
  }

  /** Fails when a key the engine does not implement is set to anything but its default. */
  unsupported(key: string, defaultValue: unknown, why: string): void {
    if (!this.values.has(key)) return;
    const value = this.values.get(key);
    if (value === defaultValue || (value === null && defaultValue === false)) return;
    throw new SchedulerConfigError(
      `scheduler config: ${key} = ${describe(value)} is not supported (${this.className}): ${why}`,
    );
  }
}
