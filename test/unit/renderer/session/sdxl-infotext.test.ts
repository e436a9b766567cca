/**
 * SDXL infotext round trip: a real host generates with tiny-sdxl at a non-square size with a weighted,
 * BREAK prompt; its PNG's A1111 `parameters` say the size, the model hash and name and the prompts as typed;
 * that text alone (an A1111-style PNG, no Latent Studio chunk) imports into another history with the same
 * values; and the renderer's Reuse puts them back, choosing the SDXL model by its hash when the library
 * knows it under another name, and keeping the item's size over the model's presets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Host } from '../../../../electron/host/host.js';
import { HistoryStore } from '../../../../electron/history/store.js';
import { encodePng, readPngMetadata } from '../../../../electron/history/png.js';
import { parseA1111Parameters } from '../../../../electron/shared/a1111.js';
import type { HistoryItem } from '../../../../electron/shared/history.js';
import type { LibraryModel } from '../../../../electron/shared/model-library.js';
import type { ModelInfo } from '../../../../electron/shared/model.js';
import { EditorDocument } from '../../../../renderer/src/document/document.js';
import { StudioClient, WebSocketStudioApi } from '../../../../renderer/src/ipc/studio-client.js';
import { createSession } from '../../../../renderer/src/session/session.js';
import { FIXTURE_MODELS, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS } from '../../host/support/host-fixtures.js';
import { FakeHost, until } from './fake-host.js';

const PROMPT = '(a red apple:1.3) on a [wooden] table BREAK studio light, (sharp focus)';
const NEGATIVE = 'blurry, (low quality:1.2)';
/** One of tiny-sdxl's size buckets (1216×832 scaled to its 64-pixel native side), not square. */
const SIZE = { width: 80, height: 48 };

describe('SDXL infotext: write, parse, import, Reuse', { timeout: 180_000 }, () => {
  const data = tempDir('sdxl-infotext');
  let host: Host;
  let item: HistoryItem;
  let model: LibraryModel;
  let info: ModelInfo;
  let png: Buffer;

  before(async () => {
    host = await Host.open({ dataDir: join(data.dir, 'a'), engineSettings: TEST_ENGINE_SETTINGS });
    model = ok('models.import', await host.invoke('models.import', { path: join(FIXTURE_MODELS, 'tiny-sdxl') }));
    info = ok('models.info', await host.invoke('models.info', { modelId: model.id })).info;
    const { jobId } = ok(
      'generate',
      await host.invoke('generate', { mode: 'txt2img', modelId: model.id, prompt: PROMPT, negativePrompt: NEGATIVE, seed: 42, steps: 3, cfg: 5, sampler: 'euler', ...SIZE }),
    );
    const job = await jobFinished(host, jobId);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    item = ok('history.get', await host.invoke('history.get', { id: job.historyId! }));
    png = Buffer.from(ok('history.image', await host.invoke('history.image', { hash: item.output!.hash })).data, 'base64');
  });
  after(async () => {
    await host?.close();
    data.remove();
  });

  it('the PNG says the size, the model hash and name, and the prompts with their weights as typed', () => {
    assert.equal(info.family, 'sdxl');
    const text = readPngMetadata(png).parameters!;
    const parsed = parseA1111Parameters(text);
    assert.equal(parsed.prompt, PROMPT);
    assert.equal(parsed.negativePrompt, NEGATIVE);
    assert.equal(parsed.settings['Size'], '80x48');
    assert.equal(parsed.settings['Model hash'], model.contentHash.slice(0, 10));
    assert.equal(parsed.settings['Model'], model.id);
    assert.deepEqual(
      [parsed.params.steps, parsed.params.sampler, parsed.params.cfg, parsed.params.seed, parsed.params.width, parsed.params.height, parsed.mode],
      [3, 'euler', 5, 42, 80, 48, 'txt2img'],
    );
    assert.deepEqual([item.params.width, item.params.height, item.output!.width, item.output!.height], [80, 48, 80, 48]);
  });

  it('the infotext alone imports with the same values, and Reuse restores them on the SDXL model', async () => {
    // An A1111-style PNG: the same pixels with only the `parameters` text.
    const { data: rgb, info: raw } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const a1111Png = await encodePng({ rgb: new Uint8Array(rgb), width: raw.width, height: raw.height }, { parameters: readPngMetadata(png).parameters! });
    assert.equal(readPngMetadata(a1111Png).request, undefined);
    const file = join(data.dir, 'a1111.png');
    writeFileSync(file, a1111Png);
    const other = await HistoryStore.open(join(data.dir, 'b'));
    let imported: HistoryItem;
    try {
      imported = await other.importFile(file);
    } finally {
      other.close();
    }
    const keys = ['mode', 'prompt', 'negativePrompt', 'seed', 'steps', 'cfg', 'sampler', 'width', 'height'] as const;
    assert.deepEqual(Object.fromEntries(keys.map((k) => [k, imported.params[k]])), Object.fromEntries(keys.map((k) => [k, item.params[k]])));
    assert.deepEqual(imported.model, { id: model.id, hash: model.contentHash.slice(0, 10) });

    // Reuse in a studio whose library has the SDXL folder under another name, with an SD 1.x model selected.
    const renamed = { ...model, id: 'my-sdxl', name: 'my-sdxl' } as LibraryModel;
    const sd1 = { ...model, id: 'tiny-sd1', name: 'tiny-sd1', contentHash: 'f'.repeat(64) } as LibraryModel;
    const sd1Info = { ...info, family: 'sd1', nativeResolution: { width: 512, height: 512 }, sizeMultiple: 64, defaults: { ...info.defaults, width: 512, height: 512 } } as ModelInfo;
    let selected = sd1.id;
    const fake = new FakeHost()
      .handle('queue.list', () => ({ revision: 0, running: null, queued: [], recent: [] }))
      .handle('app.info', () => ({ engine: { state: 'ready', pid: 1 } }) as never)
      .handle('models.list', () => ({ models: [sd1, renamed], defaultId: sd1.id, selectedId: selected, downloads: [] }))
      .handle('models.info', ({ modelId }) => ({ model: modelId === sd1.id ? sd1 : renamed, info: modelId === sd1.id ? sd1Info : info }))
      .handle('models.select', ({ modelId }) => ({ selectedId: (selected = modelId) }));
    const session = createSession(new StudioClient(new WebSocketStudioApi('ws://studio.test/api/ws', fake.openSocket), 'http://127.0.0.1:1/api/images'), new EditorDocument(64, 64));
    const disconnect = session.connect();
    try {
      await until(() => session.modelsStore.get().info['my-sdxl'] !== undefined && session.modelsStore.get().info[sd1.id] !== undefined, 5000, 'model info');
      session.reuseParameters(imported);
      await until(() => session.modelsStore.get().selectedId === 'my-sdxl', 5000, 'the SDXL model selected by its hash');
      const s = session.settingsStore.get();
      assert.deepEqual(
        { prompt: s.prompt, negativePrompt: s.negativePrompt, seed: s.seed, steps: s.steps, cfg: s.cfg, sampler: s.sampler, width: s.width, height: s.height },
        { prompt: PROMPT, negativePrompt: NEGATIVE, seed: 42, steps: 3, cfg: 5, sampler: 'euler', ...SIZE },
      );
      assert.deepEqual(fake.callsTo('models.select'), [{ modelId: 'my-sdxl' }]);
    } finally {
      disconnect();
      session.dispose();
    }
  });
});
