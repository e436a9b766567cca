/**
 * End to end in Chromium against a real `studio serve`: a job's warnings are shown in words. A model
 * whose fp16 VAE decoder asks for fp32 (force_upcast, as SDXL's does) makes every result say so: the
 * staged result shows it. A job queued with a mask of another size than its picture shows the host's
 * warning under its row in the queue.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { useStudio } from './support/studio-suite.js';
import { FIXTURE_MODELS } from './support/studio-server.js';

// tiny-sd1 with the fp16 VAE decoder of tiny-sdxl-fp16-vae (its config sets force_upcast).
const scratch = mkdtempSync(join(tmpdir(), 'studio-e2e-warnings-'));
const MODEL = join(scratch, 'tiny-sd1-fp16-vae');
cpSync(join(FIXTURE_MODELS, 'tiny-sd1'), MODEL, { recursive: true });
rmSync(join(MODEL, 'vae_decoder'), { recursive: true });
cpSync(join(FIXTURE_MODELS, 'tiny-sdxl-fp16-vae', 'vae_decoder'), join(MODEL, 'vae_decoder'), { recursive: true });
after(() => rmSync(scratch, { recursive: true, force: true }));

async function pngBase64(width: number, height: number, background: string): Promise<string> {
  return (await sharp({ create: { width, height, channels: 3, background } }).png().toBuffer()).toString('base64');
}

describe('renderer end to end: job warnings', { timeout: 240_000 }, () => {
  const app = useStudio({ models: [MODEL], beforeClose: (server) => server.invoke('queue.clear', { includeRunning: true }) });

  it('the staged result shows what the engine said of its run, and a queued job shows its warning', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-fp16-vae · txt2img/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a red fox');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    const staged = page.getByRole('list', { name: 'Warnings for this result' });
    await staged.waitFor();
    assert.match(await staged.innerText(), /vae_decoder: runs in fp32 \(upcast from its fp16 weights\) because its config\.json sets force_upcast/);
    await app.studio.screenshot('50-staged-result-warning');
    await page.getByRole('button', { name: 'Accept' }).click();
    assert.equal(await staged.count(), 0, 'the warning goes with the staged result');

    // A long job holds the queue; the next one, with a 32×48 mask for a 64×64 picture, waits with its warning.
    // 256² makes it slow enough that the next job still waits when the page is checked, on a fast machine too.
    await app.server.invoke('generate', { mode: 'txt2img', prompt: 'hold', seed: 1, steps: 1000, sampler: 'euler', width: 256, height: 256 });
    const { warnings } = await app.server.invoke('generate', {
      mode: 'inpaint',
      prompt: 'odd mask',
      seed: 2,
      steps: 2,
      width: 64,
      height: 64,
      initImage: await pngBase64(64, 64, '#808080'),
      mask: await pngBase64(32, 48, '#ffffff'),
    });
    assert.deepEqual(warnings, ['The mask is 32×48 but the picture is 64×64; it was resized to fit.']);
    const queued = page.getByRole('list', { name: 'Warnings for job: odd mask' });
    await queued.waitFor();
    assert.equal(await queued.innerText(), '⚠ The mask is 32×48 but the picture is 64×64; it was resized to fit.');
    await app.studio.screenshot('51-queued-job-warning');
  });
});
