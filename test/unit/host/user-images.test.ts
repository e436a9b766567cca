/**
 * The host never decodes a user's image: init images, masks and label maps are decoded, checked and
 * thumbnailed for history in the engine process (engine/tensor/stored-image.ts), so an image that passes
 * the header check but is costly or malformed to decode costs that process, not the one serving every
 * client. Proven by recording every sharp call in this (the host's) process: none is handed the bytes
 * a client sent, nor the PNG made of them, while the host's own output is (the spy works).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type Sharp from 'sharp';
import type { Host } from '../../../electron/host/host.js';
import { recordSharpCalls, sharpInputs, sharpWasGiven } from './support/sharp-recorder.js';
import { FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1_INPAINT } from './support/host-fixtures.js';

const data = tempDir('user-images');
let host: Host;
let sharp: typeof Sharp;
let isPng: (bytes: Uint8Array) => boolean;
before(async () => {
  // The host's modules are loaded after this, so their sharp is the recording one.
  recordSharpCalls();
  sharp = (await import('sharp')).default;
  ({ isPng } = await import('../../../electron/history/png.js'));
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
  const storedInit = readFileSync(host.history.imagePath(item.initImage!.hash));
  assert.ok(isPng(storedInit), 'the JPEG init image is stored as a PNG (made in the engine process)');
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
