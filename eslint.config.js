// Lint, including the import-layer table from docs/architecture.md.
// Do not relax these rules: the path says where code may run.
import tseslint from 'typescript-eslint';

/** Which of our folders each layer may import (besides itself). */
const LAYERS = {
  'electron/shared': [],
  'electron/engine': ['electron/shared'],
  'electron/history': ['electron/shared'],
  'electron/host': ['electron/shared', 'electron/engine', 'electron/history', 'electron/model-library'],
  'electron/model-library': ['electron/shared', 'electron/engine', 'electron/history'],
  'electron/main': ['electron/shared', 'electron/host', 'electron/engine', 'electron/history', 'electron/model-library'],
  'electron/preload': ['electron/shared'],
};
const ALL = Object.keys(LAYERS);
const NODE_ONLY = ['electron/engine', 'electron/history', 'electron/model-library', 'electron/host'];

function layerRule(layer) {
  const forbiddenLayers = ALL.filter((l) => l !== layer && !LAYERS[layer].includes(l));
  const patterns = forbiddenLayers.map((l) => ({
    group: [`**/${l.split('/')[1]}/**`, `**/${l.split('/')[1]}`],
    message: `${layer} may not import ${l} (see docs/architecture.md).`,
  }));
  const paths = [];
  if (layer === 'electron/shared') {
    patterns.push({ group: ['node:*'], message: 'electron/shared is pure TS: no node imports.' });
  }
  if (NODE_ONLY.includes(layer) || layer === 'electron/shared') {
    paths.push({ name: 'electron', message: `${layer} never imports electron.` });
  }
  return {
    files: [`${layer}/**/*.ts`],
    rules: { 'no-restricted-imports': ['error', { paths, patterns }] },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'dist-electron/**', '.scratch/**', 'test-results/**', 'native-models/**', 'test/fixtures/**', 'renderer/dist/**', 'release/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...ALL.map(layerRule),
  {
    files: ['renderer/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/electron/engine/**', '**/electron/history/**', '**/electron/host/**', '**/electron/main/**', 'node:*'], message: 'The renderer talks to the host only through src/ipc/studio-client.ts.' },
          { group: ['**/electron/shared/**'], allowTypeImports: true, message: 'The renderer may only `import type` from electron/shared.' },
        ],
      }],
    },
  },
);
