import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashModelFolder } from '../../../electron/model-library/content-hash.js';
import { ModelLibrary } from '../../../electron/model-library/library.js';
import { engineInspector } from '../../../electron/model-library/inspect.js';
import { HistoryStore } from '../../../electron/history/store.js';
import { ModelLibraryError } from '../../../electron/shared/model-library.js';
import { modelDir } from '../../support/engine-fixtures.js';
import { canMount, mountSmallDisk } from '../../support/history-mounts.js';
import { noiseImage, params } from '../../support/history-fixtures.js';
import { copyFixture, openHistoryDb, openLibrary, readFolder, sandbox, TINY_SD1, type Sandbox } from './support.js';

function withBox(fn: (box: Sandbox) => Promise<void>): () => Promise<void> {
  return async () => {
    const box = sandbox();
    try {
      await fn(box);
    } finally {
      box.cleanup();
    }
  };
}

function isCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => (err as { code?: string }).code === code;
}

test('importing a good folder in place records what the engine detected, its size and its hash', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    const model = await lib.importFolder({ path: TINY_SD1, copy: false });
    assert.equal(model.id, 'tiny-sd1');
    assert.equal(model.origin, 'referenced');
    assert.equal(model.dir, TINY_SD1);
    assert.equal(model.source, TINY_SD1);
    assert.equal(model.kind, 'txt2img');
    // The tiny CLIP is 32 wide (not SD 1.x's 768) and the folder has no U-Net config: the engine says
    // "custom" and assumes SD 1.x's 512 px.
    assert.equal(model.family, 'custom');
    assert.equal(model.predictionType, 'epsilon');
    assert.equal(model.precision, 'fp32');
    assert.equal(model.exporter, 'diffusers');
    assert.deepEqual(model.nativeResolution, { width: 512, height: 512 });
    assert.deepEqual(model.supports, ['txt2img', 'img2img', 'inpaint']);
    assert.deepEqual(model.providers, ['cpu']);
    assert.equal(model.readOnly, false);
    assert.equal(model.available, true);
    const files = readFolder(TINY_SD1);
    assert.equal(model.sizeBytes, [...files.values()].reduce((s, b) => s + b.length, 0));
    assert.match(model.contentHash, /^[0-9a-f]{64}$/);
    assert.equal(model.contentHash, (await hashModelFolder(TINY_SD1)).contentHash);
    assert.equal(model.isDefault, true, 'the only model is the default until one is chosen');
    assert.equal(lib.info(model.id).info.unetInChannels, 4);
    assert.deepEqual(lib.list().map((m) => m.id), ['tiny-sd1']);
  } finally {
    await lib.close();
  }
}));

test('the kind comes from the engine: inpaint, v-prediction SD2, LCM, fp16', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    const inpaint = await lib.importFolder({ path: modelDir('tiny-sd1-inpaint'), copy: false });
    assert.equal(inpaint.kind, 'inpaint');
    const sd2 = await lib.importFolder({ path: modelDir('tiny-sd2-v'), copy: false });
    assert.deepEqual([sd2.predictionType, sd2.exporter, sd2.nativeResolution], ['v_prediction', 'optimum', { width: 64, height: 64 }]);
    const lcm = await lib.importFolder({ path: modelDir('tiny-lcm'), copy: false });
    assert.equal(lcm.family, 'lcm');
    const fp16 = await lib.importFolder({ path: modelDir('tiny-sd1-fp16'), copy: false });
    assert.equal(fp16.precision, 'mixed');
  } finally {
    await lib.close();
  }
}));

test('importing by copy puts an identical folder in the models directory and leaves no staging files', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    const model = await lib.importFolder({ path: TINY_SD1, copy: true, name: 'My SD/1' });
    assert.equal(model.origin, 'copied');
    assert.equal(model.name, 'My SD/1');
    assert.equal(model.id, 'My SD-1');
    assert.equal(model.dir, join(box.modelsDir, 'My SD-1'));
    assert.deepEqual(readFolder(model.dir), readFolder(TINY_SD1));
    assert.deepEqual(readdirSync(join(box.modelsDir, '.staging')), []);
  } finally {
    await lib.close();
  }
}));

