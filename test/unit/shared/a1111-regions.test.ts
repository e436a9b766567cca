/** The infotext's `Regions` setting: written readable, read back exactly, and left alone when it isn't ours. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REGIONS_KEY, formatA1111Parameters, formatRegions, parseA1111Parameters, parseRegions } from '../../../electron/shared/a1111.js';
import type { GenerationParams } from '../../../electron/shared/generation.js';

const params: GenerationParams = {
  mode: 'txt2img', prompt: 'a garden', negativePrompt: '', seed: 1, steps: 20, cfg: 7, sampler: 'euler', width: 512, height: 512, strength: 1, maskBlur: 0,
};

test('regions round-trip through the infotext, prompts with commas, colons, semicolons and newlines included', () => {
  const regions = [
    { prompt: 'a (red:1.2) rose, petals', weight: 1, area: 0.125 },
    { prompt: 'a pond; still\nwater (area of calm)', weight: 0.75, area: 0.5 },
    { prompt: 'sky', weight: 2, area: 0 },
  ];
  const text = formatA1111Parameters({ ...params, regions });
  assert.match(text, /Regions: "a \(red:1\.2\) rose, petals \(area 12\.5%, weight 1\); /);
  const parsed = parseA1111Parameters(text);
  assert.deepEqual(parsed.params.regions, regions);
  assert.equal(parsed.settings[REGIONS_KEY], formatRegions(regions));
});

test("a Regions value we didn't write is kept as a setting and not read as regions", () => {
  assert.equal(parseRegions('ADDCOL 1,1'), null);
  assert.equal(parseRegions('a rose (area 10%, weight 1); trailing junk'), null);
  const parsed = parseA1111Parameters('a cat\nSteps: 20, Sampler: Euler, Seed: 1, Regions: "ADDCOL 1,1"');
  assert.equal(parsed.params.regions, undefined);
  assert.equal(parsed.settings[REGIONS_KEY], 'ADDCOL 1,1');
});
