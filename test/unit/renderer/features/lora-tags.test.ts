import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLoraWeight, insertLora, promptLoras, removeLora, setLoraWeight } from '../../../../renderer/src/features/lora-tags.js';

test('the prompt’s LoRA tags with their weights and places, as the engine reads them', () => {
  const p = 'a fox <lora:style:0.8>, snow <lyco:detail> <lora:split:0.5:1> <lora:bad:x> <hypernet:h:1>';
  assert.deepEqual(
    promptLoras(p).map(({ name, weight, split }) => [name, weight, split]),
    [['style', 0.8, false], ['detail', 1, false], ['split', 1, true], ['bad', NaN, false]],
  );
  const [style] = promptLoras(p);
  assert.equal(p.slice(style!.start, style!.end), '<lora:style:0.8>');
  assert.deepEqual(promptLoras('no tags (here:1.2)'), []);
});

test('inserting, re-weighting and removing a tag rewrite only that tag', () => {
  assert.equal(insertLora('', 'style'), '<lora:style:1>');
  assert.equal(insertLora('a fox, ', 'style'), 'a fox, <lora:style:1>');
  const p = 'a fox <lora:style:0.8> in snow <lora:split:0.5:1>';
  const [style, split] = promptLoras(p);
  assert.equal(setLoraWeight(p, style!, 0.35), 'a fox <lora:style:0.35> in snow <lora:split:0.5:1>');
  assert.equal(setLoraWeight(p, split!, 0.7), 'a fox <lora:style:0.8> in snow <lora:split:0.7>');
  assert.equal(removeLora(p, style!), 'a fox in snow <lora:split:0.5:1>');
  assert.equal(formatLoraWeight(0.1 + 0.2), '0.3');
  assert.equal(formatLoraWeight(-1.005), '-1');
});
