/**
 * Errors that cross to a client carry a StudioError code and plain words: a full disk says so, a file
 * error names no internal path, and a bug's message has its paths cut to the file name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { serializeError } from '../../../electron/shared/errors.js';

function sqliteFull(): unknown {
  const db = new Database(':memory:');
  try {
    // A real SQLITE_FULL: the database may not grow past two pages.
    db.exec('CREATE TABLE t (x BLOB)');
    db.pragma('max_page_count = 2');
    db.prepare('INSERT INTO t VALUES (?)').run(Buffer.alloc(64 * 1024));
    return null;
  } catch (err) {
    return err;
  } finally {
    db.close();
  }
}

test('SQLITE_FULL and ENOSPC become E_DISK_FULL in words', () => {
  const full = sqliteFull();
  assert.equal((full as { code?: string }).code, 'SQLITE_FULL');
  const error = serializeError(full);
  assert.equal(error.code, 'E_DISK_FULL');
  assert.match(error.message, /disk is full/i);
  assert.doesNotMatch(error.message, /SQLITE/);
  const enospc = Object.assign(new Error("ENOSPC: no space left on device, write '/var/data/history/x.png'"), { code: 'ENOSPC', errno: -28, syscall: 'write' });
  assert.equal(serializeError(enospc).code, 'E_DISK_FULL');
  assert.doesNotMatch(serializeError(enospc).message, /\/var\/data/);
});

test('a file error names no path', () => {
  let missing: unknown;
  try {
    readFileSync('/nonexistent-studio-dir/images/ab/abcdef.png');
  } catch (err) {
    missing = err;
  }
  const error = serializeError(missing);
  assert.equal(error.code, 'E_NOT_FOUND');
  assert.doesNotMatch(error.message, /nonexistent-studio-dir/);
  assert.match(error.message, /missing/);
  const denied = serializeError(Object.assign(new Error("EACCES: permission denied, open '/srv/app/x'"), { code: 'EACCES', errno: -13, syscall: 'open', path: '/srv/app/x' }));
  assert.equal(denied.code, 'E_IO');
  assert.doesNotMatch(denied.message, /\/srv\/app/);
});

test('a bug is E_INTERNAL with absolute paths cut to their last part', () => {
  const error = serializeError(new Error('Load model from /home/me/.studio/models/sd/unet/model.onnx failed: C:\\Users\\me\\x.onnx bad'));
  assert.equal(error.code, 'E_INTERNAL');
  assert.doesNotMatch(error.message, /\/home\/me|Users\\me/);
  assert.match(error.message, /model\.onnx/);
  assert.equal(serializeError(new URIError('URI malformed')).code, 'E_INTERNAL');
});
