/** `studio generate --aesthetic-score / --negative-aesthetic-score` on an SDXL refiner: used, and in the PNG's infotext. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPngMetadata } from '../../../electron/history/png.js';
import { parseA1111Parameters } from '../../../electron/shared/a1111.js';
import { MODELS, PARITY } from '../../support/engine-fixtures.js';
import { studio } from '../../support/studio-cli.js';

const REFINER = join(MODELS, 'tiny-sdxl-refiner');
let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'studio-aesthetic-cli-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the refiner runs with the given aesthetic scores, and the infotext records them', async () => {
  const run = async (name: string, ...flags: string[]) => {
    const out = join(dir, name);
    const r = await studio(
      'generate', '--model', REFINER, '--data-dir', dir, '--prompt', 'a red apple', '--init', join(PARITY, 'sdxl-init.png'),
      '--strength', '0.6', '--steps', '4', '--seed', '5', '--width', '64', '--height', '64', ...flags, '--out', out,
    );
    assert.equal(r.code, 0, r.stderr);
    return { out, png: readFileSync(out) };
  };
  const scored = await run('scored.png', '--aesthetic-score', '9', '--negative-aesthetic-score', '1');
  const parsed = parseA1111Parameters(readPngMetadata(scored.png).parameters!);
  assert.deepEqual([parsed.params.aestheticScore, parsed.params.negativeAestheticScore], [9, 1]);
  const plain = await run('plain.png');
  const defaults = parseA1111Parameters(readPngMetadata(plain.png).parameters!);
  assert.deepEqual([defaults.params.aestheticScore, defaults.params.negativeAestheticScore], [6, 2.5], 'the defaults it ran with');
  assert.notDeepEqual(scored.png, plain.png, 'the scores change the picture');
});

test('an aesthetic score for a base model is refused before anything runs', async () => {
  const r = await studio('generate', '--model', join(MODELS, 'tiny-sdxl'), '--data-dir', dir, '--prompt', 'x', '--steps', '1', '--aesthetic-score', '7', '--out', join(dir, 'x.png'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /aesthetic scores condition an SDXL refiner/);
});
