/**
 * The mask's coloured overlay (and, through the same base, the layout's), kept in 256² tiles. Chromium
 * snapshots a whole source canvas when it is drawn after a change, so one 2048² overlay canvas would copy
 * 16 MiB per painted frame; with tiles a dab copies only the few tiles it touched.
 */
import type { MaskLayer, PixelRect } from '../document/mask.js';

export const OVERLAY_TILE = 256;
/** The mask tint (a warm red that reads on most photos and on the dark theme). */
export const MASK_RGB = [255, 64, 96] as const;

interface Tile {
  x: number;
  y: number;
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
  pixels: ImageData;
}

/** Screen mapping: screen = image × scale + offset, in device pixels. */
export interface DeviceMapping {
  scale: number;
  x: number;
  y: number;
}

/** A per-pixel overlay in tiles; subclasses say how one layer byte becomes RGBA. */
export abstract class TiledOverlay {
  private readonly tiles: Tile[] = [];
  private readonly columns: number;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.columns = Math.ceil(width / OVERLAY_TILE);
    for (let y = 0; y < height; y += OVERLAY_TILE) {
      for (let x = 0; x < width; x += OVERLAY_TILE) {
        const canvas = document.createElement('canvas');
        canvas.width = Math.min(OVERLAY_TILE, width - x);
        canvas.height = Math.min(OVERLAY_TILE, height - y);
        const ctx = canvas.getContext('2d')!;
        const pixels = ctx.createImageData(canvas.width, canvas.height);
        this.tiles.push({ x, y, canvas, ctx, pixels });
      }
    }
  }

  /** Writes the RGBA of one pixel whose layer byte is `value` at `rgba[o..o+3]`. */
  protected abstract paint(rgba: Uint8ClampedArray, o: number, value: number): void;

  private *tilesIn(rect: PixelRect): Generator<Tile> {
    const c0 = Math.max(0, Math.floor(rect.x / OVERLAY_TILE));
    const r0 = Math.max(0, Math.floor(rect.y / OVERLAY_TILE));
    const c1 = Math.min(this.columns - 1, Math.floor((rect.x + rect.width - 1) / OVERLAY_TILE));
    const r1 = Math.min(Math.ceil(this.height / OVERLAY_TILE) - 1, Math.floor((rect.y + rect.height - 1) / OVERLAY_TILE));
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) yield this.tiles[r * this.columns + c]!;
  }

  /** Each tile `rect` touches, with the part of `rect` inside it (image pixels, end exclusive). */
  private *clippedTilesIn(rect: PixelRect): Generator<{ t: Tile; x0: number; y0: number; x1: number; y1: number }> {
    for (const t of this.tilesIn(rect)) {
      const x0 = Math.max(rect.x, t.x);
      const y0 = Math.max(rect.y, t.y);
      const x1 = Math.min(rect.x + rect.width, t.x + t.canvas.width);
      const y1 = Math.min(rect.y + rect.height, t.y + t.canvas.height);
      if (x1 > x0 && y1 > y0) yield { t, x0, y0, x1, y1 };
    }
  }

  /** Recolours the pixels inside `rect` from the layer's bytes. */
  update(layer: MaskLayer, rect: PixelRect): void {
    if (rect.width <= 0 || rect.height <= 0) return;
    for (const { t, x0, y0, x1, y1 } of this.clippedTilesIn(rect)) {
      const rgba = t.pixels.data;
      for (let y = y0; y < y1; y++) {
        let i = y * layer.width + x0;
        let o = ((y - t.y) * t.canvas.width + (x0 - t.x)) * 4;
        for (let x = x0; x < x1; x++, i++, o += 4) this.paint(rgba, o, layer.data[i]!);
      }
      t.ctx.putImageData(t.pixels, 0, 0, x0 - t.x, y0 - t.y, x1 - x0, y1 - y0);
    }
  }

  /**
   * Recolours the pixels inside `rect`, each by `paintAt(rgba, o, i)` with `i` its index in the image
   * (for overlays made from more than one layer, such as the regions').
   */
  protected updateWith(rect: PixelRect, paintAt: (rgba: Uint8ClampedArray, o: number, i: number) => void): void {
    if (rect.width <= 0 || rect.height <= 0) return;
    for (const { t, x0, y0, x1, y1 } of this.clippedTilesIn(rect)) {
      const rgba = t.pixels.data;
      for (let y = y0; y < y1; y++) {
        let i = y * this.width + x0;
        let o = ((y - t.y) * t.canvas.width + (x0 - t.x)) * 4;
        for (let x = x0; x < x1; x++, i++, o += 4) paintAt(rgba, o, i);
      }
      t.ctx.putImageData(t.pixels, 0, 0, x0 - t.x, y0 - t.y, x1 - x0, y1 - y0);
    }
  }

  /** Draws the part of the overlay inside `rect` (image pixels; the whole overlay without one). */
  draw(ctx: CanvasRenderingContext2D, m: DeviceMapping, rect: PixelRect = { x: 0, y: 0, width: this.width, height: this.height }): void {
    ctx.imageSmoothingEnabled = false;
    for (const { t, x0, y0, x1, y1 } of this.clippedTilesIn(rect)) {
      ctx.drawImage(t.canvas, x0 - t.x, y0 - t.y, x1 - x0, y1 - y0, x0 * m.scale + m.x, y0 * m.scale + m.y, (x1 - x0) * m.scale, (y1 - y0) * m.scale);
    }
  }
}

/** The mask tint, its alpha the mask value. */
export class MaskOverlay extends TiledOverlay {
  protected paint(rgba: Uint8ClampedArray, o: number, value: number): void {
    rgba[o] = MASK_RGB[0];
    rgba[o + 1] = MASK_RGB[1];
    rgba[o + 2] = MASK_RGB[2];
    rgba[o + 3] = value;
  }
}
