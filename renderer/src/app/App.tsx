/**
 * The composition root: makes the one studio client, editor document, session and tool store of this
 * page, hands them down through React context, and lays out the panels. Nothing imports this file but
 * main.tsx, so every other import runs one way: app → features / editor → session → document, ipc.
 */
import { useEffect, useState } from 'react';
import { DEFAULT_TOOL_STATE, stepBrushSize, withTarget, type ToolState } from '../editor/tool-state.js';
import { EditorPanel } from '../editor/EditorPanel.js';
import { viewCommands } from '../editor/CanvasView.js';
import { ToolsContext } from '../editor/tools.js';
import { EditorDocument } from '../document/document.js';
import { HistoryBrowser } from '../features/HistoryBrowser.js';
import { PromptPanel } from '../features/PromptPanel.js';
import { ModelManager } from '../features/ModelManager.js';
import { SettingsDialog } from '../features/SettingsDialog.js';
import { createStudioClient } from '../ipc/studio-client.js';
import { SessionContext } from '../session/hooks.js';
import { createSession, type StudioSession } from '../session/session.js';
import { Store, useStore } from '../session/store.js';

/** The blank canvas a new page starts with (the model's native size replaces it once models load). */
const START_SIDE = 512;

export const SHORTCUTS: Array<[string, string]> = [
  ['Ctrl+Enter', 'Generate'],
  ['B / E', 'Brush / eraser'],
  ['L', 'Paint the layout / the mask (layout models)'],
  ['[ / ]', 'Smaller / larger brush'],
  ['Ctrl+Z', 'Undo (one stroke)'],
  ['Ctrl+Shift+Z, Ctrl+Y', 'Redo'],
  ['Esc', 'Cancel the stroke in progress; close this sheet'],
  ['Space + drag', 'Pan'],
  ['Wheel, Ctrl+wheel', 'Zoom at the pointer'],
  ['F / 1', 'Fit to screen / 100 %'],
  ['I', 'Invert mask'],
  ['H', 'Show or hide the mask'],
  ['Enter / Delete', 'Accept / discard the staged result'],
  ['← / →', 'Previous / next result of a batch'],
  ['?', 'This sheet'],
];

function isTyping(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

function ShortcutSheet({ onClose }: { onClose: () => void }) {
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" onClick={(e) => e.stopPropagation()}>
        <h2>Keyboard shortcuts</h2>
        <table>
          <tbody>
            {SHORTCUTS.map(([k, v]) => (
              <tr key={k}>
                <td><kbd>{k}</kbd></td>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" onClick={onClose} autoFocus>Close</button>
      </div>
    </div>
  );
}

/** Provides this page's session and tools, made once for the page's lifetime. */
export function App() {
  const [root] = useState(() => {
    const session = createSession(createStudioClient(), new EditorDocument(START_SIDE, START_SIDE));
    return { session, tools: new Store<ToolState>(DEFAULT_TOOL_STATE) };
  });
  return (
    <SessionContext.Provider value={root.session}>
      <ToolsContext.Provider value={root.tools}>
        <Studio session={root.session} toolStore={root.tools} />
      </ToolsContext.Provider>
    </SessionContext.Provider>
  );
}

function Studio({ session, toolStore }: { session: StudioSession; toolStore: Store<ToolState> }) {
  const { acceptStaged, connect, connectionStore, discardStaged, doc, flipStaged, generate, noticesStore, selectedModelInfo, stagingStore } = session;
  const [sheet, setSheet] = useState(false);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [modelsOpen, setModelsOpen] = useState(false);
  const notices = useStore(noticesStore);
  const conn = useStore(connectionStore);

  useEffect(() => connect(), [connect]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.key === 'Enter') {
        e.preventDefault();
        void generate();
        return;
      }
      if (e.key === 'Escape') {
        if (sheet) setSheet(false);
        else if (settingsOpen) setSettingsOpen(false);
        else if (modelsOpen) setModelsOpen(false);
        else if (doc.cancelStroke()) e.preventDefault();
        return;
      }
      if (isTyping(e.target) || settingsOpen || modelsOpen) return;
      const key = e.key.toLowerCase();
      if (mod && key === 'z') {
        e.preventDefault();
        if (e.shiftKey) doc.redo();
        else doc.undo();
        return;
      }
      if (mod && key === 'y') {
        e.preventDefault();
        doc.redo();
        return;
      }
      if (mod || e.altKey) return;
      const staged = stagingStore.get().items.length > 0;
      switch (e.key) {
        case '?':
          setSheet((s) => !s);
          break;
        case 'b':
        case 'B':
          toolStore.update({ tool: 'brush' });
          break;
        case 'e':
        case 'E':
          toolStore.update({ tool: 'eraser' });
          break;
        case 'l':
        case 'L': {
          const t = toolStore.get();
          session.paintRegionStore.set(null);
          if (t.target === 'layout') toolStore.update(withTarget(t, 'mask'));
          else if (selectedModelInfo()?.layout) toolStore.update(withTarget(t, 'layout'));
          break;
        }
        case '[':
          toolStore.update({ size: stepBrushSize(toolStore.get().size, -1) });
          break;
        case ']':
          toolStore.update({ size: stepBrushSize(toolStore.get().size, 1) });
          break;
        case 'f':
        case 'F':
          viewCommands.current?.fit();
          break;
        case '1':
          viewCommands.current?.actual();
          break;
        case 'i':
        case 'I':
          doc.invertMask();
          break;
        case 'h':
        case 'H':
          toolStore.update({ maskVisible: !toolStore.get().maskVisible });
          break;
        case 'Enter':
          // A focused button keeps its own Enter (keyboard activation, e.g. the queue's Move up/down).
          if (!staged || (e.target instanceof Element && e.target.closest('button, a[href], [role="button"]'))) return;
          acceptStaged();
          break;
        case 'Delete':
        case 'Backspace':
          if (staged) discardStaged();
          break;
        case 'ArrowLeft':
          if (staged) flipStaged(-1);
          break;
        case 'ArrowRight':
          if (staged) flipStaged(1);
          break;
        default:
          return;
      }
      e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [sheet, settingsOpen, modelsOpen, session, toolStore]);

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Latent Studio</span>
        <span className={`engine-state state-${conn.connected ? conn.engine : 'offline'}`} title="Engine status">
          {conn.connected ? `engine ${conn.engine}` : 'host offline'}
        </span>
        <button type="button" className="ghost" onClick={() => setModelsOpen(true)} title="Import, download, set the default, remove">Models</button>
        <button type="button" className="ghost" onClick={() => setSettingsOpen(true)} title="Execution providers, CPU threads, output folder">Settings</button>
        <button type="button" className="ghost" aria-label="Keyboard shortcuts" onClick={() => setSheet(true)} title="Keyboard shortcuts (?)">?</button>
      </header>
      <PromptPanel />
      <EditorPanel />
      <HistoryBrowser />
      <div className="notices" role="status" aria-live="polite">
        {notices.map((n) => (
          <div key={n.id} className={`notice ${n.kind}`} role={n.kind === 'error' ? 'alert' : undefined}>
            {n.text}
          </div>
        ))}
      </div>
      {sheet && <ShortcutSheet onClose={() => setSheet(false)} />}
      {settingsOpen && <SettingsDialog onClose={() => setSettingsOpen(false)} />}
      {modelsOpen && <ModelManager onClose={() => setModelsOpen(false)} />}
    </div>
  );
}
