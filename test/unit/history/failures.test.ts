/**
 * Real read-only and full file systems (tmpfs mounts, see test/support/history-mounts.ts): the store
 * must answer with E_READ_ONLY / E_DISK_FULL, leave no partial row or stray file, and work again once
 * the problem is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DATABASE_FILE, HistoryStore } from '../../../electron/history/store.js';
import { migrateLibrary } from '../../../electron/model-library/schema.js';
import { HistoryError } from '../../../electron/history/errors.js';
import { bindReadOnly, canMount, folderBytes, mountSmallDisk } from '../../support/history-mounts.js';
import { generation, noiseImage, tempDir } from '../../support/history-fixtures.js';

const skip = canMount() ? false : 'mounting a tmpfs is not permitted here (needs CAP_SYS_ADMIN)';

function isHistoryError(code: string, message: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof HistoryError, `expected a HistoryError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}

/** Every row's image file is on disk, nothing is in tmp/, and SQLite finds no damage. */
function assertConsistent(store: HistoryStore, dir: string): void {
  assert.equal(store.integrityCheck().ok, true);
  for (const item of [...store.page({ limit: 500 }).items, ...store.page({ limit: 500, filter: { view: 'trash' } }).items]) {
    assert.ok(existsSync(store.imagePath(item.output!.hash)), `item ${item.id} has its file`);
  }
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'no temp file left');
}

test('a read-only data directory: clear E_READ_ONLY errors and no partial rows', { skip }, async () => {
  const disk = mountSmallDisk(16 << 20);
  try {
    let store = await HistoryStore.open(disk.dir);
    await store.add(generation(1));

    // The folder where files are staged turns read-only while the store is open.
    const undo = bindReadOnly(join(disk.dir, 'tmp'));
    try {
      await assert.rejects(store.add(generation(2)), isHistoryError('E_READ_ONLY', /read-only/));
    } finally {
      undo();
    }
    assert.equal(store.counts().total, 1, 'no partial row');
    assertConsistent(store, disk.dir);
    store.close();

    // The whole data directory is read-only when the app starts.
    disk.setReadOnly(true);
    await assert.rejects(HistoryStore.open(disk.dir), isHistoryError('E_READ_ONLY', new RegExp(`${disk.dir}.*read-only`)));
    disk.setReadOnly(false);

    store = await HistoryStore.open(disk.dir);
    assert.deepEqual(store.lastReconcile?.orphanFilesRemoved, []);
    assert.equal(store.counts().total, 1);
    await store.add(generation(3));
    assertConsistent(store, disk.dir);
    store.close();
  } finally {
    disk.dispose();
  }
});

/**
 * What a fresh data folder's database takes, the history's and the model library's schema together (as
 * the app opens it), with the write-ahead log checkpointed: the disk below is this plus room for content,
 * so a schema that grows (a table, an index, a constraint) never eats the test's margin.
 */
async function freshSchemaBytes(): Promise<number> {
  const { dir, cleanup } = tempDir('history-schema-size-');
  try {
    (await HistoryStore.open(dir)).close();
    const db = new Database(join(dir, DATABASE_FILE));
    migrateLibrary(db);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    return folderBytes(dir);
  } finally {
    cleanup();
  }
}

/** Room for content: about ten 192x192 noise PNGs (~110 KB each, with thumbnails), and the WAL a purge needs. */
const CONTENT_ROOM = 2 << 20;

test('a full disk: E_DISK_FULL for image writes and for database writes, nothing partial, recovers once space is freed', { skip }, async () => {
  const disk = mountSmallDisk((await freshSchemaBytes()) + CONTENT_ROOM);
  try {
    const store = await HistoryStore.open(disk.dir);
    // The library's tables, constraints included, live in this file too.
    const library = new Database(join(disk.dir, DATABASE_FILE));
    migrateLibrary(library);
    library.pragma('wal_checkpoint(TRUNCATE)');
    library.close();
    // Space held back for the recovery step, so it doesn't depend on how much the failing image write
    // happened to leave (that varies with the schema's size).
    const reserve = join(disk.dir, 'reserve');
    writeFileSync(reserve, Buffer.alloc(256 << 10, 1));
    let saved = 0;
    let failure: unknown;
    for (let seed = 1; seed <= 40 && failure === undefined; seed++) {
      try {
        await store.add(generation(seed, { output: noiseImage(seed, 192, 192) }));
        saved++;
      } catch (err) {
        failure = err;
      }
    }
    assert.ok(saved > 0, 'some generations fit');
    assert.ok(isHistoryError('E_DISK_FULL', /disk is full/)(failure));
    assert.equal(store.counts().total, saved, 'the failed generation left no row');
    assertConsistent(store, disk.dir);

    // Empty the write-ahead log, so the next database write must grow it: then fill what is left, so
    // that SQLite can't. The checkpoint itself may need to grow the database file (by how much depends
    // on the schema's size), so it runs with the reserve freed, and the reserve is put back after.
    rmSync(reserve);
    const side = new Database(join(disk.dir, 'history.sqlite'));
    side.pragma('wal_checkpoint(TRUNCATE)');
    side.close();
    writeFileSync(reserve, Buffer.alloc(256 << 10, 1));
    const filler = join(disk.dir, 'filler');
    const fd = openSync(filler, 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096, 1));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
    const manyTags = Array.from({ length: 60 }, (_, i) => `tag ${i} `.padEnd(60, 'x'));
    assert.throws(() => store.setTags(1, manyTags), isHistoryError('E_DISK_FULL', /disk is full/));
    assert.deepEqual(store.get(1).tags, [], 'the failed update changed nothing');
    assertConsistent(store, disk.dir);

    // Space freed: everything works again.
    rmSync(filler);
    rmSync(reserve);
    store.delete([1, 2]);
    assert.equal(store.purge().filesRemoved, 2);
    const after = await store.add(generation(1000, { output: noiseImage(1000, 192, 192) }));
    assert.equal(store.get(after.id).id, after.id);
    assertConsistent(store, disk.dir);
    store.close();
  } finally {
    disk.dispose();
  }
});
