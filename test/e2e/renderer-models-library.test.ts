/**
 * End to end in Chromium: the model library beyond import. Against a studio that starts with only the
 * txt2img fixture:
 * - a model added or removed outside the page (the app menu, another window) appears in and leaves the
 *   open picker and model manager without a reload (`models.changed`);
 * - removing a model in the manager fails its waiting jobs at once, with a notice;
 * - a `.safetensors` path in the import field shows the command that converts it, not a failed import;
 * - the download form: file URLs served by a local HTTP server in this test, progress shown while a file
 *   is held midway, then the model listed with its kind in the manager and the picker.
 * Screenshots go to test-results/renderer/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FIXTURE_MODELS, INPAINT_MODEL_DIR } from './support/studio-server.js';
import { useStudio } from './support/studio-suite.js';
import { serveModel, type ModelServer } from '../unit/model-library/support.js';

/** Bytes of the U-Net sent before the server holds it: the download is visibly under way meanwhile. */
const HOLD_AFTER_BYTES = 4096;

describe('renderer end to end: model library events, convert command, download form', { timeout: 180_000 }, () => {
  let files: ModelServer;
  let release: () => void = () => undefined;
  // The held download is let go before the studio closes; the file server stops after it.
  const app = useStudio({ models: [join(FIXTURE_MODELS, 'tiny-sd1')], beforeClose: () => release() });

  before(async () => {
    const until = new Promise<void>((resolve) => (release = resolve));
    files = await serveModel(INPAINT_MODEL_DIR, { hold: { path: 'unet/model.onnx', afterBytes: HOLD_AFTER_BYTES, until } });
  });
  after(async () => {
    await files?.close();
  });

  it('a model imported and removed outside the page appears in and leaves the open picker and manager', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /^tiny-sd1 · txt2img/ }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Models' }).click();
    const dialog = page.getByRole('dialog', { name: 'Models' });
    await dialog.getByRole('row', { name: /tiny-sd1/ }).first().waitFor();

    // What the app menu's "Import Model Folder…" does: the host imports, every window hears of it.
    const model = await app.server.invoke('models.import', { path: INPAINT_MODEL_DIR });
    await dialog.locator(`tr[data-model-id="${model.id}"]`).waitFor();
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await app.studio.screenshot('40-models-changed-imported');

    await app.server.invoke('models.setDefault', { modelId: model.id });
    await dialog.locator(`tr[data-model-id="${model.id}"]`).getByText('(default)').waitFor();

    await app.server.invoke('models.remove', { modelId: model.id });
    await dialog.locator(`tr[data-model-id="${model.id}"]`).waitFor({ state: 'detached' });
    await page.getByRole('option', { name: /tiny-sd1-inpaint/ }).waitFor({ state: 'detached' });
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  it('removing a model in the manager fails its waiting jobs at once and says so; other jobs keep waiting', async () => {
    const { page } = app.studio;
    const model = await app.server.invoke('models.import', { path: INPAINT_MODEL_DIR, copy: true });
    const { models } = await app.server.invoke('models.list', {});
    const kept = models.find((m) => m.name === 'tiny-sd1')!;
    // A long job on the kept model holds the engine; the two after it wait.
    await app.server.invoke('generate', { mode: 'txt2img', prompt: 'blocker', steps: 900, sampler: 'euler', width: 512, height: 512, seed: 1, modelId: kept.id });
    const doomed = await app.server.invoke('generate', { mode: 'txt2img', prompt: 'for the removed model', steps: 2, width: 64, height: 64, modelId: model.id });
    const waiting = await app.server.invoke('generate', { mode: 'txt2img', prompt: 'for the kept model', steps: 2, width: 64, height: 64, modelId: kept.id });
    try {
      await page.getByRole('button', { name: 'Models' }).click();
      const dialog = page.getByRole('dialog', { name: 'Models' });
      await dialog.getByRole('button', { name: `Remove ${model.name}` }).click();
      await page.getByRole('alert').filter({ hasText: `1 queued job for ${model.name} will not run: the model was removed.` }).waitFor();
      const q = await app.server.invoke('queue.list', {});
      assert.deepEqual(q.queued.map((j) => j.id), [waiting.jobId]);
      const failed = q.recent.find((j) => j.id === doomed.jobId);
      assert.deepEqual([failed?.status, failed?.error?.code], ['failed', 'E_MODEL_REMOVED']);
      await page.getByRole('region', { name: 'Queue' }).getByText('for the removed model').waitFor({ state: 'detached' });
      await app.studio.screenshot('44-removed-with-queued-jobs');
      await dialog.getByRole('button', { name: 'Close' }).click();
    } finally {
      await app.server.invoke('queue.clear', { includeRunning: true });
    }
  });

  it('a .safetensors path shows the command that converts it, with fp16 and the folder to import next', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Models' }).click();
    const dialog = page.getByRole('dialog', { name: 'Models' });
    const checkpoint = '/home/someone/Downloads/dreamy v2.safetensors';
    const modelsBefore = (await app.server.invoke('models.list', {})).models.length;
    await dialog.getByRole('textbox', { name: 'Folder to import' }).fill(checkpoint);
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    const command = dialog.getByRole('textbox', { name: 'Convert command' });
    await command.waitFor();
    const expected = await app.server.invoke('models.convertCommand', { path: checkpoint });
    assert.equal(await command.inputValue(), expected.command);
    assert.match(expected.command, /convert\.py '\/home\/someone\/Downloads\/dreamy v2\.safetensors' '\/home\/someone\/Downloads\/dreamy v2-onnx'$/);
    assert.equal(await dialog.getByRole('alert').count(), 0, 'no import was attempted, so no error');
    assert.equal((await app.server.invoke('models.list', {})).models.length, modelsBefore);

    await dialog.getByRole('checkbox', { name: 'Half precision (fp16)' }).check();
    await waitFor(async () => (await command.inputValue()).endsWith("'/home/someone/Downloads/dreamy v2-onnx-fp16' --fp16"));
    await app.studio.screenshot('41-convert-command');
    await dialog.getByRole('button', { name: /^Import .*dreamy v2-onnx-fp16 next$/ }).click();
    assert.equal(await dialog.getByRole('textbox', { name: 'Folder to import' }).inputValue(), '/home/someone/Downloads/dreamy v2-onnx-fp16');
    assert.equal(await command.count(), 0);
    await dialog.getByRole('textbox', { name: 'Folder to import' }).fill('');
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  it('downloads a model from file URLs: progress while it runs, then listed with its kind in the manager and the picker', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Models' }).click();
    const dialog = page.getByRole('dialog', { name: 'Models' });
    const urls = files.manifest().map((f) => f.url);
    await dialog.getByRole('textbox', { name: 'Download name' }).fill('fetched-inpaint');
    await dialog.getByRole('textbox', { name: 'Download URLs' }).fill(urls.join('\n'));
    await dialog.getByRole('button', { name: 'Download', exact: true }).click();

    // The U-Net is held after a few KiB: the row shows the phase, the bytes and the percent so far.
    await files.stalled;
    const row = dialog.locator('.download-row', { hasText: 'fetched-inpaint' });
    await row.getByText(/fetched-inpaint: downloading · [\d.]+ (B|KiB|MiB) \((\d+) %\)/).waitFor();
    const text = await row.innerText();
    const percent = Number(/\((\d+) %\)/.exec(text)?.[1]);
    assert.ok(percent > 0 && percent < 100, `midway: ${text}`);
    const bar = dialog.getByRole('progressbar', { name: 'Download of fetched-inpaint' });
    const value = Number(await bar.getAttribute('value'));
    assert.ok(value > 0 && value < 100, `the bar is midway: ${value}`);
    const running = (await app.server.invoke('models.list', {})).downloads;
    assert.deepEqual(running.map((d) => [d.name, d.running]), [['fetched-inpaint', true]]);
    await app.studio.screenshot('42-download-progress');

    release();
    const modelRow = dialog.getByRole('row', { name: /fetched-inpaint/ });
    await modelRow.waitFor({ timeout: 60_000 });
    const cells = await modelRow.getByRole('cell').allInnerTexts();
    assert.deepEqual([cells[1], cells[2], cells[5]], ['inpaint', 'downloaded', 'ready'], JSON.stringify(cells));
    await row.waitFor({ state: 'detached' });
    await app.studio.screenshot('43-downloaded');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.getByRole('option', { name: /fetched-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    const { models } = await app.server.invoke('models.list', {});
    assert.equal(models.find((m) => m.name === 'fetched-inpaint')?.origin, 'downloaded');
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
