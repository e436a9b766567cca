/**
 * Live painting's controls: the Live switch beside Generate, and while Live is on, the frame time, the
 * steps a frame takes while a stroke is painted, and Keep (the shown frame into history as an inpaint).
 * See session/live-painting.ts.
 */
import { MAX_STEPS } from '../../../electron/shared/generation-limits.js';
import { useRegions, useSession } from '../session/hooks.js';
import { useStore } from '../session/store.js';

export function LiveSwitch() {
  const { live } = useSession();
  const { on } = useStore(live.store);
  return (
    <button
      type="button"
      className={`live-switch ${on ? 'is-on' : ''}`}
      role="switch"
      aria-checked={on}
      aria-label="Live"
      title="Live painting: the masked area re-renders while you paint"
      onClick={() => live.setLive(!on)}
    >
      Live
    </button>
  );
}

export function LiveStatus() {
  const { live, settingsStore } = useSession();
  const { on, frame, computing, error } = useStore(live.store);
  const { liveStrokeSteps, softInpaint } = useStore(settingsStore);
  const regions = useRegions();
  if (!on) return null;
  // What Generate uses and a frame does not (a kept frame records neither, so history stays true).
  const generateOnly = [regions.length > 0 ? 'regions' : null, softInpaint ? 'soft inpainting' : null].filter((s) => s !== null);
  return (
    <div className="live-status" role="status" aria-label="Live painting">
      <span className="live-time" data-testid="live-frame-time">
        {error
          ? `Live: ${error}`
          : frame
            ? `Frame ${Math.round(frame.engineMs)} ms, ${frame.steps} step${frame.steps === 1 ? '' : 's'}${frame.threads !== null ? `, ${frame.threads} CPU thread${frame.threads === 1 ? '' : 's'}` : ''} · ${Math.round(frame.roundTripMs)} ms round trip`
            : computing
              ? 'Rendering…'
              : 'Paint a mask to see it live'}
      </span>
      <label className="live-stroke-steps" title="The most steps a frame takes while you paint a stroke (faster frames); when you lift the pen the area is rendered again at Steps. 0: always Steps.">
        While painting
        <input
          type="number"
          aria-label="Steps while painting"
          min={0}
          max={MAX_STEPS}
          value={liveStrokeSteps}
          onChange={(e) => {
            const n = Math.trunc(Number(e.target.value));
            if (Number.isFinite(n) && n >= 0 && n <= MAX_STEPS) settingsStore.update({ liveStrokeSteps: n });
          }}
        />
        steps
      </label>
      {generateOnly.length > 0 && (
        <span className="live-note" data-testid="live-generate-only">
          Live frames leave out {generateOnly.join(' and ')}: Generate uses them
        </span>
      )}
      <button type="button" onClick={() => void live.keep()} disabled={!frame} title="Put the shown frame into history">
        Keep
      </button>
    </div>
  );
}
