#!/usr/bin/env node
// Builds the Electron side into dist-electron/ (or --out DIR):
//   main.mjs          electron/main/main.ts (ESM; npm packages stay external, resolved from node_modules)
//   engine-child.mjs  electron/host/engine-process/engine-child.ts, run by utilityProcess
//   preload.cjs       electron/preload/preload.ts, one CommonJS file (a sandboxed preload can require
//                     only `electron`, so the contract's constants are bundled in)
// plus the data files our modules read next to themselves (import.meta.url): the history migrations
// and the ONNX schema.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** `--out DIR` builds elsewhere (the build test uses a temp folder). */
const outFlag = process.argv.indexOf('--out');
const out = outFlag > 0 && process.argv[outFlag + 1] ? process.argv[outFlag + 1] : join(root, 'dist-electron');
/** Electron 45 ships Node 22 and Chromium 142. */
const NODE_TARGET = 'node22';
const CHROME_TARGET = 'chrome142';

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const common = { bundle: true, sourcemap: true, logLevel: 'warning', absWorkingDir: root };

await build({
  ...common,
  entryPoints: { main: 'electron/main/main.ts', 'engine-child': 'electron/host/engine-process/engine-child.ts' },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  platform: 'node',
  target: NODE_TARGET,
  packages: 'external',
  external: ['electron'],
});

await build({
  ...common,
  entryPoints: { preload: 'electron/preload/preload.ts' },
  outdir: out,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  platform: 'node',
  target: CHROME_TARGET,
  external: ['electron'],
});

cpSync(join(root, 'electron/history/migrations'), join(out, 'migrations'), { recursive: true });
cpSync(join(root, 'electron/engine/model/onnx.proto'), join(out, 'onnx.proto'));
console.log(`built ${out}`);
