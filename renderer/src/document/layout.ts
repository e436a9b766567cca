/**
 * The layout layer: one label id per image pixel (0 = background), painted with a label brush and read
 * by a layout model as its label map. Plain TS with no DOM, so unit tests paint and read it directly.
 *
 * On the wire the map is an RGB PNG whose pixels are the model's palette colours (its labels.json);
 * the engine maps each pixel back to the nearest palette colour (squared RGB distance, ties → lower id).
 * `labelsFromPixels` applies the same rule here, so a stored map comes back as the same ids.
 */
import { MaskLayer, type PixelRect } from './mask.js';

/** The background label: what the eraser paints and what a new layout starts as. */
export const BACKGROUND_LABEL = 0;

/** One label of a layout model (structurally ModelInfo's LayoutLabel: ids 0..K-1 in order). */
export interface PaletteLabel {
  id: number;
  name: string;
  color: readonly [number, number, number];
}
export type LayoutPalette = readonly PaletteLabel[];

/**
 * The label plane. It stores one byte per pixel exactly as the mask does (so it shares MaskLayer's
 * read/write/clip for undo deltas); `isEmpty` means nothing but background.
 */
export class LayoutLayer extends MaskLayer {
  private maxCache: number | null = null;

  override changed(): void {
    super.changed();
    this.maxCache = null;
  }

  override write(rect: PixelRect, pixels: Uint8Array): void {
    super.write(rect, pixels);
    this.maxCache = null;
  }

  /** The highest label id painted (cached until the next change): a palette must have more labels than this. */
  maxLabel(): number {
    if (this.maxCache !== null) return this.maxCache;
    let max = 0;
    for (let i = 0; i < this.data.length; i++) if (this.data[i]! > max) max = this.data[i]!;
    this.maxCache = max;
    return max;
  }

  /** How many pixels carry each label (index = id), up to `labels` ids. */
  histogram(labels: number): number[] {
    const counts = new Array<number>(Math.max(labels, this.maxLabel() + 1)).fill(0);
    for (let i = 0; i < this.data.length; i++) counts[this.data[i]!]!++;
    return counts;
  }
}

/**
 * Stamps one hard round dab of `label`: every pixel whose centre lies within the radius (the same pixels
 * a hard mask brush of this size covers). Labels have no partial coverage, so hardness and opacity don't
 * apply. Returns the rect it touched (clipped).
 */
export function stampLabelDab(layer: LayoutLayer, cx: number, cy: number, diameter: number, label: number): PixelRect {
  const radius = Math.max(0.5, diameter / 2);
  const rect = layer.clip({ x: cx - radius, y: cy - radius, width: radius * 2 + 1, height: radius * 2 + 1 });
  const { data, width } = layer;
  const r2 = radius * radius;
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    const dy = y + 0.5 - cy;
    for (let x = rect.x; x < rect.x + rect.width; x++) {
      const dx = x + 0.5 - cx;
      if (dx * dx + dy * dy < r2) data[y * width + x] = label;
    }
  }
  return rect;
}

/**
 * Flood fill: the 4-connected region of pixels that share the label at (`x`, `y`) becomes `label`
 * (a paint bucket). Returns the bounding rect of what changed, or null when nothing did (outside the
 * layer, or the region already has that label).
 */
