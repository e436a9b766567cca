/** The editor's tool state (brush, eraser, size, target layer), one store per editor, handed down by React context. */
import { createContext, useContext } from 'react';
import type { Store } from '../session/store.js';
import type { ToolState } from './tool-state.js';

export const ToolsContext = createContext<Store<ToolState> | null>(null);

/** The tool store the composition root (app/App.tsx) provides. */
export function useTools(): Store<ToolState> {
  const tools = useContext(ToolsContext);
  if (!tools) throw new Error('useTools needs a <ToolsContext.Provider> above it (app/App.tsx provides one).');
  return tools;
}
