/**
 * The editor document: a base image (or a blank canvas of a chosen size), the mask and the layout
 * (a label id per pixel, for layout models) at image resolution, and the undo history. No React, no Konva, no DOM: the view subscribes to changes and redraws.
 *
 * Undo records deltas (excalidraw's habit), bounded by bytes, not steps: a mask or layout edit keeps
 * the XOR of the rectangle it changed, run-length packed (packed.ts), so a stroke costs about the pixels
 * it touched and a whole-layer edit of a 2048² mask kilobytes; a new picture (open, accept, extend) keeps
 * both versions of the mask and layout packed, one copy when they are equal. When the history passes its
 * byte budget (default 256 MiB, a setting) the oldest steps are dropped; the newest always stays. One
 * stroke is one undo step; Esc while painting puts the stroke's pixels back and leaves no undo entry.
 */
import { stampSegment, walkSegment, type BrushSettings, type BrushTool, type StrokePoint } from './brush.js';
import { BACKGROUND_LABEL, floodFillLabel, LayoutLayer, layoutToRgb, resampleLabels, stampLabelDab, type LayoutPalette } from './layout.js';
import { MaskLayer, StrokeBackup, unionRect, type PixelRect } from './mask.js';
import { colourRangeMask, featherMask, growMask, maskUnion, shrinkMask, type ColourRangeOptions } from './mask-ops.js';
import { applyDelta, isEmptyDelta, packDelta, packPlane, unpackPlane, type PackedPlane } from './packed.js';
import { encodeGreyPng, encodeRgbPng, type ZlibCompress } from './png.js';
import { makeRegion, nextRegionColour, regionProps, type Region, type RegionProps, type RegionState } from './regions.js';

/** Where the base image came from; it decides how a generation sends it (hash or bytes). */
export type ImageSource =
  | { kind: 'history'; historyId: number; hash: string }
  /** `parentId`: the history item these bytes were made from (an outpainting extension of it), so results stay its children. */
  | { kind: 'file'; name: string; bytes: Uint8Array; mime: string; parentId?: number };

export interface ImageLayer {
  width: number;
  height: number;
  source: ImageSource;
}

/** How many bytes of undo history to keep by default (the `undoMemoryMb` setting); the oldest steps go first. */
export const DEFAULT_UNDO_BUDGET_BYTES = 256 * 2 ** 20;

/** Bookkeeping per undo step (the entry object, its label, rectangles), counted into the budget. */
const ENTRY_OVERHEAD_BYTES = 160;

type UndoEntry =
  | { kind: 'mask' | 'layout'; label: string; rect: PixelRect; delta: PackedPlane; bytes: number }
  | { kind: 'region'; label: string; id: number; rect: PixelRect; delta: PackedPlane; bytes: number }
  /** The region list changed (added, removed, replaced by Reuse): both lists, masks packed. */
  | { kind: 'regions'; label: string; before: PackedRegion[]; after: PackedRegion[]; bytes: number }
  | { kind: 'image'; label: string; before: PackedState; after: PackedState; bytes: number };

/** A region as the undo history keeps it. `props` is refreshed when the history leaves that state (prompts are typed without undo steps). */
interface PackedRegion {
  id: number;
  props: RegionProps;
  mask: PackedPlane;
}

/** A whole document state as the undo history keeps it. */
interface PackedState {
  image: ImageLayer | null;
  width: number;
  height: number;
  mask: PackedPlane;
  layout: PackedPlane;
  regions: PackedRegion[];
}

export interface EditorDocumentOptions {
  /** The undo history's byte budget (default DEFAULT_UNDO_BUDGET_BYTES). */
  undoBudgetBytes?: number;
}

interface DocumentState {
  image: ImageLayer | null;
  width: number;
  height: number;
  mask: Uint8Array;
  layout: Uint8Array;
  regions: RegionState[];
}

export type DocumentChange =
  /** Mask pixels inside `rect` changed. */
  | { kind: 'mask'; rect: PixelRect }
  /** Layout labels inside `rect` changed. */
  | { kind: 'layout'; rect: PixelRect }
  /** Pixels of region `id`'s mask inside `rect` changed. */
  | { kind: 'region'; id: number; rect: PixelRect }
  /** The region list changed: regions added, removed or replaced (with their masks). */
  | { kind: 'regions' }
  /** A region's prompt, weight, colour or visibility changed (no pixels, no undo step). */
  | { kind: 'region-props'; id: number }
  /** The image, the size or the whole mask changed. */
  | { kind: 'document' }
  /** A step ended (stroke, undo, redo, whole-layer edit): undo availability and emptiness may differ. */
  | { kind: 'history' };

