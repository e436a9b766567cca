/**
 * The model manager: every model in the library (kind, origin, size, providers, default, missing), import
 * a folder by path (in place or copied), set the default, remove, and download a folder from URLs with
 * live progress and Cancel. A `.safetensors` path shows the command that converts it instead of an
 * import. The list follows `models.changed`, so a model added from the app menu shows up here too.
 */
import { useCallback, useEffect, useState, type DragEvent } from 'react';
import type { Responses } from '../../../electron/shared/contract.js';
import type { ModelDownloadProgress } from '../../../electron/shared/model-library.js';
import { describeError } from '../session/session.js';
import { useSession } from '../session/hooks.js';

type ModelList = Responses['models.list'];

const FINAL_PHASES = new Set<ModelDownloadProgress['phase']>(['done', 'failed', 'cancelled']);
/** A single-file checkpoint: it is converted to an ONNX folder first (the app bundles no Python). */
const CHECKPOINT_FILE = /\.safetensors$/i;

type ConvertCommand = Responses['models.convertCommand'] & { source: string; fp16: boolean };

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function ModelManager({ onClose }: { onClose: () => void }) {
  const { client, importModelFolder, loadModels, notify } = useSession();
  const [list, setList] = useState<ModelList | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [path, setPath] = useState('');
  const [copy, setCopy] = useState(false);
  const [busy, setBusy] = useState(false);
  const [downloadName, setDownloadName] = useState('');
  const [downloadUrls, setDownloadUrls] = useState('');
  const [progress, setProgress] = useState<Record<string, ModelDownloadProgress>>({});
  const [convert, setConvert] = useState<ConvertCommand | null>(null);

  const refresh = useCallback(async (): Promise<void> => {
    try {
      setList(await client.call('models.list', {}));
    } catch (err) {
      setError(`Could not list the models: ${describeError(err)}`);
    }
  }, []);

  // The library changed elsewhere too (the app menu, another window, a finished download): list it again.
  useEffect(() => client.on('models.changed', () => void refresh()), [refresh]);

  useEffect(() => {
    void refresh();
    return client.on('models.downloadProgress', (p) => {
      setProgress((all) => ({ ...all, [p.downloadId]: p }));
      if (FINAL_PHASES.has(p.phase)) {
        if (p.phase === 'failed') setError(`The download of ${p.name} failed: ${p.error?.message ?? 'unknown error'}`);
        if (p.phase === 'done') notify('info', `Downloaded ${p.name}.`);
        void refresh();
        void loadModels();
      }
    });
  }, [refresh]);

  /** Runs a library change, then reloads this list and the prompt panel's picker. */
  const act = async (what: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await what();
      await refresh();
      await loadModels();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  /** Shows the command that converts a checkpoint, instead of an import that can't work. */
  const showConvertCommand = async (source: string, fp16: boolean): Promise<void> => {
    try {
      setConvert({ ...(await client.call('models.convertCommand', { path: source, fp16 })), source, fp16 });
      setError(null);
    } catch (err) {
      setError(describeError(err));
    }
  };

  const importFolder = (): Promise<void> => {
    if (CHECKPOINT_FILE.test(path.trim())) return showConvertCommand(path.trim(), convert?.fp16 ?? false);
    setConvert(null);
    return act(async () => {
      const problem = await importModelFolder(path, copy);
      if (problem) throw new Error(problem);
      setPath('');
    });
  };

  /**
   * A dropped folder or file. The desktop app knows its path: a checkpoint shows its convert command at
   * once, a folder fills the path. A browser tells the page only its name, so the path is completed by hand.
   */
  const onDrop = (e: DragEvent<HTMLFieldSetElement>): void => {
    const file = e.dataTransfer.files[0];
    if (!file) return;
    e.preventDefault();
    const fullPath = client.pathForFile(file);
    if (fullPath) {
      setPath(fullPath);
      setError(null);
      if (CHECKPOINT_FILE.test(fullPath)) void showConvertCommand(fullPath, convert?.fp16 ?? false);
      return;
    }
    setPath(file.name);
    setError(
      CHECKPOINT_FILE.test(file.name)
        ? `Type the folder in front of ${file.name} (the browser does not tell the page where the file is), then press Import to see the command that converts it.`
        : `Type the folder in front of ${file.name} (the browser does not tell the page where it is), then press Import.`,
    );
  };

  const startDownload = (): Promise<void> =>
    act(async () => {
      const urls = downloadUrls.split(/\s+/).filter((u) => u !== '');
      if (!downloadName.trim()) throw new Error('Give the model a name for its folder.');
      if (urls.length === 0) throw new Error('List the URLs of the model files, one a line.');
      const { downloadId } = await client.call('models.download', { name: downloadName.trim(), urls });
      notify('info', `Downloading ${downloadName.trim()} (${downloadId}).`);
    });

  const running = list?.downloads ?? [];

  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal models" role="dialog" aria-modal="true" aria-label="Models" onClick={(e) => e.stopPropagation()}>
        <h2>Models</h2>
        {list === null && error === null && <p className="hint-text">Loading…</p>}
        {list && list.models.length === 0 && <p className="hint-text">No models yet: import a folder or download one below.</p>}
        {list && list.models.length > 0 && (
          <table aria-label="Installed models">
            <thead>
              <tr>
                <th>Name</th>
                <th>Kind</th>
                <th>Origin</th>
                <th>Size</th>
                <th>Providers</th>
                <th>State</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.models.map((m) => (
                <tr key={m.id} data-model-id={m.id}>
                  <td title={m.dir}>
                    {m.name}
                    {m.isDefault && <span className="default-marker"> (default)</span>}
                  </td>
                  <td>{m.kind}</td>
                  <td>{m.origin}</td>
                  <td>{formatBytes(m.sizeBytes)}</td>
                  <td>{m.providers.length > 0 ? m.providers.join(', ') : '—'}</td>
                  <td>{m.available ? 'ready' : <span className="error-text">missing</span>}</td>
                  <td className="model-actions">
                    <button type="button" aria-label={`Make ${m.name} the default`} disabled={busy || m.isDefault || !m.available} onClick={() => void act(() => client.call('models.setDefault', { modelId: m.id }))}>
                      Default
                    </button>
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Remove ${m.name}`}
                      title={m.readOnly ? 'Bundled models cannot be removed' : m.origin === 'referenced' ? 'Forget this model (the folder stays where it is)' : 'Remove this model and delete its copy'}
                      disabled={busy || m.readOnly}
                      onClick={() =>
                        void act(async () => {
                          const { failedJobs } = await client.call('models.remove', { modelId: m.id });
                          // Its waiting jobs could never run: the host failed them at once; say so here.
                          if (failedJobs.length > 0) notify('error', `${failedJobs.length} queued job${failedJobs.length === 1 ? '' : 's'} for ${m.name} will not run: the model was removed.`);
                        })
                      }
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}

        <fieldset className="model-form" onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
          <legend>Import a folder</legend>
          <input type="text" aria-label="Folder to import" placeholder="/path/to/model (with model_index.json)" value={path} onChange={(e) => setPath(e.target.value)} />
          <label>
            <input type="checkbox" aria-label="Copy into the library" checked={copy} onChange={(e) => setCopy(e.target.checked)} /> Copy into the library
          </label>
          <button type="button" disabled={busy} onClick={() => void importFolder()}>
            Import
          </button>
          {convert && (
            <div className="convert-command" role="group" aria-label="Convert the checkpoint">
              <p className="hint-text">
                {convert.source} is a single-file checkpoint, not an ONNX model folder. The app bundles no Python: run this with the native-models tooling
                (native-models/tools/setup-venv.sh makes its venv), then import the folder it writes.
              </p>
              <textarea aria-label="Convert command" readOnly rows={3} value={convert.command} onFocus={(e) => e.currentTarget.select()} spellCheck={false} />
              <label>
                <input
                  type="checkbox"
                  aria-label="Half precision (fp16)"
                  checked={convert.fp16}
                  onChange={(e) => {
                    const fp16 = e.target.checked;
                    setConvert({ ...convert, fp16 });
                    void showConvertCommand(convert.source, fp16);
                  }}
                />{' '}
                Half precision (fp16)
              </label>
              <button
                type="button"
                onClick={() =>
                  void navigator.clipboard.writeText(convert.command).then(
                    () => notify('info', 'Command copied.'),
                    () => notify('error', 'The browser did not allow copying: select the command and copy it by hand.'),
                  )
                }
              >
                Copy command
              </button>
              <button
                type="button"
                onClick={() => {
                  setPath(convert.out);
                  setConvert(null);
                }}
              >
                Import {convert.out} next
              </button>
            </div>
          )}
        </fieldset>

        <fieldset className="model-form">
          <legend>Download</legend>
          <input type="text" aria-label="Download name" placeholder="my-model" value={downloadName} onChange={(e) => setDownloadName(e.target.value)} />
          <textarea aria-label="Download URLs" rows={3} placeholder="https://… one URL a line" value={downloadUrls} onChange={(e) => setDownloadUrls(e.target.value)} />
          <button type="button" disabled={busy} onClick={() => void startDownload()}>
            Download
          </button>
          {running.map((d) => {
            const p = progress[d.downloadId] ?? d.progress;
            const percent = p?.percent ?? null;
            return (
              <div key={d.downloadId} className="download-row">
                <span>
                  {d.name}: {p ? p.phase : d.running ? 'starting' : 'stopped'} · {formatBytes(p?.receivedBytes ?? d.receivedBytes)}
                  {percent !== null ? ` (${Math.round(percent)} %)` : ''}
                </span>
                <progress aria-label={`Download of ${d.name}`} max={100} value={percent ?? undefined} />
                <button type="button" aria-label={`Cancel the download of ${d.name}`} onClick={() => void act(() => client.call('models.cancelDownload', { downloadId: d.downloadId }))}>
                  Cancel
                </button>
              </div>
            );
          })}
        </fieldset>

        {error && (
          <p className="error-text" role="alert">
            {error}
          </p>
        )}
        <div className="modal-actions">
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </div>
  );
}
