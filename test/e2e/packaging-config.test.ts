/**
 * The electron-builder config, checked as far as this machine allows (no Electron binary, no network):
 * it parses, asks for the required targets, unpacks and rebuilds the native modules, points `main` at
 * what build/build-electron.mjs produces, and every file it names exists or is made by a known step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { BUNDLED_MODEL_DIRS } from '../../electron/model-library/library.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG_FILE = join(ROOT, 'build/electron-builder.json');

interface BuilderConfig {
  appId: string;
  productName: string;
  directories: { output: string; buildResources: string };
  extraMetadata: { main: string };
  files: string[];
  asarUnpack: string[];
  extraResources: Array<{ from: string; to: string }>;
  npmRebuild: boolean;
  linux: { target: string[]; icon: string };
  win: { target: string[]; icon: string };
  mac: { target: string[]; icon: string };
}

const config = JSON.parse(readFileSync(CONFIG_FILE, 'utf8')) as BuilderConfig;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

test('targets: Linux AppImage + deb, Windows NSIS, macOS dmg', () => {
  assert.deepEqual(config.linux.target, ['AppImage', 'deb']);
  assert.deepEqual(config.win.target, ['nsis']);
  assert.deepEqual(config.mac.target, ['dmg']);
  assert.match(config.appId, /^[a-z0-9-]+(\.[a-z0-9-]+)+$/);
  assert.equal(config.productName, 'Latent Studio', 'the product name decides userData, shared with `studio serve`');
});

test('native modules are unpacked from the asar and rebuilt for Electron', () => {
  assert.equal(config.npmRebuild, true);
  for (const name of ['onnxruntime-node', 'better-sqlite3', 'sharp']) {
    assert.ok(pkg.dependencies[name], `${name} is a runtime dependency`);
    assert.ok(config.asarUnpack.includes(`node_modules/${name}/**/*`), `${name} is unpacked`);
  }
  assert.ok(pkg.devDependencies['electron'], 'electron-builder reads the Electron version from devDependencies');
});

test('main, the bundles and the resources it names exist or are made by a known step', () => {
  const buildScript = readFileSync(join(ROOT, 'build/build-electron.mjs'), 'utf8');
  assert.equal(config.extraMetadata.main, 'dist-electron/main.mjs');
  for (const made of ['main', 'engine-child', 'preload']) assert.match(buildScript, new RegExp(`'?${made}'?:`), `build-electron.mjs makes ${made}`);
  assert.ok(config.files.includes('dist-electron/**/*'));
  assert.ok(config.files.includes('renderer/dist/**/*'));
  // native-models/emoji-ldm is produced by the native-models chain (native-models/tools/build.sh).
  // Every bundled model the library lists ships, each where the host looks for it (beside emoji-ldm).
  for (const dir of BUNDLED_MODEL_DIRS) {
    const name = `native-models/${basename(dir)}`;
    const entry = config.extraResources.find((r) => r.from === name);
    assert.ok(entry && entry.to === name, `${name} ships where electron/main and the host look for it`);
  }
  assert.ok(existsSync(join(ROOT, 'native-models/tools/build.sh')));
  assert.match(readFileSync(join(ROOT, 'electron/main/main.ts'), 'utf8'), /join\(RESOURCES, 'native-models', 'emoji-ldm'\)/);
  assert.ok(existsSync(join(ROOT, config.directories.buildResources)));
});

test('the icon exists and is large enough for every platform (512² at least)', async () => {
  for (const icon of new Set([config.linux.icon, config.win.icon, config.mac.icon])) {
    const meta = await sharp(join(ROOT, icon)).metadata();
    assert.equal(meta.format, 'png');
    assert.ok((meta.width ?? 0) >= 512 && meta.width === meta.height, `${icon}: ${meta.width}×${meta.height}`);
  }
});

test("electron-builder's own schema validation accepts the config (and would reject a broken one)", async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { validateConfiguration } = require('app-builder-lib/out/util/config/config') as {
    validateConfiguration(config: unknown, logger: unknown): Promise<void>;
  };
  const { DebugLogger } = require('builder-util/out/DebugLogger') as { DebugLogger: new (enabled: boolean) => unknown };
  await validateConfiguration(structuredClone(config), new DebugLogger(false));
  await assert.rejects(
    validateConfiguration({ ...structuredClone(config), linux: { target: 42, notAnOption: true } }, new DebugLogger(false)),
    /does not match the API schema/,
  );
});