export function floodFillLabel(layer: LayoutLayer, x: number, y: number, label: number): PixelRect | null {
  const { width, height, data } = layer;
  const sx = Math.floor(x);
  const sy = Math.floor(y);
  if (sx < 0 || sy < 0 || sx >= width || sy >= height) return null;
  const target = data[sy * width + sx]!;
  if (target === label) return null;
  let x0 = sx;
  let x1 = sx;
  let y0 = sy;
  let y1 = sy;
  // Scanline fill: each popped seed fills its whole run, then seeds the runs above and below.
  const stack: number[] = [sx, sy];
  while (stack.length > 0) {
    const py = stack.pop()!;
    const px = stack.pop()!;
    const row = py * width;
    if (data[row + px] !== target) continue;
    let left = px;
    while (left > 0 && data[row + left - 1] === target) left--;
    let right = px;
    while (right < width - 1 && data[row + right + 1] === target) right++;
    data.fill(label, row + left, row + right + 1);
    x0 = Math.min(x0, left);
    x1 = Math.max(x1, right);
    y0 = Math.min(y0, py);
    y1 = Math.max(y1, py);
    for (const ny of [py - 1, py + 1]) {
      if (ny < 0 || ny >= height) continue;
      const nrow = ny * width;
      let inRun = false;
      for (let nx = left; nx <= right; nx++) {
        const match = data[nrow + nx] === target;
        if (match && !inRun) stack.push(nx, ny);
        inRun = match;
      }
    }
  }
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** A user-facing problem with a layout and a palette (not a bug): the message says what to do. */
export class LayoutPaletteError extends Error {
  override name = 'LayoutPaletteError';
}

/** The layout as RGB bytes of palette colours (3 per pixel), what the contract's `labelMap` PNG holds. */
export function layoutToRgb(layer: LayoutLayer, palette: LayoutPalette): Uint8Array {
  const max = layer.maxLabel();
  if (max >= palette.length) {
    throw new LayoutPaletteError(`the layout uses label ${max}, but this model has only ${palette.length} labels (0 to ${palette.length - 1})`);
  }
  const rgb = new Uint8Array(layer.data.length * 3);
  for (let i = 0, o = 0; i < layer.data.length; i++, o += 3) {
    const c = palette[layer.data[i]!]!.color;
    rgb[o] = c[0];
    rgb[o + 1] = c[1];
    rgb[o + 2] = c[2];
  }
  return rgb;
}

/** The palette label nearest to a colour: least squared RGB distance, ties → the lower id (the engine's rule). */
export function nearestLabel(palette: LayoutPalette, r: number, g: number, b: number): number {
  let best = 0;
  let bestDistance = Infinity;
  for (let id = 0; id < palette.length; id++) {
    const c = palette[id]!.color;
    const d = (r - c[0]) ** 2 + (g - c[1]) ** 2 + (b - c[2]) ** 2;
    if (d < bestDistance) {
      bestDistance = d;
      best = id;
    }
  }
  return best;
}

/**
 * Label ids from decoded pixels (RGB or RGBA, `channels` bytes per pixel), each the nearest palette
 * colour. Alpha is ignored, as the engine reads the PNG as RGB.
 */
export function labelsFromPixels(pixels: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: 3 | 4, palette: LayoutPalette): Uint8Array {
  if (palette.length === 0) throw new LayoutPaletteError('the model has no labels to read a label map with');
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`label map pixels have ${pixels.length} bytes, expected ${width}×${height}×${channels}`);
  }
  const ids = new Uint8Array(width * height);
  // A map has a handful of distinct colours: remember each one's label.
  const seen = new Map<number, number>();
  for (let i = 0, o = 0; i < ids.length; i++, o += channels) {
    const r = pixels[o]!;
    const g = pixels[o + 1]!;
    const b = pixels[o + 2]!;
    const key = (r << 16) | (g << 8) | b;
    let id = seen.get(key);
    if (id === undefined) {
      id = nearestLabel(palette, r, g, b);
      seen.set(key, id);
    }
    ids[i] = id;
  }
  return ids;
}

/** Nearest-neighbour resample of a label plane (labels can't be blended), pixel centres mapped onto each other. */
export function resampleLabels(ids: Uint8Array, width: number, height: number, toWidth: number, toHeight: number): Uint8Array {
  const out = new Uint8Array(toWidth * toHeight);
  for (let y = 0; y < toHeight; y++) {
    const sy = Math.min(height - 1, Math.floor(((y + 0.5) * height) / toHeight));
    for (let x = 0; x < toWidth; x++) {
      const sx = Math.min(width - 1, Math.floor(((x + 0.5) * width) / toWidth));
      out[y * toWidth + x] = ids[sy * width + sx]!;
    }
  }
  return out;
}
