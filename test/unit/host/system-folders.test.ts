/**
 * Folders under /proc, /sys and /dev (and links into them) are refused before anything is created:
 * Node 20's recursive mkdir spins forever on /proc paths, which froze the whole server. Both the
 * output folder (settings.set) and history.export, through the host and through the CLI.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../../../electron/host/host.js';
import { generation } from '../../support/history-fixtures.js';
import { ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const data = tempDir('system-folders');
const dataDir = join(data.dir, 'data');
const intoProc = join(data.dir, 'link-to-proc');
symlinkSync('/proc/self', intoProc);
let host: Host;
let itemId: number;

before(async () => {
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  itemId = (await host.history.add(generation(1))).id;
});
after(async () => {
  await host?.close();
  data.remove();
});

const linux = process.platform === 'linux' ? false : 'the system folders are Linux paths';

test('settings.set refuses an output folder under /proc, /sys or /dev, or a link into them, at once', { skip: linux, timeout: 30_000 }, async () => {
  for (const folder of ['/proc/x', '/proc/nope/deeper', '/sys/x', '/dev/studio-output', join(intoProc, 'out')]) {
    const started = performance.now();
    const r = await host.invoke('settings.set', { outputFolder: folder });
    assert.equal(r.ok, false, folder);
    if (!r.ok) assert.match(r.error.message, /outputFolder: can't write to .*(system folder|kernel file system)/, r.error.message);
    assert.ok(performance.now() - started < 5000, `${folder} answered in ${performance.now() - started} ms`);
  }
  assert.equal(existsSync('/dev/studio-output'), false, 'nothing was created under /dev');
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).outputFolder, null, 'no refused folder was stored');
  assert.equal((await host.invoke('app.info', {})).ok, true, 'the host still answers');
});

test('history.export refuses /proc and /dev folders and still exports to a real one', { skip: linux, timeout: 30_000 }, async () => {
  for (const folder of ['/proc/nope', '/dev/studio-export']) {
    const r = await host.invoke('history.export', { ids: [itemId], folder });
    assert.equal(r.ok, false, folder);
    if (!r.ok) assert.match(r.error.message, /system folder/, r.error.message);
  }
  assert.equal(existsSync('/dev/studio-export'), false);
  const out = join(data.dir, 'exports', 'new', 'deeper');
  const report = ok('history.export', await host.invoke('history.export', { ids: [itemId], folder: out }));
  assert.equal(report.files.length, 1);
  assert.ok(existsSync(report.files[0]!.file));
});

test('`studio history export --to /proc/…` exits with the reason instead of spinning', { skip: linux, timeout: 60_000 }, async () => {
  await host.close();
  const bin = fileURLToPath(new URL('../../../bin/studio.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [bin, 'history', 'export', String(itemId), '--to', '/proc/nope/out', '--data-dir', dataDir], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.signal, null, 'it did not have to be killed');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /system folder/);
});
