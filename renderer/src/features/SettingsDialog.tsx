/**
 * The Settings dialog: execution provider order, CPU threads, releasing the text encoders after encoding, the
 * output folder and the undo memory (settings.get / settings.set).
 */
import { useEffect, useState } from 'react';
import type { StudioSettings } from '../../../electron/shared/contract.js';
import type { ExecutionProviderName } from '../../../electron/shared/generation.js';
import { describeError } from '../session/session.js';
import { useSession } from '../session/hooks.js';

/** Mirrors EXECUTION_PROVIDERS and MAX_THREADS in electron/shared/contract-schemas.ts (the renderer imports only types from there). */
const ALL_PROVIDERS: ExecutionProviderName[] = ['webgpu', 'cuda', 'dml', 'coreml', 'cpu'];
const MAX_THREADS = 256;
/** Mirrors MIN_UNDO_MEMORY_MB and MAX_UNDO_MEMORY_MB in electron/shared/resource-limits.ts. */
const MIN_UNDO_MB = 16;
const MAX_UNDO_MB = 64 * 1024;

const PROVIDER_LABELS: Record<ExecutionProviderName, string> = {
  webgpu: 'WebGPU',
  cuda: 'CUDA',
  dml: 'DirectML',
  coreml: 'Core ML',
  cpu: 'CPU',
};

interface ProviderRow {
  name: ExecutionProviderName;
  enabled: boolean;
}

/** The enabled providers in their saved order, then the others, so every provider can be switched on. */
function providerRows(saved: ExecutionProviderName[]): ProviderRow[] {
  return [...saved.map((name) => ({ name, enabled: true })), ...ALL_PROVIDERS.filter((p) => !saved.includes(p)).map((name) => ({ name, enabled: false }))];
}

export function SettingsDialog({ onClose }: { onClose: () => void }) {
  const { client, notify, applyStudioSettings } = useSession();
  const [loaded, setLoaded] = useState<StudioSettings | null>(null);
  const [rows, setRows] = useState<ProviderRow[]>([]);
  const [threads, setThreads] = useState('0');
  const [outputFolder, setOutputFolder] = useState('');
  const [undoMb, setUndoMb] = useState('256');
  const [releaseTextEncoders, setReleaseTextEncoders] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    let live = true;
    client
      .call('settings.get', {})
      .then((s) => {
        if (!live) return;
        setLoaded(s);
        setRows(providerRows(s.providers));
        setThreads(String(s.threads));
        setOutputFolder(s.outputFolder ?? '');
        setUndoMb(String(s.undoMemoryMb));
        setReleaseTextEncoders(s.releaseTextEncoders);
      })
      .catch((err: unknown) => live && setError(`Could not read the settings: ${describeError(err)}`));
    return () => {
      live = false;
    };
  }, []);

  const move = (index: number, by: -1 | 1): void => {
    setRows((list) => {
      const target = index + by;
      const a = list[index];
      const b = list[target];
      if (!a || !b) return list;
      const next = [...list];
      next[index] = b;
      next[target] = a;
      return next;
    });
  };

  const save = async (): Promise<void> => {
    const providers = rows.filter((r) => r.enabled).map((r) => r.name);
    const threadCount = Number(threads);
    if (providers.length === 0) return setError('Turn on at least one execution provider (CPU always works).');
    if (!(Number.isInteger(threadCount) && threadCount >= 0 && threadCount <= MAX_THREADS)) {
      return setError(`CPU threads must be a whole number from 0 (automatic) to ${MAX_THREADS}.`);
    }
    const undoMemoryMb = Number(undoMb);
    if (!(Number.isInteger(undoMemoryMb) && undoMemoryMb >= MIN_UNDO_MB && undoMemoryMb <= MAX_UNDO_MB)) {
      return setError(`Undo memory must be a whole number of MiB from ${MIN_UNDO_MB} to ${MAX_UNDO_MB}.`);
    }
    setSaving(true);
    setError(null);
    try {
      const folder = outputFolder.trim();
      const saved = await client.call('settings.set', {
        providers,
        threads: threadCount,
        releaseTextEncoders,
        outputFolder: folder === '' ? null : folder,
        undoMemoryMb,
      });
      setLoaded(saved);
      applyStudioSettings(saved);
      notify('info', 'Settings saved.');
      onClose();
    } catch (err) {
      setError(`Could not save the settings: ${describeError(err)}`);
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal settings" role="dialog" aria-modal="true" aria-label="Settings" onClick={(e) => e.stopPropagation()}>
        <h2>Settings</h2>
        {loaded === null && error === null && <p className="hint-text">Loading…</p>}
        <fieldset className="provider-list">
          <legend>Execution providers, tried in this order</legend>
          {rows.map((row, i) => (
            <div key={row.name} className="provider-row">
              <label>
                <input
                  type="checkbox"
                  aria-label={`Use ${PROVIDER_LABELS[row.name]}`}
                  checked={row.enabled}
                  onChange={(e) => setRows((list) => list.map((r) => (r.name === row.name ? { ...r, enabled: e.target.checked } : r)))}
                />
                {PROVIDER_LABELS[row.name]}
              </label>
              <button type="button" aria-label={`Move ${PROVIDER_LABELS[row.name]} up`} disabled={i === 0} onClick={() => move(i, -1)}>↑</button>
              <button type="button" aria-label={`Move ${PROVIDER_LABELS[row.name]} down`} disabled={i === rows.length - 1} onClick={() => move(i, 1)}>↓</button>
            </div>
          ))}
        </fieldset>
        <label className="field" title="0 lets onnxruntime decide">
          <span>CPU threads (0 = automatic)</span>
          <input type="number" aria-label="CPU threads" min={0} max={MAX_THREADS} value={threads} onChange={(e) => setThreads(e.target.value)} />
        </label>
        <label
          className="check"
          title="Frees the text encoders' memory once a job's prompts are encoded (SDXL's are over 1 GB); the next new prompt loads them again from disk"
        >
          <input type="checkbox" aria-label="Release text encoders after encoding" checked={releaseTextEncoders} onChange={(e) => setReleaseTextEncoders(e.target.checked)} />
          Release text encoders after encoding (less memory, slower prompt changes)
        </label>
        <label className="field" title="Each result is also written there as a PNG; empty: only the history folder">
          <span>Output folder (empty = history only)</span>
          <input type="text" aria-label="Output folder" placeholder="/path/to/folder" value={outputFolder} onChange={(e) => setOutputFolder(e.target.value)} />
        </label>
        <label className="field" title="The canvas keeps undo steps up to this much memory; the oldest go first">
          <span>Undo memory (MiB)</span>
          <input type="number" aria-label="Undo memory" min={MIN_UNDO_MB} max={MAX_UNDO_MB} value={undoMb} onChange={(e) => setUndoMb(e.target.value)} />
        </label>
        {error && (
          <p className="error-text" role="alert">
            {error}
          </p>
        )}
        <div className="modal-actions">
          <button type="button" className="primary" disabled={saving || loaded === null} onClick={() => void save()}>
            Save settings
          </button>
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </div>
  );
}
