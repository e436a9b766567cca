/**
 * The installed app as people get it: the bundled models are found in whichever copy of the app is
 * running. Two copies of the app's resources (as an AppImage mounted at a new path, or an update
 * installed elsewhere) start in turn on one data folder, the first deleted between the runs; the second
 * lists the bundled models as available, generates with them, and reuses an item the first one made.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from '../../../electron/host/host.js';
import { copyFixture } from '../model-library/support.js';
import { jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1, TINY_SD1_INPAINT } from './support/host-fixtures.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An app folder holding the bundled models where the packaged app has them (resources/native-models/). */
function appCopy(root: string, name: string): string {
  const nativeModels = join(root, name, 'resources', 'native-models');
  mkdirSync(nativeModels, { recursive: true });
  copyFixture(TINY_SD1, nativeModels, 'emoji-ldm');
  copyFixture(TINY_SD1_INPAINT, nativeModels, 'emoji-ldm-inpaint');
  return join(nativeModels, 'emoji-ldm');
}

async function openApp(dataDir: string, bundledModelDir: string): Promise<Host> {
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS, bundledModelDir });
  cleanups.push(() => host.close());
  return host;
}

test('a second copy of the app, the first one deleted, finds its bundled models and reuses the first one\'s history', async () => {
  const t = tempDir('bundled-install');
  cleanups.push(t.remove);
  const dataDir = join(t.dir, 'data');
  const first = appCopy(t.dir, 'app-1');
  const second = appCopy(t.dir, 'app-2');

  let host = await openApp(dataDir, first);
  assert.deepEqual(host.library.bundledProblems, []);
  const request = { mode: 'txt2img' as const, prompt: 'a red circle', seed: 7, steps: 2 };
  const made = await jobFinished(host, ok('generate', await host.invoke('generate', request)).jobId);
  assert.equal(made.status, 'succeeded', JSON.stringify(made.error));
  const item = ok('history.get', await host.invoke('history.get', { id: made.historyId! }));
  assert.equal(item.model.id, 'emoji-ldm');
  await host.close();
  rmSync(join(t.dir, 'app-1'), { recursive: true });

  host = await openApp(dataDir, second);
  assert.deepEqual(host.library.bundledProblems, [], 'the second copy is not refused as a duplicate of the first');
  const list = ok('models.list', await host.invoke('models.list', {}));
  assert.deepEqual(
    list.models.map((m) => [m.id, m.origin, m.available, m.dir]),
    [
      ['emoji-ldm', 'bundled', true, second],
      ['emoji-ldm-inpaint', 'bundled', true, join(second, '..', 'emoji-ldm-inpaint')],
    ],
  );
  assert.equal(list.defaultId, 'emoji-ldm');

  // Reuse: the item's model and parameters give the very same picture; its output is a valid init image.
  const again = await jobFinished(host, ok('generate', await host.invoke('generate', { ...request, modelId: item.model.id! })).jobId);
  assert.equal(again.status, 'succeeded', JSON.stringify(again.error));
  const remade = ok('history.get', await host.invoke('history.get', { id: again.historyId! }));
  assert.equal(remade.output?.hash, item.output?.hash, 'same model, seed and parameters: the same image');
  const img2img = await jobFinished(host, ok('generate', await host.invoke('generate', {
    mode: 'img2img', prompt: item.params.prompt, seed: 8, steps: 2, strength: 0.5,
    modelId: item.model.id!, initImageHash: item.output!.hash, parentId: item.id,
  })).jobId);
  assert.equal(img2img.status, 'succeeded', JSON.stringify(img2img.error));
  const child = ok('history.get', await host.invoke('history.get', { id: img2img.historyId! }));
  assert.deepEqual([child.model.id, child.parentId], ['emoji-ldm', item.id]);
});
