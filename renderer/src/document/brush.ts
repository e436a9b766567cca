/**
 * Brush and eraser dabs on the mask. A stroke is a polyline of pointer samples in image pixels; dabs are
 * stamped along it at a fixed spacing, and each dab's coverage falls off from its centre by hardness.
 *
 * Within one stroke the coverage combines by maximum (paint) or minimum (erase), never by adding, so a
 * slow stroke whose dabs overlap many times looks the same as a fast one: the stroke, not the sampling
 * rate, decides the mask.
 */
import { unionRect, type MaskLayer, type PixelRect } from './mask.js';

export type BrushTool = 'brush' | 'eraser';

export interface BrushSettings {
  /** Diameter in image pixels. */
  size: number;
  /** 1: a hard edge; 0: coverage falls linearly from the centre to the rim. */
  hardness: number;
  /** Peak coverage, 0..1 (the mask value painted at the dab centre is opacity × 255). */
  opacity: number;
}

export const MIN_BRUSH_SIZE = 1;
export const MAX_BRUSH_SIZE = 1024;
/**
 * Dab spacing as a fraction of the diameter. 0.1 keeps the edge of a hard round brush smooth (gaps
 * between dabs stay under a pixel up to 10 px brushes); Photoshop's default spacing is 25 %, which
 * scallops visibly on a mask.
 */
export const DAB_SPACING = 0.1;

export interface StrokePoint {
  x: number;
  y: number;
  /** Pen pressure 0..1 where the device reports it; 1 for a mouse. Scales the dab's size. */
  pressure: number;
}

/**
 * Coverage (0..1) of a dab of radius `radius` at distance `d` from its centre. The hard core is
 * `hardness × radius`; from there to the rim coverage falls with a smoothstep. Pixels are sampled at
 * their centres.
 */
export function dabCoverage(d: number, radius: number, hardness: number): number {
  if (d >= radius) return 0;
  const core = radius * Math.min(1, Math.max(0, hardness));
  if (d <= core) return 1;
  const t = (d - core) / (radius - core);
  return 1 - t * t * (3 - 2 * t);
}

/** Stamps one dab; returns the rect it touched (clipped to the mask). */
export function stampDab(mask: MaskLayer, cx: number, cy: number, diameter: number, brush: BrushSettings, tool: BrushTool): PixelRect {
  const radius = Math.max(0.5, diameter / 2);
  const rect = mask.clip({ x: cx - radius, y: cy - radius, width: radius * 2 + 1, height: radius * 2 + 1 });
  const peak = Math.min(1, Math.max(0, brush.opacity)) * 255;
  const { data, width } = mask;
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    const dy = y + 0.5 - cy;
    for (let x = rect.x; x < rect.x + rect.width; x++) {
      const dx = x + 0.5 - cx;
      const cov = dabCoverage(Math.sqrt(dx * dx + dy * dy), radius, brush.hardness);
      if (cov <= 0) continue;
      const value = Math.round(cov * peak);
      const i = y * width + x;
      const old = data[i]!;
      if (tool === 'brush') {
        if (value > old) data[i] = value;
      } else {
        const kept = 255 - value;
        if (kept < old) data[i] = kept;
      }
    }
  }
  return rect;
}

/**
 * Stamps dabs from `from` to `to` (excluding `from`, which the previous segment stamped), starting
 * `carry` pixels along; returns the touched rect and the distance left over for the next segment.
 */
export function stampSegment(
  mask: MaskLayer,
  from: StrokePoint,
  to: StrokePoint,
  carry: number,
  brush: BrushSettings,
  tool: BrushTool,
): { rect: PixelRect | null; carry: number } {
  return walkSegment(from, to, carry, brush.size, (cx, cy, diameter) => stampDab(mask, cx, cy, diameter, brush, tool));
}

/**
 * Walks a segment at the dab spacing and calls `stamp` at each dab (centre and pressure-scaled
 * diameter); the mask brush and the layout's label brush share it, so both place dabs identically.
 */
export function walkSegment(
  from: StrokePoint,
  to: StrokePoint,
  carry: number,
  size: number,
  stamp: (cx: number, cy: number, diameter: number) => PixelRect,
): { rect: PixelRect | null; carry: number } {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const length = Math.sqrt(dx * dx + dy * dy);
  let rect: PixelRect | null = null;
  let at = carry;
  while (at <= length) {
    const t = length === 0 ? 1 : at / length;
    const pressure = from.pressure + (to.pressure - from.pressure) * t;
    const diameter = Math.max(MIN_BRUSH_SIZE, size * pressure);
    const r = stamp(from.x + dx * t, from.y + dy * t, diameter);
    if (r.width > 0 && r.height > 0) rect = unionRect(rect, r);
    at += Math.max(0.5, diameter * DAB_SPACING);
    if (length === 0) break;
  }
  return { rect, carry: at - length };
}
