/**
 * The view transform between screen (stage) pixels and image pixels: `screen = image × scale + offset`.
 * Plain maths so that painting at any zoom can be unit-tested.
 */
export interface Viewport {
  scale: number;
  x: number;
  y: number;
}

export interface Point {
  x: number;
  y: number;
}

/** Zoom limits: 1/32 fits a 16k image on a small screen; 64× shows single pixels as large squares. */
export const MIN_ZOOM = 1 / 32;
export const MAX_ZOOM = 64;
/** One wheel notch (deltaY ≈ 100) zooms by this factor. */
export const WHEEL_ZOOM_STEP = 1.15;
/** Space left around the image by "fit to screen", in screen pixels. */
export const FIT_MARGIN = 24;

export function screenToImage(v: Viewport, p: Point): Point {
  return { x: (p.x - v.x) / v.scale, y: (p.y - v.y) / v.scale };
}

export function imageToScreen(v: Viewport, p: Point): Point {
  return { x: p.x * v.scale + v.x, y: p.y * v.scale + v.y };
}

export function clampZoom(scale: number): number {
  return Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, scale));
}

/** Zooms to `scale` keeping the image point under `anchor` (a screen point) where it is. */
export function zoomAt(v: Viewport, anchor: Point, scale: number): Viewport {
  const next = clampZoom(scale);
  const under = screenToImage(v, anchor);
  return { scale: next, x: anchor.x - under.x * next, y: anchor.y - under.y * next };
}

/** The zoom after a wheel event's `deltaY` (negative = zoom in). */
export function wheelZoom(v: Viewport, anchor: Point, deltaY: number): Viewport {
  const factor = Math.pow(WHEEL_ZOOM_STEP, -deltaY / 100);
  return zoomAt(v, anchor, v.scale * factor);
}

/** The whole image centred in the view, never enlarged past 100 % unless it is smaller than the view. */
export function fitToView(viewWidth: number, viewHeight: number, imageWidth: number, imageHeight: number, allowUpscale = true): Viewport {
  const availW = Math.max(1, viewWidth - 2 * FIT_MARGIN);
  const availH = Math.max(1, viewHeight - 2 * FIT_MARGIN);
  let scale = clampZoom(Math.min(availW / imageWidth, availH / imageHeight));
  if (!allowUpscale) scale = Math.min(1, scale);
  return { scale, x: (viewWidth - imageWidth * scale) / 2, y: (viewHeight - imageHeight * scale) / 2 };
}

/** 100 %: one image pixel per screen pixel, centred. */
export function actualSize(viewWidth: number, viewHeight: number, imageWidth: number, imageHeight: number): Viewport {
  return { scale: 1, x: Math.round((viewWidth - imageWidth) / 2), y: Math.round((viewHeight - imageHeight) / 2) };
}
