/**
 * End to end in Chromium against a real `studio serve` with the tiny inpainting fixture: txt2img,
 * accept, paint a mask with real mouse drags, inpaint, accept, and find the result in history as a
 * child of the original; reuse its parameters; search history; cancel a running job.
 * Screenshots go to test-results/renderer/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { useStudio } from './support/studio-suite.js';
import { dragOnCanvas, progressSeen, recordProgress } from './support/canvas.js';

/** The fixture runs one 64 px latent tile in well under a second per step count used here. */
const SIZE_OPTION = '64x64';
const FAST_STEPS = '6';

/** A flat 128×96 picture: larger than the 64 px the fixture runs at, so only-masked has to paste back. */
async function largerPicturePng(): Promise<Buffer> {
  return sharp({ create: { width: 128, height: 96, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toBuffer();
}

describe('renderer end to end: generate, inpaint, history', { timeout: 240_000 }, () => {
  const app = useStudio();
  let originalId = 0;
  let childId = 0;

  it('generates from text, stages the result and accepts it as the base image', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption(SIZE_OPTION);
    await page.getByRole('spinbutton', { name: 'Steps' }).fill(FAST_STEPS);
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a red fox in the snow');
    await page.getByRole('textbox', { name: 'Negative prompt' }).fill('blurry');
    // The live token counter answers from the model's own tokenizer (the fixture's vocabulary is tiny).
    await page.locator('#prompt-tokens').getByText(/^[1-9]\d*\/75$/).waitFor();
    await app.studio.screenshot('01-prompt');
    await recordProgress(page);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await app.studio.screenshot('02-staged-txt2img');
    const seen = await progressSeen(page);
    assert.ok(seen.some((t) => /^Step \d+\/6/.test(t)), `progress was shown: ${JSON.stringify(seen)}`);
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    const info = await page.locator('.canvas-info').textContent();
    originalId = Number(/#(\d+)/.exec(info ?? '')?.[1]);
    assert.ok(originalId > 0, `the canvas names its base image: ${info}`);
    assert.equal(await page.getByRole('combobox', { name: 'Mode', exact: true }).inputValue(), 'auto');
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
  });

  it('paints a mask with mouse drags, inpaints with progress, accepts, and history shows it as a child', async () => {
    const { page } = app.studio;
    await page.getByRole('slider', { name: 'Brush size' }).fill('14');
    await page.getByRole('button', { name: 'Brush' }).click();
    await dragOnCanvas(page, [[0.35, 0.4], [0.65, 0.45], [0.6, 0.6]]);
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    await app.studio.screenshot('03-mask-painted');

    await recordProgress(page);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await app.studio.screenshot('04-staged-inpaint');
    const seen = await progressSeen(page);
    assert.ok(seen.some((t) => /^Step \d+\/\d+/.test(t)), `inpaint progress was shown: ${JSON.stringify(seen)}`);
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    childId = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    assert.ok(childId > originalId);

    // The host recorded it as an inpaint child of the original, with the painted mask.
    const item = await app.server.invoke('history.get', { id: childId });
    assert.equal(item.mode, 'inpaint');
    assert.equal(item.parentId, originalId);
    assert.deepEqual([item.mask?.width, item.mask?.height], [64, 64], 'the mask was sent at image resolution');

    // …and the history browser shows it, with the original as its parent in the lineage strip.
    const history = page.getByRole('region', { name: 'History' });
    await history.locator(`[data-history-id="${childId}"]`).click();
    const detail = page.getByRole('region', { name: `Details of #${childId}` });
    await detail.getByText(`#${originalId}`, { exact: true }).waitFor();
    await detail.getByRole('button', { name: `Parent #${originalId}` }).waitFor();
    await app.studio.screenshot('05-history-child');
    await detail.getByRole('button', { name: `Parent #${originalId}` }).click();
    await page.getByRole('region', { name: `Details of #${originalId}` }).getByRole('button', { name: `Child #${childId}` }).waitFor();
  });

  it('reuses the parameters of a history item', async () => {
    const { page } = app.studio;
    const original = await app.server.invoke('history.get', { id: originalId });
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('something else entirely');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('9');
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${originalId}"]`).click();
    await page.getByRole('region', { name: `Details of #${originalId}` }).getByRole('button', { name: 'Reuse parameters' }).click();
    assert.equal(await page.getByRole('textbox', { name: 'Prompt', exact: true }).inputValue(), 'a red fox in the snow');
    assert.equal(await page.getByRole('textbox', { name: 'Negative prompt' }).inputValue(), 'blurry');
    assert.equal(await page.getByRole('spinbutton', { name: 'Steps' }).inputValue(), '6');
    assert.equal(await page.getByRole('combobox', { name: 'Seed mode' }).inputValue(), 'fixed');
    assert.equal(await page.getByRole('spinbutton', { name: 'Seed' }).inputValue(), String(original.params.seed));
    await app.studio.screenshot('06-reused');
  });

  it('searches history by prompt words', async () => {
    const { page } = app.studio;
    const history = page.getByRole('region', { name: 'History' });
    const search = history.getByRole('searchbox', { name: 'Search history' });
    await search.fill('fox');
    await history.locator(`[data-history-id="${childId}"]`).waitFor();
    await history.locator(`[data-history-id="${originalId}"]`).waitFor();
    // Tags typed in the detail panel are searchable with tag:.
    await history.locator(`[data-history-id="${childId}"]`).click();
    await page.getByRole('region', { name: `Details of #${childId}` }).getByRole('textbox', { name: 'Tags' }).fill('keeper, winter');
    await page.keyboard.press('Enter');
    await search.fill('tag:keeper');
    await history.locator(`[data-history-id="${originalId}"]`).waitFor({ state: 'detached' });
    await history.locator(`[data-history-id="${childId}"]`).waitFor();
    await search.fill('zebra');
    await history.getByText('Nothing matches').waitFor();
    assert.equal(await history.locator('[data-history-id]').count(), 0);
    await app.studio.screenshot('07-search-empty');
    await search.fill('');
    await history.locator(`[data-history-id="${childId}"]`).waitFor();
  });

  it('stages a batch: flip between the results, discard them one by one', async () => {
    const { page } = app.studio;
    await page.getByRole('spinbutton', { name: 'Steps' }).fill(FAST_STEPS);
    await page.getByRole('spinbutton', { name: 'Batch count' }).fill('2');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByText('Result 1 / 2').or(page.getByText('Result 2 / 2')).waitFor();
    await page.getByText(/^Result \d \/ 2$/).waitFor();
    await page.getByRole('button', { name: 'Next result' }).click();
    await app.studio.screenshot('08-batch');
    const shown = await page.locator('.staging-count').innerText();
    await page.getByRole('button', { name: 'Previous result' }).click();
    assert.notEqual(await page.locator('.staging-count').innerText(), shown);
    await page.getByRole('button', { name: 'Discard' }).click();
    await page.getByText('Result 1 / 1').waitFor();
    await page.getByRole('button', { name: 'Discard' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor({ state: 'detached' });
    await page.getByRole('spinbutton', { name: 'Batch count' }).fill('1');
  });

  it('inpaints only the masked area of a picture larger than the model size, keeping the picture size', async () => {
    const { page } = app.studio;
    await page.getByLabel('Image file').setInputFiles({ name: 'larger.png', mimeType: 'image/png', buffer: await largerPicturePng() });
    await page.getByText('128 × 96 · larger.png').waitFor();
    await page.getByRole('slider', { name: 'Brush size' }).fill('6');
    await page.getByRole('button', { name: 'Brush' }).click();
    await dragOnCanvas(page, [[0.45, 0.45], [0.55, 0.5]]);
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    const area = page.getByRole('combobox', { name: 'Inpaint area' });
    assert.equal(await area.inputValue(), 'whole');
    assert.equal(await page.getByRole('spinbutton', { name: 'Padding' }).count(), 0, 'padding shows only for only-masked');
    await area.selectOption({ label: 'Only masked' });
    await page.getByRole('spinbutton', { name: 'Padding' }).fill('8');
    // Only masked repaints the crop at the panel's size, so the size picker is live again.
    await page.getByRole('combobox', { name: 'Size' }).selectOption(SIZE_OPTION);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await app.studio.screenshot('09-only-masked-staged');
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/128 × 96 · #\d+/).waitFor();
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.mode, 'inpaint');
    assert.deepEqual([item.output?.width, item.output?.height], [128, 96], 'the accepted image keeps the picture size');
    assert.deepEqual([item.params.width, item.params.height], [64, 64], 'the crop around the mask ran at the model size');
    await area.selectOption({ label: 'Whole picture' });
    await page.getByRole('spinbutton', { name: 'Padding' }).waitFor({ state: 'detached' });
  });

  it('cancels a running job', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'New canvas' }).click();
    await page.getByRole('combobox', { name: 'Size' }).selectOption('512x512');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('1000');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a job that will be cancelled');
    await page.getByRole('button', { name: 'Generate' }).click();
    const bar = page.getByRole('progressbar', { name: 'Generation progress' });
    await page.getByText(/^Step \d+\/1000/).waitFor();
    await app.studio.screenshot('09-running');
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await bar.waitFor({ state: 'hidden' });
    const q = await app.server.invoke('queue.list', {});
    assert.equal(q.running, null);
    const job = q.recent.find((j) => j.prompt === 'a job that will be cancelled');
    assert.equal(job?.status, 'cancelled');
    assert.ok((job?.progress?.step ?? 0) < 1000);
    assert.equal(await page.getByRole('button', { name: 'Accept' }).count(), 0, 'nothing is staged');
    await app.studio.screenshot('10-cancelled');
  });
});
