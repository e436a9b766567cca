/**
 * End to end in Chromium against a real `studio serve` with the tiny fixture model: the prompt panel's
 * Hires fix section and Soft inpainting switch, as a person uses them. Hires: turn it on, set the upscale,
 * generate; the result is the upscaled size, the details and the infotext carry A1111's Hires keys, and
 * Reuse turns the section back on with those values. Soft inpainting: turn it on, inpaint a painted
 * area; the details and infotext say so, and Reuse turns it back on.
 * Screenshots go to test-results/renderer/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { join } from 'node:path';
import { useStudio } from './support/studio-suite.js';
import { FIXTURE_MODELS, type StudioServer } from './support/studio-server.js';
import { dragOnImage } from './support/canvas.js';

const SIZE = 64;

/** The history id of the newest finished job. */
async function newestResult(server: StudioServer): Promise<number> {
  const { recent } = await server.invoke('queue.list', {});
  const id = recent.find((j) => j.historyId !== null)?.historyId ?? 0;
  assert.ok(id > 0, 'a finished job with a history item');
  return id;
}

/** The PNG infotext (`parameters` text chunk) of a history item's picture. */
async function infotext(server: StudioServer, hash: string): Promise<string> {
  const { data } = await server.invoke('history.image', { hash });
  const meta = await sharp(Buffer.from(data, 'base64')).metadata();
  return meta.comments?.find((c) => c.keyword === 'parameters')?.text ?? '';
}

/** The value shown beside `key` in the history details of item `id`. */
async function detail(page: Page, id: number, key: string): Promise<string> {
  const row = page.getByRole('region', { name: `Details of #${id}` }).locator('.detail-params > div').filter({ has: page.locator('dt', { hasText: new RegExp(`^${key}$`) }) });
  return (await row.locator('dd').textContent()) ?? '';
}

async function openDetails(page: Page, id: number): Promise<void> {
  await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${id}"]`).click();
  await page.getByRole('region', { name: `Details of #${id}` }).waitFor();
}

describe('renderer end to end: hires fix and soft inpainting', { timeout: 300_000 }, () => {
  // The txt2img fixture: the hires fix's second pass is img2img, which a 9-channel inpainting U-Net doesn't do;
  // a 4-channel model inpaints by blending latents, where soft inpainting applies too.
  const app = useStudio({ models: [join(FIXTURE_MODELS, 'tiny-sd1')] });

  it('hires fix: on, upscale 2×, generate; the item is 2× with the Hires fields, and Reuse restores the section', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /^tiny-sd1 · txt2img/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption(`${SIZE}x${SIZE}`);
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('3');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a castle on a hill');

    await page.locator('details.hires-fix > summary').click();
    await page.getByRole('checkbox', { name: 'Hires fix' }).check();
    await page.getByRole('combobox', { name: 'Hires upscaler' }).selectOption('Lanczos');
    await page.getByRole('spinbutton', { name: 'Upscale by' }).fill('2');
    // The second pass runs ⌊steps × strength⌋ steps (img2img): 2 × 0.45 would be none, and Generate says so.
    await page.getByRole('spinbutton', { name: 'Denoising strength' }).fill('0.45');
    await page.getByRole('spinbutton', { name: 'Hires steps' }).fill('2');
    await page.getByText(/^The hires pass would run no step/).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Generate' }).isDisabled(), true);
    await page.getByRole('spinbutton', { name: 'Hires steps' }).fill('4');
    await page.locator('details.hires-fix > summary').getByText(`Hires fix · on → ${2 * SIZE} × ${2 * SIZE}`).waitFor();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor({ timeout: 120_000 });
    const id = await newestResult(app.server);

    const item = await app.server.invoke('history.get', { id });
    assert.deepEqual([item.output?.width, item.output?.height], [2 * SIZE, 2 * SIZE], 'the picture is the upscaled size');
    assert.deepEqual(item.params.hires, { upscaler: 'Lanczos', scale: 2, steps: 4, strength: 0.45, resizeWidth: 0, resizeHeight: 0 });
    const text = await infotext(app.server, item.output!.hash);
    for (const key of ['Denoising strength: 0.45', 'Hires upscale: 2', 'Hires steps: 4', 'Hires upscaler: Lanczos']) assert.ok(text.includes(key), `${key} in ${text}`);

    await openDetails(page, id);
    assert.equal(await detail(page, id, 'Hires upscaler'), 'Lanczos');
    assert.equal(await detail(page, id, 'Hires upscale'), '× 2');
    assert.equal(await detail(page, id, 'Hires steps'), '4');
    assert.equal(await detail(page, id, 'Denoising strength'), '0.45');
    await app.studio.screenshot('55-hires-detail');

    // Turn it off and change it; Reuse brings the item's back.
    await page.getByRole('button', { name: 'Discard' }).click();
    await page.getByRole('combobox', { name: 'Hires upscaler' }).selectOption('Latent');
    await page.getByRole('spinbutton', { name: 'Hires steps' }).fill('7');
    await page.getByRole('checkbox', { name: 'Hires fix' }).uncheck();
    await page.getByRole('region', { name: `Details of #${id}` }).getByRole('button', { name: 'Reuse parameters' }).click();
    await page.locator('details.hires-fix > summary').getByText(/Hires fix · on/).waitFor();
    assert.equal(await page.getByRole('checkbox', { name: 'Hires fix' }).isChecked(), true);
    assert.equal(await page.getByRole('combobox', { name: 'Hires upscaler' }).inputValue(), 'Lanczos');
    assert.equal(await page.getByRole('spinbutton', { name: 'Upscale by' }).inputValue(), '2');
    assert.equal(await page.getByRole('spinbutton', { name: 'Hires steps' }).inputValue(), '4');
    assert.equal(await page.getByRole('spinbutton', { name: 'Denoising strength' }).inputValue(), '0.45');
    await page.getByRole('checkbox', { name: 'Hires fix' }).uncheck();
  });

  it('soft inpainting: on, inpaint a painted area; details and infotext say so, and Reuse turns it back on', async () => {
    const { page } = app.studio;
    // A picture to inpaint: a plain txt2img result, accepted.
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).click({ timeout: 120_000 });
    await page.getByText(new RegExp(`${SIZE} × ${SIZE} · #\\d+`)).waitFor();

    await page.getByRole('button', { name: 'Brush' }).click();
    await page.getByRole('slider', { name: 'Brush size' }).fill('16');
    await page.getByRole('slider', { name: 'Brush hardness' }).fill('30');
    await dragOnImage(page, [[16, 20], [48, 40]]);
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    await page.getByRole('checkbox', { name: 'Soft inpainting' }).check();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor({ timeout: 120_000 });
    const id = await newestResult(app.server);

    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.mode, 'inpaint');
    assert.equal(item.params.softInpaint, true);
    const text = await infotext(app.server, item.output!.hash);
    assert.ok(text.includes('Soft inpainting enabled: True'), text);
    await openDetails(page, id);
    assert.equal(await detail(page, id, 'Soft inpainting'), 'on');
    await app.studio.screenshot('56-soft-inpainting-detail');

    await page.getByRole('button', { name: 'Discard' }).click();
    await page.getByRole('checkbox', { name: 'Soft inpainting' }).uncheck();
    await page.getByRole('region', { name: `Details of #${id}` }).getByRole('button', { name: 'Reuse parameters' }).click();
    await page.getByText(`Parameters of #${id} are back in the prompt panel.`).waitFor();
    assert.equal(await page.getByRole('checkbox', { name: 'Soft inpainting' }).isChecked(), true);
  });
});
