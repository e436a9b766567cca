/**
 * Layout mode's rules, apart from the session so they stay DOM-free and unit-testable: which palette the
 * layout is drawn with, when auto mode means layout, and what stops a layout generation, in plain words.
 */
import type { GenerationMode } from '../../../electron/shared/generation.js';
import type { LayoutLabel, ModelInfo } from '../../../electron/shared/model.js';
import type { EditorDocument } from '../document/document.js';

/** What the rules need of the model list: the chosen id and each model's detected info. */
export interface ModelChoice {
  selectedId: string | null;
  info: Record<string, ModelInfo>;
}

/**
 * The labels the layout layer is drawn and exported with: the chosen model's, or, when it is not a layout
 * model, the first layout model's (so a painted layout keeps its colours while another model is picked).
 */
export function layoutPaletteOf(models: ModelChoice): LayoutLabel[] {
  const selected = models.selectedId ? models.info[models.selectedId] : undefined;
  if (selected?.layout) return selected.layout.labels;
  return Object.values(models.info).find((i) => i.layout)?.layout?.labels ?? [];
}

/**
 * Auto mode: the document's inferred mode (layout when a layout model has a painted layout). A layout
 * model does nothing but layout, so with nothing painted yet it is still layout (and Generate says to paint)
 * rather than "cannot do txt2img".
 */
export function autoMode(doc: EditorDocument, info: ModelInfo | undefined): GenerationMode {
  const inferred = doc.inferredMode(Boolean(info?.layout));
  return info?.layout && !info.supports.includes(inferred) ? 'layout' : inferred;
}

/** Why a layout generation can't run with this model and document; null when it can. */
export function layoutProblem(doc: EditorDocument, modelId: string, info: ModelInfo | undefined): string | null {
  if (info && !info.layout) return `${modelId} is not a layout model: layout needs a model with labels (labels.json), such as emoji-ldm-layout.`;
  if (doc.layout.isEmpty()) return 'Paint a layout first: pick a label under the canvas toolbar and paint where it goes.';
  const labels = info?.layout?.labels.length ?? 0;
  if (info && doc.layout.maxLabel() >= labels) return `The layout uses labels ${modelId} doesn't have (it has ${labels}); clear them or pick the model they came from.`;
  return null;
}
