// Lint, including the import-layer table from docs/architecture.md.
// Do not relax these rules: the path says where code may run.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

/**
 * Which of our folders each layer may import (besides itself). The electron/ rows and the renderer rows
 * are two worlds: a renderer layer may reach electron/ only as the renderer rule below allows (types from
 * shared), and the host never imports the renderer.
 */
const LAYERS = {
  'electron/shared': [],
  'electron/engine': ['electron/shared'],
  'electron/history': ['electron/shared'],
  'electron/host': ['electron/shared', 'electron/engine', 'electron/history', 'electron/model-library'],
  'electron/model-library': ['electron/shared', 'electron/engine', 'electron/history'],
  'electron/main': ['electron/shared', 'electron/host', 'electron/engine', 'electron/history', 'electron/model-library'],
  'electron/preload': ['electron/shared'],
  // The renderer: app (composition root) → features, editor → session → document, ipc.
  'renderer/src/ipc': [],
  'renderer/src/document': [],
  'renderer/src/session': ['renderer/src/document', 'renderer/src/ipc'],
  'renderer/src/editor': ['renderer/src/session', 'renderer/src/document'],
  'renderer/src/features': ['renderer/src/session', 'renderer/src/document'],
  'renderer/src/app': ['renderer/src/features', 'renderer/src/editor', 'renderer/src/session', 'renderer/src/document', 'renderer/src/ipc'],
};
const ALL = Object.keys(LAYERS);
const NODE_ONLY = ['electron/engine', 'electron/history', 'electron/model-library', 'electron/host'];
const worldOf = (layer) => layer.split('/')[0];
const folderOf = (layer) => layer.split('/').at(-1);

/** Node builtins only by their `node:` name (`node:fs`, never `fs`): one spelling, and it can't be shadowed by a package. */
const BARE_BUILTINS = builtinModules
  .filter((m) => !m.startsWith('_') && !m.startsWith('node:'))
  .map((name) => ({ name, message: `Import Node builtins as 'node:${name}'.` }));

/** What the renderer may never reach, whatever its layer: the host's Node side, Node itself, Electron. */
const RENDERER_PATTERNS = [
  {
    group: ['**/electron/engine/**', '**/electron/history/**', '**/electron/host/**', '**/electron/main/**', '**/electron/model-library/**', '**/electron/preload/**', 'node:*'],
    message: 'The renderer talks to the host only through src/ipc/studio-client.ts.',
  },
  {
    // The leaves import nothing: generation-limits' numbers and mask-bounds' one function are what the
    // renderer takes from shared as values.
    group: ['**/electron/shared/**', '!**/electron/shared/generation-limits.js', '!**/electron/shared/mask-bounds.js'],
    allowTypeImports: true,
    message: 'The renderer may only `import type` from electron/shared (values only from generation-limits.ts and mask-bounds.ts).',
  },
];
const RENDERER_PATHS = [{ name: 'electron', message: 'The renderer never imports electron: the preload exposes window.studio.' }];

function restrictedImports({ paths = [], patterns = [] }) {
  return { 'no-restricted-imports': ['error', { paths: [...BARE_BUILTINS, ...paths], patterns }] };
}

function layerRule(layer) {
  const world = worldOf(layer);
  const forbiddenLayers = ALL.filter((l) => l !== layer && worldOf(l) === world && !LAYERS[layer].includes(l));
  const patterns = forbiddenLayers.map((l) => ({
    group: [`**/${folderOf(l)}/**`, `**/${folderOf(l)}`],
    message: `${layer} may not import ${l} (see docs/architecture.md).`,
  }));
  const paths = [];
  if (layer === 'electron/shared') {
    patterns.push({ group: ['node:*'], message: 'electron/shared is pure TS: no node imports.' });
  }
  if (NODE_ONLY.includes(layer) || layer === 'electron/shared') {
    paths.push({ name: 'electron', message: `${layer} never imports electron.` });
  }
  if (world === 'renderer') {
    patterns.push(...RENDERER_PATTERNS);
    paths.push(...RENDERER_PATHS);
  }
  return {
    files: [`${layer}/**/*.{ts,tsx}`],
    rules: restrictedImports({ paths, patterns }),
  };
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'dist-electron/**', '.scratch/**', 'test-results/**', 'native-models/**', 'test/fixtures/**', 'renderer/dist/**', 'release/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      ...restrictedImports({}),
    },
  },
  // Renderer files outside the layer folders (main.tsx, vite.config.ts is the build's, not the page's).
  { files: ['renderer/src/*.{ts,tsx}'], rules: restrictedImports({ paths: RENDERER_PATHS, patterns: RENDERER_PATTERNS }) },
  ...ALL.map(layerRule),
  {
    // The renderer imports these ones' values: they must stay leaves (no imports).
    files: ['electron/shared/generation-limits.ts', 'electron/shared/mask-bounds.ts'],
    rules: { 'no-restricted-syntax': ['error', { selector: 'ImportDeclaration, ExportAllDeclaration, ExportNamedDeclaration[source]', message: 'This file imports nothing (the renderer imports its values).' }] },
  },
  {
    // CommonJS scripts meant to run with nothing but Node and one package beside them (bench/providers.bench.cjs).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
