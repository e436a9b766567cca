/**
 * history.import reads only regular files, size-capped, without blocking the event loop: a FIFO used to
 * block the whole server until something wrote to it, /dev/zero filled memory, and a PNG declaring
 * 16000×16000 pixels was decoded in full.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, ftruncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { HistoryStore } from '../../../electron/history/store.js';
import { tempDir } from '../../support/history-fixtures.js';

const temp = tempDir('history-special-');
after(() => temp.cleanup());
const isRoot = process.getuid?.() === 0;

async function openStore(): Promise<HistoryStore> {
  return HistoryStore.open(join(temp.dir, `store-${Math.random().toString(36).slice(2)}`));
}

test('a FIFO is refused at once, not read (reading it blocked the event loop until a writer came)', { skip: process.platform === 'win32' ? 'no FIFOs' : false, timeout: 30_000 }, async () => {
  const store = await openStore();
  const fifo = join(temp.dir, 'pipe.png');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  // If the import blocked on the FIFO, this writer would free it after 8 s (and the timing below fails).
  const rescuer = spawn('sh', ['-c', `sleep 8; echo x > '${fifo}'`], { stdio: 'ignore' });
  try {
    const started = performance.now();
    const report = await store.import([fifo]);
    const elapsed = performance.now() - started;
    assert.equal(report.failed, 1);
    const outcome = report.results[0]!;
    assert.equal(outcome.status, 'failed');
    if (outcome.status === 'failed') {
      assert.equal(outcome.error.code, 'E_INVALID');
      assert.match(outcome.error.message, /^pipe\.png is a named pipe \(FIFO\), not an image file: only regular files can be imported\.$/);
    }
    assert.ok(elapsed < 3000, `answered in ${Math.round(elapsed)} ms`);
  } finally {
    rescuer.kill('SIGKILL');
    store.close();
  }
});

test('a device file is refused without reading it', { skip: isRoot ? false : 'mknod needs root (CI runs as root)' }, async () => {
  const store = await openStore();
  const device = join(temp.dir, 'null.png');
  // Character device 1:3 is the kernel's null device: harmless if it were read.
  assert.equal(spawnSync('mknod', [device, 'c', '1', '3']).status, 0);
  try {
    const [outcome] = (await store.import([device])).results;
    assert.equal(outcome!.status, 'failed');
    if (outcome!.status === 'failed') assert.match(outcome!.error.message, /^null\.png is a character device, not an image file/);
  } finally {
    store.close();
  }
});

test('a file past the size cap is refused by its size, unread', async () => {
  const store = await openStore();
  const big = join(temp.dir, 'huge.png');
  const fd = openSync(big, 'w');
  ftruncateSync(fd, 200 * 1024 * 1024); // sparse: no disk used
  closeSync(fd);
  try {
    const [outcome] = (await store.import([big])).results;
    assert.equal(outcome!.status, 'failed');
    if (outcome!.status === 'failed') assert.match(outcome!.error.message, /^huge\.png is 200 MB, larger than the 128 MB an imported image may have\.$/);
  } finally {
    store.close();
  }
});

test('a PNG declaring 16000×16000 pixels is refused from its header, not decoded', async () => {
  const store = await openStore();
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(16000, 0);
  ihdr.writeUInt32BE(16000, 4);
  ihdr.set([8, 0, 0, 0, 0], 8);
  const chunk = (type: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    return Buffer.concat([head, body, Buffer.alloc(4)]);
  };
  const bomb = join(temp.dir, 'bomb.png');
  writeFileSync(bomb, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(16001))), chunk('IEND', Buffer.alloc(0))]));
  try {
    const [outcome] = (await store.import([bomb])).results;
    assert.equal(outcome!.status, 'failed');
    if (outcome!.status === 'failed') assert.match(outcome!.error.message, /^bomb\.png: the image is 16000×16000 \(256\.0 megapixels\); imported images may have at most 16\.8 megapixels\.$/);
  } finally {
    store.close();
  }
});
