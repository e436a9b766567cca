/**
 * The mask layer: one byte per image pixel, 0 = keep, 255 = repaint (the contract's "white = repaint").
 * Plain TS with no DOM, so unit tests paint and read it directly.
 */

/** An axis-aligned pixel rectangle, `x`/`y` inclusive, `width`/`height` ≥ 0. */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export function unionRect(a: PixelRect | null, b: PixelRect): PixelRect {
  if (!a || a.width === 0 || a.height === 0) return b;
  if (b.width === 0 || b.height === 0) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return { x, y, width: Math.max(a.x + a.width, b.x + b.width) - x, height: Math.max(a.y + a.height, b.y + b.height) - y };
}

export class MaskLayer {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    data?: Uint8Array,
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`mask size must be positive integers, got ${width}×${height}`);
    }
    if (data && data.length !== width * height) throw new RangeError(`mask data has ${data.length} bytes, expected ${width * height}`);
    this.data = data ?? new Uint8Array(width * height);
  }

  get fullRect(): PixelRect {
    return { x: 0, y: 0, width: this.width, height: this.height };
  }

  at(x: number, y: number): number {
    return this.data[y * this.width + x] ?? 0;
  }

  /** Cached answer of isEmpty; null after a change (the owner calls `changed()` after writing `data`). */
  private emptyCache: boolean | null = null;

  /** Forgets cached facts about the pixels; call after writing `data` directly. */
  changed(): void {
    this.emptyCache = null;
  }

  /** True when no pixel is marked for repainting (cached until the next change: panels ask on every render). */
  isEmpty(): boolean {
    if (this.emptyCache !== null) return this.emptyCache;
    let empty = true;
    for (let i = 0; i < this.data.length; i++) {
      if (this.data[i] !== 0) {
        empty = false;
        break;
      }
    }
    this.emptyCache = empty;
    return empty;
  }

  /** How many pixels are (at least partly) marked. */
  countMarked(): number {
    let n = 0;
    for (let i = 0; i < this.data.length; i++) if (this.data[i] !== 0) n++;
    return n;
  }

  /** A copy of the pixels inside `rect` (row-major). */
  read(rect: PixelRect): Uint8Array {
    const out = new Uint8Array(rect.width * rect.height);
    for (let row = 0; row < rect.height; row++) {
      const start = (rect.y + row) * this.width + rect.x;
      out.set(this.data.subarray(start, start + rect.width), row * rect.width);
    }
    return out;
  }

  /** Writes `pixels` (from `read` of the same rect) back. */
  write(rect: PixelRect, pixels: Uint8Array): void {
    this.emptyCache = null;
    for (let row = 0; row < rect.height; row++) {
      this.data.set(pixels.subarray(row * rect.width, (row + 1) * rect.width), (rect.y + row) * this.width + rect.x);
    }
  }

  /** Clips a rect to the layer; the result may be empty. */
  clip(rect: PixelRect): PixelRect {
    const x0 = Math.max(0, Math.floor(rect.x));
    const y0 = Math.max(0, Math.floor(rect.y));
    const x1 = Math.min(this.width, Math.ceil(rect.x + rect.width));
    const y1 = Math.min(this.height, Math.ceil(rect.y + rect.height));
    return { x: x0, y: y0, width: Math.max(0, x1 - x0), height: Math.max(0, y1 - y0) };
  }
}
