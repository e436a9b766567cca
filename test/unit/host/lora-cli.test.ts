/**
 * LoRAs from the command line: `studio loras import/list/remove` on a data folder's LoRA folder, and
 * `studio generate` with <lora:…> tags found through --lora-dir or that folder, writing `Lora hashes`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPngMetadata } from '../../../electron/history/png.js';
import { parseA1111Parameters } from '../../../electron/shared/a1111.js';
import { FIXTURES, MODELS } from '../../support/engine-fixtures.js';
import { studio } from '../../support/studio-cli.js';

const LORAS = join(FIXTURES, 'loras');
const MODEL = join(MODELS, 'tiny-sd1-named');


const lastError = (text: string): { code: string; message: string } =>
  (JSON.parse(text.trim().split('\n').filter((l) => l.startsWith('{')).pop()!) as { error: { code: string; message: string } }).error;

describe('studio CLI with LoRAs', () => {
  let dir: string;
  let data: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'studio-lora-cli-'));
    data = join(dir, 'data');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('loras import, list (family, trigger words, hash), remove', async () => {
    const imported = await studio('loras', 'import', join(LORAS, 'tiny-kohya.safetensors'), join(LORAS, 'tiny-sdxl-kohya.safetensors'), '--data-dir', data);
    assert.equal(imported.code, 0, imported.stderr);
    assert.ok(existsSync(join(data, 'loras', 'tiny-kohya.safetensors')));
    const again = await studio('loras', 'import', join(LORAS, 'tiny-kohya.safetensors'), '--data-dir', data);
    assert.equal(lastError(again.stderr).code, 'E_DUPLICATE');
    const listed = JSON.parse((await studio('loras', 'list', '--data-dir', data)).stdout) as {
      loras: { name: string; family: string; triggerWords: string[]; hash: string }[];
    };
    const kohya = listed.loras.find((l) => l.name === 'tiny-kohya')!;
    assert.equal(kohya.family, 'sd1');
    assert.deepEqual(kohya.triggerWords, ['tinychar', 'red apple', 'smiling']);
    assert.match(kohya.hash, /^[0-9a-f]{12}$/);
    assert.equal(listed.loras.find((l) => l.name === 'tiny-sdxl-kohya')!.family, 'sdxl');
    const removed = await studio('loras', 'remove', 'tiny-sdxl-kohya', '--data-dir', data);
    assert.equal(removed.code, 0, removed.stderr);
    const missing = await studio('loras', 'remove', 'tiny-sdxl-kohya', '--data-dir', data);
    assert.equal(lastError(missing.stderr).code, 'E_NOT_FOUND');
  });

  test('generate: tags found in the library folder and in --lora-dir, Lora hashes in the PNG', async () => {
    const out = join(dir, 'lora.png');
    const r = await studio('generate', '--model', MODEL, '--prompt', 'a red apple <lora:tiny-kohya:0.8> <lora:tiny-locon:0.5>', '--steps', '2',
      '--seed', '3', '--lora-dir', LORAS, '--data-dir', data, '--providers', 'cpu', '--out', out);
    assert.equal(r.code, 0, r.stderr);
    const printed = JSON.parse(r.stdout) as { loras: { name: string; hash: string; matched: number; unmatched: number }[] };
    assert.deepEqual(printed.loras.map((l) => [l.name, l.unmatched]), [['tiny-kohya', 0], ['tiny-locon', 0]]);
    const parsed = parseA1111Parameters(readPngMetadata(readFileSync(out)).parameters!);
    assert.equal(parsed.prompt, 'a red apple <lora:tiny-kohya:0.8> <lora:tiny-locon:0.5>');
    assert.deepEqual(parsed.loras, printed.loras.map(({ name, hash }) => ({ name, hash })));
  });

  test('generate: an unknown name is an error naming the close ones', async () => {
    const r = await studio('generate', '--model', MODEL, '--prompt', '<lora:tiny-locom:1> a red apple', '--steps', '1', '--lora-dir', LORAS,
      '--data-dir', data, '--providers', 'cpu', '--out', join(dir, 'x.png'));
    assert.equal(r.code, 1);
    const error = lastError(r.stderr);
    assert.equal(error.code, 'E_INVALID_REQUEST');
    assert.match(error.message, /no LoRA named "tiny-locom".*did you mean "tiny-locon"/);
  });
});
