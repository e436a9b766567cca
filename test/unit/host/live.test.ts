/**
 * Live painting through the host: real host, real engine process, the tiny inpainting fixture.
 * live.frame answers the repainted crop as RGBA and leaves the queue and history alone; live.keep puts
 * the shown frame into history as an inpaint with its mask; a queued job arriving while frames are
 * painted waits for one frame at most; live.stop cancels the frame in flight and leaves no work running.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { StudioEvent } from '../../../electron/shared/contract.js';
import { Host } from '../../../electron/host/host.js';
import { embeddingFolder } from '../../../electron/model-library/embeddings.js';
import { importLora, loraFolder } from '../../../electron/model-library/loras.js';
import { testPicture, toPng, withNativeSide64 } from '../../support/engine-fixtures.js';
import { FIXTURE_MODELS, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const W = 96;
const H = 80;
const data = tempDir('live');
let host: Host;
const events: StudioEvent[] = [];
let picture: string;
let mask: string;

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS, bundledModelDirs: [] });
  // Frames run at the model's native size: the inpainting fixture with a native size of 64 px.
  ok('models.import', await host.invoke('models.import', { path: withNativeSide64('tiny-sd1-inpaint', data.dir) }));
  host.subscribe((e) => events.push(e));
  picture = (await toPng(testPicture(W, H))).toString('base64');
  const rgb = new Uint8Array(W * H * 3);
  for (let y = 20; y < 40; y++) rgb.fill(255, (y * W + 30) * 3, (y * W + 50) * 3);
  mask = (await toPng({ width: W, height: H, rgb })).toString('base64');
});

after(async () => {
  await host?.close();
  data.remove();
});

const frame = (extra: Record<string, unknown> = {}) => ({ prompt: 'a red apple', seed: 3, steps: 2, width: 64, height: 64, maskPadding: 8, initImage: picture, mask, ...extra });

test('a live frame answers the repainted crop, bypassing the queue; Keep stores it as an inpaint with its mask', async () => {
  events.length = 0;
  const answer = ok('live.frame', await host.invoke('live.frame', frame()));
  assert.equal(answer.status, 'done');
  if (answer.status !== 'done') return;
  const { crop } = answer;
  assert.ok(crop.x <= 30 && crop.y <= 20 && crop.x + crop.width >= 50 && crop.y + crop.height >= 40, JSON.stringify(crop));
  assert.equal(Buffer.from(answer.rgba, 'base64').length, crop.width * crop.height * 4);
  assert.equal(answer.params.inpaintArea, 'masked');
  assert.ok(answer.timings.totalMs > 0);
  assert.deepEqual(events.filter((e) => e.event === 'queue.changed' || e.event === 'history.changed'), [], 'no queue or history traffic for a frame');
  assert.deepEqual(ok('queue.list', await host.invoke('queue.list', {})).recent, []);

  const kept = ok('live.keep', await host.invoke('live.keep', { frameId: answer.frameId }));
  const { historyId } = kept;
  const item = ok('history.get', await host.invoke('history.get', { id: historyId }));
  assert.deepEqual(kept.output, { hash: item.output!.hash, width: W, height: H }, 'Keep names the picture the canvas shows next');
  assert.equal(item.params.mode, 'inpaint');
  assert.equal(item.params.inpaintArea, 'masked');
  assert.equal(item.params.seed, 3);
  assert.ok(item.mask, 'the mask is stored');
  assert.ok(item.initImage, 'the picture is stored');
  // The stored output is the picture with the shown crop in it.
  const out = await sharp(host.history.imagePath(item.output!.hash)).removeAlpha().raw().toBuffer();
  const shown = Buffer.from(answer.rgba, 'base64');
  const at = ((crop.y + 5) * W + crop.x + 5) * 3;
  const sa = (5 * crop.width + 5) * 4;
  assert.deepEqual([...out.subarray(at, at + 3)], [...shown.subarray(sa, sa + 3)]);
  assert.ok(events.some((e) => e.event === 'history.changed'));
  assert.equal(item.parentId, null);

  // Painting on the kept picture (by its hash): the next kept frame is its child.
  const { initImage: _bytes, ...rest } = frame();
  const next = ok('live.frame', await host.invoke('live.frame', { ...rest, initImageHash: item.output!.hash, parentId: historyId }));
  assert.equal(next.status, 'done');
  if (next.status !== 'done') return;
  const child = ok('live.keep', await host.invoke('live.keep', { frameId: next.frameId }));
  assert.equal(ok('history.get', await host.invoke('history.get', { id: child.historyId })).parentId, historyId);
});

/** The test mask (white 20×20 at (30, 20)) as live.frame's raw maskRect. */
const rawMask = () => ({ x: 30, y: 20, width: 20, height: 20, data: Buffer.alloc(400, 255).toString('base64') });

