/**
 * What can be checked of the Electron build without an Electron binary: the bundles build, the
 * sandboxed preload requires nothing but `electron`, and the bundled engine entry runs a real
 * generation as a plain child process (the same module utilityProcess runs in the app).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineClient } from '../../electron/host/engine-process/engine-client.js';
import { forkLauncher } from '../../electron/host/engine-process/launcher.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TINY_SD1 = join(ROOT, 'test/fixtures/models/tiny-sd1');
// Inside the repository (.cache/ is git-ignored), so the bundles' npm imports resolve from its
// node_modules, as they do from dist-electron/ in the app.
mkdirSync(join(ROOT, '.cache'), { recursive: true });
const out = mkdtempSync(join(ROOT, '.cache', 'electron-build-'));
after(() => rmSync(out, { recursive: true, force: true }));

test('build/build-electron.mjs bundles main, preload and the engine entry', () => {
  execFileSync(process.execPath, [join(ROOT, 'build/build-electron.mjs'), '--out', out], { stdio: 'pipe' });
  for (const f of ['main.mjs', 'preload.cjs', 'engine-child.mjs', 'migrations/001-initial.sql', 'onnx.proto']) {
    assert.ok(existsSync(join(out, f)), `${f} is built`);
  }
  const preload = readFileSync(join(out, 'preload.cjs'), 'utf8');
  const requires = [...new Set([...preload.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]))];
  assert.deepEqual(requires, ['electron'], 'a sandboxed preload may require only electron');
  assert.match(preload, /exposeInMainWorld\("studio"/);
  const main = readFileSync(join(out, 'main.mjs'), 'utf8');
  assert.doesNotMatch(main, /from "onnxruntime-node"/, 'inference stays out of the main process');
});

// Plain Node without tsx: what utilityProcess does with the bundle in the app.
test('the bundled engine entry generates an image when run as a plain child process', async () => {
  const client = new EngineClient({ launcher: forkLauncher(join(out, 'engine-child.mjs')), settings: { providers: ['cpu'], threads: 1 } });
  try {
    const result = await client.generate(TINY_SD1, { mode: 'txt2img', prompt: 'a fox', seed: 1, steps: 2, sampler: 'euler', width: 64, height: 64 });
    assert.deepEqual([result.image.width, result.image.height, result.image.rgb.length], [64, 64, 64 * 64 * 3]);
  } finally {
    await client.close();
  }
});

// The watchdog's heartbeat comes from a worker thread the bundled entry starts from evaluated source.
test('the bundled engine entry beats on its heartbeat socket', { timeout: 60_000 }, async () => {
  const proc = forkLauncher(join(out, 'engine-child.mjs'), [], { heartbeatMs: 50 })();
  try {
    let beats = 0;
    proc.onHeartbeat?.(() => beats++);
    const deadline = Date.now() + 30_000;
    while (beats < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(beats >= 3, `${beats} beats`);
  } finally {
    proc.kill();
  }
});
