/**
 * The editor document: a base image (or a blank canvas of a chosen size), the mask at image resolution,
 * and the undo history. No React, no Konva, no DOM: the view subscribes to changes and redraws.
 *
 * Undo records inverse deltas (excalidraw's habit): a mask edit keeps the bytes of the rectangle it
 * changed, before and after, so a stroke on a 2048² mask costs only the area it touched. One stroke is
 * one undo step; Esc while painting puts the stroke's pixels back and leaves no undo entry.
 */
import { stampSegment, type BrushSettings, type BrushTool, type StrokePoint } from './brush.js';
import { MaskLayer, unionRect, type PixelRect } from './mask.js';
import { encodeGreyPng, type ZlibCompress } from './png.js';

/** Where the base image came from; it decides how a generation sends it (hash or bytes). */
export type ImageSource =
  | { kind: 'history'; historyId: number; hash: string }
  | { kind: 'file'; name: string; bytes: Uint8Array; mime: string };

export interface ImageLayer {
  width: number;
  height: number;
  source: ImageSource;
}

/** How much undo history to keep, in steps; old steps are dropped first. */
export const MAX_UNDO_STEPS = 200;

type UndoEntry =
  | { kind: 'mask'; label: string; rect: PixelRect; before: Uint8Array; after: Uint8Array }
  | { kind: 'image'; label: string; before: DocumentState; after: DocumentState };

interface DocumentState {
  image: ImageLayer | null;
  width: number;
  height: number;
  mask: Uint8Array;
}

export type DocumentChange =
  /** Mask pixels inside `rect` changed. */
  | { kind: 'mask'; rect: PixelRect }
  /** The image, the size or the whole mask changed. */
  | { kind: 'document' }
  /** A step ended (stroke, undo, redo, whole-mask edit): undo availability and mask emptiness may differ. */
  | { kind: 'history' };

export type ModeOverride = 'auto' | 'txt2img' | 'img2img' | 'inpaint';

interface ActiveStroke {
  tool: BrushTool;
  brush: BrushSettings;
  last: StrokePoint;
  carry: number;
  /** The whole mask as it was when the stroke began (for Esc and for the undo delta). */
  before: Uint8Array;
  dirty: PixelRect | null;
}

export class EditorDocument {
  private imageLayer: ImageLayer | null = null;
  private maskLayer: MaskLayer;
  private readonly undoStack: UndoEntry[] = [];
  private readonly redoStack: UndoEntry[] = [];
  private stroke: ActiveStroke | null = null;
  private readonly listeners = new Set<(change: DocumentChange) => void>();
  /** Bumped on every change, so React can tell that something changed. */
  revision = 0;

  constructor(width = 512, height = 512) {
    this.maskLayer = new MaskLayer(width, height);
  }

  get image(): ImageLayer | null {
    return this.imageLayer;
  }
  get mask(): MaskLayer {
    return this.maskLayer;
  }
  get width(): number {
    return this.maskLayer.width;
  }
  get height(): number {
    return this.maskLayer.height;
  }
  get canUndo(): boolean {
    return this.undoStack.length > 0 && !this.stroke;
  }
  get canRedo(): boolean {
    return this.redoStack.length > 0 && !this.stroke;
  }
  get isPainting(): boolean {
    return this.stroke !== null;
  }
  get undoDepth(): number {
    return this.undoStack.length;
  }

