/** The canvas region: toolbar, stage, staging bar and the empty state. */
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useDocumentShape, useRegions, useSession } from '../session/hooks.js';
import { stagedWarnings, useStore } from '../session/store.js';
import { MAX_BRUSH_SIZE, MIN_BRUSH_SIZE } from '../document/brush.js';
import { MAX_MASK_OP_RADIUS } from '../document/mask-ops.js';
import { CanvasView, viewCommands } from './CanvasView.js';
import type { LayoutPalette } from '../document/layout.js';
import { withTarget } from './tool-state.js';
import { useTools } from './tools.js';

function ToolButton(props: { label: string; pressed?: boolean; disabled?: boolean; onClick: () => void; title?: string; children: ReactNode }) {
  return (
    <button
      type="button"
      className={`tool-button ${props.pressed ? 'is-on' : ''}`}
      aria-label={props.label}
      aria-pressed={props.pressed}
      disabled={props.disabled}
      title={props.title ?? props.label}
      onClick={props.onClick}
    >
      {props.children}
    </button>
  );
}

function rgb(color: readonly [number, number, number]): string {
  return `rgb(${color[0]}, ${color[1]}, ${color[2]})`;
}

/** The layout model's labels as buttons: picking one sets what the layout brush and fill paint. */
function LabelPalette({ palette, selected }: { palette: LayoutPalette; selected: number }) {
  const toolStore = useTools();
  return (
    <div className="label-palette" role="group" aria-label="Layout labels">
      <span className="group-label">Labels</span>
      {palette.map((l) => (
        <button
          key={l.id}
          type="button"
          className={`label-chip ${l.id === selected ? 'is-on' : ''}`}
          aria-label={l.name}
          aria-pressed={l.id === selected}
          title={`Paint “${l.name}” (label ${l.id})`}
          onClick={() => toolStore.update({ layoutLabel: l.id, ...(toolStore.get().tool === 'eraser' ? { tool: 'brush' as const } : {}) })}
        >
          <span className="label-swatch" style={{ background: rgb(l.color) }} aria-hidden="true" />
          {l.name}
        </button>
      ))}
    </div>
  );
}

