import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toFtsQuery } from '../../../electron/history/search-query.js';

test('words become quoted FTS5 strings joined with AND', () => {
  assert.equal(toFtsQuery('red fox')?.match, '("red" AND "fox")');
  assert.equal(toFtsQuery('fo*')?.match, '("fo"*)');
  assert.equal(toFtsQuery('"red fox" snow')?.match, '("red fox" AND "snow")');
});

test('field prefixes map to columns; unknown ones stay text', () => {
  assert.equal(toFtsQuery('tag:portrait neg:blurry prompt:cat')?.match, '(tags : "portrait" AND negative_prompt : "blurry" AND prompt : "cat")');
  assert.equal(toFtsQuery('(sky:1.2)')?.match, '("(sky:1.2)")');
});

test('exclusions need something to exclude from', () => {
  assert.equal(toFtsQuery('night -owl')?.match, '("night") NOT "owl"');
  assert.equal(toFtsQuery('-owl'), null);
});

test('FTS5 syntax in the input is only text', () => {
  assert.equal(toFtsQuery('a AND "b" OR NEAR(c)')?.match, '("a" AND "AND" AND "b" AND "OR" AND "NEAR(c)")');
  assert.equal(toFtsQuery('say ""hi""')?.match, '("say" AND "hi")');
  assert.equal(toFtsQuery('  * - "" '), null);
});
