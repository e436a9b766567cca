/**
 * Generation options that travel from the contract through the host and the engine process to the
 * pipelines: "only masked" inpainting and ControlNet control. Real host, real engine process.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Host } from '../../../electron/host/host.js';
import { FIXTURE_MODELS, FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const data = tempDir('generate-options');
let host: Host;

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
});

after(async () => {
  await host?.close();
  data.remove();
});

test('generate carries "only masked" inpainting and ControlNet control through to the engine', async () => {
  const sharp = (await import('sharp')).default;
  const picture = await sharp({ create: { width: 120, height: 96, channels: 3, background: '#336699' } }).png().toBuffer();
  const mask = await sharp({ create: { width: 120, height: 96, channels: 3, background: '#000000' } })
    .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: '#ffffff' } }, left: 90, top: 10 }])
    .png()
    .toBuffer();
  const inpaint = ok('generate', await host.invoke('generate', {
    mode: 'inpaint', prompt: 'a sun', steps: 2, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 5,
    initImage: picture.toString('base64'), mask: mask.toString('base64'), inpaintArea: 'masked', maskPadding: 8,
  }));
  const done = await jobFinished(host, inpaint.jobId);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const item = ok('history.get', await host.invoke('history.get', { id: done.historyId! }));
  // The picture keeps its own size: only a crop around the mask was repainted at 64×64.
  assert.deepEqual([item.output?.width, item.output?.height], [120, 96]);

  const refused = await host.invoke('generate', { mode: 'txt2img', prompt: 'x', inpaintArea: 'masked' });
  assert.equal(refused.ok, false);

  ok('models.import', await host.invoke('models.import', { path: join(FIXTURE_MODELS, 'tiny-controlnet') }));
  const control = { image: (await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).png().toBuffer()).toString('base64'), scale: 0.8 };
  const controlled = ok('generate', await host.invoke('generate', {
    mode: 'txt2img', prompt: 'a sun', steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 5, modelId: 'tiny-controlnet', control,
  }));
  const controlledJob = await jobFinished(host, controlled.jobId);
  assert.equal(controlledJob.status, 'succeeded', JSON.stringify(controlledJob.error));
  // Control on a model whose U-Net takes no residuals is refused with the engine's clear message.
  const plain = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'x', steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE, modelId: 'tiny-sd1', control }));
  const plainJob = await jobFinished(host, plain.jobId);
  assert.equal(plainJob.status, 'failed');
  assert.match(plainJob.error?.message ?? '', /ControlNet|residual/i);
});
