// Builds the renderer into renderer/dist, which `studio serve` (and the Electron window) load.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: import.meta.dirname,
  // Relative asset URLs: the same build loads from file:// (Electron) and from `studio serve`.
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'chrome120',
    // The renderer ships inside the app: one readable bundle beats small chunks here.
    chunkSizeWarningLimit: 2000,
  },
});
