/**
 * The golden-value tests every scheduler file runs for its sampler names: the text-to-image loop, the
 * img2img loop at strength 0.6, and the timestep tables, each against what diffusers computed.
 */

import { test } from 'node:test';
import type { SamplerName } from '../../../../electron/shared/generation.js';
import {
  caseLabel,
  checkImageToImageCase,
  checkTextToImageCase,
  checkTimestepTable,
  goldens,
  toleranceFor,
} from './goldens.js';

export function goldenSuite(samplers: readonly SamplerName[]): void {
  const g = goldens();
  for (const c of g.cases.filter((x) => samplers.includes(x.sampler))) {
    test(`${caseLabel(c)}: the loop reproduces diffusers' timesteps exactly and samples within ${toleranceFor(c)}`, () => {
      checkTextToImageCase(c);
    });
  }
  for (const c of g.img2img.filter((x) => samplers.includes(x.sampler))) {
    test(`img2img ${caseLabel(c)}, strength ${c.strength}: truncated timesteps, noised init and steps match diffusers`, () => {
      checkImageToImageCase(c);
    });
  }
  const rows = g.timestepTables.filter((x) => samplers.includes(x.sampler));
  test(`timesteps and initNoiseSigma match diffusers for ${rows.length} (config, step count) pairs, errors included`, () => {
    for (const row of rows) checkTimestepTable(row);
  });
}
