/**
 * Live painting end to end in Chromium against a real `studio serve` with the tiny inpainting fixture:
 * turn Live on, paint with real mouse drags, and see the live layer change while the button is still
 * down; Keep puts the shown frame into history as an inpaint with its mask and onto the canvas as the
 * base image (the mask cleared), and nothing else reaches the queue or history; Live off removes the
 * layer. Screenshots go to test-results/renderer/.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { withNativeSide64 } from '../support/engine-fixtures.js';
import { useStudio } from './support/studio-suite.js';
import { waitForPageValue } from './support/canvas.js';

const liveSeq = (page: Page): Promise<number> =>
  page.evaluate(`Number(document.querySelector('[data-testid="canvas-stage"]').dataset.liveSeq ?? 0)`) as Promise<number>;

describe('renderer end to end: live painting', { timeout: 240_000 }, () => {
  // Frames run at the model's native size: the inpainting fixture with a native size of 64 px.
  const models = mkdtempSync(join(tmpdir(), 'studio-e2e-live-'));
  const app = useStudio({ models: [withNativeSide64('tiny-sd1-inpaint', models)] });
  after(() => rmSync(models, { recursive: true, force: true }));

  it('paints with Live on: frames arrive while the button is down; Keep stores an inpaint with its mask and puts it on the canvas', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a red apple');
    await page.getByRole('slider', { name: 'Brush size' }).fill('24');
    await page.getByRole('button', { name: 'Brush' }).click();
    await page.getByRole('switch', { name: 'Live' }).click();
    assert.equal(await page.getByRole('switch', { name: 'Live' }).getAttribute('aria-checked'), 'true');
    await page.getByText('Paint a mask to see it live').waitFor();

    // One stroke, the button held down throughout.
    const box = (await page.getByTestId('canvas-stage').boundingBox())!;
    const at = (fx: number, fy: number) => [box.x + fx * box.width, box.y + fy * box.height] as const;
    await page.mouse.move(...at(0.3, 0.4));
    await page.mouse.down();
    await page.mouse.move(...at(0.4, 0.45), { steps: 6 });
    await waitForPageValue(page, `document.querySelector('[data-testid="canvas-stage"]').dataset.liveSeq`, 60_000);
    const first = await liveSeq(page);
    await app.studio.screenshot('live-01-first-frame');
    // Painting on: newer frames replace the shown one while the button is still down.
    let seq = first;
    for (let i = 0; i < 40 && seq === first; i++) {
      await page.mouse.move(...at(0.4 + 0.01 * (i % 20), 0.45 + 0.005 * (i % 20)), { steps: 2 });
      await page.waitForTimeout(100);
      seq = await liveSeq(page);
    }
    assert.ok(seq > first, `the live layer changed during the stroke (frame ${first} → ${seq})`);
    await app.studio.screenshot('live-02-while-painting');
    await page.mouse.up();
    await page.getByTestId('live-frame-time').getByText(/^Frame \d+ ms/).waitFor();
    // What Generate would use and a frame leaves out is said beside the frame time.
    assert.equal(await page.getByTestId('live-generate-only').count(), 0);
    const regions = page.getByRole('region', { name: 'Regions' });
    await regions.getByRole('button', { name: '+ Add region' }).click();
    await page.getByTestId('live-generate-only').getByText('Live frames leave out regions: Generate uses them').waitFor();
    await regions.getByRole('button', { name: 'Remove region 1' }).click();
    await page.getByTestId('live-generate-only').waitFor({ state: 'detached' });
    await page.getByTestId('live-frame-time').getByText(/^Frame \d+ ms/).waitFor();

    // Live frames never went through the queue or into history.
    assert.deepEqual((await app.server.invoke('queue.list', {})).recent, []);
    assert.equal((await app.server.invoke('history.page', {})).items.length, 0);

    await page.getByRole('button', { name: 'Keep' }).click();
    const notice = page.getByText(/^Kept as #\d+$/);
    await notice.waitFor();
    const id = Number(/#(\d+)/.exec((await notice.textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.mode, 'inpaint');
    assert.equal(item.params.inpaintArea, 'masked');
    assert.equal(item.params.prompt, 'a red apple');
    assert.ok(item.mask, 'the mask is kept with it');
    assert.ok(item.initImage, 'and the picture it was painted on');
    assert.equal((await app.server.invoke('history.page', {})).items.length, 1, 'one item: the kept frame');
    // Keep put it on the canvas: the base image is the kept item, and with the mask cleared there is
    // nothing left to repaint, so the live layer is gone.
    await page.getByText(new RegExp(` · #${id}$`)).waitFor();
    await waitForPageValue(page, `document.querySelector('[data-testid="canvas-stage"]').dataset.liveSeq === undefined || undefined`, 30_000);
    await app.studio.screenshot('live-03-kept');

    await page.getByRole('switch', { name: 'Live' }).click();
    await page.getByTestId('live-frame-time').waitFor({ state: 'detached' });
    assert.equal(await liveSeq(page), 0, 'Live off removes the live layer');
  });
});
