/**
 * What one generate may cost, refused before it is queued: image bombs by the pixel count in their
 * headers (PNG, JPEG, WebP), outputs beyond the model's native size × maxSizeFactor or beyond the
 * engine's memory estimate; the engine decodes with sharp's limitInputPixels too; an outsized job's
 * sessions are released after it. Real host, real engine process, tiny-sd1 (native 512 px).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { Host } from '../../../electron/host/host.js';
import { decodeImage } from '../../../electron/engine/tensor/image.js';
import { imageHeader } from '../../../electron/shared/image-header.js';
import { FIXTURE_MODELS, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const TINY_LCM = join(FIXTURE_MODELS, 'tiny-lcm');

const data = tempDir('request-limits');
let host: Host;
before(async () => {
  host = await Host.open({ dataDir: data.dir, engineSettings: TEST_ENGINE_SETTINGS, previewEvery: 0 });
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
});
after(async () => {
  await host?.close();
  data.remove();
});

/** A PNG that declares width×height but holds one row of data: what a bomb looks like up to its first IDAT. */
function declaredPng(width: number, height: number): Buffer {
  const chunk = (type: string, body: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    return Buffer.concat([head, body, Buffer.alloc(4)]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8-bit greyscale
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1 + width))), chunk('IEND', Buffer.alloc(0))]);
}

/** A real small JPEG whose frame header is rewritten to declare width×height. */
async function declaredJpeg(width: number, height: number): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  for (let i = 2; i < jpeg.length; ) {
    const marker = jpeg[i + 1]!;
    if (marker === 0xc0 || marker === 0xc2) {
      jpeg.writeUInt16BE(height, i + 5);
      jpeg.writeUInt16BE(width, i + 7);
      return jpeg;
    }
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  throw new Error('no frame header');
}

const b64 = (b: Buffer) => b.toString('base64');
const queued = () => host.queue.snapshot().queued.length + (host.queue.snapshot().running ? 1 : 0);

test('an image bomb (PNG, JPEG or WebP header past maxInputPixels) is refused by size before anything decodes it', async () => {
  const bomb = declaredPng(16000, 16000);
  assert.ok(bomb.length < 40_000, `the bomb is ${bomb.length} bytes`);
  const jpegBomb = await declaredJpeg(30000, 20000);
  const webp = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).webp().toBuffer();
  webp.writeUIntLE(19999, 24, 3); // VP8X canvas width − 1 and height − 1
  webp.writeUIntLE(9999, 27, 3);
  assert.deepEqual(imageHeader(webp), { format: 'webp', width: 20000, height: 10000 });
  const small = b64(await sharp({ create: { width: 64, height: 64, channels: 3, background: '#fff' } }).png().toBuffer());
  const before = queued();
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ mode: 'img2img', initImage: b64(bomb) }, /^initImage: the image is 16000×16000 \(256\.0 megapixels\); input images may have at most 16\.8 megapixels \(setting maxInputPixels\)\.$/],
    [{ mode: 'inpaint', initImage: small, mask: b64(bomb) }, /^mask: the image is 16000×16000/],
    [{ mode: 'img2img', initImage: b64(jpegBomb) }, /^initImage: the image is 30000×20000 \(600\.0 megapixels\)/],
    [{ mode: 'img2img', initImage: b64(webp) }, /^initImage: the image is 20000×10000 \(200\.0 megapixels\)/],
  ];
  for (const [request, message] of cases) {
    const started = performance.now();
    const r = await host.invoke('generate', { prompt: 'x', steps: 1, width: 64, height: 64, ...request });
    assert.equal(r.ok, false, String(message));
    if (!r.ok) {
      assert.equal(r.error.code, 'E_TOO_LARGE');
      assert.match(r.error.message, message);
    }
    assert.ok(performance.now() - started < 1000, 'answered from the header');
  }
  // A live frame's picture and mask the same way (a frame is not queued, but the engine decodes it).
  const live: Array<[Record<string, unknown>, RegExp]> = [
    [{ initImage: b64(bomb), mask: small }, /^initImage: the image is 16000×16000/],
    [{ initImage: small, mask: b64(jpegBomb) }, /^mask: the image is 30000×20000/],
  ];
  for (const [request, message] of live) {
    const r = await host.invoke('live.frame', { prompt: 'x', seed: 1, steps: 1, ...request });
    assert.equal(!r.ok && r.error.code, 'E_TOO_LARGE', String(message));
    if (!r.ok) assert.match(r.error.message, message);
  }
  const gif = await host.invoke('generate', { mode: 'img2img', prompt: 'x', initImage: b64(Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1')) });
  assert.equal(gif.ok, false);
  if (!gif.ok) assert.match(gif.error.message, /initImage: not a PNG, JPEG or WebP image/);
  assert.equal(queued(), before, 'nothing was queued');
});

test('maxInputPixels is a setting; the engine decodes with the same bound (sharp limitInputPixels)', async () => {
  const png = await sharp({ create: { width: 96, height: 96, channels: 3, background: '#fff' } }).png().toBuffer();
  const set = ok('settings.set', await host.invoke('settings.set', { maxInputPixels: 64 * 64 }));
  assert.equal(set.maxInputPixels, 4096);
  const r = await host.invoke('generate', { mode: 'img2img', prompt: 'x', initImage: b64(png), width: 64, height: 64 });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error.message, /^initImage: the image is 96×96 \(9,216 pixels\); input images may have at most 4,096 pixels/);
  ok('settings.set', await host.invoke('settings.set', { maxInputPixels: null }));
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).maxInputPixels, 16_777_216);
  await assert.rejects(decodeImage(png, 'init image', undefined, 64 * 64), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_BAD_IMAGE');
    assert.match(err.message, /init image: cannot decode the image \(.*pixel limit/i);
    return true;
  });
});

