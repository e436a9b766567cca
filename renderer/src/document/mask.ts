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

/** Side of the blocks a StrokeBackup copies. */
const BACKUP_BLOCK = 64;

/**
 * A layer's pixels as they were when a stroke began, copied block by block just before the stroke first
 * writes into each block (`save`), so beginning a stroke costs nothing and a stroke keeps only the blocks
 * it touched (a copy of the whole layer is 16 MiB at 4096², copied on every pointer-down).
 */
export class StrokeBackup {
  private readonly blocks: Array<Uint8Array | undefined>;
  private readonly columns: number;

  constructor(private readonly layer: MaskLayer) {
    this.columns = Math.ceil(layer.width / BACKUP_BLOCK);
    this.blocks = new Array<Uint8Array | undefined>(this.columns * Math.ceil(layer.height / BACKUP_BLOCK));
  }

  /** Copies the blocks under `rect` not copied yet; call before writing into `rect`. */
  save(rect: PixelRect): void {
    const r = this.layer.clip(rect);
    if (r.width === 0 || r.height === 0) return;
    const { width, height, data } = this.layer;
    for (let by = Math.floor(r.y / BACKUP_BLOCK); by <= Math.floor((r.y + r.height - 1) / BACKUP_BLOCK); by++) {
      for (let bx = Math.floor(r.x / BACKUP_BLOCK); bx <= Math.floor((r.x + r.width - 1) / BACKUP_BLOCK); bx++) {
        const k = by * this.columns + bx;
        if (this.blocks[k]) continue;
        const x0 = bx * BACKUP_BLOCK;
        const y0 = by * BACKUP_BLOCK;
        const w = Math.min(BACKUP_BLOCK, width - x0);
        const h = Math.min(BACKUP_BLOCK, height - y0);
        const block = new Uint8Array(w * h);
        for (let y = 0; y < h; y++) block.set(data.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + w), y * w);
        this.blocks[k] = block;
      }
    }
  }

  /** The pixels of `rect` as they were when the backup was made (row-major, as MaskLayer.read). */
  read(rect: PixelRect): Uint8Array {
    const out = this.layer.read(rect);
    const { width, height } = this.layer;
    for (let by = Math.floor(rect.y / BACKUP_BLOCK); by <= Math.floor((rect.y + rect.height - 1) / BACKUP_BLOCK); by++) {
      for (let bx = Math.floor(rect.x / BACKUP_BLOCK); bx <= Math.floor((rect.x + rect.width - 1) / BACKUP_BLOCK); bx++) {
        const block = this.blocks[by * this.columns + bx];
        if (!block) continue;
        const x0 = bx * BACKUP_BLOCK;
        const y0 = by * BACKUP_BLOCK;
        const w = Math.min(BACKUP_BLOCK, width - x0);
        const h = Math.min(BACKUP_BLOCK, height - y0);
        const cx0 = Math.max(x0, rect.x);
        const cx1 = Math.min(x0 + w, rect.x + rect.width);
        for (let y = Math.max(y0, rect.y); y < Math.min(y0 + h, rect.y + rect.height); y++) {
          out.set(block.subarray((y - y0) * w + cx0 - x0, (y - y0) * w + cx1 - x0), (y - rect.y) * rect.width + cx0 - rect.x);
        }
      }
    }
    return out;
  }
}