  subscribe(listener: (change: DocumentChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: DocumentChange): void {
    // Every pixel edit (dabs, whole-mask edits, undo) announces itself here.
    if (change.kind !== 'history') this.maskLayer.changed();
    this.revision++;
    for (const l of [...this.listeners]) l(change);
  }

  /** What a generation from this document would be, unless overridden. */
  inferredMode(): 'txt2img' | 'img2img' | 'inpaint' {
    if (!this.imageLayer) return 'txt2img';
    return this.maskLayer.isEmpty() ? 'img2img' : 'inpaint';
  }

  // ── image ────────────────────────────────────────────────────────────────────────────────────

  private snapshot(): DocumentState {
    return { image: this.imageLayer, width: this.width, height: this.height, mask: this.maskLayer.data.slice() };
  }

  private restore(state: DocumentState): void {
    this.imageLayer = state.image;
    this.maskLayer = new MaskLayer(state.width, state.height, state.mask.slice());
  }

  private replaceDocument(label: string, next: DocumentState): void {
    this.cancelStroke();
    const before = this.snapshot();
    this.restore(next);
    this.pushUndo({ kind: 'image', label, before, after: this.snapshot() });
    this.emit({ kind: 'document' });
  }

  /** Starts over on a blank canvas (txt2img at this size); undoable. */
  newBlank(width: number, height: number): void {
    this.replaceDocument('New canvas', { image: null, width, height, mask: new Uint8Array(width * height) });
  }

  /**
   * A blank canvas follows the txt2img size as it is chosen: nothing is lost by resizing it, so it takes
   * no undo step. Does nothing when there is an image.
   */
  resizeBlank(width: number, height: number): void {
    if (this.imageLayer || (width === this.width && height === this.height)) return;
    this.cancelStroke();
    this.restore({ image: null, width, height, mask: new Uint8Array(width * height) });
    this.emit({ kind: 'document' });
  }

  /**
   * Sets the base image. The mask is kept when the size matches (an accepted inpaint result keeps its
   * mask, so the next run can refine it), and reset otherwise.
   */
  setImage(image: ImageLayer, label = 'Open image'): void {
    const keepMask = image.width === this.width && image.height === this.height;
    this.replaceDocument(label, {
      image,
      width: image.width,
      height: image.height,
      mask: keepMask ? this.maskLayer.data.slice() : new Uint8Array(image.width * image.height),
    });
  }

  /**
   * Outpainting: `image` is the grown canvas, with the old image's pixels at (`left`, `top`). The old
   * mask moves with them and the new area is masked (white), so the next inpaint fills it. One undo step.
   */
  extendCanvas(image: ImageLayer, left: number, top: number): void {
    const { width, height } = image;
    if (left < 0 || top < 0 || left + this.width > width || top + this.height > height) {
      throw new RangeError(`the old ${this.width}×${this.height} canvas does not fit at (${left}, ${top}) in ${width}×${height}`);
    }
    const mask = new Uint8Array(width * height).fill(255);
    const old = this.maskLayer;
    for (let y = 0; y < old.height; y++) mask.set(old.data.subarray(y * old.width, (y + 1) * old.width), (y + top) * width + left);
    this.replaceDocument('Extend canvas', { image, width, height, mask });
  }

  // ── strokes ──────────────────────────────────────────────────────────────────────────────────

  beginStroke(tool: BrushTool, brush: BrushSettings, point: StrokePoint): void {
    if (this.stroke) this.endStroke();
    this.stroke = { tool, brush: { ...brush }, last: point, carry: 0, before: this.maskLayer.data.slice(), dirty: null };
    this.extend(point, true);
  }

  /** Adds a pointer sample to the stroke in progress (no-op without one). */
  continueStroke(point: StrokePoint): void {
    if (this.stroke) this.extend(point, false);
  }

  private extend(point: StrokePoint, first: boolean): void {
    const s = this.stroke!;
    const from = first ? point : s.last;
    const { rect, carry } = stampSegment(this.maskLayer, from, point, first ? 0 : s.carry, s.brush, s.tool);
    s.last = point;
    s.carry = carry;
    if (rect) {
      s.dirty = unionRect(s.dirty, rect);
      this.emit({ kind: 'mask', rect });
    }
  }

  /** Ends the stroke: one undo step holding exactly the pixels it changed. */
  endStroke(): void {
    const s = this.stroke;
    if (!s) return;
    this.stroke = null;
    if (s.dirty) {
      const rect = s.dirty;
      const before = new MaskLayer(this.width, this.height, s.before).read(rect);
      const after = this.maskLayer.read(rect);
      if (!bytesEqual(before, after)) {
        this.pushUndo({ kind: 'mask', label: s.tool === 'brush' ? 'Brush stroke' : 'Eraser stroke', rect, before, after });
      }
    }
    this.emit({ kind: 'history' });
  }

  /** Esc: puts back every pixel of the stroke in progress; no undo entry, redo kept. */
  cancelStroke(): boolean {
    const s = this.stroke;
    if (!s) return false;
    this.stroke = null;
    if (s.dirty) {
      this.maskLayer.write(s.dirty, new MaskLayer(this.width, this.height, s.before).read(s.dirty));
      this.emit({ kind: 'mask', rect: s.dirty });
    }
    this.emit({ kind: 'history' });
    return true;
  }

  // ── whole-mask operations ────────────────────────────────────────────────────────────────────

  private editWholeMask(label: string, edit: (data: Uint8Array) => void): void {
    this.cancelStroke();
    const rect = this.maskLayer.fullRect;
    const before = this.maskLayer.data.slice();
    edit(this.maskLayer.data);
    const after = this.maskLayer.data.slice();
    if (bytesEqual(before, after)) return;
    this.pushUndo({ kind: 'mask', label, rect, before, after });
    this.emit({ kind: 'mask', rect });
    this.emit({ kind: 'history' });
  }

  invertMask(): void {
    this.editWholeMask('Invert mask', (d) => {
      for (let i = 0; i < d.length; i++) d[i] = 255 - d[i]!;
    });
  }

  clearMask(): void {
    this.editWholeMask('Clear mask', (d) => d.fill(0));
  }

  fillMask(): void {
    this.editWholeMask('Fill mask', (d) => d.fill(255));
  }

  // ── undo ─────────────────────────────────────────────────────────────────────────────────────

  private pushUndo(entry: UndoEntry): void {
    this.undoStack.push(entry);
    if (this.undoStack.length > MAX_UNDO_STEPS) this.undoStack.shift();
    this.redoStack.length = 0;
  }

  /** Label of the step Undo would take back, for tooltips. */
  get undoLabel(): string | null {
    return this.undoStack.at(-1)?.label ?? null;
  }
  get redoLabel(): string | null {
    return this.redoStack.at(-1)?.label ?? null;
  }

  undo(): boolean {
    if (this.stroke) return this.cancelStroke();
    const entry = this.undoStack.pop();
    if (!entry) return false;
    this.apply(entry, 'before');
    this.redoStack.push(entry);
    this.emit({ kind: 'history' });
    return true;
  }

  redo(): boolean {
    if (this.stroke) return false;
    const entry = this.redoStack.pop();
    if (!entry) return false;
    this.apply(entry, 'after');
    this.undoStack.push(entry);
    this.emit({ kind: 'history' });
    return true;
  }

  private apply(entry: UndoEntry, side: 'before' | 'after'): void {
    if (entry.kind === 'mask') {
      this.maskLayer.write(entry.rect, entry[side]);
      this.emit({ kind: 'mask', rect: entry.rect });
    } else {
      this.restore(entry[side]);
      this.emit({ kind: 'document' });
    }
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The mask as a greyscale PNG at image resolution (white = repaint), as the contract's `mask` expects. */
export function exportMaskPng(doc: EditorDocument, compress?: ZlibCompress): Promise<Uint8Array> {
  return encodeGreyPng(doc.width, doc.height, doc.mask.data, compress);
}
