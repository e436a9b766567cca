/**
 * End to end in Chromium: the brush ring is a DOM element over the stage (a stage-size canvas redrawn on
 * every pointer move cost about half of a painting frame). It follows the pointer, has the brush's
 * diameter on screen at the current zoom, marks the eraser, and hides when the pointer leaves; the
 * stage itself is one canvas (picture, live frame and overlays drawn together), none for the ring.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { useStudio } from './support/studio-suite.js';

async function ringBox(page: Page): Promise<{ x: number; y: number; width: number; height: number } | null> {
  const ring = page.locator('.brush-cursor');
  if (!(await ring.isVisible())) return null;
  return ring.boundingBox();
}

describe('renderer end to end: brush ring', { timeout: 120_000 }, () => {
  const app = useStudio();

  it('follows the pointer at the brush diameter times the zoom, marks the eraser, hides off the stage', async () => {
    const { page } = app.studio;
    const png = await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 90, g: 120, b: 60 } } }).png().toBuffer();
    await page.getByLabel('Image file').setInputFiles({ name: 'square.png', mimeType: 'image/png', buffer: png });
    await page.getByText('256 × 256 · square.png').waitFor();
    await page.getByRole('slider', { name: 'Brush size' }).fill('40');
    const stage = page.getByTestId('canvas-stage');
    const box = (await stage.boundingBox())!;
    const zoom = Number(await stage.getAttribute('data-zoom'));
    assert.equal(await stage.locator('canvas').count(), 1, 'one canvas for the picture, live frame and overlays; no cursor canvas');

    const at = { x: box.x + box.width / 2 + 17, y: box.y + box.height / 2 - 11 };
    await page.mouse.move(at.x, at.y);
    const ring = await ringBox(page);
    assert.ok(ring, 'the ring shows over the stage');
    assert.ok(Math.abs(ring.width - 40 * zoom) <= 1 && Math.abs(ring.height - 40 * zoom) <= 1, `diameter ${ring.width} at zoom ${zoom}`);
    assert.ok(Math.abs(ring.x + ring.width / 2 - at.x) <= 1.5 && Math.abs(ring.y + ring.height / 2 - at.y) <= 1.5, `centred on the pointer: ${JSON.stringify(ring)} vs ${JSON.stringify(at)}`);

    // Shortcuts are for the page, not the focused slider.
    await page.evaluate('document.activeElement.blur()');
    await page.keyboard.press(']');
    await page.mouse.move(at.x + 30, at.y + 5);
    const bigger = (await ringBox(page))!;
    assert.ok(bigger.width > ring.width, `] grows the ring: ${bigger.width} > ${ring.width}`);
    assert.ok(Math.abs(bigger.x + bigger.width / 2 - (at.x + 30)) <= 1.5);

    await page.keyboard.press('e');
    assert.equal(await page.locator('.brush-cursor.is-eraser').count(), 1, 'the eraser ring is marked');
    await page.keyboard.press('b');
    assert.equal(await page.locator('.brush-cursor.is-eraser').count(), 0);

    await page.mouse.move(2, 2);
    assert.equal(await ringBox(page), null, 'hidden once the pointer leaves the stage');
  });
});