test('a raw mask rectangle (maskRect) gives the PNG mask frame; Keep stores it as the picture-size mask', async () => {
  const { mask: _png, ...noMask } = frame();
  const fromPng = ok('live.frame', await host.invoke('live.frame', frame()));
  const fromRect = ok('live.frame', await host.invoke('live.frame', { ...noMask, maskRect: rawMask() }));
  assert.ok(fromPng.status === 'done' && fromRect.status === 'done');
  assert.deepEqual(fromRect.crop, fromPng.crop);
  assert.equal(fromRect.rgba, fromPng.rgba, 'the same pixels');
  assert.ok(fromRect.hostTimings && fromRect.hostTimings.hostMs >= fromRect.hostTimings.engineCallMs && fromRect.hostTimings.engineCallMs >= fromRect.timings.totalMs);
  const { historyId } = ok('live.keep', await host.invoke('live.keep', { frameId: fromRect.frameId }));
  const item = ok('history.get', await host.invoke('history.get', { id: historyId }));
  const stored = await sharp(host.history.imagePath(item.mask!.hash)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([stored.info.width, stored.info.height], [W, H]);
  const expected = Buffer.alloc(W * H);
  for (let y = 20; y < 40; y++) expected.fill(255, y * W + 30, y * W + 50);
  assert.ok(stored.data.equals(expected), 'the stored mask is the painted one at the picture size');
});

test('a bad maskRect is refused with a clear error, before or in the engine', async () => {
  const { mask: _png, ...noMask } = frame();
  const refused = async (payload: Record<string, unknown>, message: RegExp): Promise<void> => {
    const answer = await host.invoke('live.frame', payload);
    assert.equal(answer.ok, false, JSON.stringify(payload).slice(0, 200));
    if (answer.ok) return;
    assert.equal(answer.error.code, 'E_INVALID_REQUEST');
    assert.match(answer.error.message, message);
  };
  await refused({ ...frame(), maskRect: rawMask() }, /give mask or maskRect \(one of them\)/);
  await refused(noMask, /give mask or maskRect \(one of them\)/);
  await refused({ ...noMask, maskRect: { ...rawMask(), data: Buffer.alloc(399, 255).toString('base64') } }, /base64 of width × height = 400 bytes/);
  await refused({ ...noMask, maskRect: { ...rawMask(), x: -1 } }, /maskRect/);
  await refused({ ...noMask, maskRect: { ...rawMask(), data: '!!!!' } }, /base64/);
  await refused({ ...noMask, maskRect: { ...rawMask(), extra: 1 } }, /maskRect/);
  await refused({ ...noMask, maskRect: { ...rawMask(), x: 90 } }, /not inside the 96×80 picture/);
});

test('a queued job that arrives while frames are painted waits for one frame at most', async () => {
  // A long frame is in flight when the job is queued; the strokes go on after it.
  // 400 steps: still running when the job and the next frame arrive, on a quiet machine too (60 steps
  // finished in 190 ms there, before the job was queued).
  const first = host.invoke('live.frame', frame({ steps: 400, sampler: 'euler' }));
  while (!host.live.busy) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'inpaint', prompt: 'x', seed: 1, steps: 2, width: 64, height: 64, initImage: picture, mask }));
  const later = host.invoke('live.frame', frame({ seed: 4 }));
  const firstAnswer = ok('live.frame', await first);
  // The newer frame superseded the long one: it was cancelled in the engine, so the job started at once.
  assert.deepEqual(firstAnswer, { status: 'superseded' });
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const laterAnswer = ok('live.frame', await later);
  assert.equal(laterAnswer.status, 'done');
  // The frame sent after the job ran after it: never in front of a queued job.
  assert.ok(job.finishedAt !== null);
});

