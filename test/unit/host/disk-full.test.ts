/**
 * A full disk while jobs run (a real tmpfs that fills up): the job whose result can't be saved fails
 * with E_DISK_FULL in words, the server keeps answering, a generate that answers an error stores
 * nothing, the queue moves on by itself once there is room, and `studio serve` on a full disk exits
 * non-zero with the reason. Needs root to mount the tmpfs; skipped with that reason elsewhere.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Host } from '../../../electron/host/host.js';
import { canMount, mountSmallDisk, type SmallDisk } from '../../support/history-mounts.js';
import { FIXTURE_SIZE, jobFinished, nextEvent, ok, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const skip = canMount() ? false : 'needs root to mount a small tmpfs (CI runs as root)';
const disks: SmallDisk[] = [];
after(() => disks.forEach((d) => d.dispose()));

/** Fills the disk to the last byte; returns the filler's path (delete it to make room). */
function fill(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        writeSync(fd, chunk, 0, size);
      } catch {
        size = Math.floor(size / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Empties a database's write-ahead log, so that its next write must grow the file (and so fails on a full disk). */
function truncateWal(file: string): void {
  const db = new Database(file);
  try {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    assert.equal(r!.busy, 0, `checkpoint of ${file} was blocked`);
  } finally {
    db.close();
  }
}

const txt2img = (prompt: string, steps: number) => ({ mode: 'txt2img' as const, prompt, steps, sampler: 'euler' as const, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 3 });

test('the disk fills while a job runs: E_DISK_FULL in words, the server stays up, the queue moves on by itself', { skip }, async () => {
  const disk = mountSmallDisk(24 * 1024 * 1024);
  disks.push(disk);
  const dataDir = join(disk.dir, 'data');
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS, previewEvery: 0 });
  try {
    ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
    const running = ok('generate', await host.invoke('generate', txt2img('saved on a full disk', 400))).jobId;
    await nextEvent(host, 'job.progress', (p) => p.jobId === running);
    const waiting = ok('generate', await host.invoke('generate', txt2img('waits for room', 2))).jobId;
    truncateWal(join(dataDir, 'host.sqlite'));
    truncateWal(join(dataDir, 'history', 'history.sqlite'));
    const filler = fill(disk.dir);

    const failed = await jobFinished(host, running);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.error?.code, 'E_DISK_FULL', JSON.stringify(failed.error));
    assert.match(failed.error!.message, /the disk is full/);

    // Still serving; a generate answered with an error left nothing behind.
    assert.equal((await host.invoke('app.info', {})).ok, true);
    const before = host.queue.snapshot().queued.length;
    const refused = await host.invoke('generate', txt2img('refused on a full disk', 2));
    if (!refused.ok) {
      assert.equal(refused.error.code, 'E_DISK_FULL', refused.error.message);
      assert.equal(host.queue.snapshot().queued.length, before, 'a refused generate is not stored');
    }
    assert.equal(host.queue.get(waiting).status, 'queued');

    // Room again: the waiting job starts without another request, and the failure is written down.
    rmSync(filler);
    const done = await jobFinished(host, waiting, 60_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(host.queue.get(running).error?.code, 'E_DISK_FULL');
  } finally {
    await host.close();
  }
  // The failure outlived the process: it was written once there was room.
  const reopened = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  try {
    const recent = reopened.queue.snapshot().recent;
    assert.equal(recent.find((j) => j.prompt === 'saved on a full disk')?.error?.code, 'E_DISK_FULL');
  } finally {
    await reopened.close();
  }
});

test('`studio serve` on a full disk exits non-zero and says why', { skip, timeout: 60_000 }, async () => {
  const disk = mountSmallDisk(16 * 1024 * 1024);
  disks.push(disk);
  const dataDir = join(disk.dir, 'data');
  // A studio that was running (a job under way, write-ahead logs open) when it was killed…
  const crashChild = fileURLToPath(new URL('./support/host-crash-child.ts', import.meta.url));
  const crashed = spawn(process.execPath, ['--import', 'tsx', crashChild, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const enginePid = await new Promise<number>((resolve, reject) => {
    let out = '';
    crashed.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /RUNNING \S+ (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    crashed.on('exit', () => reject(new Error(`the studio exited before its job ran: ${out}`)));
  });
  crashed.kill('SIGKILL');
  process.kill(enginePid, 'SIGKILL');
  await new Promise((r) => crashed.once('exit', r));
  // …and then the disk filled up.
  fill(disk.dir);
  const bin = fileURLToPath(new URL('../../../bin/studio.mjs', import.meta.url));
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--data-dir', dataDir, '--providers', 'cpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    // Listening on a full disk: that is the failure; stop it now.
    if (stdout.includes('"url"')) child.kill('SIGTERM');
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  clearTimeout(timer);
  assert.notEqual(code, null, `studio serve did not exit on a full disk (killed after 40 s); stdout: ${stdout} stderr: ${stderr}`);
  assert.notEqual(code, 0);
  assert.match(stderr, /E_DISK_FULL|disk is full/, stderr);
  assert.equal(stdout, '', 'it never said it was listening');
});
