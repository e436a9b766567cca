/**
 * history.reveal through Host.invoke: the host resolves an item's image file and checks it is there;
 * a host with a platform `revealFile` (Electron main passes shell.showItemInFolder) is asked to show
 * exactly that file, and a host without one (browser mode) answers the path for the page to show.
 * Real hosts over one data folder, real engine process, tiny-sd1 fixture.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Host } from '../../../electron/host/host.js';
import { isPng } from '../../../electron/history/png.js';
import { FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const data = tempDir('reveal');
const dataDir = join(data.dir, 'data');
let historyId = 0;

before(async () => {
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  try {
    ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
    const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'revealed', steps: 1, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 9 }));
    const job = await jobFinished(host, jobId);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    historyId = job.historyId!;
  } finally {
    await host.close();
  }
});

after(() => data.remove());

test('browser mode (no platform action): answers the absolute path of the PNG that is the item, revealed false', async () => {
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  try {
    const answer = ok('history.reveal', await host.invoke('history.reveal', { id: historyId }));
    assert.equal(answer.revealed, false);
    assert.ok(isAbsolute(answer.path), answer.path);
    assert.ok(answer.path.startsWith(join(dataDir, 'history')), `inside the history folder: ${answer.path}`);
    const item = ok('history.get', await host.invoke('history.get', { id: historyId }));
    assert.equal(answer.path, host.history.imagePath(item.output!.hash));
    assert.ok(isPng(readFileSync(answer.path)), 'the path is the PNG file itself');

    const unknown = await host.invoke('history.reveal', { id: historyId + 1000 });
    assert.equal(unknown.ok, false);
    if (!unknown.ok) assert.equal(unknown.error.code, 'E_NOT_FOUND');
  } finally {
    await host.close();
  }
});

test('desktop: the injected revealFile is called with that file; a missing file is refused before it is called', async () => {
  const revealed: string[] = [];
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS, platform: { revealFile: (path) => void revealed.push(path) } });
  try {
    const answer = ok('history.reveal', await host.invoke('history.reveal', { id: historyId }));
    assert.equal(answer.revealed, true);
    assert.deepEqual(revealed, [answer.path]);

    // The file went missing (moved by hand): a clear not-found, and the file manager is never opened.
    renameSync(answer.path, `${answer.path}.moved`);
    try {
      const missing = await host.invoke('history.reveal', { id: historyId });
      assert.equal(missing.ok, false);
      if (!missing.ok) {
        assert.equal(missing.error.code, 'E_NOT_FOUND');
        assert.match(missing.error.message, new RegExp(`#${historyId}.*missing`));
      }
      assert.equal(revealed.length, 1);
    } finally {
      renameSync(`${answer.path}.moved`, answer.path);
    }
    assert.ok(existsSync(answer.path));
  } finally {
    await host.close();
  }
});
