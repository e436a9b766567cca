/**
 * The canvas: a Konva stage with layers split by update rate (excalidraw's habit): the image (base,
 * staged result or live preview), the layout and the mask overlays (redrawn per dab, only the dirty rect
 * is recoloured). The brush cursor is a DOM ring over the stage, not a canvas layer: a stage-size canvas
 * that changes on every pointer move is copied to the compositor and composited in software each frame
 * (a trace of bench:ui's stroke: about half the main thread's frame work), where moving a small element
 * costs neither.
 */
import type Konva from 'konva';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type RefObject } from 'react';
import { Image as KImage, Layer, Rect, Shape, Stage } from 'react-konva';
import { useDocumentShape, useImageElement, useRegions, useSession, useSourceUrl, useHashUrl } from '../session/hooks.js';
import { useStore } from '../session/store.js';
import { LayoutOverlay } from './layout-overlay.js';
import { useLiveLayer } from './live-layer.js';
import { useTools } from './tools.js';
import { unionRect, type PixelRect } from '../document/mask.js';
import { MaskOverlay, type TiledOverlay } from './mask-overlay.js';
import { RegionOverlay } from './region-overlay.js';
import { actualSize, fitToView, screenToImage, wheelZoom, type Viewport } from './viewport.js';

export interface ViewCommands {
  fit(): void;
  actual(): void;
}
/** Set by the mounted view so the toolbar and shortcuts can fit / 100 %. */
export const viewCommands: { current: ViewCommands | null } = { current: null };

/** How strongly the regions' colours tint the picture. */
const REGION_OPACITY = 0.5;

/** Screen radius (CSS px) of the fill tool's cursor ring. */
const FILL_CURSOR_RADIUS = 4;

interface TiledDraw {
  layerRef: RefObject<Konva.Layer | null>;
  sceneFunc: (ctx: Konva.Context) => void;
  /** Redraw `rect` (image pixels) on the next frame, or everything (null). */
  invalidate: (rect: PixelRect | null) => void;
}

/**
 * Draws a tiled overlay on its own Konva layer, redrawing only what changed: a rect (image pixels) while
 * painting, or everything when the view moved or the layer's props changed. Redrawing only what a dab
 * touched keeps a frame cheap on a 2048² canvas, where a full redraw resamples the whole overlay.
 */
function useTiledDraw(overlay: TiledOverlay | null, viewRef: RefObject<Viewport>, stageWidth: number): TiledDraw {
  const layerRef = useRef<Konva.Layer>(null);
  const pendingRect = useRef<PixelRect | null>(null);
  const partialRedraw = useRef(false);
  const lastDrawKey = useRef('');

  const invalidate = useCallback((rect: PixelRect | null) => {
    if (rect) {
      pendingRect.current = partialRedraw.current ? unionRect(pendingRect.current, rect) : rect;
      partialRedraw.current = true;
    } else partialRedraw.current = false;
    layerRef.current?.batchDraw();
  }, []);

  const sceneFunc = useCallback(
    (ctx: Konva.Context) => {
      const native = ctx._context;
      const layerCanvas = native.canvas;
      const v = viewRef.current;
      const ratio = layerCanvas.width / Math.max(1, stageWidth);
      // A partial redraw is only right when nothing but overlay pixels changed since the last draw.
      const key = `${v.scale},${v.x},${v.y},${layerCanvas.width},${layerCanvas.height},${native.globalAlpha}`;
      const partial = partialRedraw.current && lastDrawKey.current === key ? pendingRect.current : null;
      lastDrawKey.current = key;
      partialRedraw.current = false;
      pendingRect.current = null;
      native.save();
      native.setTransform(1, 0, 0, 1, 0, 0);
      const device = { scale: v.scale * ratio, x: v.x * ratio, y: v.y * ratio };
      if (!partial) {
        native.clearRect(0, 0, layerCanvas.width, layerCanvas.height);
        overlay?.draw(native, device);
      } else if (overlay) {
        // The dirty rect on screen, widened to whole device pixels so that clearing and redrawing meet
        // exactly; then every image pixel that reaches into that box is drawn again, clipped to it.
        const pad = 1;
        const sx0 = Math.max(0, Math.floor((partial.x - pad) * device.scale + device.x));
        const sy0 = Math.max(0, Math.floor((partial.y - pad) * device.scale + device.y));
        const sx1 = Math.min(layerCanvas.width, Math.ceil((partial.x + partial.width + pad) * device.scale + device.x));
        const sy1 = Math.min(layerCanvas.height, Math.ceil((partial.y + partial.height + pad) * device.scale + device.y));
        if (sx1 > sx0 && sy1 > sy0) {
          native.beginPath();
          native.rect(sx0, sy0, sx1 - sx0, sy1 - sy0);
          native.clip();
          native.clearRect(sx0, sy0, sx1 - sx0, sy1 - sy0);
          const ix0 = Math.max(0, Math.floor((sx0 - device.x) / device.scale));
          const iy0 = Math.max(0, Math.floor((sy0 - device.y) / device.scale));
          const ix1 = Math.min(overlay.width, Math.ceil((sx1 - device.x) / device.scale));
          const iy1 = Math.min(overlay.height, Math.ceil((sy1 - device.y) / device.scale));
          overlay.draw(native, device, { x: ix0, y: iy0, width: ix1 - ix0, height: iy1 - iy0 });
        }
      }
      native.restore();
    },
    [overlay, stageWidth, viewRef],
  );

  return useMemo(() => ({ layerRef, sceneFunc, invalidate }), [sceneFunc, invalidate]);
}