test('Live off cancels the frame in flight and leaves no work running', async () => {
  const long = host.invoke('live.frame', frame({ steps: 400, sampler: 'euler' }));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(host.live.busy, true);
  assert.deepEqual(ok('live.stop', await host.invoke('live.stop', {})), { stopped: true });
  assert.deepEqual(ok('live.frame', await long), { status: 'superseded' });
  const t0 = performance.now();
  await host.live.idle();
  // 400 steps would take far longer: the engine stopped the frame between steps.
  assert.ok(performance.now() - t0 < 10_000);
  assert.equal(host.live.busy, false);
  assert.deepEqual(ok('live.stop', await host.invoke('live.stop', {})), { stopped: false });
  const keep = await host.invoke('live.keep', { frameId: '0b5b8f46-4f2e-4a8f-9a39-1f4e1d1a2b3c' });
  assert.equal(keep.ok, false);
  assert.equal(!keep.ok && keep.error.code, 'E_NOT_FOUND');
});

test('a bad live request is refused by the contract', async () => {
  const missing = await host.invoke('live.frame', { prompt: 'x', seed: 1, initImage: picture });
  assert.equal(!missing.ok && missing.error.code, 'E_INVALID_REQUEST');
  const extra = await host.invoke('live.frame', { ...frame(), mode: 'txt2img' });
  assert.equal(!extra.ok && extra.error.code, 'E_INVALID_REQUEST');
  // What the model can never run, answered as generate answers it.
  const still = await host.invoke('live.frame', frame({ strength: 0 }));
  assert.equal(!still.ok && still.error.code, 'E_INVALID_REQUEST');
  if (!still.ok) assert.match(still.error.message, /^inpaint at strength 0 would hand back the init image unchanged/);
  for (const bad of [{ emphasis: 'Loud' }, { clipSkip: 0 }, { padConds: 'yes' }]) {
    const refused = await host.invoke('live.frame', { ...frame(), ...bad });
    assert.equal(!refused.ok && refused.error.code, 'E_INVALID_REQUEST', JSON.stringify(bad));
  }
});

test("a frame uses the library's LoRAs as Generate does: checked by name and family first, applied, and Keep records them", async () => {
  const loras = join(FIXTURE_MODELS, '..', 'loras');
  for (const name of ['tiny-kohya', 'tiny-sdxl-kohya']) await importLora(loraFolder(join(data.dir, 'data')), join(loras, `${name}.safetensors`));
  const plain = ok('live.frame', await host.invoke('live.frame', frame()));
  const tagged = ok('live.frame', await host.invoke('live.frame', frame({ prompt: 'a red apple <lora:tiny-kohya:1.5>' })));
  assert.ok(plain.status === 'done' && tagged.status === 'done');
  if (plain.status !== 'done' || tagged.status !== 'done') return;
  assert.notEqual(tagged.rgba, plain.rgba, 'the LoRA changed the frame');
  assert.deepEqual(tagged.params.prompt, 'a red apple <lora:tiny-kohya:1.5>');
  const kept = ok('live.keep', await host.invoke('live.keep', { frameId: tagged.frameId }));
  const item = ok('history.get', await host.invoke('history.get', { id: kept.historyId }));
  assert.deepEqual(item.params.loras?.map((l) => l.name), ['tiny-kohya']);
  assert.match(item.params.loras![0]!.hash, /^[0-9a-f]{12}$/);
  // Refused before the engine, in words: a LoRA the library lacks (with the close names), one of another family.
  const unknown = await host.invoke('live.frame', frame({ prompt: 'a red apple <lora:tiny-kohy:1>' }));
  assert.equal(!unknown.ok && unknown.error.code, 'E_NOT_FOUND');
  if (!unknown.ok) assert.match(unknown.error.message, /no LoRA named "tiny-kohy".*did you mean "tiny-kohya"/);
  const wrong = await host.invoke('live.frame', frame({ prompt: 'a red apple <lora:tiny-sdxl-kohya:1>' }));
  assert.equal(!wrong.ok && wrong.error.code, 'E_LORA_FILE');
});