test('a broken folder is rejected with the exact problem, and nothing is registered or copied', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    const noUnet = copyFixture(TINY_SD1, box.dir, 'no-unet');
    rmSync(join(noUnet, 'unet'), { recursive: true });
    await assert.rejects(lib.importFolder({ path: noUnet, copy: true }), (err: unknown) => {
      assert.equal((err as ModelLibraryError).code, 'E_MODEL_FOLDER');
      assert.match((err as Error).message, /^unet\/model\.onnx: not a Stable Diffusion ONNX folder: missing unet\/model\.onnx/);
      return true;
    });
    const badJson = copyFixture(TINY_SD1, box.dir, 'bad-json');
    writeFileSync(join(badJson, 'scheduler', 'scheduler_config.json'), '{ "_class_name": ');
    await assert.rejects(lib.importFolder({ path: badJson, copy: false }), /scheduler\/scheduler_config\.json: not valid JSON/);
    const notOnnx = copyFixture(TINY_SD1, box.dir, 'not-onnx');
    writeFileSync(join(notOnnx, 'vae_decoder', 'model.onnx'), 'this is not a protobuf');
    await assert.rejects(lib.importFolder({ path: notOnnx, copy: false }), (err: unknown) => isCode('E_MODEL_FOLDER')(err) && /vae_decoder\/model\.onnx/.test((err as Error).message));
    await assert.rejects(lib.importFolder({ path: join(box.dir, 'nowhere'), copy: false }), /model folder not found/);
    assert.deepEqual(lib.list(), []);
    assert.deepEqual(readdirSync(box.modelsDir).sort(), ['.downloads', '.staging']);
  } finally {
    await lib.close();
  }
}));

test('the same model twice is detected by its content hash, wherever it lives and however it is imported', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    const first = await lib.importFolder({ path: TINY_SD1, copy: false });
    const elsewhere = copyFixture(TINY_SD1, box.dir, 'renamed-copy');
    for (const request of [{ path: TINY_SD1, copy: false }, { path: elsewhere, copy: false }, { path: elsewhere, copy: true }]) {
      await assert.rejects(lib.importFolder(request), (err: unknown) => {
        assert.ok(err instanceof ModelLibraryError);
        assert.equal(err.code, 'E_DUPLICATE');
        assert.equal(err.existingId, first.id);
        assert.match(err.message, /already in the library as "tiny-sd1"/);
        return true;
      });
    }
    // One changed byte is another model.
    writeFileSync(join(elsewhere, 'scheduler', 'scheduler_config.json'), readFolder(TINY_SD1).get('scheduler/scheduler_config.json')!.toString().replace('0.012', '0.0120'));
    const second = await lib.importFolder({ path: elsewhere, copy: false });
    assert.notEqual(second.contentHash, first.contentHash);
    assert.deepEqual(lib.list().map((m) => m.id), ['tiny-sd1', 'renamed-copy']);
    assert.deepEqual(readdirSync(join(box.modelsDir, '.staging')), []);
  } finally {
    await lib.close();
  }
}));

test('bundled models are always listed first, read-only, and left out when absent', withBox(async (box) => {
  const bundled = copyFixture(TINY_SD1, box.dir, 'emoji-ldm');
  const absent = join(box.dir, 'emoji-ldm-inpaint');
  let lib = await openLibrary(box, { bundledDirs: [bundled, absent] });
  try {
    const imported = await lib.importFolder({ path: modelDir('tiny-optimum'), copy: false });
    assert.deepEqual(lib.list().map((m) => [m.id, m.origin, m.readOnly]), [['emoji-ldm', 'bundled', true], [imported.id, 'referenced', false]]);
    assert.equal(lib.defaultModel()?.id, 'emoji-ldm', 'with no choice made, the bundled model is the default');
    await assert.rejects(lib.remove('emoji-ldm'), isCode('E_READ_ONLY'));
    await assert.rejects(lib.importFolder({ path: bundled, copy: true }), isCode('E_DUPLICATE'));
  } finally {
    await lib.close();
  }
  // Reopened: the bundled entry is the same one (not re-added); once its folder is gone it's not listed.
  lib = await openLibrary(box, { bundledDirs: [bundled, absent] });
  try {
    assert.deepEqual(lib.list().map((m) => m.id), ['emoji-ldm', 'tiny-optimum']);
  } finally {
    await lib.close();
  }
  rmSync(bundled, { recursive: true });
  lib = await openLibrary(box, { bundledDirs: [bundled, absent] });
  try {
    assert.deepEqual(lib.list().map((m) => m.id), ['tiny-optimum']);
  } finally {
    await lib.close();
  }
}));

