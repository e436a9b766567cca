/** The editor's tool settings (not part of the document, not undoable). */
import { MAX_BRUSH_SIZE, MIN_BRUSH_SIZE, type BrushTool } from './brush.js';

export interface ToolState {
  tool: BrushTool;
  size: number;
  hardness: number;
  opacity: number;
  maskVisible: boolean;
  /** How strongly the mask overlay tints the image, 0..1. */
  maskOpacity: number;
}

export const DEFAULT_TOOL_STATE: ToolState = { tool: 'brush', size: 32, hardness: 0.8, opacity: 1, maskVisible: true, maskOpacity: 0.55 };

/** `[` and `]` step the brush size by about 10 %, at least one pixel, as in Photoshop. */
export function stepBrushSize(size: number, direction: 1 | -1): number {
  const step = Math.max(1, Math.round(size * 0.1));
  return Math.min(MAX_BRUSH_SIZE, Math.max(MIN_BRUSH_SIZE, size + direction * step));
}
