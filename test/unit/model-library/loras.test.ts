/** The library's LoRA folder: import (only real LoRAs), list, remove, and restoring tags on reuse by hash. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importLora, listLoras, removeLora, restoreLoraTags, triggerWords } from '../../../electron/model-library/loras.js';
import { FIXTURES } from '../../support/engine-fixtures.js';

const LORAS = join(FIXTURES, 'loras');

describe('library LoRA folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'library-loras-'));
  const dir = join(root, 'loras');
  after(() => rmSync(root, { recursive: true, force: true }));

  test('import refuses a file that is not a LoRA and leaves nothing behind', async () => {
    const bad = join(root, 'broken.safetensors');
    writeFileSync(bad, Buffer.from('not a safetensors file'));
    await assert.rejects(importLora(dir, bad), (e: unknown) => (e as { code?: string }).code === 'E_LORA_FILE');
    await assert.rejects(importLora(dir, join(root, 'x.ckpt')), /LoRA files are \.safetensors/);
    assert.equal(existsSync(join(dir, 'broken.safetensors')), false);
  });

  test('import, list (family, trigger words, LCM), remove', async () => {
    const imported = await importLora(dir, join(LORAS, 'tiny-kohya.safetensors'));
    assert.deepEqual([imported.name, imported.family, imported.triggerWords[0], imported.lcm], ['tiny-kohya', 'sd1', 'tinychar', false]);
    copyFileSync(join(LORAS, 'tiny-peft.safetensors'), join(root, 'lcm-lora-sdv1-5.safetensors'));
    assert.equal((await importLora(dir, join(root, 'lcm-lora-sdv1-5.safetensors'))).lcm, true);
    const { loras, broken } = await listLoras(dir);
    assert.deepEqual(loras.map((l) => l.name), ['lcm-lora-sdv1-5', 'tiny-kohya']);
    assert.deepEqual(broken, []);
    await assert.rejects(removeLora(dir, 'tiny-kohyaa'), /no LoRA named "tiny-kohyaa" in the library; did you mean "tiny-kohya"/);
    await removeLora(dir, 'lcm-lora-sdv1-5');
    assert.deepEqual((await listLoras(dir)).loras.map((l) => l.name), ['tiny-kohya']);
  });

  test('reuse: a tag whose file was renamed is found by its hash; a file gone is named', async () => {
    const hash = (await listLoras(dir)).loras[0]!.hash;
    const restored = await restoreLoraTags('a <lora:old-name:0.6> b <lora:gone:1>', [{ name: 'old-name', hash }, { name: 'gone', hash: '0123456789ab' }], dir);
    assert.deepEqual(restored, { prompt: 'a <lora:tiny-kohya:0.6> b <lora:gone:1>', missing: ['gone'] });
    const same = await restoreLoraTags('<lora:tiny-kohya:1>', [{ name: 'tiny-kohya', hash }], dir);
    assert.deepEqual(same, { prompt: '<lora:tiny-kohya:1>', missing: [] });
  });

  test('trigger words add up over kohya folders, most frequent first', () => {
    mkdirSync(dir, { recursive: true });
    assert.deepEqual(triggerWords({ ss_tag_frequency: JSON.stringify({ '5_a': { cat: 2, ' dog': 5 }, '3_b': { cat: 4 } }) }), ['cat', 'dog']);
    assert.deepEqual(triggerWords({ ss_tag_frequency: 'not json' }), []);
  });
});
