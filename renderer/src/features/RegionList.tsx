/**
 * Regional prompts (Krita AI Diffusion's Regions, A1111's regional prompter): a list of regions, each
 * with its own prompt, weight, overlay colour and visibility. "Paint" makes the canvas brush and eraser
 * paint that region's area; the rest of the picture takes the main prompt.
 */
import { DEFAULT_REGION_WEIGHT, MAX_REGION_WEIGHT, MAX_REGIONS, MIN_REGION_WEIGHT } from '../../../electron/shared/generation-limits.js';
import { colourToHex, hexToColour } from '../document/regions.js';
import { useRegions, useSession } from '../session/hooks.js';
import { useStore } from '../session/store.js';
import { PromptTextarea } from './PromptTextarea.js';

export function RegionList({ embeddings, onPromptFocus }: { embeddings: readonly string[]; onPromptFocus: () => void }) {
  const { addRegion, doc, paintRegionStore } = useSession();
  const regions = useRegions();
  const painting = useStore(paintRegionStore);
  return (
    <section className="regions" aria-label="Regions">
      <div className="label-row">
        <span className="group-label" title="Each region's prompt draws inside the area painted for it; the main prompt draws the rest">Regions{regions.length > 0 ? ` (${regions.length})` : ''}</span>
        <button type="button" onClick={addRegion} disabled={regions.length >= MAX_REGIONS} title={regions.length >= MAX_REGIONS ? `At most ${MAX_REGIONS} regions` : 'Add a region, then paint its area on the canvas'}>
          + Add region
        </button>
      </div>
      {regions.length > 0 && (
        <ol className="region-list">
          {regions.map((r, i) => {
            const name = `Region ${i + 1}`;
            const active = painting === r.id;
            return (
              <li key={r.id} className={`region-row ${active ? 'is-on' : ''}`} role="group" aria-label={name}>
                <div className="region-head">
                  <input type="color" aria-label={`${name} colour`} value={colourToHex(r.colour)} onChange={(e) => { const c = hexToColour(e.target.value); if (c) doc.updateRegion(r.id, { colour: c }); }} />
                  <button type="button" aria-label={`Paint ${name.toLowerCase()}`} aria-pressed={active} className={`chip ${active ? 'is-on' : ''}`} onClick={() => paintRegionStore.set(active ? null : r.id)} title={active ? 'The brush paints this region: click to paint the mask again' : 'Paint this region on the canvas with the brush (the eraser takes area away)'}>
                    ✎ Paint
                  </button>
                  <button type="button" aria-label={`Show ${name.toLowerCase()}`} aria-pressed={r.visible} className={`chip ${r.visible ? 'is-on' : ''}`} onClick={() => doc.updateRegion(r.id, { visible: !r.visible })} title="Show or hide its colour on the canvas (a hidden region still applies)">
                    {r.visible ? '◉' : '○'}
                  </button>
                  <label className="number" title={`Weight: 1 = its prompt alone inside its area; below 1 mixes in the main prompt; above 1 wins where regions overlap (${MIN_REGION_WEIGHT}–${MAX_REGION_WEIGHT})`}>
                    <span>w</span>
                    <input
                      type="number"
                      aria-label={`${name} weight`}
                      min={MIN_REGION_WEIGHT}
                      max={MAX_REGION_WEIGHT}
                      step={0.05}
                      value={Number.isFinite(r.weight) ? r.weight : ''}
                      onChange={(e) => doc.updateRegion(r.id, { weight: e.target.value === '' ? NaN : Number(e.target.value) })}
                      style={{ width: '3.6em' }}
                    />
                  </label>
                  <button type="button" aria-label={`Clear ${name.toLowerCase()}`} onClick={() => doc.clearRegion(r.id)} disabled={r.mask.isEmpty()} title="Erase its whole area (the region stays)">Clear</button>
                  <button type="button" aria-label={`Remove ${name.toLowerCase()}`} className="danger" onClick={() => doc.removeRegion(r.id)} title="Remove the region and its area (undoable)">✕</button>
                </div>
                <PromptTextarea
                  id={`region-${r.id}-prompt`}
                  label={`${name} prompt`}
                  describedBy={`region-${r.id}-hint`}
                  rows={2}
                  placeholder="what this area shows"
                  value={r.prompt}
                  onChange={(prompt) => doc.updateRegion(r.id, { prompt })}
                  embeddings={embeddings}
                  onFocus={onPromptFocus}
                />
                <span id={`region-${r.id}-hint`} className="hint-text">
                  {r.mask.isEmpty() ? 'No area yet: press Paint, then paint it on the canvas.' : r.weight !== DEFAULT_REGION_WEIGHT ? `Weight ${r.weight} inside its area.` : ''}
                </span>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
