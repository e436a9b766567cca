/** The editor's tool settings (not part of the document, not undoable). */
import { MAX_BRUSH_SIZE, MIN_BRUSH_SIZE, type BrushTool } from '../document/brush.js';

/** The brush and eraser paint either layer; fill (a paint bucket) is for the layout only; the wand (mask from a colour range) for the mask only. */
export type ToolName = BrushTool | 'fill' | 'wand';
/** Which layer the tools edit: the inpaint mask, or the layout (labels for a layout model). */
export type PaintTarget = 'mask' | 'layout';

export interface ToolState {
  tool: ToolName;
  target: PaintTarget;
  size: number;
  hardness: number;
  opacity: number;
  maskVisible: boolean;
  /** How strongly the mask overlay tints the image, 0..1. */
  maskOpacity: number;
  /** The label the layout brush and fill paint (an id of the model's labels). */
  layoutLabel: number;
  layoutVisible: boolean;
  /** Opacity of the layout's palette colours over the image, 0..1. */
  layoutOpacity: number;
  /** N for the mask's Grow / Shrink / Feather buttons, in image pixels. */
  maskRadius: number;
  /** The wand's largest per-channel colour difference (0..255), and whether it takes only the connected region. */
  wandTolerance: number;
  wandContiguous: boolean;
}

export const DEFAULT_TOOL_STATE: ToolState = {
  tool: 'brush',
  target: 'mask',
  size: 32,
  hardness: 0.8,
  opacity: 1,
  maskVisible: true,
  maskOpacity: 0.55,
  layoutLabel: 1,
  layoutVisible: true,
  layoutOpacity: 0.7,
  maskRadius: 8,
  wandTolerance: 32,
  wandContiguous: true,
};

/** `[` and `]` step the brush size by about 10 %, at least one pixel, as in Photoshop. */
export function stepBrushSize(size: number, direction: 1 | -1): number {
  const step = Math.max(1, Math.round(size * 0.1));
  return Math.min(MAX_BRUSH_SIZE, Math.max(MIN_BRUSH_SIZE, size + direction * step));
}

/** Switching layers: fill exists only on the layout and the wand only on the mask, so the other layer gets the brush back. */
export function withTarget(state: ToolState, target: PaintTarget): Partial<ToolState> {
  if (target === 'mask' && state.tool === 'fill') return { target, tool: 'brush' };
  if (target === 'layout' && state.tool === 'wand') return { target, tool: 'brush' };
  return { target };
}
