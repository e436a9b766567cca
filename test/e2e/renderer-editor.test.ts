/**
 * End to end in Chromium: the canvas editor with real mouse and keyboard input. Open an image, paint and
 * undo/redo a stroke (compared as stage pixels), cancel a stroke with Esc, zoom with the wheel, pan with
 * Space-drag, and the shortcut sheet. Screenshots go to test-results/renderer/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURE_MODELS } from './support/studio-server.js';
import { useStudio } from './support/studio-suite.js';
import { dragOnCanvas, stageSnapshot, waitForPageValue } from './support/canvas.js';

/** A 128×96 gradient, so a painted stroke shows against something. */
async function gradientPng(): Promise<Buffer> {
  const width = 128;
  const height = 96;
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = Math.round((x / width) * 255);
      rgb[i + 1] = Math.round((y / height) * 200);
      rgb[i + 2] = 120;
    }
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

describe('renderer end to end: canvas editor', { timeout: 180_000 }, () => {
  const app = useStudio();

  it('starts with an empty state that says what to do, and opens an image from a file', async () => {
    const { page } = app.studio;
    await page.getByText(/Write a prompt and press/).waitFor();
    await page.getByRole('region', { name: 'History' }).getByText('No results yet').waitFor();
    await app.studio.screenshot('10-empty');
    await page.getByLabel('Image file').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: await gradientPng() });
    await page.getByText('128 × 96 · gradient.png').waitFor();
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
    assert.equal(await page.getByRole('button', { name: 'Undo' }).isDisabled(), false, 'opening an image is undoable');
  });

  it('undo and redo a stroke restore the exact canvas pixels (buttons and Ctrl+Z / Ctrl+Shift+Z)', async () => {
    const { page } = app.studio;
    await page.getByRole('slider', { name: 'Brush size' }).fill('10');
    await page.getByRole('button', { name: 'Brush' }).click();
    const before = await stageSnapshot(page);
    await dragOnCanvas(page, [[0.3, 0.3], [0.7, 0.35], [0.5, 0.7]]);
    const painted = await stageSnapshot(page);
    assert.notDeepEqual(painted, before, 'the stroke shows on the canvas');
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    await app.studio.screenshot('11-stroke');

    await page.getByRole('button', { name: 'Undo' }).click();
    assert.deepEqual(await stageSnapshot(page), before, 'Undo brings back every pixel');
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Redo' }).click();
    assert.deepEqual(await stageSnapshot(page), painted, 'Redo repaints exactly the stroke');

    await page.keyboard.press('Control+z');
    assert.deepEqual(await stageSnapshot(page), before);
    await page.keyboard.press('Control+Shift+z');
    assert.deepEqual(await stageSnapshot(page), painted);
    assert.equal(await page.getByRole('button', { name: 'Redo' }).isDisabled(), true);
  });

  it('Esc cancels the stroke in progress and leaves no undo step', async () => {
    const { page } = app.studio;
    const before = await stageSnapshot(page);
    const box = (await page.getByTestId('canvas-stage').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.8);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height * 0.8, { steps: 10 });
    await page.keyboard.press('Escape');
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height * 0.2, { steps: 5 });
    await page.mouse.up();
    assert.deepEqual(await stageSnapshot(page), before);
    // Undo now takes back the earlier stroke, not the cancelled one.
    await page.getByRole('button', { name: 'Undo' }).click();
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Redo' }).click();
  });

  it('invert mask and the eraser change the mask', async () => {
    const { page } = app.studio;
    const before = await stageSnapshot(page);
    await page.getByRole('button', { name: 'Invert mask' }).click();
    const inverted = await stageSnapshot(page);
    assert.notDeepEqual(inverted, before);
    await app.studio.screenshot('12-inverted');
    await page.getByRole('button', { name: 'Invert mask' }).click();
    assert.deepEqual(await stageSnapshot(page), before, 'inverting twice is the identity');
    await page.getByRole('button', { name: 'Eraser' }).click();
    assert.equal(await page.getByRole('button', { name: 'Eraser' }).getAttribute('aria-pressed'), 'true');
    await dragOnCanvas(page, [[0.3, 0.3], [0.7, 0.35]]);
    assert.notDeepEqual(await stageSnapshot(page), before, 'the eraser took mask away');
    await page.keyboard.press('Control+z');
    assert.deepEqual(await stageSnapshot(page), before);
  });

  it('zooms with the wheel at the pointer, pans with Space-drag, and fits again', async () => {
    const { page } = app.studio;
    const stage = page.getByTestId('canvas-stage');
    const fitZoom = Number(await stage.getAttribute('data-zoom'));
    const box = (await stage.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -300);
    await waitForPageValue(page, `Number(document.querySelector('[data-testid=canvas-stage]')?.getAttribute('data-zoom')) > ${fitZoom}`);
    const zoomed = Number(await stage.getAttribute('data-zoom'));
    assert.ok(zoomed > fitZoom * 1.3, `wheel up zooms in (${fitZoom} → ${zoomed})`);

    const undoDepthBefore = await page.getByRole('button', { name: 'Undo' }).getAttribute('title');
    const panBefore = await stage.getAttribute('data-pan');
    await page.keyboard.down('Space');
    await dragOnCanvas(page, [[0.5, 0.5], [0.3, 0.4]]);
    await page.keyboard.up('Space');
    const panAfter = await stage.getAttribute('data-pan');
    assert.notEqual(panAfter, panBefore, 'Space-drag moved the view');
    assert.equal(await page.getByRole('button', { name: 'Undo' }).getAttribute('title'), undoDepthBefore, 'and painted nothing');
    await app.studio.screenshot('13-zoomed-panned');

    await page.getByRole('button', { name: 'Actual size' }).click();
    assert.equal(await stage.getAttribute('data-zoom'), '1.0000');
    await page.getByRole('button', { name: 'Fit to screen' }).click();
    assert.equal(Number(await stage.getAttribute('data-zoom')), fitZoom);
  });

  it('brackets resize the brush, and ? opens the shortcut sheet', async () => {
    const { page } = app.studio;
    const size = page.getByRole('slider', { name: 'Brush size' });
    const start = Number(await size.inputValue());
    await page.mouse.click(5, 5);
    await page.keyboard.press(']');
    await page.keyboard.press(']');
    assert.ok(Number(await size.inputValue()) > start);
    await page.keyboard.press('[');
    await page.keyboard.press('[');
    await page.keyboard.press('[');
    assert.ok(Number(await size.inputValue()) < start);
    await page.keyboard.press('?');
    const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await sheet.waitFor();
    await app.studio.screenshot('14-shortcuts');
    await page.keyboard.press('Escape');
    await sheet.waitFor({ state: 'detached' });
  });

  it('extends the canvas for outpainting: the new strip is masked, and Undo takes it back', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Clear mask' }).click();
    await page.getByRole('option', { name: 'Auto (img2img)' }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Extend right' }).click();
    await page.getByText('192 × 96 · gradient.png (extended)').waitFor();
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    await app.studio.screenshot('15-extended');
    await page.getByRole('button', { name: 'Undo' }).click();
    await page.getByText('128 × 96 · gradient.png').waitFor();
  });

  it('fits 1280×720 and 4K: Generate, the canvas and history stay on screen', async () => {
    const { page } = app.studio;
    for (const [width, height, name] of [[1280, 720, '16-1280x720'], [3840, 2160, '17-3840x2160']] as const) {
      await page.setViewportSize({ width, height });
      await page.waitForTimeout(300);
      for (const target of [
        page.getByRole('button', { name: 'Generate' }),
        page.getByRole('region', { name: 'Canvas' }),
        page.getByRole('region', { name: 'History' }),
        page.getByRole('button', { name: 'Invert mask' }),
      ]) {
        const box = await target.boundingBox();
        assert.ok(box && box.x >= 0 && box.y >= 0 && box.x + box.width <= width + 1 && box.y + box.height <= height + 1, `${name}: on screen ${JSON.stringify(box)}`);
      }
      await app.studio.screenshot(name);
    }
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('adds a model folder by path; a wrong path is explained in plain words', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Add a model folder…' }).click();
    const path = page.getByRole('textbox', { name: 'Model folder path' });
    await path.fill(join(FIXTURE_MODELS, 'no-such-model'));
    await page.getByRole('button', { name: 'Add model' }).click();
    await page.getByRole('alert').filter({ hasText: /no-such-model/ }).waitFor();
    await app.studio.screenshot('18-model-import-error');
    await path.fill(join(FIXTURE_MODELS, 'tiny-sd1'));
    await page.getByRole('button', { name: 'Add model' }).click();
    await page.getByRole('option', { name: /^tiny-sd1 · txt2img/ }).waitFor({ state: 'attached' });
    const picker = page.getByRole('combobox', { name: 'Model', exact: true });
    assert.match(await picker.locator('option:checked').innerText(), /^tiny-sd1 · txt2img/);
  });
  it('saves CPU threads, releasing text encoders, an output folder and the undo memory in Settings; an unwritable folder is explained; all survive a reload', async () => {
    const { page } = app.studio;
    const aFile = join(app.server.dataDir, 'not-a-folder.txt');
    await writeFile(aFile, 'a file, so nothing can be made under it');
    const outputFolder = join(app.server.dataDir, 'exports');

    await page.getByRole('button', { name: 'Settings' }).click();
    const dialog = page.getByRole('dialog', { name: 'Settings' });
    await dialog.getByRole('checkbox', { name: 'Use CPU' }).waitFor();
    assert.equal(await dialog.getByRole('checkbox', { name: 'Use CPU' }).isChecked(), true, 'CPU is on by default');
    await dialog.getByRole('spinbutton', { name: 'CPU threads' }).fill('2');
    await dialog.getByRole('textbox', { name: 'Output folder' }).fill(join(aFile, 'sub'));
    await dialog.getByRole('button', { name: 'Save settings' }).click();
    await dialog.getByRole('alert').filter({ hasText: /can't write to/ }).waitFor();
    await app.studio.screenshot('19-settings-error');
    assert.equal((await app.server.invoke('settings.get', {})).outputFolder, null, 'nothing was saved');

    assert.equal(await dialog.getByRole('spinbutton', { name: 'Undo memory' }).inputValue(), '256', 'the default undo budget');
    const release = dialog.getByRole('checkbox', { name: 'Release text encoders after encoding' });
    assert.equal(await release.isChecked(), false, 'text encoders are kept by default');
    await release.check();
    await dialog.getByRole('spinbutton', { name: 'Undo memory' }).fill('3');
    await dialog.getByRole('button', { name: 'Save settings' }).click();
    await dialog.getByRole('alert').filter({ hasText: /Undo memory must be a whole number of MiB from 16/ }).waitFor();
    await dialog.getByRole('spinbutton', { name: 'Undo memory' }).fill('48');
    await dialog.getByRole('textbox', { name: 'Output folder' }).fill(outputFolder);
    await dialog.getByRole('button', { name: 'Save settings' }).click();
    await dialog.waitFor({ state: 'detached' });

    await page.reload();
    const saved = await app.server.invoke('settings.get', {});
    assert.equal(saved.threads, 2);
    assert.equal(saved.outputFolder, outputFolder);
    assert.equal(saved.undoMemoryMb, 48);
    assert.equal(saved.releaseTextEncoders, true);
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByRole('dialog', { name: 'Settings' }).getByRole('spinbutton', { name: 'CPU threads' }).waitFor();
    await waitForPageValue(page, `document.querySelector('[aria-label="Output folder"]')?.value === ${JSON.stringify(outputFolder)}`);
    assert.equal(await page.getByRole('spinbutton', { name: 'CPU threads' }).inputValue(), '2');
    assert.equal(await page.getByRole('spinbutton', { name: 'Undo memory' }).inputValue(), '48');
    assert.equal(await page.getByRole('checkbox', { name: 'Release text encoders after encoding' }).isChecked(), true);
    assert.equal(await page.getByTestId('canvas-stage').getAttribute('data-undo-budget'), String(48 * 2 ** 20), 'the canvas uses the saved budget');
    await page.getByRole('button', { name: 'Close', exact: true }).click();
  });
});
