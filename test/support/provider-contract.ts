/** Machine-independent checks of what the engine reports about execution providers. */
import assert from 'node:assert/strict';
import type { SessionReport } from '../../electron/shared/model.js';
import type { ExecutionProviderName } from '../../electron/shared/generation.js';

/**
 * The provider contract, true on any machine: each submodel names one provider from the list; each
 * provider before it in the list was tried and failed with a reason; none after it was tried.
 */
export function assertProviderContract(sessions: SessionReport, order: readonly ExecutionProviderName[]): void {
  const submodels = Object.keys(sessions.providers);
  assert.ok(submodels.includes('unet') && submodels.includes('text_encoder'), JSON.stringify(sessions));
  for (const submodel of submodels) {
    const provider = sessions.providers[submodel]!;
    const at = order.indexOf(provider);
    assert.ok(at >= 0, `${submodel} runs on ${provider}, which is not in ${order.join(',')}`);
    const tried = sessions.fallbacks.filter((f) => f.submodel === submodel);
    assert.deepEqual(tried.map((f) => f.provider), order.slice(0, at), `${submodel}: the providers before ${provider} each failed once`);
    for (const f of tried) assert.ok(f.error.trim().length > 0, `${submodel}: ${f.provider} fell back with no reason`);
  }
  for (const f of sessions.fallbacks) assert.ok(f.submodel in sessions.providers, `a fallback for an unknown submodel ${f.submodel}`);
}
