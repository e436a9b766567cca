/** Embedding completions in the prompt box: the word at the caret, the names that fit it, the text after a choice. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCompletion, matchCompletions, MAX_COMPLETIONS, wordAtCaret } from '../../../../renderer/src/features/prompt-completions.js';

const NAMES = ['bad-hands-5', 'EasyNegative', 'easy-photo', 'ng_deepnegative_v1_75t', 'shiny-style'];

/** What the box offers with the caret at `|` in `marked`. */
function offered(marked: string, names: readonly string[] = NAMES): string[] {
  const caret = marked.indexOf('|');
  const text = marked.replace('|', '');
  const word = wordAtCaret(text, caret);
  return word ? matchCompletions(word, text, names) : [];
}

test('the word before the caret is matched case-insensitively; names starting with it come before names containing it', () => {
  assert.deepEqual(offered('masterpiece, eas|'), ['EasyNegative', 'easy-photo']);
  assert.deepEqual(offered('(neg|:1.2)'), ['EasyNegative', 'ng_deepnegative_v1_75t'], 'none starts with it: those containing it');
  assert.deepEqual(offered('ng|'), ['ng_deepnegative_v1_75t']);
  assert.deepEqual(offered('a sh|'), ['shiny-style']);
  assert.deepEqual(offered('[bad-ha|]'), ['bad-hands-5'], '- belongs to the word; brackets do not');
});

test('nothing is offered for one letter, a space, a selection, a complete name or no match', () => {
  assert.deepEqual(offered('e|'), []);
  assert.deepEqual(offered('easy |'), []);
  assert.equal(wordAtCaret('easy', 0, 4), null);
  assert.deepEqual(offered('EasyNegative|'), []);
  assert.deepEqual(offered('zebra|'), []);
  assert.deepEqual(offered('eas|', []), []);
});

test('at most MAX_COMPLETIONS names are offered', () => {
  const many = Array.from({ length: 20 }, (_, i) => `style-${i}`);
  assert.equal(offered('sty|', many).length, MAX_COMPLETIONS);
});

test('choosing replaces the whole word under the caret and puts the caret after the name', () => {
  const text = 'photo, EasyNeg, blurry';
  const word = wordAtCaret(text, text.indexOf('Neg') + 1)!;
  assert.deepEqual(word, { start: 7, end: 14, prefix: 'EasyN' });
  assert.deepEqual(applyCompletion(text, word, 'EasyNegative'), { text: 'photo, EasyNegative, blurry', caret: 19 });
  const inWeight = '(shi:1.2)';
  const w2 = wordAtCaret(inWeight, 4)!;
  assert.deepEqual(applyCompletion(inWeight, w2, 'shiny-style'), { text: '(shiny-style:1.2)', caret: 12 });
});

test('letters of any script and digits are word characters', () => {
  assert.deepEqual(wordAtCaret('photo, ñandú2', 13), { start: 7, end: 13, prefix: 'ñandú2' });
});
