/**
 * End to end in Chromium: the mask tools in the editor toolbar. The wand masks a colour area of the
 * opened picture; Grow, Shrink and Feather change the mask by the chosen pixels; each is one undo step
 * that gives back the exact stage pixels.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { useStudio } from './support/studio-suite.js';
import { stageSnapshot } from './support/canvas.js';

/** 128×96: red left half, blue right half. */
async function twoColourPng(): Promise<Buffer> {
  const width = 128;
  const height = 96;
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) rgb.set(i % width < 64 ? [220, 30, 30] : [30, 30, 220], i * 3);
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

describe('renderer end to end: mask tools', { timeout: 180_000 }, () => {
  const app = useStudio();

  it('the wand masks the clicked colour area; grow, shrink and feather each are one undo step', async () => {
    const { page } = app.studio;
    await page.getByLabel('Image file').setInputFiles({ name: 'two.png', mimeType: 'image/png', buffer: await twoColourPng() });
    await page.getByText('128 × 96 · two.png').waitFor();
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
    const plain = await stageSnapshot(page);

    await page.getByRole('button', { name: 'Magic wand' }).click();
    await page.getByRole('spinbutton', { name: 'Wand tolerance' }).fill('20');
    const box = (await page.getByTestId('canvas-stage').boundingBox())!;
    await page.mouse.click(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    const wand = await stageSnapshot(page);
    assert.notDeepEqual(wand, plain, 'the wand masked the red half');
    await app.studio.screenshot('50-wand');

    await page.getByRole('spinbutton', { name: 'Mask edit pixels' }).fill('12');
    let previous = wand;
    for (const name of ['Grow mask', 'Shrink mask', 'Feather mask']) {
      await page.getByRole('button', { name }).click();
      const after = await stageSnapshot(page);
      assert.notDeepEqual(after, previous, `${name} changed the mask`);
      await page.getByRole('button', { name: 'Undo' }).click();
      assert.deepEqual(await stageSnapshot(page), previous, `one Undo takes ${name} back`);
      await page.getByRole('button', { name: 'Redo' }).click();
      assert.deepEqual(await stageSnapshot(page), after, `Redo puts ${name} back`);
      previous = after;
    }
    await app.studio.screenshot('51-grown-shrunk-feathered');
    for (let i = 0; i < 4; i++) await page.getByRole('button', { name: 'Undo' }).click();
    assert.deepEqual(await stageSnapshot(page), plain, 'four undos: back to no mask');
  });
});
