/**
 * The canvas: a Konva stage with three layers split by update rate (excalidraw's habit): the image
 * (base, staged result or live preview), the mask overlay (redrawn per dab, only the dirty rect is
 * recoloured), and the brush cursor (moves with every pointer event, nothing else redraws).
 */
import type Konva from 'konva';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { Circle, Image as KImage, Layer, Rect, Stage } from 'react-konva';
import { useDocumentShape, useImageElement, useSourceUrl, useHashUrl } from '../app/hooks.js';
import { doc, toolStore } from '../app/session.js';
import { liveJobStore, stagingStore, useStore } from '../app/store.js';
import type { PixelRect } from './mask.js';
import { actualSize, fitToView, screenToImage, wheelZoom, type Viewport } from './viewport.js';

/** The mask tint (a warm red that reads on most photos and on the dark theme). */
const MASK_RGB = [255, 64, 96] as const;

export interface ViewCommands {
  fit(): void;
  actual(): void;
}
/** Set by the mounted view so the toolbar and shortcuts can fit / 100 %. */
export const viewCommands: { current: ViewCommands | null } = { current: null };

export function CanvasView() {
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
  const maskLayerRef = useRef<Konva.Layer>(null);
  const cursorRef = useRef<Konva.Circle>(null);
  const cursorLayerRef = useRef<Konva.Layer>(null);

  // ── images ────────────────────────────────────────────────────────────────────────────────
  const baseUrl = useSourceUrl(doc.image?.source ?? null);
  const base = useImageElement(baseUrl);
  const stagedItem = staging.items[staging.index] ?? null;
  const stagedUrl = useHashUrl(stagedItem?.output?.hash, false);
  const staged = useImageElement(stagedUrl);
  const running = live !== null && staging.jobIds.includes(live.jobId) ? live : null;
  const preview = useImageElement(running?.preview ?? null);

  // ── mask overlay canvas, at image resolution ─────────────────────────────────────────────
  const [maskCanvas, setMaskCanvas] = useState<HTMLCanvasElement | null>(null);
  const maskPixels = useRef<{ ctx: CanvasRenderingContext2D; data: ImageData } | null>(null);

  const recolour = useCallback((rect: PixelRect) => {
    const m = maskPixels.current;
    if (!m || rect.width === 0 || rect.height === 0) return;
    const { data: mask, width } = doc.mask;
    const rgba = m.data.data;
    for (let y = rect.y; y < rect.y + rect.height; y++) {
      let i = y * width + rect.x;
      let o = i * 4;
      for (let x = 0; x < rect.width; x++, i++, o += 4) rgba[o + 3] = mask[i]!;
    }
    m.ctx.putImageData(m.data, 0, 0, rect.x, rect.y, rect.width, rect.height);
  }, []);

  const rebuildMask = useCallback(() => {
    const canvas = document.createElement('canvas');
    canvas.width = doc.width;
    canvas.height = doc.height;
    const ctx = canvas.getContext('2d', { willReadFrequently: false })!;
    const data = ctx.createImageData(doc.width, doc.height);
    for (let o = 0; o < data.data.length; o += 4) {
      data.data[o] = MASK_RGB[0];
      data.data[o + 1] = MASK_RGB[1];
      data.data[o + 2] = MASK_RGB[2];
    }
    maskPixels.current = { ctx, data };
    recolour(doc.mask.fullRect);
    setMaskCanvas(canvas);
  }, [recolour]);

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
    fit();
    // Fit again only when the document's size or the view's size changes.
  }, [docSizeKey, size.width, size.height]);

  useEffect(
    () =>
      doc.subscribe((change) => {
        if (change.kind === 'mask') {
          recolour(change.rect);
          maskLayerRef.current?.batchDraw();
        } else if (change.kind === 'document') {
          if (maskPixels.current && maskCanvas && maskCanvas.width === doc.width && maskCanvas.height === doc.height) {
            recolour(doc.mask.fullRect);
            maskLayerRef.current?.batchDraw();
          }
        }
      }),
    [recolour, maskCanvas],
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

  // ── pointer ──────────────────────────────────────────────────────────────────────────────
  const pointerPoint = (stage: Konva.Stage, evt: PointerEvent) => {
    const p = stage.getPointerPosition() ?? { x: 0, y: 0 };
    const img = screenToImage(viewRef.current, p);
    // Mice report 0.5 while pressed (or 0); only pens carry real pressure.
    const pressure = evt.pointerType === 'pen' && evt.pressure > 0 ? evt.pressure : 1;
    return { ...img, pressure, screen: p };
  };

  const moveCursor = (x: number, y: number, visible: boolean) => {
    const c = cursorRef.current;
    if (!c) return;
    c.position({ x, y });
    c.visible(visible);
    cursorLayerRef.current?.batchDraw();
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
    if (evt.button !== 0 || staging.items.length > 0) return;
    const t = toolStore.get();
    doc.beginStroke(t.tool, { size: t.size, hardness: t.hardness, opacity: t.opacity }, p);
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
    moveCursor(p.x, p.y, !spaceHeld);
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
  const panning = spaceHeld || panRef.current !== null;
  return (
    <div
      ref={containerRef}
      className={`canvas-stage ${panning ? 'is-panning' : ''}`}
      data-zoom={view.scale.toFixed(4)}
      data-pan={`${Math.round(view.x)},${Math.round(view.y)}`}
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
        <Layer ref={maskLayerRef} listening={false} visible={tool.maskVisible && !staged} opacity={tool.maskOpacity} imageSmoothingEnabled={false}>
          {maskCanvas && <KImage image={maskCanvas} x={0} y={0} width={doc.width} height={doc.height} />}
        </Layer>
        <Layer ref={cursorLayerRef} listening={false}>
          <Circle ref={cursorRef} visible={false} radius={tool.size / 2} stroke="rgba(0,0,0,0.8)" strokeWidth={3 / view.scale} />
          <Circle
            visible={false}
            radius={tool.size / 2}
            stroke={tool.tool === 'brush' ? '#ffffff' : '#7dd3fc'}
            strokeWidth={1.25 / view.scale}
            ref={(node) => {
              // The light ring follows the dark one; one node moves, both are drawn.
              if (node && cursorRef.current) {
                const dark = cursorRef.current;
                dark.off('xChange.ring yChange.ring visibleChange.ring');
                dark.on('xChange.ring yChange.ring visibleChange.ring', () => {
                  node.position(dark.position());
                  node.visible(dark.visible());
                });
              }
            }}
          />
        </Layer>
      </Stage>
    </div>
  );
}
