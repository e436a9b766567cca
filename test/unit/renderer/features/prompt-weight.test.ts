/** Ctrl+Up / Ctrl+Down weight editing in the prompt box (A1111's edit-attention). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adjustPromptWeight } from '../../../../renderer/src/features/prompt-weight.js';

function edit(text: string, caret: number | [number, number], delta: number): string | null {
  const [s, e] = typeof caret === 'number' ? [caret, caret] : caret;
  return adjustPromptWeight(text, s, e, delta)?.text ?? null;
}

test('the word under the caret gets (word:1.1) with Ctrl+Up and (word:0.9) with Ctrl+Down', () => {
  assert.equal(edit('a red apple', 4, 0.1), 'a (red:1.1) apple');
  assert.equal(edit('a red apple', 4, -0.1), 'a (red:0.9) apple');
  assert.equal(edit('cat, dog', 1, 0.1), '(cat:1.1), dog');
});

test('a selection is weighted as a whole; spaces stay outside', () => {
  assert.equal(edit('a red apple', [2, 12], 0.1), 'a (red apple:1.1)');
  assert.equal(edit('a red apple ', [1, 6], 0.1), 'a (red:1.1) apple ');
});

test('inside a weighted group the number changes, and at 1 the brackets go', () => {
  assert.equal(edit('a (red:1.1) apple', 5, 0.1), 'a (red:1.2) apple');
  assert.equal(edit('a (red:1.2) apple', 5, 0.1), 'a (red:1.3) apple');
  assert.equal(edit('a (red:1.1) apple', 5, -0.1), 'a red apple');
  assert.equal(edit('a (red apple:0.9)', 4, 0.1), 'a red apple');
});

test('the new selection covers the weighted text, so repeated presses keep stepping', () => {
  let text = 'a red apple';
  let r = adjustPromptWeight(text, 4, 4, 0.1)!;
  for (let i = 0; i < 3; i++) {
    text = r.text;
    assert.equal(text.slice(r.start, r.end), 'red');
    r = adjustPromptWeight(text, r.start, r.end, 0.1)!;
  }
  assert.equal(r.text, 'a (red:1.4) apple');
});

test('nothing to weight: no edit', () => {
  assert.equal(edit('', 0, 0.1), null);
  assert.equal(edit('a , b', [1, 2], 0.1), null);
});