test('bundled models are kept by name: a moved app finds them, keeping id, default and providers', withBox(async (box) => {
  const first = copyFixture(TINY_SD1, join(box.dir, 'app-1'), 'emoji-ldm');
  let lib = await openLibrary(box, { bundledDirs: [first] });
  try {
    await lib.importFolder({ path: modelDir('tiny-optimum'), copy: false });
    lib.setDefault('emoji-ldm');
    lib.recordProviders('emoji-ldm', ['cpu']);
  } finally {
    await lib.close();
  }
  rmSync(join(box.dir, 'app-1'), { recursive: true });
  const second = copyFixture(TINY_SD1, join(box.dir, 'app-2'), 'emoji-ldm');
  lib = await openLibrary(box, { bundledDirs: [second] });
  try {
    assert.deepEqual(lib.bundledProblems, [], 'not refused as "already in the library"');
    const bundled = lib.get('emoji-ldm');
    assert.deepEqual([bundled.dir, bundled.source, bundled.available, bundled.isDefault, bundled.providers], [second, second, true, true, ['cpu']]);
    assert.equal(lib.info('emoji-ldm').info.dir, second);
    assert.deepEqual(lib.list().map((m) => m.id), ['emoji-ldm', 'tiny-optimum']);
  } finally {
    await lib.close();
  }
}));

test('migration: a library holding a bundled model\'s absolute path (older versions) keeps the row, resolved by name', withBox(async (box) => {
  const old = copyFixture(TINY_SD1, join(box.dir, 'old-app'), 'emoji-ldm');
  let lib = await openLibrary(box, { bundledDirs: [old] });
  await lib.close();
  // What an older version wrote: the folder's absolute path in dir and source.
  const db = openHistoryDb(join(box.historyDir, 'history.sqlite'));
  db.prepare("UPDATE models SET dir = ?, source = ?, is_default = 1, providers_json = '[\"cpu\"]' WHERE id = 'emoji-ldm'").run(old, old);
  db.close();
  rmSync(join(box.dir, 'old-app'), { recursive: true });

  const moved = copyFixture(TINY_SD1, join(box.dir, 'new-app'), 'emoji-ldm');
  lib = await openLibrary(box, { bundledDirs: [moved] });
  try {
    assert.deepEqual(lib.bundledProblems, []);
    assert.deepEqual(lib.list().map((m) => [m.id, m.dir, m.available, m.isDefault, m.providers]), [['emoji-ldm', moved, true, true, ['cpu']]]);
  } finally {
    await lib.close();
  }
  const check = openHistoryDb(join(box.historyDir, 'history.sqlite'));
  try {
    assert.deepEqual(check.prepare('SELECT id, dir, source FROM models').all(), [{ id: 'emoji-ldm', dir: 'bundled:emoji-ldm', source: 'bundled:emoji-ldm' }]);
  } finally {
    check.close();
  }
}));

test('the default model is persisted; removing it falls back to another', withBox(async (box) => {
  let lib = await openLibrary(box);
  try {
    await lib.importFolder({ path: TINY_SD1, copy: false });
    await lib.importFolder({ path: modelDir('tiny-lcm'), copy: false });
    assert.equal(lib.defaultModel()?.id, 'tiny-sd1');
    assert.equal(lib.setDefault('tiny-lcm').isDefault, true);
    assert.throws(() => lib.setDefault('no-such-model'), isCode('E_NOT_FOUND'));
  } finally {
    await lib.close();
  }
  lib = await openLibrary(box);
  try {
    assert.deepEqual(lib.list().filter((m) => m.isDefault).map((m) => m.id), ['tiny-lcm']);
    await lib.remove('tiny-lcm');
    assert.equal(lib.defaultModel()?.id, 'tiny-sd1');
  } finally {
    await lib.close();
  }
}));

