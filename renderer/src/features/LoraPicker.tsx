/**
 * The prompt panel's LoRAs: a picker of the installed ones (the library's `<data>/loras`, with family and
 * trigger words) that inserts `<lora:name:1>` into the prompt, and the LoRAs the prompt's tags name, each
 * with its weight editable (the edit rewrites the tag). A LoRA of another family than the selected model's
 * is greyed in the picker and flagged in the list with the reason; the host refuses it too. An active
 * LCM-LoRA offers the LCM sampler with its defaults (4 steps, CFG 1) while another sampler is chosen.
 */
import { useCallback, useEffect, useState } from 'react';
import type { Responses } from '../../../electron/shared/contract.js';
import type { SamplerName } from '../../../electron/shared/generation.js';
import { LCM_LORA_CFG, LCM_LORA_STEPS } from '../../../electron/shared/generation-limits.js';
import type { LoraFamily } from '../../../electron/shared/loras.js';
import { useSession } from '../session/hooks.js';
import { insertLora, promptLoras, removeLora, setLoraWeight } from './lora-tags.js';

/** The installed LoRAs, read when the panel opens and again when the picker is focused. */
type LoraInfo = Responses['loras.list']['loras'][number];

const FAMILY_NAMES: Record<LoraFamily, string> = { sd1: 'SD 1.x', sd2: 'SD 2.x', sdxl: 'SDXL', unknown: 'any family' };

/** The installed LoRAs with why each doesn't fit the model, read when the model changes and when the picker is focused. */
function useInstalledLoras(modelId: string | null): { loras: LoraInfo[] | null; refresh: () => void } {
  const { client } = useSession();
  const [loras, setLoras] = useState<LoraInfo[] | null>(null);
  const refresh = useCallback(() => {
    client.call('loras.list', modelId ? { modelId } : {}).then(
      (r) => setLoras(r.loras),
      () => setLoras([]),
    );
  }, [client, modelId]);
  useEffect(refresh, [refresh]);
  return { loras, refresh };
}

function familyLabel(l: LoraInfo): string {
  return `${FAMILY_NAMES[l.family]}${l.lcm ? ' · LCM' : ''}`;
}

export function LoraPicker({
  prompt,
  modelId,
  onPrompt,
  sampler,
  onUseLcm,
}: {
  prompt: string;
  modelId: string | null;
  onPrompt: (prompt: string) => void;
  sampler: SamplerName;
  /** Switches to the LCM sampler with an LCM-LoRA's defaults (LCM_LORA_STEPS, LCM_LORA_CFG). */
  onUseLcm: () => void;
}) {
  const { loras, refresh } = useInstalledLoras(modelId);
  const active = promptLoras(prompt);
  const byName = new Map((loras ?? []).map((l) => [l.name, l]));
  const problemOf = (l: LoraInfo): string | null => l.problem;

  return (
    <div className="lora-picker" role="group" aria-label="LoRAs">
      <select
        aria-label="Add a LoRA"
        value=""
        onFocus={refresh}
        onChange={(e) => {
          if (e.target.value) onPrompt(insertLora(prompt, e.target.value));
        }}
        disabled={loras !== null && loras.length === 0}
      >
        <option value="">{loras === null ? 'Loading LoRAs…' : loras.length === 0 ? 'No LoRAs installed (the data folder’s loras)' : 'Add a LoRA…'}</option>
        {(loras ?? []).map((l) => {
          const problem = problemOf(l);
          return (
            <option key={l.name} value={l.name} disabled={problem !== null} title={problem ?? (l.triggerWords.length > 0 ? `Trigger words: ${l.triggerWords.join(', ')}` : undefined)}>
              {l.name} · {familyLabel(l)}
              {problem ? ' · not for this model' : l.triggerWords.length > 0 ? ` · ${l.triggerWords.slice(0, 3).join(', ')}` : ''}
            </option>
          );
        })}
      </select>
      {active.length > 0 && (
        <ul className="lora-active" aria-label="Active LoRAs">
          {active.map((a) => {
            const lora = byName.get(a.name);
            const problem = lora ? problemOf(lora) : loras !== null ? `<lora:${a.name}> is not installed` : null;
            return (
              <li key={`${a.name}@${a.start}`} className={problem ? 'is-wrong' : undefined} data-lora={a.name}>
                <span className="lora-name">{a.name}</span>
                {lora && <span className="lora-family">{familyLabel(lora)}</span>}
                <input
                  type="number"
                  aria-label={`Weight of ${a.name}`}
                  step={0.05}
                  min={-100}
                  max={100}
                  value={Number.isFinite(a.weight) ? a.weight : ''}
                  onChange={(e) => {
                    const w = Number(e.target.value);
                    if (e.target.value !== '' && Number.isFinite(w)) onPrompt(setLoraWeight(prompt, a, w));
                  }}
                  title={a.split ? 'The tag has separate text-encoder and U-Net weights; editing sets both' : 'Weight (also Ctrl+Up/Down in the prompt)'}
                />
                <button type="button" className="link" aria-label={`Remove ${a.name}`} onClick={() => onPrompt(removeLora(prompt, a))}>
                  ×
                </button>
                {lora?.lcm && a.weight !== 0 && sampler !== 'lcm' && !problem && (
                  <button type="button" className="link" onClick={onUseLcm} title="An LCM-LoRA makes the model a few-step one: the LCM sampler with its defaults">
                    Use LCM ({LCM_LORA_STEPS} steps, CFG {LCM_LORA_CFG})
                  </button>
                )}
                {lora && lora.triggerWords.length > 0 && <span className="lora-triggers">Trigger words: {lora.triggerWords.slice(0, 8).join(', ')}</span>}
                {problem && (
                  <span className="lora-problem" role="note">
                    {problem}
                  </span>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
