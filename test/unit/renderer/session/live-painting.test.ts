/**
 * Live painting in the renderer's session (session/live-painting.ts) over the real studio client,
 * against a fake host whose frames take 80 ms: dabs painted while a frame is in flight are never queued
 * (only the newest state is sent when it comes back), frames begin during a stroke, settings edits
 * schedule frames, frames take fewer steps while a stroke is painted and Steps once it ends, nothing
 * is sent with an empty mask, and Live off stops at once.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestInputs } from '../../../../electron/shared/contract.js';
import { EditorDocument } from '../../../../renderer/src/document/document.js';
import { StudioClient, WebSocketStudioApi } from '../../../../renderer/src/ipc/studio-client.js';
import { createLivePainting, maskRect, type LivePainting } from '../../../../renderer/src/session/live-painting.js';
import { DEFAULT_SETTINGS, Store } from '../../../../renderer/src/session/store.js';
import { FakeHost, until } from './fake-host.js';

const FRAME_MS = 80;
const KEPT_HASH = 'ab'.repeat(32);
const brush = { size: 6, hardness: 1, opacity: 1 };

/** The picture-size mask a request's maskRect stands for. */
function maskOf(rect: NonNullable<RequestInputs['live.frame']['maskRect']>, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const bytes = Buffer.from(rect.data, 'base64');
  assert.equal(bytes.length, rect.width * rect.height);
  for (let y = 0; y < rect.height; y++) out.set(bytes.subarray(y * rect.width, (y + 1) * rect.width), (rect.y + y) * width + rect.x);
  return out;
}

function setup() {
  let inFlight = 0;
  let maxInFlight = 0;
  let latest = 0;
  /** The picture the fake host holds, as the host's live frames keep it (samePicture names it). */
  const held = { id: null as string | null };
  const host = new FakeHost()
    .handle('live.frame', async (req) => {
      if (req.samePicture !== undefined && req.samePicture !== held.id) {
        throw Object.assign(new Error('samePicture: the host no longer holds that picture'), { code: 'E_INVALID_REQUEST' });
      }
      if (req.samePicture === undefined) held.id = crypto.randomUUID();
      const pictureId = held.id!;
      const mine = ++latest;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, FRAME_MS));
      inFlight--;
      // As the host: a newer frame request supersedes this one.
      if (mine !== latest) return { status: 'superseded' } as const;
      return {
        status: 'done',
        frameId: crypto.randomUUID(),
        crop: { x: 0, y: 0, width: 2, height: 1 },
        rgba: Buffer.from([1, 2, 3, 255, 4, 5, 6, 255]).toString('base64'),
        params: {} as never,
        timings: { totalMs: FRAME_MS, textEncodeMs: 0, vaeEncodeMs: 0, denoiseMs: 0, vaeDecodeMs: 0, stepsRun: 1 },
        provider: 'cpu',
        pictureId,
      } as const;
    })
    .handle('live.stop', () => ({ stopped: false }))
    .handle('live.keep', () => ({ historyId: 7, output: { hash: KEPT_HASH, width: 32, height: 32 } }));
  const client = new StudioClient(new WebSocketStudioApi('ws://studio.test/api/ws', host.openSocket), 'http://127.0.0.1/api/images');
  const doc = new EditorDocument(32, 32);
  const settingsStore = new Store({ ...DEFAULT_SETTINGS, prompt: 'a cat', width: 32, height: 32 });
  const notices: string[] = [];
  const live = createLivePainting({
    client,
    doc,
    settingsStore,
    selectedModelId: () => 'm',
    onModelChange: () => () => undefined,
    compress: async (raw) => raw.slice(),
    toBase64: (bytes) => Buffer.from(bytes).toString('base64'),
    describeError: (err) => String(err),
    notify: (_kind, text) => notices.push(text),
  });
  const frames = () => host.callsTo('live.frame') as Array<RequestInputs['live.frame']>;
  return { host, doc, settingsStore, live, frames, notices, held, maxInFlight: () => maxInFlight, inFlight: () => inFlight };
}

