/** `studio generate --region MASK.png[@WEIGHT]=PROMPT`: regional prompts from the command line, on tiny-sd1. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPngMetadata } from '../../../electron/history/png.js';
import { MODELS, PARITY } from '../../support/engine-fixtures.js';
import { studio } from '../../support/studio-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'region-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('two --region masks with prompts (one weighted) run, print the regions and write them into the infotext', async () => {
  const out = join(dir, 'out.png');
  const run = await studio('generate', '--model', join(MODELS, 'tiny-sd1'), '--prompt', 'a red apple', '--steps', '2', '--seed', '3', '--width', '64', '--height', '64',
    '--region', `${join(PARITY, 'region-mask-left.png')}=a green leaf`, '--region', `${join(PARITY, 'region-mask-disc.png')}@0.7=a blue plate, shiny`,
    '--data-dir', join(dir, 'data'), '--out', out);
  assert.equal(run.code, 0, run.stderr);
  const printed = JSON.parse(run.stdout) as { regions: { prompt: string; weight: number }[] };
  assert.deepEqual(printed.regions.map((r) => [r.prompt, r.weight]), [['a green leaf', 1], ['a blue plate, shiny', 0.7]]);
  assert.match(readPngMetadata(readFileSync(out)).parameters!, /Regions: "a green leaf \(area 43\.8%, weight 1\); a blue plate, shiny \(area [\d.]+%, weight 0\.7\)"/);
});

test('a malformed --region says how to write it', async () => {
  const run = await studio('generate', '--model', join(MODELS, 'tiny-sd1'), '--prompt', 'x', '--region', 'no-equals-sign', '--out', join(dir, 'x.png'));
  assert.equal(run.code, 1);
  assert.match(run.stderr, /--region must be MASK\.png\[@WEIGHT\]=PROMPT/);
});
