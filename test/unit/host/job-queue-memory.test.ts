/**
 * host.sqlite is not memory-mapped: rows queued by an older version still hold their images as base64
 * until the queue moves them to files at start, and a mapped page the queue read stayed resident. (New
 * jobs keep their images in files, not in the row: job-images.test.ts.) Real SQLite (host.sqlite).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { openHostDatabase } from '../../../electron/host/host-database.js';
import { tempDir } from './support/host-fixtures.js';

const data = tempDir('job-queue-memory');
after(() => data.remove());

test('host.sqlite is not memory-mapped: the large rows the queue reads do not stay resident', () => {
  const db = openHostDatabase(data.dir);
  try {
    assert.equal(db.pragma('mmap_size', { simple: true }), 0);
  } finally {
    db.close();
  }
});
