/**
 * The host never decodes a user's image: init images, masks and label maps are decoded, checked and
 * thumbnailed for history in the engine process (engine/tensor/stored-image.ts), and so are imported
 * PNGs (history.import), so an image that passes
 * the header check but is costly or malformed to decode costs that process, not the one serving every
 * client. Proven by recording every sharp call in this (the host's) process: none is handed the bytes
 * a client sent, nor the PNG made of them, while the host's own output is (the spy works).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Sharp from 'sharp';
import type * as PngModule from '../../../electron/history/png.js';
import type { HistoryItem } from '../../../electron/shared/history.js';
import type { Host } from '../../../electron/host/host.js';
import { recordSharpCalls, sharpInputs, sharpWasGiven } from './support/sharp-recorder.js';
import { FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1_INPAINT } from './support/host-fixtures.js';

const data = tempDir('user-images');
let host: Host;
let sharp: typeof Sharp;
let png: typeof PngModule;
/** The first test's inpaint result: its init image, mask and output are in history. */
let inpainted: HistoryItem | null = null;
before(async () => {
  // The host's modules are loaded after this, so their sharp is the recording one.
  recordSharpCalls();
  sharp = (await import('sharp')).default;
  png = await import('../../../electron/history/png.js');
  const { Host } = await import('../../../electron/host/host.js');
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1_INPAINT }));
});
after(async () => {
  await host?.close();
  data.remove();
});

const fileBytes = (path: string): Uint8Array | null => (existsSync(path) ? readFileSync(path) : null);

test("an inpaint job's JPEG init image and PNG mask are stored and thumbnailed without the host decoding them", async () => {
  const size = FIXTURE_SIZE;
  const jpeg = await sharp({ create: { width: size, height: size, channels: 3, background: '#3366aa' } }).jpeg().toBuffer();
  const mask = await sharp({ create: { width: size, height: size, channels: 3, background: '#ffffff' } }).png().toBuffer();
  sharpInputs.length = 0;

  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'inpaint', prompt: 'x', seed: 1, steps: 2, initImage: jpeg.toString('base64'), mask: mask.toString('base64') }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const item = host.history.get(job.historyId!);
  inpainted = item;
  const storedInit = readFileSync(host.history.imagePath(item.initImage!.hash));
  assert.ok(png.isPng(storedInit), 'the JPEG init image is stored as a PNG (made in the engine process)');
  assert.deepEqual([item.initImage!.width, item.initImage!.height], [size, size]);
  assert.deepEqual(readFileSync(host.history.imagePath(item.mask!.hash)), mask, 'the PNG mask is stored as sent');
  for (const hash of [item.initImage!.hash, item.mask!.hash]) assert.ok(existsSync(host.history.thumbnailPath(hash)), 'inputs have thumbnails');

  assert.ok(sharpWasGiven(readFileSync(host.history.imagePath(item.output!.hash)), fileBytes), 'the spy sees the host thumbnail its own output');
  assert.equal(sharpWasGiven(jpeg, fileBytes), false, 'the host decoded the init image');
  assert.equal(sharpWasGiven(storedInit, fileBytes), false, 'the host decoded the init image as PNG');
  assert.equal(sharpWasGiven(mask, fileBytes), false, 'the host decoded the mask');
});

test('an input that only the full decode finds broken fails the job in words, in the engine process', async () => {
  const size = FIXTURE_SIZE;
  const good = await sharp({ create: { width: size, height: size, channels: 3, background: '#808080' } }).png().toBuffer();
  // A valid header and a cut-off image: the header check passes it; decoding finds it broken.
  const truncated = good.subarray(0, good.length - 20);
  sharpInputs.length = 0;
  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'inpaint', prompt: 'x', seed: 1, steps: 2, initImage: good.toString('base64'), mask: truncated.toString('base64') }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'failed');
  assert.equal(job.error?.code, 'E_BAD_IMAGE');
  assert.match(job.error?.message ?? '', /^mask: cannot/);
  assert.equal(sharpWasGiven(truncated), false, 'the host decoded the broken mask');
});

test('history.import checks and thumbnails the file in the engine process, and refuses a broken one in words', async () => {
  const plain = await sharp({ create: { width: 48, height: 40, channels: 3, background: '#aa5500' } }).png().toBuffer();
  const withParameters = png.withTextChunks(plain, { parameters: 'a fox\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 48x40' });
  const file = join(data.dir, 'a1111.png');
  writeFileSync(file, withParameters);
  const broken = join(data.dir, 'broken.png');
  const cut = Buffer.from(withParameters.subarray(0, withParameters.length - 30));
  writeFileSync(broken, cut);
  sharpInputs.length = 0;

  const report = ok('history.import', await host.invoke('history.import', { paths: [file, broken] }));
  assert.equal(report.results[0]!.status, 'imported', JSON.stringify(report.results[0]));
  const item = host.history.get((report.results[0] as { id: number }).id);
  assert.deepEqual([item.output!.width, item.output!.height, item.params.seed], [48, 40, 9]);
  assert.ok(existsSync(host.history.thumbnailPath(item.output!.hash)), 'the import has a thumbnail');
  const failed = report.results[1]!;
  assert.equal(failed.status, 'failed');
  assert.equal((failed as { error: { code: string } }).error.code, 'E_CORRUPT_IMAGE');
  assert.equal(sharpWasGiven(withParameters, fileBytes), false, 'the host decoded the imported file');
  assert.equal(sharpWasGiven(cut, fileBytes), false, 'the host decoded the broken file');
});

test('at open, missing thumbnails are made again in the engine process, not in the host', async () => {
  assert.ok(inpainted, 'the first test made an inpaint result');
  const hashes = [inpainted.initImage!.hash, inpainted.mask!.hash, inpainted.output!.hash];
  const thumbs = hashes.map((h) => host.history.thumbnailPath(h));
  const images = hashes.map((h) => readFileSync(host.history.imagePath(h)));
  const dataDir = host.appInfo.dataDir;
  await host.close();
  for (const t of thumbs) rmSync(t);
  sharpInputs.length = 0;

  const { Host } = await import('../../../electron/host/host.js');
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  for (let i = 0; i < 600 && !thumbs.every((t) => existsSync(t)); i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(thumbs.map((t) => existsSync(t)), [true, true, true], 'the thumbnails are made again');
  for (const [i, bytes] of images.entries()) assert.equal(sharpWasGiven(bytes, fileBytes), false, `the host decoded stored image ${i} to thumbnail it`);
  const meta = await sharp(readFileSync(thumbs[0]!)).metadata();
  assert.equal(meta.format, 'webp');
});