export function CanvasView() {
  const { doc, explainStagedPainting, maskColourRange, layoutPalette, modelsStore, liveJobStore, paintRegionStore, stagingStore } = useSession();
  const toolStore = useTools();
  const containerRef = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 800, height: 600 });
  const [view, setView] = useState<Viewport>({ scale: 1, x: 0, y: 0 });
  const viewRef = useRef(view);
  viewRef.current = view;
  const tool = useStore(toolStore);
  useDocumentShape();
  const staging = useStore(stagingStore);
  const live = useStore(liveJobStore);
  const [spaceHeld, setSpaceHeld] = useState(false);
  const panRef = useRef<{ x: number; y: number; view: Viewport } | null>(null);
  /** Where the brush cursor is (image pixels), and its ring. */
  const cursorAt = useRef<{ x: number; y: number; visible: boolean }>({ x: 0, y: 0, visible: false });
  const cursorRef = useRef<HTMLDivElement>(null);

  // ── images ────────────────────────────────────────────────────────────────────────────────
  const baseUrl = useSourceUrl(doc.image?.source ?? null);
  const base = useImageElement(baseUrl);
  const stagedItem = staging.items[staging.index] ?? null;
  const stagedUrl = useHashUrl(stagedItem?.output?.hash, false);
  const staged = useImageElement(stagedUrl);
  const running = live !== null && staging.jobIds.includes(live.jobId) ? live : null;
  const preview = useImageElement(running?.preview ?? null);

  // ── mask and layout overlays, at image resolution, in tiles ──────────────────────────────
  const [overlay, setOverlay] = useState<MaskOverlay | null>(null);
  const overlayRef = useRef<MaskOverlay | null>(null);
  const models = useStore(modelsStore);
  const palette = useMemo(() => layoutPalette(models), [models]);
  const [layoutOverlay, setLayoutOverlay] = useState<LayoutOverlay | null>(null);
  const layoutOverlayRef = useRef<LayoutOverlay | null>(null);
  // The regions' overlay exists only while there are regions (its tiles cost 4 bytes a pixel).
  const [regionOverlay, setRegionOverlay] = useState<RegionOverlay | null>(null);
  const regionOverlayRef = useRef<RegionOverlay | null>(null);
  const hasRegions = useRegions().length > 0;

  const rebuildMask = useCallback(() => {
    const o = new MaskOverlay(doc.width, doc.height);
    o.update(doc.mask, doc.mask.fullRect);
    overlayRef.current = o;
    setOverlay(o);
  }, []);

  const fit = useCallback(() => {
    setView(fitToView(size.width, size.height, doc.width, doc.height));
  }, [size]);
  useEffect(() => {
    viewCommands.current = { fit, actual: () => setView(actualSize(size.width, size.height, doc.width, doc.height)) };
  }, [fit, size]);

  const docSizeKey = `${doc.width}x${doc.height}`;
  useEffect(() => {
    rebuildMask();
  }, [docSizeKey, rebuildMask]);
  useEffect(() => {
    const o = new LayoutOverlay(doc.width, doc.height, palette);
    o.update(doc.layout, doc.layout.fullRect);
    layoutOverlayRef.current = o;
    setLayoutOverlay(o);
  }, [docSizeKey, palette]);
  useEffect(() => {
    if (!hasRegions) {
      regionOverlayRef.current = null;
      setRegionOverlay(null);
      return;
    }
    const o = new RegionOverlay(doc.width, doc.height);
    o.show(doc.regions, true);
    regionOverlayRef.current = o;
    setRegionOverlay(o);
  }, [docSizeKey, hasRegions]);
  useEffect(() => {
    fit();
    // Fit again only when the document's size or the view's size changes.
  }, [docSizeKey, size.width, size.height]);

  const maskDraw = useTiledDraw(overlay, viewRef, size.width);
  const layoutDraw = useTiledDraw(layoutOverlay, viewRef, size.width);
  const regionDraw = useTiledDraw(regionOverlay, viewRef, size.width);
  useEffect(
    () =>
      doc.subscribe((change) => {
        if (change.kind === 'mask') {
          overlayRef.current?.update(doc.mask, change.rect);
          maskDraw.invalidate(change.rect);
        } else if (change.kind === 'layout') {
          layoutOverlayRef.current?.update(doc.layout, change.rect);
          layoutDraw.invalidate(change.rect);
        } else if (change.kind === 'region') {
          regionOverlayRef.current?.recolour(change.rect);
          regionDraw.invalidate(change.rect);
        } else if (change.kind === 'regions' || change.kind === 'region-props') {
          // A typed prompt changes nothing drawn; colours, visibility and the list do.
          const r = regionOverlayRef.current;
          if (r && r.width === doc.width && r.height === doc.height && r.show(doc.regions, change.kind === 'regions')) regionDraw.invalidate(null);
        } else if (change.kind === 'document') {
          const r = regionOverlayRef.current;
          if (r && r.width === doc.width && r.height === doc.height) {
            r.show(doc.regions, true);
            regionDraw.invalidate(null);
          }
          const o = overlayRef.current;
          if (o && o.width === doc.width && o.height === doc.height) {
            o.update(doc.mask, doc.mask.fullRect);
            maskDraw.invalidate(null);
          }
          const l = layoutOverlayRef.current;
          if (l && l.width === doc.width && l.height === doc.height) {
            l.update(doc.layout, doc.layout.fullRect);
            layoutDraw.invalidate(null);
          }
        }
      }),
    [maskDraw.invalidate, layoutDraw.invalidate, regionDraw.invalidate],
  );

  // ── layout ───────────────────────────────────────────────────────────────────────────────
  useLayoutEffect(() => {
    const el = containerRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setSize({ width: Math.max(1, el.clientWidth), height: Math.max(1, el.clientHeight) }));
    ro.observe(el);
    setSize({ width: Math.max(1, el.clientWidth), height: Math.max(1, el.clientHeight) });
    return () => ro.disconnect();
  }, []);

  // Space held: drag pans (as in Photoshop, ComfyUI's mask editor).
  useEffect(() => {
    const typing = (e: KeyboardEvent): boolean => e.target instanceof HTMLElement && (e.target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(e.target.tagName));
    const down = (e: KeyboardEvent) => {
      if (e.code === 'Space' && !typing(e)) {
        e.preventDefault();
        setSpaceHeld(true);
      }
    };
    const up = (e: KeyboardEvent) => e.code === 'Space' && setSpaceHeld(false);
    const blur = () => setSpaceHeld(false);
    window.addEventListener('keydown', down);
    window.addEventListener('keyup', up);
    window.addEventListener('blur', blur);
    return () => {
      window.removeEventListener('keydown', down);
      window.removeEventListener('keyup', up);
      window.removeEventListener('blur', blur);
    };
  }, []);

  const toolRef = useRef(tool);
  toolRef.current = tool;
  /** Places the ring at the cursor, sized to the brush at this zoom (style only: no React render, no canvas). */
  const placeCursor = useCallback(() => {
    const el = cursorRef.current;
    if (!el) return;
    const at = cursorAt.current;
    if (!at.visible) {
      el.style.display = 'none';
      return;
    }
    const v = viewRef.current;
    const t = toolRef.current;
    // The fill tool has no size: a small fixed ring marks the pixel it fills from.
    const r = t.tool === 'fill' || t.tool === 'wand' ? FILL_CURSOR_RADIUS : Math.max(1, (t.size / 2) * v.scale);
    el.style.display = 'block';
    el.style.width = `${2 * r}px`;
    el.style.height = `${2 * r}px`;
    el.style.transform = `translate(${at.x * v.scale + v.x - r}px, ${at.y * v.scale + v.y - r}px)`;
    el.classList.toggle('is-eraser', t.tool === 'eraser');
  }, []);
  useEffect(placeCursor, [view, tool.size, tool.tool, placeCursor]);

  // ── pointer ──────────────────────────────────────────────────────────────────────────────
  const pointerPoint = (stage: Konva.Stage, evt: PointerEvent) => {
    const p = stage.getPointerPosition() ?? { x: 0, y: 0 };
    const img = screenToImage(viewRef.current, p);
    // Mice report 0.5 while pressed (or 0); only pens carry real pressure.
    const pressure = evt.pointerType === 'pen' && evt.pressure > 0 ? evt.pressure : 1;
    return { ...img, pressure, screen: p };
  };

  const moveCursor = (x: number, y: number, visible: boolean) => {
    cursorAt.current = { x, y, visible };
    placeCursor();
  };

  const onPointerDown = (e: Konva.KonvaEventObject<PointerEvent>) => {
    const stage = e.target.getStage();
    if (!stage) return;
    const evt = e.evt;
    const p = pointerPoint(stage, evt);
    if (spaceHeld || evt.button === 1) {
      panRef.current = { x: p.screen.x, y: p.screen.y, view: viewRef.current };
      return;
    }
    if (evt.button !== 0) return;
    if (staging.items.length > 0) {
      explainStagedPainting();
      return;
    }
    const t = toolStore.get();
    const regionId = paintRegionStore.get();
    if (regionId !== null && doc.region(regionId)) {
      // A region is chosen in the prompt panel's Regions list: the brush and eraser paint its mask.
      if (t.tool !== 'brush' && t.tool !== 'eraser') return;
      doc.beginRegionStroke(regionId, t.tool, { size: t.size, hardness: t.hardness, opacity: t.opacity }, p);
    } else if (t.target === 'layout') {
      if (t.tool === 'fill') doc.fillLayoutRegion(p.x, p.y, t.layoutLabel);
      else if (t.tool !== 'wand') doc.beginLayoutStroke(t.tool, t.layoutLabel, t.size, p);
    } else if (t.tool === 'wand') {
      void maskColourRange(p.x, p.y, t.wandTolerance, t.wandContiguous);
      return;
    } else if (t.tool !== 'fill') doc.beginStroke(t.tool, { size: t.size, hardness: t.hardness, opacity: t.opacity }, p);
    (evt.target as Element | null)?.setPointerCapture?.(evt.pointerId);
  };

  const onPointerMove = (e: Konva.KonvaEventObject<PointerEvent>) => {
    const stage = e.target.getStage();
    if (!stage) return;
    const p = pointerPoint(stage, e.evt);
    const pan = panRef.current;
    if (pan) {
      setView({ ...pan.view, x: pan.view.x + p.screen.x - pan.x, y: pan.view.y + p.screen.y - pan.y });
      return;
    }
    if (doc.isPainting) {
      // Coalesced events keep a fast stroke smooth: the browser batches pointer samples per frame.
      const samples = e.evt.getCoalescedEvents?.() ?? [];
      if (samples.length > 1) {
        const rect = stage.container().getBoundingClientRect();
        for (const s of samples) {
          const sp = { x: s.clientX - rect.left, y: s.clientY - rect.top };
          const ip = screenToImage(viewRef.current, sp);
          doc.continueStroke({ ...ip, pressure: s.pointerType === 'pen' && s.pressure > 0 ? s.pressure : 1 });
        }
      } else doc.continueStroke(p);
    }
    // After the stroke: moving the ring dirties style, and the stage's getBoundingClientRect above would then force a layout.
    moveCursor(p.x, p.y, !spaceHeld);
  };

  useEffect(() => {
    const up = () => {
      panRef.current = null;
      if (doc.isPainting) doc.endStroke();
    };
    window.addEventListener('pointerup', up);
    window.addEventListener('pointercancel', up);
    return () => {
      window.removeEventListener('pointerup', up);
      window.removeEventListener('pointercancel', up);
    };
  }, []);

  const onWheel = (e: Konva.KonvaEventObject<WheelEvent>) => {
    e.evt.preventDefault();
    const stage = e.target.getStage();
    const anchor = stage?.getPointerPosition() ?? { x: size.width / 2, y: size.height / 2 };
    setView((v) => wheelZoom(v, anchor, e.evt.deltaY));
  };

  const shown = staged ?? base;
  const liveImage = useLiveLayer(containerRef);
  const panning = spaceHeld || panRef.current !== null;
  return (
    <div
      ref={containerRef}
      className={`canvas-stage ${panning ? 'is-panning' : ''}`}
      data-zoom={view.scale.toFixed(4)}
      data-pan={`${Math.round(view.x)},${Math.round(view.y)}`}
      data-undo-bytes={doc.undoMemoryBytes}
      data-undo-budget={doc.undoBudgetBytes}
      data-testid="canvas-stage"
      onPointerLeave={() => moveCursor(0, 0, false)}
    >
      <Stage
        width={size.width}
        height={size.height}
        scaleX={view.scale}
        scaleY={view.scale}
        x={view.x}
        y={view.y}
        onPointerDown={onPointerDown}
        onPointerMove={onPointerMove}
        onWheel={onWheel}
      >
        <Layer listening={false} imageSmoothingEnabled={view.scale < 2}>
          <Rect x={0} y={0} width={doc.width} height={doc.height} fill="#1b1d22" shadowColor="black" shadowBlur={24 / view.scale} shadowOpacity={0.6} />
          {shown && <KImage image={shown} x={0} y={0} width={doc.width} height={doc.height} />}
          {preview && !staged && <KImage image={preview} x={0} y={0} width={doc.width} height={doc.height} opacity={0.95} />}
        </Layer>
        {/* Live painting: the newest frame's repainted crop over the picture, under the overlays. */}
        <Layer listening={false} visible={!staged} imageSmoothingEnabled={view.scale < 2}>
          {liveImage && <KImage image={liveImage.canvas} x={liveImage.x} y={liveImage.y} width={liveImage.width} height={liveImage.height} />}
        </Layer>
        {/* Drawn by hand (useTiledDraw) so painting redraws only the dirty rect; Konva must not clear them first. */}
        <Layer ref={layoutDraw.layerRef} listening={false} visible={tool.layoutVisible && !staged} opacity={tool.layoutOpacity} clearBeforeDraw={false}>
          <Shape sceneFunc={layoutDraw.sceneFunc} perfectDrawEnabled={false} />
        </Layer>
        <Layer ref={regionDraw.layerRef} listening={false} visible={regionOverlay !== null && !staged} opacity={REGION_OPACITY} clearBeforeDraw={false}>
          <Shape sceneFunc={regionDraw.sceneFunc} perfectDrawEnabled={false} />
        </Layer>
        <Layer ref={maskDraw.layerRef} listening={false} visible={tool.maskVisible && !staged} opacity={tool.maskOpacity} clearBeforeDraw={false}>
          <Shape sceneFunc={maskDraw.sceneFunc} perfectDrawEnabled={false} />
        </Layer>
      </Stage>
      <div ref={cursorRef} className="brush-cursor" aria-hidden="true" />
    </div>
  );
}
