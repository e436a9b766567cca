/**
 * The canvas: a Konva stage with one canvas layer drawn by hand, bottom to top: the picture (base, staged
 * result or generation preview), the live frame, the layout, regions and mask overlays (tiled; a dab
 * recolours and redraws only its dirty rect). One canvas, not a layer each: Chromium copies every shown
 * canvas to the compositor on each frame that commits, changed or not, so each stage-size layer cost a
 * copy and a software composite per painted frame (a trace of bench:ui's stroke: 0.4–1 ms each, four
 * shown). The brush cursor is a DOM ring over the stage for the same reason: moving a small
 * element costs neither.
 */
import type Konva from 'konva';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type RefObject } from 'react';
import { Layer, Shape, Stage } from 'react-konva';
import { useDocumentShape, useImageElement, useRegions, useSession, useSourceUrl, useHashUrl } from '../session/hooks.js';
import { useStore } from '../session/store.js';
import { LayoutOverlay } from './layout-overlay.js';
import { useLiveLayer } from './live-layer.js';
import { useTools } from './tools.js';
import { unionRect, type PixelRect } from '../document/mask.js';
import { MaskOverlay, type DeviceMapping, type TiledOverlay } from './mask-overlay.js';
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

/** The picture's drop shadow (CSS px). */
const SHADOW_BLUR = 24;

/** Screen radius (CSS px) of the fill tool's cursor ring. */
const FILL_CURSOR_RADIUS = 4;

/**
 * One thing drawn on the stage's canvas, bottom to top: in device pixels (`m` maps image pixels there),
 * with the context clipped to `clip` (device pixels) when only that box is redrawn.
 */
interface DrawPart {
  draw(ctx: CanvasRenderingContext2D, m: DeviceMapping, clip: PixelRect | null, pixelRatio: number): void;
}

/** A stable number per object, for keys that say what a draw showed. */
const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function idOf(o: object | null | undefined): number {
  if (!o) return 0;
  let id = objectIds.get(o);
  if (id === undefined) objectIds.set(o, (id = nextObjectId++));
  return id;
}

interface StageDraw {
  layerRef: RefObject<Konva.Layer | null>;
  sceneFunc: (ctx: Konva.Context) => void;
  /** Redraw `rect` (image pixels) on the next frame, or everything (null). */
  invalidate: (rect: PixelRect | null) => void;
}

/**
 * Draws the whole canvas (picture, live frame, overlays) on one Konva layer, redrawing only what changed:
 * a rect (image pixels) while painting, or everything when the view moved or `partsKey` (what the parts
 * are) changed. One canvas, not a layer per overlay: Chromium copies every shown canvas to the compositor
 * on each frame that commits, changed or not (a trace of bench:ui's stroke: about 0.4–1 ms per stage-size
 * canvas per painted frame), and redrawing only what a dab touched keeps a frame cheap on a 2048² picture.
 */