test('outputs are bounded by the model (native size × maxSizeFactor) and by the memory estimate, before queueing', async () => {
  const before = queued();
  const tooBig = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 1, width: 2048, height: 1024 });
  assert.equal(tooBig.ok, false);
  if (!tooBig.ok) {
    assert.equal(tooBig.error.code, 'E_INVALID_REQUEST');
    assert.match(tooBig.error.message, /2048×1024 is too large for the model "tiny-sd1": it was trained at 512×512, and outputs may be at most 2× that \(1024×1024, setting maxSizeFactor\)/);
  }
  ok('settings.set', await host.invoke('settings.set', { maxJobMemoryMb: 64 }));
  const heavy = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 1, width: 128, height: 128 });
  assert.equal(heavy.ok, false);
  if (!heavy.ok) {
    assert.equal(heavy.error.code, 'E_TOO_LARGE');
    assert.match(heavy.error.message, /128×128 would need about 160 MB of memory in the engine \(estimate\), more than the 64 MB one job may use \(setting maxJobMemoryMb\)/);
  }
  assert.equal(queued(), before);
  ok('settings.set', await host.invoke('settings.set', { maxJobMemoryMb: null }));
});

test("an outsized job's sessions are released after it; a normal job keeps them", async () => {
  // tiny-lcm draws at 64×64 natively; a raised maxSizeFactor lets 160×160 (6× the pixels) through.
  const lcm = ok('models.import', await host.invoke('models.import', { path: TINY_LCM }));
  ok('settings.set', await host.invoke('settings.set', { maxSizeFactor: 3, maxJobMemoryMb: 1_000_000 }));
  try {
    const run = async (side: number) => {
      const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 1, width: side, height: side, seed: 1, modelId: lcm.id }));
      const job = await jobFinished(host, jobId);
      assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
      // Answered after any unload the host sent first: false when the sessions were already released.
      return (await host.engine.unload(TINY_LCM)).unloaded;
    };
    assert.equal(await run(64), true, 'a native-size job leaves its sessions loaded');
    assert.equal(await run(160), false, 'the outsized job released them');
  } finally {
    ok('settings.set', await host.invoke('settings.set', { maxSizeFactor: null, maxJobMemoryMb: null }));
  }
});