test('providers a model has run on accumulate', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    await lib.importFolder({ path: TINY_SD1, copy: false });
    lib.recordProviders('tiny-sd1', ['webgpu', 'cpu']);
    lib.recordProviders('tiny-sd1', ['webgpu']);
    assert.deepEqual(lib.get('tiny-sd1').providers, ['cpu', 'webgpu']);
  } finally {
    await lib.close();
  }
}));

test('removing models keeps the history rows that used them; they then show the model as missing', withBox(async (box) => {
  const store = await HistoryStore.open(box.historyDir);
  const lib = await ModelLibrary.openInDataDir(box.historyDir, { modelsDir: box.modelsDir, bundledDirs: [], inspect: engineInspector() });
  try {
    const copied = await lib.importFolder({ path: TINY_SD1, copy: true });
    const referenced = await lib.importFolder({ path: modelDir('tiny-optimum'), copy: false });
    const rows = [];
    for (const [i, m] of [copied, referenced].entries()) {
      rows.push(await store.add({
        params: params({ prompt: `made with ${m.id}` }),
        model: { id: m.id, hash: m.contentHash },
        output: noiseImage(i),
        executionProvider: 'cpu',
      }));
    }
    await lib.remove(copied.id);
    await lib.remove(referenced.id);
    assert.equal(existsSync(copied.dir), false, 'a copy the library made is deleted');
    assert.equal(existsSync(referenced.dir), true, "a referenced folder is the user's: only forgotten");
    assert.deepEqual(lib.list(), []);
    const kept = store.page().items;
    assert.deepEqual(kept.map((item) => item.model.id).sort(), [copied.id, referenced.id].sort());
    for (const item of kept) {
      assert.equal(lib.find(item.model.id!), null, 'the history row names a model the library no longer has');
      assert.throws(() => lib.get(item.model.id!), isCode('E_NOT_FOUND'));
    }
    assert.equal(rows.length, 2);
    assert.deepEqual(readdirSync(join(box.modelsDir, '.staging')), []);
  } finally {
    await lib.close();
    store.close();
  }
}));

test('a referenced folder that disappears is listed as unavailable, not dropped', withBox(async (box) => {
  const lib = await openLibrary(box);
  try {
    const folder = copyFixture(TINY_SD1, box.dir, 'usb-stick-model');
    await lib.importFolder({ path: folder, copy: false });
    rmSync(folder, { recursive: true });
    assert.deepEqual(lib.list().map((m) => [m.id, m.available]), [['usb-stick-model', false]]);
  } finally {
    await lib.close();
  }
}));

test('leftovers of a crash (a half copy, a partial download with no row) are removed at open', withBox(async (box) => {
  for (const leftover of [join(box.modelsDir, '.staging', 'half-copy', 'unet'), join(box.modelsDir, '.downloads', 'f'.repeat(64), 'unet')]) {
    mkdirSync(leftover, { recursive: true });
    writeFileSync(join(leftover, 'model.onnx.part'), 'partial');
  }
  const lib = await openLibrary(box);
  try {
    assert.deepEqual(readdirSync(join(box.modelsDir, '.staging')), []);
    assert.deepEqual(readdirSync(join(box.modelsDir, '.downloads')), []);
  } finally {
    await lib.close();
  }
}));

test('a copy that does not fit is refused up front with E_DISK_FULL, nothing left behind', { skip: canMount() ? false : 'needs `mount -t tmpfs` (CAP_SYS_ADMIN) to make a small disk' }, withBox(async (box) => {
  const disk = mountSmallDisk(256 * 1024); // tiny-sd1 is 0.69 MB
  const lib = await openLibrary(box, { modelsDir: disk.dir });
  try {
    await assert.rejects(lib.importFolder({ path: TINY_SD1, copy: true }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, 'E_DISK_FULL');
      assert.match((err as Error).message, /needs 0\.7 MB more but only 0\.\d MB is free/);
      return true;
    });
    assert.deepEqual(lib.list(), []);
    assert.deepEqual(readdirSync(disk.dir).sort(), ['.downloads', '.staging']);
    assert.deepEqual(readdirSync(join(disk.dir, '.staging')), []);
    // Referencing in place needs no space.
    assert.equal((await lib.importFolder({ path: TINY_SD1, copy: false })).origin, 'referenced');
  } finally {
    await lib.close();
    disk.dispose();
  }
}));