/** Which layer a stroke paints: the mask, or the layout with one label. */
type StrokeTarget = { layer: 'mask' } | { layer: 'layout'; label: number } | { layer: 'region'; id: number; mask: MaskLayer };

interface ActiveStroke {
  tool: BrushTool;
  brush: BrushSettings;
  target: StrokeTarget;
  last: StrokePoint;
  carry: number;
  /** The target layer as it was when the stroke began, block by block as the stroke reaches them (for Esc and for the undo delta). */
  before: StrokeBackup;
  dirty: PixelRect | null;
}

export class EditorDocument {
  private imageLayer: ImageLayer | null = null;
  private maskLayer: MaskLayer;
  private layoutLayer: LayoutLayer;
  private readonly undoStack: UndoEntry[] = [];
  private readonly redoStack: UndoEntry[] = [];
  private undoBudget: number;
  /** Bytes held by the undo and redo stacks together. */
  private historyBytes = 0;
  /**
   * The packed copies of the current mask and layout, while they haven't changed since: a picture
   * accepted after another shares its planes with the step before instead of packing them again.
   */
  private packedNow: { mask: PackedPlane | null; layout: PackedPlane | null } = { mask: null, layout: null };
  private regionList: Region[] = [];
  private nextRegionId = 1;
  /** Packed copies of region masks that haven't changed since (by region id), shared by the steps that keep them. */
  private regionPacked = new Map<number, PackedPlane>();
  private stroke: ActiveStroke | null = null;
  private readonly listeners = new Set<(change: DocumentChange) => void>();
  /** Bumped on every change, so React can tell that something changed. */
  revision = 0;

  constructor(width = 512, height = 512, options: EditorDocumentOptions = {}) {
    this.undoBudget = checkBudget(options.undoBudgetBytes ?? DEFAULT_UNDO_BUDGET_BYTES);
    this.maskLayer = new MaskLayer(width, height);
    this.layoutLayer = new LayoutLayer(width, height);
  }

