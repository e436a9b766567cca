import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropJob, moveJob, sameOrder } from '../../../../renderer/src/features/queue-order.js';

const ids = ['a', 'b', 'c', 'd'];

test('moveJob puts the job at the index it is given (up, down, clamped) and leaves the others in order', () => {
  assert.deepEqual(moveJob(ids, 'c', 1), ['a', 'c', 'b', 'd'], 'move up one');
  assert.deepEqual(moveJob(ids, 'a', 1), ['b', 'a', 'c', 'd'], 'move down one');
  assert.deepEqual(moveJob(ids, 'd', 0), ['d', 'a', 'b', 'c'], 'to the front');
  assert.deepEqual(moveJob(ids, 'b', 99), ['a', 'c', 'd', 'b'], 'past the end is the end');
  assert.deepEqual(moveJob(ids, 'b', -3), ['b', 'a', 'c', 'd'], 'before the start is the start');
  assert.deepEqual(moveJob(ids, 'z', 0), ids, 'an unknown job changes nothing');
});

test('dropJob lands before or after the row it was dropped on, from above and from below', () => {
  assert.deepEqual(dropJob(ids, 'a', 'c', false), ['b', 'a', 'c', 'd'], 'down, before c');
  assert.deepEqual(dropJob(ids, 'a', 'c', true), ['b', 'c', 'a', 'd'], 'down, after c');
  assert.deepEqual(dropJob(ids, 'd', 'b', false), ['a', 'd', 'b', 'c'], 'up, before b');
  assert.deepEqual(dropJob(ids, 'd', 'a', false), ['d', 'a', 'b', 'c'], 'up to the front');
  assert.deepEqual(dropJob(ids, 'b', 'b', true), ids, 'onto itself');
  assert.deepEqual(dropJob(ids, 'b', 'gone', true), ids, 'onto a job that already left the queue');
});

test('sameOrder', () => {
  assert.equal(sameOrder(ids, [...ids]), true);
  assert.equal(sameOrder(ids, ['a', 'b', 'd', 'c']), false);
  assert.equal(sameOrder(ids, ['a', 'b', 'c']), false);
});