function useStageDraw(partsRef: RefObject<readonly DrawPart[]>, partsKey: string, viewRef: RefObject<Viewport>, stageWidth: number): StageDraw {
  const layerRef = useRef<Konva.Layer>(null);
  /** What the next draw must redraw: a rect (image pixels), or everything once anything asked for it. */
  const pendingRect = useRef<PixelRect | null>(null);
  const fullRedraw = useRef(true);
  const lastDrawKey = useRef('');

  const invalidate = useCallback((rect: PixelRect | null) => {
    if (rect && !fullRedraw.current) pendingRect.current = unionRect(pendingRect.current, rect);
    else {
      fullRedraw.current = true;
      pendingRect.current = null;
    }
    layerRef.current?.batchDraw();
  }, []);

  const sceneFunc = useCallback(
    (ctx: Konva.Context) => {
      const native = ctx._context;
      const layerCanvas = native.canvas;
      const v = viewRef.current;
      const ratio = layerCanvas.width / Math.max(1, stageWidth);
      // A partial redraw is only right when nothing but the invalidated pixels changed since the last draw.
      const key = `${v.scale},${v.x},${v.y},${layerCanvas.width},${layerCanvas.height},${partsKey}`;
      // A draw that nobody asked for (Konva's own, after a prop change) redraws everything too.
      const partial = !fullRedraw.current && lastDrawKey.current === key ? pendingRect.current : null;
      lastDrawKey.current = key;
      fullRedraw.current = false;
      pendingRect.current = null;
      const device = { scale: v.scale * ratio, x: v.x * ratio, y: v.y * ratio };
      let clip: PixelRect | null = null;
      native.save();
      native.setTransform(1, 0, 0, 1, 0, 0);
      if (partial) {
        // The dirty rect on screen, widened to whole device pixels so that clearing and redrawing meet
        // exactly; every part is drawn again clipped to it (the same pixels as a whole draw).
        const pad = 1;
        const sx0 = Math.max(0, Math.floor((partial.x - pad) * device.scale + device.x));
        const sy0 = Math.max(0, Math.floor((partial.y - pad) * device.scale + device.y));
        const sx1 = Math.min(layerCanvas.width, Math.ceil((partial.x + partial.width + pad) * device.scale + device.x));
        const sy1 = Math.min(layerCanvas.height, Math.ceil((partial.y + partial.height + pad) * device.scale + device.y));
        if (sx1 <= sx0 || sy1 <= sy0) {
          native.restore();
          return;
        }
        native.beginPath();
        native.rect(sx0, sy0, sx1 - sx0, sy1 - sy0);
        native.clip();
        native.clearRect(sx0, sy0, sx1 - sx0, sy1 - sy0);
        clip = { x: sx0, y: sy0, width: sx1 - sx0, height: sy1 - sy0 };
      } else native.clearRect(0, 0, layerCanvas.width, layerCanvas.height);
      for (const part of partsRef.current) {
        native.save();
        part.draw(native, device, clip, ratio);
        native.restore();
      }
      native.restore();
    },
    [partsRef, partsKey, stageWidth, viewRef],
  );

  return useMemo(() => ({ layerRef, sceneFunc, invalidate }), [sceneFunc, invalidate]);
}

/** A tiled overlay at `alpha`, only the tiles inside the canvas's clip. */
function overlayPart(overlay: TiledOverlay, alpha: number): DrawPart {
  return {
    draw(ctx, m, clip) {
      ctx.globalAlpha = alpha;
      overlay.draw(ctx, m, clip ? imageRectUnder(clip, m, overlay.width, overlay.height) : undefined);
    },
  };
}

/** A picture (or canvas) stretched over `rect` (image pixels). */
function imagePart(image: CanvasImageSource, rect: PixelRect, smooth: boolean, alpha = 1): DrawPart {
  return {
    draw(ctx, m) {
      ctx.globalAlpha = alpha;
      ctx.imageSmoothingEnabled = smooth;
      ctx.drawImage(image, rect.x * m.scale + m.x, rect.y * m.scale + m.y, rect.width * m.scale, rect.height * m.scale);
    },
  };
}

/** The picture's dark backing with its drop shadow (what shows through a transparent picture). */
function backingPart(width: number, height: number): DrawPart {
  return {
    draw(ctx, m, _clip, pixelRatio) {
      ctx.fillStyle = '#1b1d22';
      ctx.shadowColor = 'rgba(0,0,0,0.6)';
      ctx.shadowBlur = SHADOW_BLUR * pixelRatio;
      ctx.fillRect(m.x, m.y, width * m.scale, height * m.scale);
    },
  };
}