  get image(): ImageLayer | null {
    return this.imageLayer;
  }
  get mask(): MaskLayer {
    return this.maskLayer;
  }
  get layout(): LayoutLayer {
    return this.layoutLayer;
  }
  /** The regional prompts, in the order they are sent. */
  get regions(): readonly Region[] {
    return this.regionList;
  }
  region(id: number): Region | undefined {
    return this.regionList.find((r) => r.id === id);
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
  /** Bytes the undo and redo history hold now (packed planes and bookkeeping). */
  get undoMemoryBytes(): number {
    return this.historyBytes;
  }
  get undoBudgetBytes(): number {
    return this.undoBudget;
  }
  /** Changes the undo byte budget; the oldest steps past it are dropped at once. */
  setUndoBudget(bytes: number): void {
    this.undoBudget = checkBudget(bytes);
    this.enforceBudget();
    this.emit({ kind: 'history' });
  }

  subscribe(listener: (change: DocumentChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: DocumentChange): void {
    // Every pixel edit (dabs, whole-mask edits, undo) announces itself here.
    if (change.kind === 'mask' || change.kind === 'layout' || change.kind === 'document') {
      // Only the layer that changed forgets its cached facts (a dab on the mask leaves the layout's).
      if (change.kind !== 'layout') this.maskLayer.changed();
      if (change.kind !== 'mask') this.layoutLayer.changed();
      if (change.kind !== 'layout') this.packedNow.mask = null;
      if (change.kind !== 'mask') this.packedNow.layout = null;
    }
    if (change.kind === 'region') {
      this.region(change.id)?.mask.changed();
      this.regionPacked.delete(change.id);
    } else if (change.kind === 'document' || change.kind === 'regions') {
      for (const r of this.regionList) r.mask.changed();
      this.regionPacked.clear();
    }
    this.revision++;
    for (const l of [...this.listeners]) l(change);
  }

  /**
   * What a generation from this document would be, unless overridden. A painted layout means layout
   * mode, but only with a layout model (`layoutModel`): other models can't read it.
   */
  inferredMode(layoutModel = false): 'txt2img' | 'img2img' | 'inpaint' | 'layout' {
    if (layoutModel && !this.layoutLayer.isEmpty()) return 'layout';
    if (!this.imageLayer) return 'txt2img';
    return this.maskLayer.isEmpty() ? 'img2img' : 'inpaint';
  }

  // ── image ────────────────────────────────────────────────────────────────────────────────────

  private snapshot(): DocumentState {
    return {
      image: this.imageLayer,
      width: this.width,
      height: this.height,
      mask: this.maskLayer.data.slice(),
      layout: this.layoutLayer.data.slice(),
      regions: this.regionStates(),
    };
  }

  /** The regions as plain data (masks copied). */
  private regionStates(): RegionState[] {
    return this.regionList.map((r) => ({ id: r.id, ...regionProps(r), mask: r.mask.data.slice() }));
  }

  /** The regions as they would be at another size: masks stretched (nearest pixel), or moved by `offset` into a larger canvas. */
  private regionsAt(width: number, height: number, offset?: { left: number; top: number }): RegionState[] {
    return this.regionList.map((r) => {
      let mask: Uint8Array;
      if (width === this.width && height === this.height) mask = r.mask.data.slice();
      else if (offset) {
        mask = new Uint8Array(width * height);
        for (let y = 0; y < this.height; y++) mask.set(r.mask.data.subarray(y * this.width, (y + 1) * this.width), (y + offset.top) * width + offset.left);
      } else mask = resampleLabels(r.mask.data, this.width, this.height, width, height);
      return { id: r.id, ...regionProps(r), mask };
    });
  }

  private restore(state: DocumentState): void {
    this.imageLayer = state.image;
    this.maskLayer = new MaskLayer(state.width, state.height, state.mask.slice());
    this.layoutLayer = new LayoutLayer(state.width, state.height, state.layout.slice());
    this.regionList = state.regions.map((r) => makeRegion(r.id, r, state.width, state.height, r.mask.slice()));
  }

  private restorePacked(state: PackedState): void {
    this.imageLayer = state.image;
    this.maskLayer = new MaskLayer(state.width, state.height, unpackPlane(state.mask));
    this.layoutLayer = new LayoutLayer(state.width, state.height, unpackPlane(state.layout));
    this.regionList = state.regions.map((r) => makeRegion(r.id, r.props, state.width, state.height, unpackPlane(r.mask)));
  }

  /** The current regions packed, reusing the packed copy of each mask that hasn't changed. */
  private packRegions(): PackedRegion[] {
    return this.regionList.map((r) => {
      let mask = this.regionPacked.get(r.id);
      if (!mask) {
        mask = packPlane(r.mask.data);
        this.regionPacked.set(r.id, mask);
      }
      return { id: r.id, props: regionProps(r), mask };
    });
  }

  /** The undo step before this one holds these planes, so a new step sharing them doesn't count them again. */
  private entryBytes(planes: Iterable<PackedPlane>): number {
    const previous = this.undoStack.at(-1);
    const held = new Set(previous ? sidePlanes(previous, 'after') : []);
    let bytes = ENTRY_OVERHEAD_BYTES;
    for (const p of new Set(planes)) if (!held.has(p)) bytes += p.bytes;
    return bytes;
  }

  private replaceDocument(label: string, next: DocumentState): void {
    this.cancelStroke();
    const before = this.snapshot();
    const regionsBefore = this.packRegions();
    this.restore(next);
    const packedBefore: PackedState = {
      ...before,
      mask: this.packedNow.mask ?? packPlane(before.mask),
      layout: this.packedNow.layout ?? packPlane(before.layout),
      regions: regionsBefore,
    };
    const packedAfter = packState(next, packedBefore, before);
    const bytes = this.entryBytes([...statePlanes(packedBefore), ...statePlanes(packedAfter)]);
    this.pushUndo({ kind: 'image', label, before: packedBefore, after: packedAfter, bytes });
    this.emit({ kind: 'document' });
    this.packedNow = { mask: packedAfter.mask, layout: packedAfter.layout };
    this.regionPacked = new Map(packedAfter.regions.map((r) => [r.id, r.mask]));
  }

  /** Starts over on a blank canvas (txt2img at this size); undoable. */
  newBlank(width: number, height: number): void {
    this.replaceDocument('New canvas', { image: null, width, height, mask: new Uint8Array(width * height), layout: new Uint8Array(width * height), regions: this.regionsAt(width, height) });
  }

  /**
   * A blank canvas follows the txt2img size as it is chosen: nothing is lost by resizing it, so it takes
   * no undo step. A painted layout is stretched to the new size (nearest label) instead, and that is one
   * undo step, since it is no longer pixel for pixel what was painted. Does nothing when there is an image.
   */
  resizeBlank(width: number, height: number): void {
    if (this.imageLayer || (width === this.width && height === this.height)) return;
    this.cancelStroke();
    const mask = new Uint8Array(width * height);
    if (!this.layoutLayer.isEmpty() || this.regionList.some((r) => !r.mask.isEmpty())) {
      const layout = resampleLabels(this.layoutLayer.data, this.width, this.height, width, height);
      this.replaceDocument('Resize canvas', { image: null, width, height, mask, layout, regions: this.regionsAt(width, height) });
      return;
    }
    this.restore({ image: null, width, height, mask, layout: new Uint8Array(width * height), regions: this.regionsAt(width, height) });
    this.emit({ kind: 'document' });
  }

  /**
   * Sets the base image. The mask and the layout are kept when the size matches (an accepted inpaint
   * result keeps its mask, so the next run can refine it; a layout result keeps its layout), and reset otherwise.
   * `clearMask` empties the mask in the same undo step (a kept live frame: its area is done, and the
   * next strokes repaint only where they go).
   */
  setImage(image: ImageLayer, label = 'Open image', options: { clearMask?: boolean } = {}): void {
    const keep = image.width === this.width && image.height === this.height;
    this.replaceDocument(label, {
      image,
      width: image.width,
      height: image.height,
      mask: keep && !options.clearMask ? this.maskLayer.data.slice() : new Uint8Array(image.width * image.height),
      layout: keep ? this.layoutLayer.data.slice() : new Uint8Array(image.width * image.height),
      // Regions belong to the composition, not to one picture: they stay, stretched to a new size.
      regions: this.regionsAt(image.width, image.height),
    });
  }

  /**
   * Outpainting: `image` is the grown canvas, with the old image's pixels at (`left`, `top`). The old
   * mask moves with them and the new area is masked (white), so the next inpaint fills it; the layout
   * moves too, the new area background. One undo step.
   */
  extendCanvas(image: ImageLayer, left: number, top: number): void {
    const { width, height } = image;
    if (left < 0 || top < 0 || left + this.width > width || top + this.height > height) {
      throw new RangeError(`the old ${this.width}×${this.height} canvas does not fit at (${left}, ${top}) in ${width}×${height}`);
    }
    const mask = new Uint8Array(width * height).fill(255);
    const layout = new Uint8Array(width * height).fill(BACKGROUND_LABEL);
    const old = this.maskLayer;
    const oldLayout = this.layoutLayer;
    for (let y = 0; y < old.height; y++) {
      mask.set(old.data.subarray(y * old.width, (y + 1) * old.width), (y + top) * width + left);
      layout.set(oldLayout.data.subarray(y * old.width, (y + 1) * old.width), (y + top) * width + left);
    }
    this.replaceDocument('Extend canvas', { image, width, height, mask, layout, regions: this.regionsAt(width, height, { left, top }) });
  }

  // ── strokes ──────────────────────────────────────────────────────────────────────────────────

  beginStroke(tool: BrushTool, brush: BrushSettings, point: StrokePoint): void {
    if (this.stroke) this.endStroke();
    this.stroke = { tool, brush: { ...brush }, target: { layer: 'mask' }, last: point, carry: 0, before: new StrokeBackup(this.maskLayer), dirty: null };
    this.extend(point, true);
  }

  /**
   * A stroke on the layout: the brush paints `label`, the eraser paints background. Hard-edged (labels
   * don't blend); otherwise exactly a mask stroke: one undo step, Esc cancels.
   */
  beginLayoutStroke(tool: BrushTool, label: number, size: number, point: StrokePoint): void {
    if (!Number.isInteger(label) || label < 0 || label > 255) throw new RangeError(`a label id is a whole number from 0 to 255, got ${label}`);
    if (this.stroke) this.endStroke();
    const target = { layer: 'layout' as const, label: tool === 'eraser' ? BACKGROUND_LABEL : label };
    this.stroke = { tool, brush: { size, hardness: 1, opacity: 1 }, target, last: point, carry: 0, before: new StrokeBackup(this.layoutLayer), dirty: null };
    this.extend(point, true);
  }

  /**
   * A stroke on region `id`'s mask: exactly a mask stroke (the same brush, eraser, hardness and opacity),
   * one undo step, Esc cancels.
   */
  beginRegionStroke(id: number, tool: BrushTool, brush: BrushSettings, point: StrokePoint): void {
    const region = this.region(id);
    if (!region) throw new RangeError(`there is no region ${id}`);
    if (this.stroke) this.endStroke();
    this.stroke = { tool, brush: { ...brush }, target: { layer: 'region', id, mask: region.mask }, last: point, carry: 0, before: new StrokeBackup(region.mask), dirty: null };
    this.extend(point, true);
  }

  private strokeLayer(s: ActiveStroke): MaskLayer {
    return s.target.layer === 'region' ? s.target.mask : s.target.layer === 'layout' ? this.layoutLayer : this.maskLayer;
  }

  private strokeChange(target: StrokeTarget, rect: PixelRect): DocumentChange {
    return target.layer === 'region' ? { kind: 'region', id: target.id, rect } : { kind: target.layer, rect };
  }

  /** Adds a pointer sample to the stroke in progress (no-op without one). */
  continueStroke(point: StrokePoint): void {
    if (this.stroke) this.extend(point, false);
  }

  private extend(point: StrokePoint, first: boolean): void {
    const s = this.stroke!;
    const from = first ? point : s.last;
    const carryIn = first ? 0 : s.carry;
    const target = s.target;
    // Every dab of this segment lies within the brush radius (pressure only shrinks it) of the segment.
    const reach = Math.max(0.5, s.brush.size / 2) + 1;
    s.before.save({
      x: Math.min(from.x, point.x) - reach,
      y: Math.min(from.y, point.y) - reach,
      width: Math.abs(point.x - from.x) + 2 * reach + 1,
      height: Math.abs(point.y - from.y) + 2 * reach + 1,
    });
    const { rect, carry } =
      target.layer === 'layout'
        ? walkSegment(from, point, carryIn, s.brush.size, (cx, cy, d) => stampLabelDab(this.layoutLayer, cx, cy, d, target.label))
        : stampSegment(this.strokeLayer(s), from, point, carryIn, s.brush, s.tool);
    s.last = point;
    s.carry = carry;
    if (rect) {
      s.dirty = unionRect(s.dirty, rect);
      this.emit(this.strokeChange(target, rect));
    }
  }

  /** Ends the stroke: one undo step holding exactly the pixels it changed. */
  endStroke(): void {
    const s = this.stroke;
    if (!s) return;
    this.stroke = null;
    if (s.dirty) {
      const rect = s.dirty;
      const before = s.before.read(rect);
      const after = this.strokeLayer(s).read(rect);
      if (!bytesEqual(before, after)) {
        const label = `${s.target.layer === 'layout' ? 'Layout ' : s.target.layer === 'region' ? 'Region ' : ''}${s.tool === 'brush' ? 'brush' : 'eraser'} stroke`;
        const capitalised = label[0]!.toUpperCase() + label.slice(1);
        if (s.target.layer === 'region') this.pushRegionUndo(s.target.id, capitalised, rect, before, after);
        else this.pushLayerUndo(s.target.layer, capitalised, rect, before, after);
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
      this.strokeLayer(s).write(s.dirty, s.before.read(s.dirty));
      this.emit(this.strokeChange(s.target, s.dirty));
    }
    this.emit({ kind: 'history' });
    return true;
  }

  // ── whole-mask operations ────────────────────────────────────────────────────────────────────

  private editWholeMask(label: string, edit: (data: Uint8Array) => void): boolean {
    this.cancelStroke();
    const rect = this.maskLayer.fullRect;
    const before = this.maskLayer.data.slice();
    edit(this.maskLayer.data);
    const after = this.maskLayer.data.slice();
    if (bytesEqual(before, after)) return false;
    this.pushLayerUndo('mask', label, rect, before, after);
    this.emit({ kind: 'mask', rect });
    this.emit({ kind: 'history' });
    return true;
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

  /** Grows the marked area by `radius` pixels; one undo step (none when nothing changes). */
  growMask(radius: number): void {
    const next = growMask(this.maskLayer.data, this.width, this.height, radius);
    this.editWholeMask(`Grow mask ${radius} px`, (d) => d.set(next));
  }

  /** Shrinks the marked area by `radius` pixels; one undo step. */
  shrinkMask(radius: number): void {
    const next = shrinkMask(this.maskLayer.data, this.width, this.height, radius);
    this.editWholeMask(`Shrink mask ${radius} px`, (d) => d.set(next));
  }

  /** Softens the mask's edges over about `radius` pixels; one undo step. */
  featherMask(radius: number): void {
    const next = featherMask(this.maskLayer.data, this.width, this.height, radius);
    this.editWholeMask(`Feather mask ${radius} px`, (d) => d.set(next));
  }

  /**
   * Magic wand: adds to the mask the pixels of `rgba` (the base image, at the document's size) within
   * the tolerance of the colour at (`x`, `y`). One undo step; false when nothing changed.
   */
  selectColourRange(rgba: Uint8Array | Uint8ClampedArray, x: number, y: number, options: ColourRangeOptions): boolean {
    const picked = colourRangeMask(rgba, this.width, this.height, x, y, options);
    const next = maskUnion(this.maskLayer.data, picked);
    return this.editWholeMask('Mask colour range', (d) => d.set(next));
  }

  // ── layout operations ────────────────────────────────────────────────────────────────────────

  /** Paint bucket: the connected region under (`x`, `y`) takes `label`. One undo step; false when nothing changed. */
  fillLayoutRegion(x: number, y: number, label: number): boolean {
    this.cancelStroke();
    const before = this.layoutLayer.data.slice();
    const rect = floodFillLabel(this.layoutLayer, x, y, label);
    if (!rect) return false;
    const old = new MaskLayer(this.width, this.height, before).read(rect);
    this.pushLayerUndo('layout', 'Layout fill', rect, old, this.layoutLayer.read(rect));
    this.emit({ kind: 'layout', rect });
    this.emit({ kind: 'history' });
    return true;
  }

  /** Everything back to background; one undo step. */
  clearLayout(): void {
    this.cancelStroke();
    if (this.layoutLayer.isEmpty()) return;
    const rect = this.layoutLayer.fullRect;
    const before = this.layoutLayer.data.slice();
    this.layoutLayer.data.fill(BACKGROUND_LABEL);
    this.pushLayerUndo('layout', 'Clear layout', rect, before, this.layoutLayer.data);
    this.emit({ kind: 'layout', rect });
    this.emit({ kind: 'history' });
  }

  /**
   * Puts a stored label map (ids, `width`×`height`) into the layout: one undo step. A map of another
   * size starts a blank canvas of its size (a layout generation runs at the map's size).
   */
  loadLayout(ids: Uint8Array, width: number, height: number, label = 'Reuse layout'): void {
    if (ids.length !== width * height) throw new RangeError(`a ${width}×${height} layout has ${width * height} labels, got ${ids.length}`);
    this.cancelStroke();
    if (width !== this.width || height !== this.height) {
      this.replaceDocument(label, { image: null, width, height, mask: new Uint8Array(width * height), layout: ids.slice(), regions: this.regionsAt(width, height) });
      return;
    }
    const rect = this.layoutLayer.fullRect;
    const before = this.layoutLayer.data.slice();
    if (bytesEqual(before, ids)) return;
    this.layoutLayer.data.set(ids);
    this.pushLayerUndo('layout', label, rect, before, ids);
    this.emit({ kind: 'layout', rect });
    this.emit({ kind: 'history' });
  }

  // ── regional prompts ─────────────────────────────────────────────────────────────────────────

  /** Replaces the region list (one undo step holding both lists); new masks get the document's size. */
  private replaceRegions(label: string, next: Region[]): void {
    this.cancelStroke();
    const before = this.packRegions();
    for (const id of this.regionPacked.keys()) if (!next.some((r) => r.id === id)) this.regionPacked.delete(id);
    this.regionList = next;
    const after = this.packRegions();
    const bytes = this.entryBytes([...before, ...after].map((r) => r.mask));
    this.pushUndo({ kind: 'regions', label, before, after, bytes });
    // The emit forgets packed copies (the list changed); the ones just made are still the masks' own.
    const packed = new Map(this.regionPacked);
    this.emit({ kind: 'regions' });
    this.regionPacked = packed;
    this.emit({ kind: 'history' });
  }

  /** Adds a region with an empty mask at the end of the list (a colour no region has yet); one undo step. */
  addRegion(props: Partial<RegionProps> = {}): Region {
    const region = makeRegion(
      this.nextRegionId++,
      { prompt: props.prompt ?? '', weight: props.weight ?? 1, colour: props.colour ?? nextRegionColour(this.regionList), visible: props.visible ?? true },
      this.width,
      this.height,
    );
    this.replaceRegions('Add region', [...this.regionList, region]);
    return region;
  }

  /** Removes a region and its mask; one undo step (undo brings both back). */
  removeRegion(id: number): boolean {
    if (!this.region(id)) return false;
    this.replaceRegions('Remove region', this.regionList.filter((r) => r.id !== id));
    return true;
  }

  /**
   * Replaces every region with `regions` (a history item's, brought back by Reuse): masks at the
   * document's size. One undo step.
   */
  loadRegions(regions: ReadonlyArray<Partial<RegionProps> & { mask: Uint8Array }>, label = 'Reuse regions'): Region[] {
    const next: Region[] = [];
    for (const r of regions) {
      if (r.mask.length !== this.width * this.height) throw new RangeError(`a region mask for ${this.width}×${this.height} has ${this.width * this.height} bytes, got ${r.mask.length}`);
      const props = { prompt: r.prompt ?? '', weight: r.weight ?? 1, colour: r.colour ?? nextRegionColour(next), visible: r.visible ?? true };
      next.push(makeRegion(this.nextRegionId++, props, this.width, this.height, r.mask.slice()));
    }
    this.replaceRegions(label, next);
    return next;
  }

  /** Changes a region's prompt, weight, colour or visibility: no undo step (text has its own undo). */
  updateRegion(id: number, patch: Partial<RegionProps>): void {
    const index = this.regionList.findIndex((r) => r.id === id);
    const region = this.regionList[index];
    if (!region) return;
    const next = { ...region, ...patch, id, mask: region.mask };
    this.regionList = this.regionList.map((r, i) => (i === index ? next : r));
    this.emit({ kind: 'region-props', id });
  }

  /** Empties a region's mask (the region and its prompt stay); one undo step. */
  clearRegion(id: number): void {
    const region = this.region(id);
    if (!region || region.mask.isEmpty()) return;
    this.cancelStroke();
    const rect = region.mask.fullRect;
    const before = region.mask.data.slice();
    region.mask.data.fill(0);
    this.pushRegionUndo(id, 'Clear region', rect, before, region.mask.data);
    this.emit({ kind: 'region', id, rect });
    this.emit({ kind: 'history' });
  }

  // ── undo ─────────────────────────────────────────────────────────────────────────────────────

  /** One undo step for a change of `rect` on a layer: the XOR of its bytes before and after, packed. */
  private pushLayerUndo(kind: 'mask' | 'layout', label: string, rect: PixelRect, before: Uint8Array, after: Uint8Array): void {
    const delta = packDelta(before, after);
    if (isEmptyDelta(delta)) return;
    this.pushUndo({ kind, label, rect, delta, bytes: delta.bytes + ENTRY_OVERHEAD_BYTES });
  }

  private pushRegionUndo(id: number, label: string, rect: PixelRect, before: Uint8Array, after: Uint8Array): void {
    const delta = packDelta(before, after);
    if (isEmptyDelta(delta)) return;
    this.pushUndo({ kind: 'region', label, id, rect, delta, bytes: delta.bytes + ENTRY_OVERHEAD_BYTES });
  }

  private pushUndo(entry: UndoEntry): void {
    for (const e of this.redoStack) this.historyBytes -= e.bytes;
    this.redoStack.length = 0;
    this.undoStack.push(entry);
    this.historyBytes += entry.bytes;
    this.enforceBudget();
  }

  /** Drops the oldest undo steps (then the farthest redo steps) past the budget; the newest step stays. */
  private enforceBudget(): void {
    while (this.historyBytes > this.undoBudget && this.undoStack.length + this.redoStack.length > 1) {
      const fromUndo = this.undoStack.length > 1 || this.redoStack.length === 0;
      const dropped = fromUndo ? this.undoStack.shift() : this.redoStack.shift();
      if (!dropped) break;
      this.historyBytes -= dropped.bytes;
      // Planes the dropped step shared with the next one (its picture's mask, layout, regions) now count there.
      const next = this.undoStack[0] ?? this.redoStack.at(-1);
      if (fromUndo && next) {
        const kept = new Set(sidePlanes(next, 'before'));
        for (const p of new Set(sidePlanes(dropped, 'after'))) {
          if (kept.has(p)) {
            next.bytes += p.bytes;
            this.historyBytes += p.bytes;
          }
        }
      }
    }
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

  /** Prompts and weights are edited without undo steps: the state being left keeps them as they are now. */
  private keepRegionProps(leaving: PackedRegion[]): void {
    for (const r of leaving) {
      const live = this.region(r.id);
      if (live) r.props = regionProps(live);
    }
  }

  private apply(entry: UndoEntry, side: 'before' | 'after'): void {
    const leaving = side === 'before' ? 'after' : 'before';
    if (entry.kind === 'image') {
      this.keepRegionProps(entry[leaving].regions);
      this.restorePacked(entry[side]);
      this.emit({ kind: 'document' });
      this.packedNow = { mask: entry[side].mask, layout: entry[side].layout };
      this.regionPacked = new Map(entry[side].regions.map((r) => [r.id, r.mask]));
    } else if (entry.kind === 'regions') {
      this.keepRegionProps(entry[leaving]);
      this.regionList = entry[side].map((r) => makeRegion(r.id, r.props, this.width, this.height, unpackPlane(r.mask)));
      this.emit({ kind: 'regions' });
      this.regionPacked = new Map(entry[side].map((r) => [r.id, r.mask]));
    } else if (entry.kind === 'region') {
      const layer = this.region(entry.id)?.mask;
      if (!layer) return;
      const pixels = layer.read(entry.rect);
      applyDelta(pixels, entry.delta);
      layer.write(entry.rect, pixels);
      this.emit({ kind: 'region', id: entry.id, rect: entry.rect });
    } else {
      // The delta is before XOR after: applied to either side it gives the other.
      const layer = entry.kind === 'mask' ? this.maskLayer : this.layoutLayer;
      const pixels = layer.read(entry.rect);
      applyDelta(pixels, entry.delta);
      layer.write(entry.rect, pixels);
      this.emit({ kind: entry.kind, rect: entry.rect });
    }
  }
}

/** The packed planes a step holds on one side (pictures and region lists; a pixel step holds a delta, none). */
function sidePlanes(entry: UndoEntry, side: 'before' | 'after'): PackedPlane[] {
  if (entry.kind === 'image') return statePlanes(entry[side]);
  if (entry.kind === 'regions') return entry[side].map((r) => r.mask);
  return [];
}

function statePlanes(state: PackedState): PackedPlane[] {
  return [state.mask, state.layout, ...state.regions.map((r) => r.mask)];
}

function checkBudget(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`the undo budget is a number of bytes ≥ 0, got ${bytes}`);
  return bytes;
}

/**
 * Packs a document state. With `previous` (the packed state before) and `previousRaw` (its bytes), a
 * plane equal to the previous one shares its packed copy, so an accepted result that keeps its mask and
 * layout costs nothing for them.
 */
function packState(state: DocumentState, previous?: PackedState, previousRaw?: DocumentState): PackedState {
  const same = (a: Uint8Array, b: Uint8Array | undefined): boolean => b !== undefined && bytesEqual(a, b);
  return {
    image: state.image,
    width: state.width,
    height: state.height,
    mask: previous && same(state.mask, previousRaw?.mask) ? previous.mask : packPlane(state.mask),
    layout: previous && same(state.layout, previousRaw?.layout) ? previous.layout : packPlane(state.layout),
    regions: state.regions.map((r) => {
      const i = previousRaw?.regions.findIndex((p) => p.id === r.id) ?? -1;
      const shared = i >= 0 && previous?.regions[i] && same(r.mask, previousRaw?.regions[i]?.mask) ? previous.regions[i].mask : null;
      return { id: r.id, props: regionProps(r), mask: shared ?? packPlane(r.mask) };
    }),
  };
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

/**
 * The layout as an RGB PNG of palette colours at image resolution, as the contract's `labelMap` expects.
 * Throws LayoutPaletteError when the layout uses a label the palette doesn't have.
 */
export async function exportLayoutPng(doc: EditorDocument, palette: LayoutPalette, compress?: ZlibCompress): Promise<Uint8Array> {
  return encodeRgbPng(doc.width, doc.height, layoutToRgb(doc.layout, palette), compress);
}

/** A region's mask as a greyscale PNG at image resolution (white = the region), as the contract's `regions[].mask` expects. */
export function exportRegionPng(doc: EditorDocument, region: Region, compress?: ZlibCompress): Promise<Uint8Array> {
  return encodeGreyPng(doc.width, doc.height, region.mask.data, compress);
}