test("a frame uses the library's textual-inversion embeddings and records them, as Generate does", async () => {
  const folder = embeddingFolder(join(data.dir, 'data'));
  mkdirSync(folder, { recursive: true });
  copyFileSync(join(FIXTURE_MODELS, '..', 'embeddings', 'ti-a1111.pt'), join(folder, 'ti-a1111.pt'));
  const answer = ok('live.frame', await host.invoke('live.frame', frame({ prompt: 'a ti-a1111 apple' })));
  assert.equal(answer.status, 'done');
  if (answer.status !== 'done') return;
  assert.deepEqual(answer.params.embeddings?.map((e) => e.name), ['ti-a1111']);
});

test("a frame takes the prompt's encoding settings (Clip skip, Emphasis) and Keep records them", async () => {
  const answer = ok('live.frame', await host.invoke('live.frame', { ...frame(), prompt: 'a (red:1.3) fox', clipSkip: 2, emphasis: 'No norm' }));
  assert.equal(answer.status, 'done');
  if (answer.status !== 'done') return;
  assert.deepEqual([answer.params.clipSkip, answer.params.emphasis], [2, 'No norm']);
  const kept = ok('live.keep', await host.invoke('live.keep', { frameId: answer.frameId }));
  const item = ok('history.get', await host.invoke('history.get', { id: kept.historyId }));
  assert.deepEqual([item.params.clipSkip, item.params.emphasis], [2, 'No norm']);
});

test('the picture crosses once: samePicture names it by the answer’s pictureId; an id the host no longer holds is refused', async () => {
  const { initImage: _bytes, ...noPicture } = frame();
  const first = ok('live.frame', await host.invoke('live.frame', frame({ seed: 5 })));
  assert.ok(first.status === 'done' && first.pictureId);
  const again = ok('live.frame', await host.invoke('live.frame', { ...noPicture, seed: 5, samePicture: first.pictureId }));
  assert.ok(again.status === 'done');
  assert.equal(again.rgba, first.rgba, 'the same picture, the same frame');
  assert.equal(again.pictureId, first.pictureId);
  // Keep stores the picture the frame was painted on.
  const { historyId } = ok('live.keep', await host.invoke('live.keep', { frameId: again.frameId }));
  assert.ok(ok('history.get', await host.invoke('history.get', { id: historyId })).initImage);
  const refused = async (payload: Record<string, unknown>, message: RegExp): Promise<void> => {
    const answer = await host.invoke('live.frame', payload);
    assert.equal(answer.ok, false);
    if (answer.ok) return;
    assert.equal(answer.error.code, 'E_INVALID_REQUEST');
    assert.match(answer.error.message, message);
  };
  await refused({ ...noPicture, samePicture: 'not-an-id-the-host-gave' }, /no longer holds that picture/);
  await refused({ ...frame(), samePicture: first.pictureId }, /initImage, initImageHash or samePicture \(one of them\)/);
  // Another picture replaces it; Live off forgets it.
  const other = ok('live.frame', await host.invoke('live.frame', frame({ seed: 6 })));
  assert.ok(other.status === 'done' && other.pictureId !== first.pictureId);
  await refused({ ...noPicture, samePicture: first.pictureId }, /no longer holds that picture/);
  ok('live.stop', await host.invoke('live.stop', {}));
  await refused({ ...noPicture, samePicture: other.pictureId }, /no longer holds that picture/);
});