/** Every image pixel that reaches into `clip` (device pixels), within a `width` × `height` image. */
function imageRectUnder(clip: PixelRect, m: DeviceMapping, width: number, height: number): PixelRect {
  const x0 = Math.max(0, Math.floor((clip.x - m.x) / m.scale));
  const y0 = Math.max(0, Math.floor((clip.y - m.y) / m.scale));
  const x1 = Math.min(width, Math.ceil((clip.x + clip.width - m.x) / m.scale));
  const y1 = Math.min(height, Math.ceil((clip.y + clip.height - m.y) / m.scale));
  return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
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

  // ── what the canvas shows, bottom to top ─────────────────────────────────────────────────
  const shown = staged ?? base;
  const liveImage = useLiveLayer(containerRef);
  const smooth = view.scale < 2;
  const docRect = { x: 0, y: 0, width: doc.width, height: doc.height };
  const parts: DrawPart[] = [backingPart(doc.width, doc.height)];
  if (shown) parts.push(imagePart(shown, docRect, smooth));
  if (preview && !staged) parts.push(imagePart(preview, docRect, smooth, 0.95));
  // Live painting: the newest frame's repainted crop over the picture, under the overlays.
  if (liveImage && !staged) parts.push(imagePart(liveImage.canvas, liveImage, smooth));
  const showLayout = layoutOverlay !== null && tool.layoutVisible && !staged;
  if (showLayout) parts.push(overlayPart(layoutOverlay, tool.layoutOpacity));
  if (regionOverlay && !staged) parts.push(overlayPart(regionOverlay, REGION_OPACITY));
  const showMask = overlay !== null && tool.maskVisible && !staged;
  if (showMask) parts.push(overlayPart(overlay, tool.maskOpacity));
  const partsRef = useRef<readonly DrawPart[]>(parts);
  partsRef.current = parts;
  // What the parts are, but for the live frame (a new frame redraws only its crop, below).
  const partsKey = [
    doc.width, doc.height, idOf(shown), staged ? 1 : 0, idOf(preview), smooth ? 1 : 0,
    showLayout ? `${idOf(layoutOverlay)}@${tool.layoutOpacity}` : '-', idOf(regionOverlay), showMask ? `${idOf(overlay)}@${tool.maskOpacity}` : '-',
  ].join(',');
  const stageDraw = useStageDraw(partsRef, partsKey, viewRef, size.width);
  const liveRect = useRef<PixelRect | null>(null);
  useEffect(() => {
    const rect = liveImage && !staged ? { x: liveImage.x, y: liveImage.y, width: liveImage.width, height: liveImage.height } : null;
    const dirty = rect ? unionRect(liveRect.current, rect) : liveRect.current;
    liveRect.current = rect;
    if (dirty) stageDraw.invalidate(dirty);
  }, [liveImage, staged, stageDraw]);
  useEffect(
    () =>
      doc.subscribe((change) => {
        if (change.kind === 'mask') {
          overlayRef.current?.update(doc.mask, change.rect);
          stageDraw.invalidate(change.rect);
        } else if (change.kind === 'layout') {
          layoutOverlayRef.current?.update(doc.layout, change.rect);
          stageDraw.invalidate(change.rect);
        } else if (change.kind === 'region') {
          regionOverlayRef.current?.recolour(change.rect);
          stageDraw.invalidate(change.rect);
        } else if (change.kind === 'regions' || change.kind === 'region-props') {
          // A typed prompt changes nothing drawn; colours, visibility and the list do.
          const r = regionOverlayRef.current;
          if (r && r.width === doc.width && r.height === doc.height && r.show(doc.regions, change.kind === 'regions')) stageDraw.invalidate(null);
        } else if (change.kind === 'document') {
          const r = regionOverlayRef.current;
          if (r && r.width === doc.width && r.height === doc.height) {
            r.show(doc.regions, true);
            stageDraw.invalidate(null);
          }
          const o = overlayRef.current;
          if (o && o.width === doc.width && o.height === doc.height) {
            o.update(doc.mask, doc.mask.fullRect);
            stageDraw.invalidate(null);
          }
          const l = layoutOverlayRef.current;
          if (l && l.width === doc.width && l.height === doc.height) {
            l.update(doc.layout, doc.layout.fullRect);
            stageDraw.invalidate(null);
          }
        }
      }),
    [stageDraw.invalidate],
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
        {/* Drawn by hand (useStageDraw) so painting redraws only the dirty rect; Konva must not clear it first. */}
        <Layer ref={stageDraw.layerRef} listening={false} clearBeforeDraw={false}>
          <Shape sceneFunc={stageDraw.sceneFunc} perfectDrawEnabled={false} listening={false} />
        </Layer>
      </Stage>
      <div ref={cursorRef} className="brush-cursor" aria-hidden="true" />
    </div>
  );
}
