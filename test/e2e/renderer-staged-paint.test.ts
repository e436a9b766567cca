/**
 * End to end in Chromium against a real `studio serve`: the sequence a new user tried. Generate (the
 * result waits for Accept/Discard), open another picture from history with "Open in canvas", paint with
 * the brush. Opening sets the staged result aside with a notice (it stays in History), and the brush then
 * paints. Before that, painting over the staged result says why nothing is drawn.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { useStudio } from './support/studio-suite.js';
import { dragOnCanvas, stageSnapshot, stageSnapshotEqualTo } from './support/canvas.js';

describe('renderer end to end: painting while a result is staged', { timeout: 240_000 }, () => {
  const app = useStudio();

  it('generate, open another history picture, paint: the staged result is set aside and the brush paints', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('4');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a red fox in the snow');
    // A first picture in history, accepted, then a canvas that is not it.
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    const firstId = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    assert.ok(firstId > 0);

    // Generate again: the result is staged.
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    const stagedId = firstId + 1;
    await app.server.invoke('history.get', { id: stagedId });

    // Painting now says why nothing is drawn.
    await page.getByRole('button', { name: 'Brush' }).click();
    await page.getByRole('slider', { name: 'Brush size' }).fill('12');
    await dragOnCanvas(page, [[0.3, 0.3], [0.7, 0.4]]);
    await page.getByText('A result is staged: Accept or Discard it (Enter / Delete) to paint again.').waitFor();

    // Open in canvas the first picture, from history.
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${firstId}"]`).click();
    await page.getByRole('region', { name: `Details of #${firstId}` }).getByRole('button', { name: 'Open in canvas' }).click();
    await page.getByText(`64 × 64 · #${firstId}`).waitFor();
    await page.getByText(`Result #${stagedId} set aside, not accepted: it stays in History.`).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Accept' }).count(), 0, 'nothing is staged any more');
    await app.studio.screenshot('40-staged-set-aside');

    // Paint: the stroke shows, the mode becomes inpaint, and it is one undo step.
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
    const before = await stageSnapshot(page);
    await dragOnCanvas(page, [[0.3, 0.3], [0.7, 0.4], [0.5, 0.7]]);
    const painted = await stageSnapshot(page);
    assert.notDeepEqual(painted, before, 'the brush painted');
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    await app.studio.screenshot('41-painted-after-open');
    await page.getByRole('button', { name: 'Undo' }).click();
    assert.deepEqual(await stageSnapshotEqualTo(page, before), before, 'Undo takes the stroke back');

    // The set-aside result is still in history.
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${stagedId}"]`).waitFor();
  });
});
