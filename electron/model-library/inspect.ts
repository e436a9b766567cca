/**
 * Asking the engine what a folder is. The library never guesses a model's kind itself: it opens the
 * folder with the engine's own checks (`openModelFolder`), which name the exact problem of a broken
 * folder (a ModelFolderError), and keeps the `ModelInfo` it reports.
 */
import { openModelFolder } from '../engine/model/model-folder.js';
import type { SessionSettings } from '../engine/model/onnx-module.js';
import type { ModelInfo, SessionReport } from '../shared/model.js';

export interface ModelInspection {
  info: ModelInfo;
  sessions: SessionReport;
}

/** Opens a folder and reports what it is; rejects (ModelFolderError) when the engine can't use it. */
export type ModelInspector = (dir: string) => Promise<ModelInspection>;

/**
 * Validation only needs the sessions to be created once: the CPU provider (always present) with one
 * thread keeps an import from competing with a running generation for the GPU or every core.
 */
export const VALIDATION_SESSION_SETTINGS: SessionSettings = { providers: ['cpu'], threads: 1 };

/**
 * The default inspector: opens the folder in this process and releases the sessions again. A host whose
 * engine runs in a child process can pass `(dir) => engineClient.info(dir)` instead, so the sessions
 * are created once, where generation happens.
 */
export function engineInspector(settings: SessionSettings = VALIDATION_SESSION_SETTINGS): ModelInspector {
  return async (dir) => {
    const model = await openModelFolder(dir, settings);
    try {
      return { info: model.info, sessions: model.sessions };
    } finally {
      await model.release();
    }
  };
}
