/**
 * Live painting's controls: the Live switch beside Generate, and while Live is on, the frame time and
 * Keep (the shown frame into history as an inpaint). See session/live-painting.ts.
 */
import { useSession } from '../session/hooks.js';
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
  const { live } = useSession();
  const { on, frame, computing, error } = useStore(live.store);
  if (!on) return null;
  return (
    <div className="live-status" role="status" aria-label="Live painting">
      <span className="live-time" data-testid="live-frame-time">
        {error ? `Live: ${error}` : frame ? `Frame ${Math.round(frame.engineMs)} ms · ${Math.round(frame.roundTripMs)} ms round trip` : computing ? 'Rendering…' : 'Paint a mask to see it live'}
      </span>
      <button type="button" onClick={() => void live.keep()} disabled={!frame} title="Put the shown frame into history">
        Keep
      </button>
    </div>
  );
}
