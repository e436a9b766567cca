/**
 * Hires fix (and soft inpainting) through the host: the size limits apply to the upscaled size (refused before queueing),
 * a job stores its hires settings in history and the PNG's A1111 text, and an A1111 PNG with hires
 * keys imports with them. Real host, real engine process, tiny-sd1 (native 512 px, runs at 64 px here).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Host } from '../../../electron/host/host.js';
import { readPngMetadata, withTextChunks } from '../../../electron/history/png.js';
import { jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const data = tempDir('hires');
let host: Host;
before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS, previewEvery: 0 });
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
});
after(async () => {
  await host?.close();
  data.remove();
});

const queued = () => host.queue.snapshot().queued.length + (host.queue.snapshot().running ? 1 : 0);

test('the upscaled size is held to maxSizeFactor, with a clear error and nothing queued', async () => {
  const before = queued();
  const r = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 1, width: 512, height: 512, hires: { scale: 2.5 } });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.error.code, 'E_INVALID_REQUEST');
    assert.match(r.error.message, /Hires fix would make 1280×1280 \(from 512×512\), which is too large for the model "tiny-sd1": it was trained at 512×512, and outputs may be at most 2× that \(1024×1024, setting maxSizeFactor\)/);
  }
  const resize = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 1, width: 512, height: 512, hires: { resizeWidth: 2048, resizeHeight: 512 } });
  assert.equal(resize.ok, false);
  const img2img = await host.invoke('generate', { mode: 'img2img', prompt: 'x', initImage: 'AAAA', hires: {} });
  assert.equal(img2img.ok, false);
  if (!img2img.ok) assert.match(img2img.error.message, /hires fix is a txt2img setting/);
  assert.equal(queued(), before);
});

test('a hires job stores its settings in history and writes them in the A1111 text', async () => {
  const hires = { upscaler: 'Latent (bicubic)', scale: 2, steps: 3, strength: 0.6 };
  const { jobId } = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'a hires castle', seed: 4, steps: 4, width: 64, height: 64, hires }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const item = host.history.get(job.historyId!);
  assert.deepEqual(item.params.hires, { ...hires, resizeWidth: 0, resizeHeight: 0 });
  assert.deepEqual([item.params.width, item.params.height, item.output?.width, item.output?.height], [64, 64, 128, 128]);
  const png = ok('history.image', await host.invoke('history.image', { hash: item.output!.hash }));
  const text = readPngMetadata(Buffer.from(png.data, 'base64')).parameters ?? '';
  assert.match(text, /Size: 64x64, .*Denoising strength: 0\.6, Hires upscale: 2, Hires steps: 3, Hires upscaler: Latent \(bicubic\)/);
});

test("an A1111 PNG's hires keys come back on import", async () => {
  const file = join(data.dir, 'a1111.png');
  const pixels = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#204060' } }).png().toBuffer();
  writeFileSync(file, withTextChunks(pixels, {
    parameters: 'a knight\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3, Size: 512x768, Denoising strength: 0.45, Hires resize: 1024x1536, Hires steps: 12, Hires upscaler: Lanczos',
  }));
  const report = ok('history.import', await host.invoke('history.import', { paths: [file] }));
  const imported = report.results[0] as { status: string; id: number };
  assert.equal(imported.status, 'imported');
  const item = host.history.get(imported.id);
  assert.equal(item.mode, 'txt2img');
  assert.deepEqual(item.params.hires, { upscaler: 'Lanczos', scale: 2, resizeWidth: 1024, resizeHeight: 1536, steps: 12, strength: 0.45 });
});

test('a soft inpaint job stores soft inpainting and writes "Soft inpainting enabled: True"', async () => {
  const picture = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#806040' } }).png().toBuffer();
  const ramp = Buffer.alloc(64 * 64);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) ramp[y * 64 + x] = Math.round((x / 63) * 255);
  const mask = await sharp(ramp, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer();
  const { jobId } = ok('generate', await host.invoke('generate', {
    mode: 'inpaint', prompt: 'a soft door', seed: 2, steps: 3, width: 64, height: 64, maskBlur: 4, softInpaint: true,
    initImage: picture.toString('base64'), mask: mask.toString('base64'),
  }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const item = host.history.get(job.historyId!);
  assert.equal(item.params.softInpaint, true);
  const png = ok('history.image', await host.invoke('history.image', { hash: item.output!.hash }));
  assert.match(readPngMetadata(Buffer.from(png.data, 'base64')).parameters ?? '', /Mask blur: 4, Soft inpainting enabled: True/);
  const txt = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', softInpaint: true });
  assert.equal(txt.ok, false);
});