export function EditorPanel() {
  const { acceptStaged, discardStaged, doc, extendCanvas, flipStaged, layoutPalette, modelsStore, openImageFile, openLayoutFile, paintRegionStore, settingsStore, stagingStore } = useSession();
  const toolStore = useTools();
  useDocumentShape();
  const tool = useStore(toolStore);
  const staging = useStore(stagingStore);
  const settings = useStore(settingsStore);
  const models = useStore(modelsStore);
  const selectedInfo = models.selectedId ? models.info[models.selectedId] : undefined;
  const palette = layoutPalette(models);
  const paintRegion = useStore(paintRegionStore);
  const regions = useRegions();
  const regionIndex = regions.findIndex((r) => r.id === paintRegion);
  const onRegion = regionIndex >= 0 ? regions[regionIndex]! : null;
  const onLayout = tool.target === 'layout' && !onRegion;
  // Regions are painted with the brush and eraser only.
  useEffect(() => {
    if (onRegion && tool.tool !== 'brush' && tool.tool !== 'eraser') toolStore.update({ tool: 'brush' });
  }, [onRegion, tool.tool]);
  // A model with fewer labels was picked: paint a label it has.
  useEffect(() => {
    if (palette.length > 0 && tool.layoutLabel >= palette.length) toolStore.update({ layoutLabel: Math.min(1, palette.length - 1) });
  }, [palette.length, tool.layoutLabel]);
  const fileInput = useRef<HTMLInputElement>(null);
  const layoutFileInput = useRef<HTMLInputElement>(null);
  const [dragging, setDragging] = useState(false);

  useEffect(() => {
    const paste = (e: ClipboardEvent) => {
      const file = [...(e.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
      if (file) {
        e.preventDefault();
        void openImageFile(file, file.name || 'pasted image');
      }
    };
    window.addEventListener('paste', paste);
    return () => window.removeEventListener('paste', paste);
  }, []);

  const staged = staging.items.length > 0;
  const warnings = stagedWarnings(staging);
  const waiting = staging.jobIds.length > 0 && !staged;
  return (
    <section
      className={`editor ${dragging ? 'is-dropping' : ''}`}
      aria-label="Canvas"
      onDragOver={(e) => {
        if ([...e.dataTransfer.items].some((i) => i.kind === 'file')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={(e) => {
        e.preventDefault();
        setDragging(false);
        const file = [...e.dataTransfer.files].find((f) => f.type.startsWith('image/'));
        if (file) void openImageFile(file, file.name);
      }}
    >
      <div className="toolbar" role="toolbar" aria-label="Canvas tools">
        <div className="group">
          <ToolButton label="Open image" onClick={() => fileInput.current?.click()} title="Open an image (or drop / paste one)">Open</ToolButton>
          <ToolButton label="New canvas" onClick={() => doc.newBlank(settings.width, settings.height)} title={`Blank ${settings.width} × ${settings.height} canvas (txt2img)`}>New</ToolButton>
          <input
            ref={fileInput}
            type="file"
            accept="image/png,image/jpeg,image/webp"
            hidden
            aria-label="Image file"
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void openImageFile(f, f.name);
              e.target.value = '';
            }}
          />
        </div>
        <div className="group">
          <ToolButton
            label="Layout"
            pressed={onLayout}
            disabled={!onLayout && !selectedInfo?.layout}
            onClick={() => {
              paintRegionStore.set(null);
              toolStore.update(withTarget(tool, onLayout ? 'mask' : 'layout'));
            }}
            title={onLayout || selectedInfo?.layout ? 'Paint the layout: labels a layout model turns into a picture (L)' : 'Layout needs a layout model (one with labels.json): pick one in the model list'}
          >
            ▦ Layout
          </ToolButton>
          {onRegion && (
            <span className="painting-region" role="status" aria-label="Painting region">
              <span className="label-swatch" style={{ background: rgb(onRegion.colour) }} aria-hidden="true" />
              Region {regionIndex + 1}
              <button type="button" className="link" onClick={() => paintRegionStore.set(null)} title="Back to painting the inpaint mask">mask</button>
            </span>
          )}
          <ToolButton label="Brush" pressed={tool.tool === 'brush'} onClick={() => toolStore.update({ tool: 'brush' })} title={onLayout ? 'Brush (B): paint the chosen label' : 'Brush (B): paint the area to repaint'}>✎ Brush</ToolButton>
          <ToolButton label="Eraser" pressed={tool.tool === 'eraser'} onClick={() => toolStore.update({ tool: 'eraser' })} title={onLayout ? 'Eraser (E): back to background' : 'Eraser (E)'}>⌫ Eraser</ToolButton>
          {onLayout && (
            <ToolButton label="Fill region" pressed={tool.tool === 'fill'} onClick={() => toolStore.update({ tool: 'fill' })} title="Fill: the connected area under the click takes the chosen label">◧ Fill</ToolButton>
          )}
          <label className="slider" title="Brush size ([ and ])">
            <span>Size</span>
            <input type="range" aria-label="Brush size" min={MIN_BRUSH_SIZE} max={Math.min(MAX_BRUSH_SIZE, 512)} value={tool.size} onChange={(e) => toolStore.update({ size: Number(e.target.value) })} />
            <output>{tool.size}</output>
          </label>
          <label className="slider" title="Hardness: soft edges feather the repaint">
            <span>Hard</span>
            <input type="range" aria-label="Brush hardness" disabled={onLayout} min={0} max={100} value={Math.round(tool.hardness * 100)} onChange={(e) => toolStore.update({ hardness: Number(e.target.value) / 100 })} />
          </label>
          <label className="slider" title="Brush opacity">
            <span>Flow</span>
            <input type="range" aria-label="Brush opacity" disabled={onLayout} min={5} max={100} value={Math.round(tool.opacity * 100)} onChange={(e) => toolStore.update({ opacity: Number(e.target.value) / 100 })} />
          </label>
        </div>
        <div className="group">
          <ToolButton label="Undo" disabled={!doc.canUndo} onClick={() => doc.undo()} title={`Undo${doc.undoLabel ? ` ${doc.undoLabel.toLowerCase()}` : ''} (Ctrl+Z)`}>↶</ToolButton>
          <ToolButton label="Redo" disabled={!doc.canRedo} onClick={() => doc.redo()} title={`Redo${doc.redoLabel ? ` ${doc.redoLabel.toLowerCase()}` : ''} (Ctrl+Shift+Z)`}>↷</ToolButton>
        </div>
        {onLayout ? (
          <div className="group" role="group" aria-label="Layout layer">
            <ToolButton label="Clear layout" disabled={doc.layout.isEmpty()} onClick={() => doc.clearLayout()} title="Everything back to background">Clear</ToolButton>
            <ToolButton label="Open layout" onClick={() => layoutFileInput.current?.click()} title="Open a label map PNG (each colour becomes the nearest label)">Open…</ToolButton>
            <input
              ref={layoutFileInput}
              type="file"
              accept="image/png"
              hidden
              aria-label="Layout file"
              onChange={(e) => {
                const f = e.target.files?.[0];
                if (f) void openLayoutFile(f, f.name);
                e.target.value = '';
              }}
            />
            <ToolButton label="Show layout" pressed={tool.layoutVisible} onClick={() => toolStore.update({ layoutVisible: !tool.layoutVisible })} title="Show or hide the layout">Show</ToolButton>
            <label className="slider" title="Layout colours over the image">
              <span>Opacity</span>
              <input type="range" aria-label="Layout opacity" min={10} max={100} value={Math.round(tool.layoutOpacity * 100)} onChange={(e) => toolStore.update({ layoutOpacity: Number(e.target.value) / 100 })} />
            </label>
          </div>
        ) : (
          <div className="group">
            <ToolButton label="Invert mask" onClick={() => doc.invertMask()} title="Invert mask (I)">Invert</ToolButton>
            <ToolButton label="Clear mask" onClick={() => doc.clearMask()} title="Clear mask">Clear</ToolButton>
            <ToolButton label="Fill mask" onClick={() => doc.fillMask()} title="Mask everything">Fill</ToolButton>
          </div>
        )}
        {!onLayout && (
          <div className="group" role="group" aria-label="Mask tools">
            <label className="number" title="How many image pixels Grow, Shrink and Feather move the mask's edge">
              <span>px</span>
              <input type="number" aria-label="Mask edit pixels" min={1} max={MAX_MASK_OP_RADIUS} step={1} value={tool.maskRadius} onChange={(e) => toolStore.update({ maskRadius: Math.min(MAX_MASK_OP_RADIUS, Math.max(1, Math.round(Number(e.target.value) || 1))) })} style={{ width: '4em' }} />
            </label>
            <ToolButton label="Grow mask" onClick={() => doc.growMask(tool.maskRadius)} title={`Grow the mask by ${tool.maskRadius} px`}>Grow</ToolButton>
            <ToolButton label="Shrink mask" onClick={() => doc.shrinkMask(tool.maskRadius)} title={`Shrink the mask by ${tool.maskRadius} px`}>Shrink</ToolButton>
            <ToolButton label="Feather mask" onClick={() => doc.featherMask(tool.maskRadius)} title={`Soften the mask's edge over about ${tool.maskRadius} px`}>Feather</ToolButton>
            <ToolButton label="Magic wand" pressed={tool.tool === 'wand'} disabled={!doc.image} onClick={() => toolStore.update({ tool: 'wand' })} title="Wand: click the image to mask the colours near the clicked one">✦ Wand</ToolButton>
            <label className="number" title="Wand tolerance: the largest difference per colour channel (0 to 255)">
              <span>Tol</span>
              <input type="number" aria-label="Wand tolerance" min={0} max={255} step={1} value={tool.wandTolerance} onChange={(e) => toolStore.update({ wandTolerance: Math.min(255, Math.max(0, Math.round(Number(e.target.value) || 0))) })} style={{ width: '4em' }} />
            </label>
            <label title="Only the connected area (off: every pixel of a near colour)">
              <input type="checkbox" aria-label="Wand contiguous" checked={tool.wandContiguous} onChange={(e) => toolStore.update({ wandContiguous: e.target.checked })} />
              <span>Connected</span>
            </label>
            <ToolButton label="Show mask" pressed={tool.maskVisible} onClick={() => toolStore.update({ maskVisible: !tool.maskVisible })} title="Show or hide the mask (H)">Mask</ToolButton>
            <label className="slider" title="Mask overlay opacity">
              <span>Tint</span>
              <input type="range" aria-label="Mask opacity" min={10} max={100} value={Math.round(tool.maskOpacity * 100)} onChange={(e) => toolStore.update({ maskOpacity: Number(e.target.value) / 100 })} />
            </label>
          </div>
        )}
        <div className="group" role="group" aria-label="Extend canvas (outpainting)">
          <span className="group-label">Extend</span>
          <ToolButton label="Extend left" disabled={!doc.image} onClick={() => void extendCanvas('left')}>←</ToolButton>
          <ToolButton label="Extend up" disabled={!doc.image} onClick={() => void extendCanvas('top')}>↑</ToolButton>
          <ToolButton label="Extend down" disabled={!doc.image} onClick={() => void extendCanvas('bottom')}>↓</ToolButton>
          <ToolButton label="Extend right" disabled={!doc.image} onClick={() => void extendCanvas('right')}>→</ToolButton>
        </div>
        <div className="group push-right">
          <ToolButton label="Fit to screen" onClick={() => viewCommands.current?.fit()} title="Fit to screen (F)">Fit</ToolButton>
          <ToolButton label="Actual size" onClick={() => viewCommands.current?.actual()} title="100 % (1)">100%</ToolButton>
        </div>
      </div>
      {onLayout && <LabelPalette palette={palette} selected={tool.layoutLabel} />}
      <div className="stage-wrap">
        <CanvasView />
        {!doc.image && !staged && !waiting && (
          <div className="empty-state" aria-hidden="false">
            <p className="empty-title">Blank {doc.width} × {doc.height} canvas</p>
            <p>Write a prompt and press <kbd>Generate</kbd> to make an image, or <button type="button" className="link" onClick={() => fileInput.current?.click()}>open</button>, drop or paste one to repaint part of it.</p>
          </div>
        )}
        {staged && (
          <div className="staging-bar" role="group" aria-label="Staged result">
            <span className="staging-count">
              Result {staging.index + 1} / {staging.items.length}
              {staging.jobIds.length > staging.items.length ? ` (${staging.jobIds.length - staging.items.length} more coming)` : ''}
            </span>
            {staging.items.length > 1 && (
              <>
                <button type="button" aria-label="Previous result" onClick={() => flipStaged(-1)}>‹</button>
                <button type="button" aria-label="Next result" onClick={() => flipStaged(1)}>›</button>
              </>
            )}
            <button type="button" className="primary" onClick={acceptStaged} title="Make this the new base image (Enter)">Accept</button>
            <button type="button" onClick={discardStaged} title="Discard this result (Delete)">Discard</button>
            {warnings.length > 0 && (
              <ul className="staging-warnings" aria-label="Warnings for this result">
                {warnings.map((w) => (
                  <li key={w}>⚠ {w}</li>
                ))}
              </ul>
            )}
          </div>
        )}
        <div className="canvas-info" aria-live="polite">
          {doc.width} × {doc.height}
          {doc.image?.source.kind === 'history' ? ` · #${doc.image.source.historyId}` : doc.image?.source.kind === 'file' ? ` · ${doc.image.source.name}` : ' · blank'}
        </div>
      </div>
    </section>
  );
}