describe('live painting in the session', () => {
  let live: LivePainting | null = null;
  afterEach(() => live?.dispose());

  it('a stroke gets frames while it is painted; dabs during a frame are folded into one newer frame, never queued', async () => {
    const t = setup();
    live = t.live;
    live.setLive(true);
    assert.equal(t.frames().length, 0, 'nothing is sent while the mask is empty');
    t.doc.beginStroke('brush', brush, { x: 4, y: 4, pressure: 1 });
    await until(() => t.frames().length === 1, 2000, 'the first frame');
    // 20 more dabs while that frame is computed: one frame follows, with the newest mask.
    for (let i = 1; i <= 20; i++) t.doc.continueStroke({ x: 4 + i, y: 4, pressure: 1 });
    const newestMask = t.doc.mask.data.slice();
    await until(() => live!.store.get().frame !== null, 2000, 'the first answer');
    await until(() => t.frames().length === 2 && !live!.store.get().computing, 2000, 'the second frame');
    await new Promise((r) => setTimeout(r, FRAME_MS * 2));
    assert.equal(t.frames().length, 2, 'the stale states in between were dropped');
    assert.equal(t.maxInFlight(), 1, 'at most one frame at a time');
    // The second frame carries the mask as it was after the last dab, raw: the rectangle of its painted pixels.
    assert.equal(t.frames()[1]!.mask, undefined, 'no PNG per frame');
    assert.deepEqual(maskOf(t.frames()[1]!.maskRect!, 32, 32), newestMask);
    assert.ok(newestMask.some((v) => v > 0));
    // Still inside the same stroke: the frame came while the button is down.
    const shown = live.store.get().frame!;
    assert.equal(shown.seq, 2);
    assert.deepEqual([...shown.rgba], [1, 2, 3, 255, 4, 5, 6, 255]);
    t.doc.endStroke();
  });

  it('the picture crosses once: later frames name it (samePicture) until the host forgets it or the picture changes', async () => {
    const t = setup();
    live = t.live;
    live.setLive(true);
    const dab = async (x: number, what: string): Promise<RequestInputs['live.frame']> => {
      const n = t.frames().length;
      t.doc.beginStroke('brush', brush, { x, y: 4, pressure: 1 });
      t.doc.endStroke();
      await until(() => t.frames().length > n && !live!.store.get().computing, 2000, what);
      return t.frames().at(-1)!;
    };
    const first = await dab(4, 'the first frame');
    assert.ok(first.initImage, 'the first frame sends the (blank) picture');
    assert.equal(first.samePicture, undefined);
    assert.equal(first.strength, undefined, 'a blank canvas repaints from noise');
    const second = await dab(10, 'a second frame');
    assert.equal(second.initImage, undefined, 'not sent again');
    assert.equal(second.samePicture, t.held.id, 'named by the id the first answer gave');
    // The host forgot it (another client, Live off there): the refused frame is sent again with the picture, no error shown.
    t.held.id = 'someone else';
    const n = t.frames().length;
    t.doc.beginStroke('brush', brush, { x: 16, y: 4, pressure: 1 });
    t.doc.endStroke();
    await until(() => t.frames().length >= n + 2 && !live!.store.get().computing, 2000, 'the refused frame and its retry');
    assert.ok(t.frames()[n]!.samePicture !== undefined && t.frames()[n + 1]!.initImage !== undefined);
    assert.equal(live.store.get().error, null);
    // A new picture on the canvas: sent once, then named.
    const png = Uint8Array.from([137, 80, 78, 71]);
    const before = t.frames().length;
    t.doc.setImage({ width: 32, height: 32, source: { kind: 'file', bytes: png, name: 'new.png', mime: 'image/png' } }, 'Open');
    await until(() => t.frames().length > before && !live!.store.get().computing, 2000, 'the frame on the new picture');
    assert.equal(t.frames()[before]!.initImage, Buffer.from(png).toString('base64'));
    assert.equal(t.frames()[before]!.strength, t.settingsStore.get().strength, "on a picture, Generate's Strength");
    await dab(20, 'a stroke on it');
    assert.equal((await dab(24, 'the next')).samePicture, t.held.id);
    assert.equal(t.frames().slice(before + 1).filter((f) => f.initImage !== undefined).length, 0, 'sent once');
    // Live off forgets it: the first frame after Live on sends the picture again.
    live.setLive(false);
    const off = t.frames().length;
    live.setLive(true);
    await until(() => t.frames().length > off && !live!.store.get().computing, 2000, 'the frame after Live on again');
    assert.ok(t.frames()[off]!.initImage !== undefined && t.frames()[off]!.samePicture === undefined);
  });

  it('while a stroke is painted frames take at most "Steps while painting"; when it ends the area is rendered at Steps', async () => {
    const t = setup();
    live = t.live;
    t.settingsStore.update({ steps: 4, liveStrokeSteps: 2 });
    live.setLive(true);
    t.doc.beginStroke('brush', brush, { x: 4, y: 4, pressure: 1 });
    await until(() => t.frames().length === 1, 2000, 'the first frame');
    t.doc.continueStroke({ x: 12, y: 4, pressure: 1 });
    await until(() => t.frames().length === 2 && !live!.store.get().computing, 2000, 'a second frame in the stroke');
    assert.deepEqual(t.frames().map((f) => f.steps), [2, 2]);
    assert.equal(live.store.get().frame!.steps, 2, 'the shown frame says what it took');
    t.doc.endStroke();
    await until(() => t.frames().length === 3 && !live!.store.get().computing, 2000, 'the frame after the stroke');
    assert.equal(t.frames()[2]!.steps, 4);
    assert.equal(live.store.get().frame!.steps, 4);
    // Nothing changed since: no further frame; a frame outside a stroke (a prompt edit) takes Steps.
    await new Promise((r) => setTimeout(r, FRAME_MS * 2));
    assert.equal(t.frames().length, 3);
    t.settingsStore.update({ prompt: 'a dog' });
    await until(() => t.frames().length === 4 && !live!.store.get().computing, 2000, 'the edit');
    assert.equal(t.frames()[3]!.steps, 4);
    // Fewer Steps than the stroke limit: strokes take Steps. 0: the limit is off.
    for (const [steps, liveStrokeSteps] of [[1, 2], [4, 0]] as const) {
      t.settingsStore.update({ steps, liveStrokeSteps });
      await until(() => !live!.store.get().computing, 2000, 'idle');
      const n = t.frames().length;
      t.doc.beginStroke('brush', brush, { x: 20, y: 20, pressure: 1 });
      await until(() => t.frames().length === n + 1 && !live!.store.get().computing, 2000, 'a stroke frame');
      assert.equal(t.frames()[n]!.steps, steps);
      t.doc.endStroke();
      await new Promise((r) => setTimeout(r, FRAME_MS * 2));
      assert.equal(t.frames().length, n + 1, 'nothing to render again after the stroke');
    }
  });

  it('a new stroke supersedes the frame at Steps after the last one: its first dab is sent at once, the stale frame is never shown', async () => {
    const t = setup();
    live = t.live;
    t.settingsStore.update({ steps: 4, liveStrokeSteps: 2 });
    live.setLive(true);
    t.doc.beginStroke('brush', brush, { x: 4, y: 4, pressure: 1 });
    await until(() => t.frames().length === 1 && !live!.store.get().computing, 2000, 'the stroke frame');
    t.doc.endStroke();
    await until(() => t.frames().length === 2, 2000, 'the frame at Steps after the stroke');
    assert.equal(t.frames()[1]!.steps, 4);
    const sentAt = performance.now();
    t.doc.beginStroke('brush', brush, { x: 20, y: 20, pressure: 1 });
    await until(() => t.frames().length === 3, 2000, 'the next stroke frame');
    assert.ok(performance.now() - sentAt < FRAME_MS / 2, 'sent without waiting for the stale frame');
    assert.equal(t.frames()[2]!.steps, 2);
    // Dabs of the stroke don't supersede each other: they wait for the frame in flight as before.
    t.doc.continueStroke({ x: 24, y: 20, pressure: 1 });
    await new Promise((r) => setTimeout(r, FRAME_MS / 4));
    assert.equal(t.frames().length, 3);
    await until(() => t.frames().length === 4 && !live!.store.get().computing, 2000, 'the second stroke frame');
    assert.ok(live.store.get().frame!.steps === 2 && live.store.get().frame!.seq === 3, 'the superseded frame at Steps was never shown');
    t.doc.endStroke();
    await until(() => t.frames().length === 5 && !live!.store.get().computing, 2000, 'the frame at Steps after the second stroke');
    assert.equal(live.store.get().frame!.steps, 4);
  });

  it('a prompt or weight edit schedules a frame with the new settings', async () => {
    const t = setup();
    live = t.live;
    t.doc.beginStroke('brush', brush, { x: 10, y: 10, pressure: 1 });
    t.doc.endStroke();
    live.setLive(true);
    await until(() => t.frames().length === 1 && !live!.store.get().computing, 2000, 'the first frame');
    t.settingsStore.update({ prompt: 'a dog', cfg: 3 });
    await until(() => t.frames().length === 2, 2000, 'a frame for the edit');
    assert.equal(t.frames()[1]!.prompt, 'a dog');
    assert.equal(t.frames()[1]!.cfg, 3);
    assert.equal(t.frames()[1]!.seed, t.frames()[0]!.seed, 'every frame of a session repaints from the same seed');
    await until(() => !live!.store.get().computing, 2000, 'idle');
    // The prompt's encoding settings go with the frame as with Generate (only what differs from the default).
    assert.deepEqual([t.frames()[1]!.clipSkip, t.frames()[1]!.emphasis, t.frames()[1]!.padConds], [undefined, undefined, undefined]);
    t.settingsStore.update({ clipSkip: 2, emphasis: 'No norm', padConds: true });
    await until(() => t.frames().length === 3 && !live!.store.get().computing, 2000, 'a frame for the encoding settings');
    assert.deepEqual([t.frames()[2]!.clipSkip, t.frames()[2]!.emphasis, t.frames()[2]!.padConds], [2, 'No norm', true]);
    const shown = live.store.get().frame!;
    assert.equal(await live.keep(), 7);
    assert.deepEqual(t.host.callsTo('live.keep'), [{ frameId: shown.frameId }]);
  });

  it('Keep puts the kept frame on the canvas as the base image and clears the mask, in one undo step', async () => {
    const t = setup();
    live = t.live;
    t.doc.beginStroke('brush', brush, { x: 10, y: 10, pressure: 1 });
    t.doc.endStroke();
    const painted = t.doc.mask.data.slice();
    live.setLive(true);
    await until(() => live!.store.get().frame !== null && !live!.store.get().computing, 2000, 'a frame');
    assert.equal(await live.keep(), 7);
    assert.deepEqual(t.doc.image, { width: 32, height: 32, source: { kind: 'history', historyId: 7, hash: KEPT_HASH } });
    assert.ok(t.doc.mask.isEmpty(), 'the kept area is done: the mask is cleared');
    // Nothing is masked any more: no frame is sent for it, and the live layer is cleared.
    await until(() => live!.store.get().frame === null && !live!.store.get().computing, 2000, 'the layer cleared');
    assert.equal(t.frames().length, 1);
    t.doc.undo();
    assert.equal(t.doc.image, null, 'one undo takes the kept picture off the canvas');
    assert.deepEqual(t.doc.mask.data, painted, 'and brings the mask back');
  });

  it('Live off while a frame is computed: no further frame is sent, the layer is cleared and the host is told', async () => {
    const t = setup();
    live = t.live;
    t.doc.beginStroke('brush', brush, { x: 10, y: 10, pressure: 1 });
    live.setLive(true);
    await until(() => t.frames().length === 1, 2000, 'the first frame');
    t.doc.continueStroke({ x: 20, y: 10, pressure: 1 });
    live.setLive(false);
    assert.deepEqual(live.store.get(), { on: false, frame: null, computing: false, error: null });
    await until(() => t.host.callsTo('live.stop').length === 1, 2000, 'live.stop');
    await new Promise((r) => setTimeout(r, FRAME_MS * 2));
    assert.equal(t.frames().length, 1, 'the dab after Live off sent nothing');
    assert.equal(live.store.get().frame, null, 'the late answer is not shown');
    t.doc.continueStroke({ x: 25, y: 12, pressure: 1 });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(t.frames().length, 1);
  });
});

describe('maskRect', () => {
  const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  it('is the smallest rectangle holding every non-zero pixel, with their grey levels', () => {
    const mask = new Uint8Array(7 * 5);
    mask[1 * 7 + 4] = 9; // the top row's only pixel, right of the others
    mask[3 * 7 + 2] = 255;
    mask[3 * 7 + 5] = 128;
    const rect = maskRect(mask, 7, 5, toBase64)!;
    assert.deepEqual({ ...rect, data: undefined }, { x: 2, y: 1, width: 4, height: 3, data: undefined });
    assert.deepEqual(maskOf(rect, 7, 5), mask);
  });
  it('covers the whole mask when the corners are painted, and is undefined for an empty mask', () => {
    const mask = new Uint8Array(6 * 4);
    assert.equal(maskRect(mask, 6, 4, toBase64), undefined);
    mask[0] = 1;
    mask[6 * 4 - 1] = 1;
    const rect = maskRect(mask, 6, 4, toBase64)!;
    assert.deepEqual([rect.x, rect.y, rect.width, rect.height], [0, 0, 6, 4]);
    assert.deepEqual(maskOf(rect, 6, 4), mask);
  });
});
