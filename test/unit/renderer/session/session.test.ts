/**
 * The renderer's session on its own: a session made with `createSession` over the real studio client
 * and WebSocket API, against a fake host (fake-host.ts) that can stop, come back, and leave a call
 * unanswered. The model info is the engine's real detection of the tiny txt2img fixture.
 */
import { before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import type { JobSummary, QueueSnapshot } from '../../../../electron/shared/contract.js';
import type { HistoryItem } from '../../../../electron/shared/history.js';
import type { LibraryModel } from '../../../../electron/shared/model-library.js';
import type { ModelInfo } from '../../../../electron/shared/model.js';
import * as limits from '../../../../electron/shared/generation-limits.js';
import { EditorDocument } from '../../../../renderer/src/document/document.js';
import { StudioClient, WebSocketStudioApi } from '../../../../renderer/src/ipc/studio-client.js';
import { createSession, type StudioSession } from '../../../../renderer/src/session/session.js';
import { stagedWarnings } from '../../../../renderer/src/session/store.js';
import { FakeHost, NEVER, until } from './fake-host.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'models');
const MODEL_ID = 'tiny-sd1';

let info: ModelInfo;
before(async () => {
  const model = await openModelFolder(join(FIXTURES, MODEL_ID), { providers: ['cpu'], threads: 1 });
  info = model.info;
  await model.release();
});

const EMPTY_QUEUE: QueueSnapshot = { revision: 0, running: null, queued: [], recent: [] };

/** A host with one model, an idle engine and an empty queue. */
function idleHost(): FakeHost {
  const model = { id: MODEL_ID, name: MODEL_ID, kind: info.kind } as LibraryModel;
  return new FakeHost()
    .handle('queue.list', () => EMPTY_QUEUE)
    .handle('app.info', () => ({ engine: { state: 'ready', pid: 1 } }) as never)
    .handle('models.list', () => ({ models: [model], defaultId: MODEL_ID, selectedId: MODEL_ID, downloads: [] }))
    .handle('models.info', () => ({ model, info }));
}

function job(id: string, status: JobSummary['status'], historyId: number | null = null): JobSummary {
  return { id, status, position: historyId ?? 0, mode: 'txt2img', prompt: 'p', modelId: MODEL_ID, createdAt: 0, startedAt: null, finishedAt: historyId, progress: null, historyId, error: null, warnings: [] };
}

describe('renderer session', () => {
  let host: FakeHost;
  let session: StudioSession;
  let disconnect: () => void;

  function start(callTimeoutMs?: number): void {
    const api = new WebSocketStudioApi('ws://studio.test/api/ws', host.openSocket);
    session = createSession(new StudioClient(api, 'http://127.0.0.1:7860/api/images', callTimeoutMs !== undefined ? { callTimeoutMs } : {}), new EditorDocument(64, 64));
    disconnect = session.connect();
  }
  const errors = (): string[] => session.noticesStore.get().filter((n) => n.kind === 'error').map((n) => n.text);

  beforeEach(() => {
    host = idleHost();
  });

  async function stop(): Promise<void> {
    host.start();
    disconnect();
    session.dispose();
  }

  it('connecting reads the queue, the engine state and the models, and Generate is ready', async () => {
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined, 2000, 'model info');
      assert.equal(session.connectionStore.get().engine, 'ready');
      assert.equal(session.modelsStore.get().selectedId, MODEL_ID);
      assert.equal(session.modelsStore.get().loading, false);
      assert.equal(host.callsTo('queue.list').length, 1);
      assert.equal(session.generateProblem(), null);
    } finally {
      await stop();
    }
  });

  it('follows the host across a restart: offline while it is down, then reads everything again', async () => {
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      const revision = session.historyRevisionStore.get();
      host.stop();
      await until(() => !session.connectionStore.get().connected, 2000, 'offline');
      host.start();
      await until(() => session.connectionStore.get().connected && host.callsTo('queue.list').length === 2, 3000, 'the resync');
      assert.equal(host.connections, 2);
      assert.equal(host.callsTo('models.list').length, 2);
      // History events may have been missed while away: the browser reloads.
      assert.ok(session.historyRevisionStore.get() > revision);
      // Events flow on the new connection.
      host.emit('engine.status', { state: 'busy', pid: 1 } as never);
      await until(() => session.connectionStore.get().engine === 'busy', 2000, 'an event after reconnecting');
    } finally {
      await stop();
    }
  });

  it('a call in flight when the socket closes fails in plain words, and Generate works again after', async () => {
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      host.handle('generate', NEVER);
      const pressed = session.generate();
      await until(() => host.callsTo('generate').length === 1, 2000, 'the generate call');
      host.stop();
      await pressed;
      assert.deepEqual(errors(), ['The studio host is not reachable. Is `studio serve` still running?']);
      assert.deepEqual(session.stagingStore.get().jobIds, []);
      host.start();
      host.handle('generate', () => ({ jobId: '00000000-0000-4000-8000-000000000001', seed: 1, position: 0, warnings: [] }));
      await until(() => session.connectionStore.get().connected, 3000, 'reconnect');
      await session.generate();
      assert.deepEqual(session.stagingStore.get().jobIds, ['00000000-0000-4000-8000-000000000001']);
    } finally {
      await stop();
    }
  });

  it('a call the host never answers fails with a timeout instead of waiting for ever', async () => {
    host.handle('models.select', NEVER);
    start(50);
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      await session.selectModel(MODEL_ID);
      assert.deepEqual(errors(), ['The studio host did not answer models.select within 50 ms.']);
    } finally {
      await stop();
    }
  });

  it('a batch sends one job per image with consecutive seeds, and finished jobs land in staging in order', async () => {
    let next = 0;
    const ids = ['00000000-0000-4000-8000-00000000000a', '00000000-0000-4000-8000-00000000000b'];
    host.handle('generate', () => ({ jobId: ids[next++]!, seed: 0, position: 0, warnings: [] }));
    host.handle('history.get', ({ id }) => ({ id, params: { seed: 40 + id }, output: { hash: 'h'.repeat(64), width: 64, height: 64 } }) as unknown as HistoryItem);
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      const { width, height, steps, cfg, sampler } = session.settingsStore.get();
      session.settingsStore.update({ prompt: 'a cat', seedMode: 'fixed', seed: 41, batchCount: 2 });
      await session.generate();
      const sent = host.callsTo('generate') as Array<Record<string, unknown>>;
      assert.deepEqual(sent.map((r) => r.seed), [41, 42]);
      assert.deepEqual(sent[0], { mode: 'txt2img', prompt: 'a cat', negativePrompt: '', steps, cfg, sampler, width, height, modelId: MODEL_ID, seed: 41 });
      // The second job finishes first; staging keeps the batch order. The host sends deltas.
      await until(() => session.queueStore.get().revision === 0, 2000, 'the first queue snapshot');
      host.emit('queue.changed', { revision: 1, added: [job(ids[0]!, 'queued'), job(ids[1]!, 'queued')], changed: [], removed: [] });
      host.emit('queue.changed', { revision: 2, added: [], changed: [job(ids[1]!, 'succeeded', 2)], removed: [] });
      host.emit('queue.changed', { revision: 3, added: [], changed: [job(ids[0]!, 'succeeded', 1)], removed: [] });
      await until(() => session.stagingStore.get().items.length === 2, 2000, 'both results');
      assert.deepEqual(session.stagingStore.get().items.map((i) => i.id), [1, 2]);
      session.acceptStaged();
      assert.deepEqual(session.doc.image?.source, { kind: 'history', historyId: session.selectedHistoryStore.get(), hash: 'h'.repeat(64) });
      assert.deepEqual(session.stagingStore.get().items, []);
    } finally {
      await stop();
    }
  });

  it("a staged result carries its job's warnings (what was changed or left out), and a result without any shows none", async () => {
    let next = 0;
    const ids = ['00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000e2'];
    host.handle('generate', () => ({ jobId: ids[next++]!, seed: 0, position: 0, warnings: [] }));
    host.handle('history.get', ({ id }) => ({ id, params: { seed: id }, output: { hash: 'e'.repeat(64), width: 64, height: 64 } }) as unknown as HistoryItem);
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      session.settingsStore.update({ prompt: 'a cat', batchCount: 2 });
      await session.generate();
      await until(() => session.queueStore.get().revision === 0, 2000, 'the first queue snapshot');
      const warning = 'vae_decoder: runs in fp32 (upcast from its fp16 weights) because its config.json sets force_upcast';
      host.emit('queue.changed', { revision: 1, added: [], changed: [{ ...job(ids[0]!, 'succeeded', 7), warnings: [warning] }, job(ids[1]!, 'succeeded', 8)], removed: [] });
      await until(() => session.stagingStore.get().items.length === 2, 2000, 'both results');
      session.stagingStore.update({ index: 0 });
      assert.deepEqual(stagedWarnings(session.stagingStore.get()), [warning]);
      session.flipStaged(1);
      assert.deepEqual(stagedWarnings(session.stagingStore.get()), []);
      session.flipStaged(1);
      session.discardStaged();
      assert.deepEqual(stagedWarnings(session.stagingStore.get()), [], 'the warning went with its result');
    } finally {
      await stop();
    }
  });

  it('opening a history picture while results are staged sets them aside with a notice, so the brush paints', async () => {
    let next = 0;
    const ids = ['00000000-0000-4000-8000-00000000000c', '00000000-0000-4000-8000-00000000000d'];
    host.handle('generate', () => ({ jobId: ids[next++]!, seed: 0, position: 0, warnings: [] }));
    host.handle('history.get', ({ id }) => ({ id, params: { seed: 1 }, output: { hash: 'a'.repeat(64), width: 64, height: 64 } }) as unknown as HistoryItem);
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      session.settingsStore.update({ prompt: 'a cat', batchCount: 2 });
      await session.generate();
      // One result is staged, the other still running.
      await until(() => session.queueStore.get().revision === 0, 2000, 'the first queue snapshot');
      host.emit('queue.changed', { revision: 1, added: [], changed: [job(ids[1]!, 'running'), job(ids[0]!, 'succeeded', 7)], removed: [] });
      await until(() => session.stagingStore.get().items.length === 1, 2000, 'the staged result');
      session.explainStagedPainting();
      session.explainStagedPainting();
      const infos = (): string[] => session.noticesStore.get().filter((n) => n.kind === 'info').map((n) => n.text);
      assert.deepEqual(infos(), ['A result is staged: Accept or Discard it (Enter / Delete) to paint again.'], 'said once, not per click');

      const other = { id: 3, output: { hash: 'b'.repeat(64), width: 64, height: 64 } } as unknown as HistoryItem;
      session.openInCanvas(other);
      assert.deepEqual(session.stagingStore.get(), { jobIds: [], items: [], index: 0, warnings: {} });
      assert.deepEqual(session.doc.image?.source, { kind: 'history', historyId: 3, hash: 'b'.repeat(64) });
      assert.equal(infos().at(-1), 'Result #7 set aside, not accepted: it stays in History. The result still coming goes to History only.');
      // The job that finishes later is no longer staged over the opened picture.
      host.emit('queue.changed', { revision: 2, added: [], changed: [job(ids[1]!, 'succeeded', 8)], removed: [] });
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(session.stagingStore.get().items, []);
      // Nothing staged: the brush paints the opened picture's mask, one undo step.
      const depth = session.doc.undoDepth;
      session.doc.beginStroke('brush', { size: 8, hardness: 1, opacity: 1 }, { x: 10, y: 10, pressure: 1 });
      session.doc.endStroke();
      assert.ok(session.doc.mask.countMarked() > 0);
      assert.equal(session.doc.undoDepth, depth + 1);
      // Opening with nothing staged says nothing.
      const count = session.noticesStore.get().length;
      session.openInCanvas(other);
      assert.equal(session.noticesStore.get().length, count);
    } finally {
      await stop();
    }
  });

  it('Generate’s problems use the shared generation limits at their bounds', async () => {
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      const problem = (patch: Partial<ReturnType<typeof session.settingsStore.get>>): string | null => session.generateProblem({ ...session.settingsStore.get(), ...patch });
      assert.equal(problem({ steps: limits.MAX_STEPS }), null);
      assert.equal(problem({ steps: limits.MAX_STEPS + 1 }), `Steps must be a whole number from ${limits.MIN_STEPS} to ${limits.MAX_STEPS}.`);
      assert.equal(problem({ steps: limits.MIN_STEPS - 1 }), `Steps must be a whole number from ${limits.MIN_STEPS} to ${limits.MAX_STEPS}.`);
      assert.equal(problem({ cfg: limits.MAX_CFG }), null);
      assert.equal(problem({ cfg: limits.MAX_CFG + 0.5 }), `CFG must be from ${limits.MIN_CFG} to ${limits.MAX_CFG}.`);
      assert.equal(problem({ seedMode: 'fixed', seed: limits.MAX_SEED }), null);
      assert.match(problem({ seedMode: 'fixed', seed: -1 }) ?? '', /seed must be a whole number/);
      // With a picture open the mode is img2img, which runs ⌊steps × strength⌋ steps: none is refused here, not by the host.
      session.openInCanvas({ id: 3, output: { hash: 'b'.repeat(64), width: 64, height: 64 } } as unknown as HistoryItem);
      assert.equal(problem({ modeChoice: 'img2img', steps: 4, strength: 0.2, sampler: 'euler' }), 'At strength 0.2, 4 steps would run no step: raise Steps or Strength.');
      assert.equal(problem({ modeChoice: 'img2img', steps: 5, strength: 0.2, sampler: 'euler' }), null, '⌊1⌋ = 1 step');
      assert.equal(problem({ modeChoice: 'img2img', steps: 4, strength: 0.2, sampler: 'lcm' }), null, 'LCM spreads strength over its own schedule');
      // The panel starts from the shared defaults.
      const fresh = createSession(session.client, new EditorDocument(8, 8)).settingsStore.get();
      assert.deepEqual([fresh.steps, fresh.cfg, fresh.strength, fresh.maskBlur, fresh.maskPadding], [limits.DEFAULT_STEPS, limits.DEFAULT_CFG, limits.DEFAULT_IMG2IMG_STRENGTH, limits.DEFAULT_MASK_BLUR, limits.DEFAULT_MASK_PADDING]);
    } finally {
      await stop();
    }
  });
  it('Hires fix: sent with a txt2img request only, checked, and restored (or turned off) by Reuse', async () => {
    host.handle('generate', () => ({ jobId: '00000000-0000-4000-8000-00000000000c', seed: 0, position: 0, warnings: [] }));
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      const hires = { enabled: true, upscaler: 'Latent (bicubic)', scale: 2, steps: 5, strength: 0.55, resizeWidth: 0, resizeHeight: 0 };
      session.settingsStore.update({ prompt: 'a cat', hires });
      const problem = (patch: Partial<typeof hires>): string | null => session.generateProblem({ ...session.settingsStore.get(), hires: { ...hires, ...patch } });
      assert.equal(problem({}), null);
      assert.equal(problem({ scale: limits.MAX_HIRES_SCALE + 1 }), `Upscale by must be from ${limits.MIN_HIRES_SCALE} to ${limits.MAX_HIRES_SCALE}.`);
      assert.match(problem({ strength: 0 }) ?? '', /Denoising strength must be above 0/);
      assert.match(problem({ resizeWidth: 100 }) ?? '', /Resize width must be 0 \(from Upscale by\) or a multiple of 8/);
      assert.equal(problem({ enabled: false, scale: 99 }), null, 'off: not checked');
      assert.equal(problem({ steps: 2, strength: 0.45 }), 'The hires pass would run no step (2 steps × denoising strength 0.45): raise Hires steps or Denoising strength.');
      assert.equal(problem({ steps: 3, strength: 0.45 }), null, '⌊1.35⌋ = 1 step');
      await session.generate();
      const sent = host.callsTo('generate') as Array<Record<string, unknown>>;
      assert.deepEqual(sent[0]!.hires, { upscaler: 'Latent (bicubic)', scale: 2, steps: 5, strength: 0.55, resizeWidth: 0, resizeHeight: 0 });

      const item = (params: Record<string, unknown>) =>
        ({ id: 7, mode: 'txt2img', model: { id: MODEL_ID, hash: null }, labelMap: null,
           params: { mode: 'txt2img', prompt: 'p', negativePrompt: '', seed: 1, steps: 20, cfg: 7, sampler: 'euler', width: 64, height: 64, strength: 1, maskBlur: 0, ...params } }) as unknown as HistoryItem;
      session.settingsStore.update({ hires: { ...hires, enabled: false } });
      session.reuseParameters(item({ hires: { upscaler: 'Lanczos', scale: 1.5, steps: 0, strength: 0.3, resizeWidth: 0, resizeHeight: 0 } }));
      assert.deepEqual(session.settingsStore.get().hires, { enabled: true, upscaler: 'Lanczos', scale: 1.5, steps: 0, strength: 0.3, resizeWidth: 0, resizeHeight: 0 });
      session.reuseParameters(item({}));
      assert.equal(session.settingsStore.get().hires.enabled, false, 'an item without hires turns it off');
      assert.equal(session.settingsStore.get().hires.upscaler, 'Lanczos', 'keeping the last settings for next time');
    } finally {
      await stop();
    }
  });
  it('Reuse parameters asks the host to restore the LoRA tags: a renamed file by its hash, missing ones named', async () => {
    host.handle('loras.restore', ({ prompt }) => ({ prompt: prompt.replace('<lora:old-style:', '<lora:my-style:'), missing: ['gone'] }));
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined, 2000, 'model info');
      const loras = [{ name: 'old-style', hash: '0123456789ab' }, { name: 'gone', hash: 'ffffffffffff' }];
      const item = { id: 7, mode: 'txt2img', model: { id: MODEL_ID }, labelMap: null, params: { prompt: 'a fox <lora:old-style:0.8> <lora:gone:1>', negativePrompt: '', seed: 3, steps: 2, cfg: 7, sampler: 'euler', width: 64, height: 64, strength: null, maskBlur: null, loras } } as unknown as HistoryItem;
      session.reuseParameters(item);
      assert.equal(session.settingsStore.get().prompt, item.params.prompt, 'the prompt comes back at once');
      await until(() => session.settingsStore.get().prompt.includes('my-style'), 2000, 'restored prompt');
      assert.equal(session.settingsStore.get().prompt, 'a fox <lora:my-style:0.8> <lora:gone:1>');
      assert.deepEqual(host.callsTo('loras.restore'), [{ prompt: item.params.prompt, loras }]);
      assert.ok(errors().some((e) => /#7 used a LoRA not in the library: gone\./.test(e)), errors().join(' | '));
      // A prompt without tags asks nothing.
      session.reuseParameters({ ...item, params: { ...item.params, prompt: 'plain', loras: undefined } } as unknown as HistoryItem);
      assert.equal(host.callsTo('loras.restore').length, 1);
    } finally {
      await stop();
    }
  });
  it('Regions: Generate says what a region lacks, then sends each with its mask as a PNG at the picture size', async () => {
    host.handle('generate', () => ({ jobId: '00000000-0000-4000-8000-00000000000d', seed: 0, position: 0, warnings: [] }));
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      const doc = session.doc;
      session.settingsStore.update({ prompt: 'a meadow' });
      session.addRegion();
      const a = doc.regions[0]!;
      assert.equal(session.paintRegionStore.get(), a.id, 'a new region is what the brush paints');
      assert.equal(session.generateProblem(), 'Region 1 needs a prompt.');
      doc.updateRegion(a.id, { prompt: 'a red fox' });
      assert.equal(session.generateProblem(), 'Region 1 has no area: paint it on the canvas, or remove it.');
      doc.beginRegionStroke(a.id, 'brush', { size: 12, hardness: 1, opacity: 1 }, { x: 10, y: 10, pressure: 1 });
      doc.continueStroke({ x: 10, y: 50, pressure: 1 });
      doc.endStroke();
      assert.equal(session.generateProblem(), null);
      session.addRegion();
      const b = doc.regions[1]!;
      doc.updateRegion(b.id, { prompt: 'a blue bird', weight: limits.MAX_REGION_WEIGHT + 1 });
      doc.beginRegionStroke(b.id, 'brush', { size: 12, hardness: 1, opacity: 1 }, { x: 50, y: 10, pressure: 1 });
      doc.endStroke();
      assert.equal(session.generateProblem(), `Region 2's weight must be from ${limits.MIN_REGION_WEIGHT} to ${limits.MAX_REGION_WEIGHT}.`);
      doc.updateRegion(b.id, { weight: 0.7 });
      await session.generate();
      const sent = host.callsTo('generate') as Array<{ width: number; height: number; regions?: Array<{ prompt: string; mask: string; weight?: number }> }>;
      const regions = sent[0]!.regions!;
      assert.deepEqual(regions.map((r) => [r.prompt, r.weight]), [['a red fox', undefined], ['a blue bird', 0.7]]);
      for (const r of regions) {
        const png = Buffer.from(r.mask, 'base64');
        assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20), png[25]], [sent[0]!.width, sent[0]!.height, 0], 'a greyscale PNG at the picture size');
        assert.deepEqual([doc.width, doc.height], [sent[0]!.width, sent[0]!.height]);
      }
      // Removing the painted region leaves the brush on the mask.
      session.paintRegionStore.set(b.id);
      doc.removeRegion(b.id);
      assert.equal(session.paintRegionStore.get(), null);
      for (let i = 0; i < limits.MAX_REGIONS; i++) session.addRegion();
      assert.equal(doc.regions.length, limits.MAX_REGIONS);
      assert.ok(errors().includes(`At most ${limits.MAX_REGIONS} regions.`));
    } finally {
      await stop();
    }
  });
  it('Soft inpainting: restored by Reuse from an inpaint item, left alone by others', async () => {
    start();
    try {
      await until(() => session.modelsStore.get().info[MODEL_ID] !== undefined);
      const item = (mode: string, params: Record<string, unknown>) =>
        ({ id: 8, mode, model: { id: MODEL_ID, hash: null }, labelMap: null,
           params: { mode, prompt: 'p', negativePrompt: '', seed: 1, steps: 20, cfg: 7, sampler: 'euler', width: 64, height: 64, strength: 0.8, maskBlur: 8, ...params } }) as unknown as HistoryItem;
      session.reuseParameters(item('inpaint', { softInpaint: true }));
      assert.equal(session.settingsStore.get().softInpaint, true);
      session.reuseParameters(item('txt2img', {}));
      assert.equal(session.settingsStore.get().softInpaint, true, 'a txt2img item says nothing about it');
      session.reuseParameters(item('inpaint', {}));
      assert.equal(session.settingsStore.get().softInpaint, false);
    } finally {
      await stop();
    }
  });
});
