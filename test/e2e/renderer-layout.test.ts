/**
 * End to end in Chromium against a real `studio serve` with the tiny layout fixture (K = 4 labels):
 * layout is offered only for a layout model; pick it, paint a layout with two labels using real mouse
 * drags (and a fill, undone), generate, see the staged result and the label map in the history detail,
 * and reuse the item's parameters to bring the map back into the layout layer (checked by pixel); open a
 * label map PNG made elsewhere.
 * Screenshots go to test-results/renderer/.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { FIXTURE_MODELS, INPAINT_MODEL_DIR } from './support/studio-server.js';
import { useStudio } from './support/studio-suite.js';
import { clickOnImage, dragOnImage, stageColors, waitForPageValue } from './support/canvas.js';

const LAYOUT_MODEL_DIR = join(FIXTURE_MODELS, 'tiny-sd1-layout');
interface Label {
  id: number;
  name: string;
  color: [number, number, number];
}
const LABELS = (JSON.parse(readFileSync(join(LAYOUT_MODEL_DIR, 'labels.json'), 'utf8')) as { labels: Label[] }).labels;
/** The fixture runs one 64 px latent tile quickly. */
const SIZE = 64;
const FAST_STEPS = '4';

/** Where the painted strokes are, in image pixels of the 64×64 canvas. */
const LEFT_STROKE: Array<[number, number]> = [[14, 16], [14, 48]];
const RIGHT_STROKE: Array<[number, number]> = [[48, 16], [50, 48]];
const LEFT_PROBE: [number, number] = [14, 32];
const RIGHT_PROBE: [number, number] = [49, 32];
const EMPTY_PROBE: [number, number] = [32, 4];

function label(index: number): Label {
  const l = LABELS[index];
  assert.ok(l, `the fixture has label ${index}`);
  return l;
}

function assertColor(actual: [number, number, number], expected: readonly [number, number, number], what: string): void {
  // The layer is drawn at full opacity without smoothing: the palette colour itself, give or take rounding.
  assert.ok(actual.every((c, i) => Math.abs(c - expected[i]!) <= 2), `${what}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`);
}

describe('renderer end to end: layout (semantic synthesis)', { timeout: 240_000 }, () => {
  // The inpainting fixture is chosen first, so the test has to pick the layout model itself.
  const app = useStudio({ models: [INPAINT_MODEL_DIR, LAYOUT_MODEL_DIR] });
  let layoutModelId = '';
  let resultId = 0;

  before(async () => {
    const { models } = await app.server.invoke('models.list', {});
    layoutModelId = models.find((m) => m.dir === LAYOUT_MODEL_DIR)?.id ?? '';
    assert.ok(layoutModelId, 'the layout fixture is in the library');
  });

  it('offers layout only for a layout model, then lists its labels as buttons', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    const layoutOption = page.getByRole('combobox', { name: 'Mode', exact: true }).locator('option[value="layout"]');
    await layoutOption.getByText('layout (needs a layout model)').waitFor({ state: 'attached' });
    assert.equal(await layoutOption.isDisabled(), true, 'layout mode is disabled for an inpainting model');
    assert.equal(await page.getByRole('button', { name: 'Layout', exact: true }).isDisabled(), true);

    await page.getByRole('combobox', { name: 'Model', exact: true }).selectOption(layoutModelId);
    await page.getByRole('option', { name: new RegExp(`${layoutModelId} · layout`) }).waitFor({ state: 'attached' });
    await waitForPageValue(page, `!document.querySelector('select[aria-label="Mode"] option[value="layout"]')?.disabled`);
    await page.getByRole('combobox', { name: 'Size' }).selectOption(`${SIZE}x${SIZE}`);
    await page.getByRole('spinbutton', { name: 'Steps' }).fill(FAST_STEPS);
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a smiling emoji');
    // Nothing painted yet: auto mode is layout (the model does nothing else) and Generate says why it waits.
    await page.getByRole('option', { name: 'Auto (layout)' }).waitFor({ state: 'attached' });
    await page.getByText(/^Paint a layout first/).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Generate' }).isDisabled(), true);

    await page.getByRole('button', { name: 'Layout', exact: true }).click();
    const palette = page.getByRole('group', { name: 'Layout labels' });
    for (const l of LABELS) await palette.getByRole('button', { name: l.name, exact: true }).waitFor();
    assert.equal(await palette.getByRole('button').count(), LABELS.length);
    assert.equal(await palette.getByRole('button', { name: label(1).name, exact: true }).getAttribute('aria-pressed'), 'true', 'label 1 is the default brush label');
  });

  it('paints two labels with mouse drags, fills and undoes, and shows the layout in palette colours', async () => {
    const { page } = app.studio;
    const palette = page.getByRole('group', { name: 'Layout labels' });
    await page.getByRole('slider', { name: 'Layout opacity' }).fill('100');
    await page.getByRole('slider', { name: 'Brush size' }).fill('10');
    await page.getByRole('button', { name: 'Brush' }).click();

    await palette.getByRole('button', { name: label(1).name, exact: true }).click();
    await dragOnImage(page, LEFT_STROKE);
    await palette.getByRole('button', { name: label(3).name, exact: true }).click();
    assert.equal(await palette.getByRole('button', { name: label(3).name, exact: true }).getAttribute('aria-pressed'), 'true');
    await dragOnImage(page, RIGHT_STROKE);
    await page.getByRole('option', { name: 'Auto (layout)' }).waitFor({ state: 'attached' });
    await page.getByText(/^layout · draws the painted labels/).waitFor();
    const [left, right, empty] = await stageColors(page, [LEFT_PROBE, RIGHT_PROBE, EMPTY_PROBE]);
    assertColor(left!, label(1).color, 'left stroke');
    assertColor(right!, label(3).color, 'right stroke');
    assert.ok(!LABELS.slice(1).some((l) => l.color.every((c, i) => Math.abs(c - empty![i]!) <= 2)), 'background is left clear');
    await app.studio.screenshot('40-layout-painted');

    // The fill tool fills the background region (everything unpainted) with the chosen label; one undo step.
    await palette.getByRole('button', { name: label(2).name, exact: true }).click();
    await page.getByRole('button', { name: 'Fill region' }).click();
    await clickOnImage(page, EMPTY_PROBE);
    const [filledLeft, filledEmpty] = await stageColors(page, [LEFT_PROBE, EMPTY_PROBE]);
    assertColor(filledEmpty!, label(2).color, 'filled background');
    assertColor(filledLeft!, label(1).color, 'the fill stops at other labels');
    await page.keyboard.press('Control+z');
    const [unfilled] = await stageColors(page, [EMPTY_PROBE]);
    assert.deepEqual(unfilled, empty, 'undo takes the fill back exactly');
    await page.getByRole('button', { name: 'Brush' }).click();

    // Hide / show.
    await page.getByRole('button', { name: 'Show layout' }).click();
    const [hidden] = await stageColors(page, [LEFT_PROBE]);
    assert.notDeepEqual(hidden, left, 'hidden layout shows what is under it');
    await page.getByRole('button', { name: 'Show layout' }).click();
    assertColor((await stageColors(page, [LEFT_PROBE]))[0]!, label(1).color, 'shown again');
  });

  it('generates from the layout, stages the result, and history keeps the label map beside it', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor({ timeout: 120_000 });
    await app.studio.screenshot('41-layout-staged');
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(new RegExp(`${SIZE} × ${SIZE} · #\\d+`)).waitFor();
    resultId = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    assert.ok(resultId > 0);

    const item = await app.server.invoke('history.get', { id: resultId });
    assert.equal(item.mode, 'layout');
    assert.equal(item.model.id, layoutModelId);
    assert.ok(item.labelMap, 'the item has its label map');
    assert.deepEqual([item.labelMap.width, item.labelMap.height], [SIZE, SIZE], 'sent at the layout size');
    const stored = await app.server.invoke('history.image', { hash: item.labelMap.hash });
    const { data, info } = await sharp(Buffer.from(stored.data, 'base64')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height], [SIZE, SIZE]);
    const pixel = ([x, y]: [number, number]) => [...data.subarray((y * SIZE + x) * 3, (y * SIZE + x) * 3 + 3)];
    assert.deepEqual(pixel(LEFT_PROBE), label(1).color);
    assert.deepEqual(pixel(RIGHT_PROBE), label(3).color);
    assert.deepEqual(pixel(EMPTY_PROBE), label(0).color);
    const palette = new Set(LABELS.map((l) => l.color.join(',')));
    for (let i = 0; i < SIZE * SIZE; i++) assert.ok(palette.has([data[i * 3], data[i * 3 + 1], data[i * 3 + 2]].join(',')), `pixel ${i} is a palette colour`);

    // The detail panel shows the map beside the result.
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${resultId}"]`).click();
    const detail = page.getByRole('region', { name: `Details of #${resultId}` });
    const map = detail.getByRole('img', { name: `Label map of #${resultId}` });
    await map.waitFor();
    await detail.getByRole('img', { name: `Result #${resultId}` }).waitFor();
    await waitForPageValue(page, `document.querySelector('img[alt="Label map of #${resultId}"]')?.naturalWidth === ${SIZE}`);
    await app.studio.screenshot('42-layout-history-detail');
  });

  it('reuse parameters brings the label map back into the layout layer', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Clear layout' }).click();
    await page.getByText(/^Paint a layout first/).waitFor();
    const [cleared] = await stageColors(page, [LEFT_PROBE]);
    assert.notDeepEqual(cleared, [...label(1).color], 'the layout is gone');

    await page.getByRole('region', { name: `Details of #${resultId}` }).getByRole('button', { name: 'Reuse parameters' }).click();
    await page.getByText(/^layout · draws the painted labels/).waitFor();
    const [left, right] = await stageColors(page, [LEFT_PROBE, RIGHT_PROBE]);
    assertColor(left!, label(1).color, 'restored left stroke');
    assertColor(right!, label(3).color, 'restored right stroke');
    await app.studio.screenshot('43-layout-reused');
    // It came back as one undo step.
    await page.keyboard.press('Control+z');
    await page.getByText(/^Paint a layout first/).waitFor();
    await page.keyboard.press('Control+Shift+z');
    await page.getByText(/^layout · draws the painted labels/).waitFor();
  });

  it('opens a label map PNG drawn elsewhere: each colour becomes the nearest label', async () => {
    const { page } = app.studio;
    // Left half a slightly-off "skin" (as a lossy editor might save it), right half off-white background.
    const skin = label(2).color;
    const rgb = Buffer.alloc(SIZE * SIZE * 3);
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const c = x < SIZE / 2 ? skin.map((v) => Math.max(0, Math.min(255, v + 3))) : [250, 252, 249];
        rgb.set(c, (y * SIZE + x) * 3);
      }
    }
    const png = await sharp(rgb, { raw: { width: SIZE, height: SIZE, channels: 3 } }).png().toBuffer();
    const [before] = await stageColors(page, [RIGHT_PROBE]);
    await page.getByLabel('Layout file').setInputFiles({ name: 'map.png', mimeType: 'image/png', buffer: png });
    await waitForPageValue(page, `document.querySelector('button[aria-label="Undo"]')?.title === 'Undo open layout (Ctrl+Z)'`);
    const [left, right] = await stageColors(page, [LEFT_PROBE, RIGHT_PROBE]);
    assertColor(left!, skin, 'the near-skin half is skin');
    assert.notDeepEqual(right, before, 'the accent stroke on the right is gone');
    // Background is left clear, so the picture under the layout shows there. (Not "no label colour": the
    // picture comes from a random seed and may itself hold a label colour at the probe, e.g. black.)
    await page.getByRole('button', { name: 'Show layout' }).click(); // a toggle: hides it
    const [picture] = await stageColors(page, [RIGHT_PROBE]);
    await page.getByRole('button', { name: 'Show layout' }).click();
    assertColor(right!, picture!, 'the off-white half is background (left clear)');
    await app.studio.screenshot('44-layout-opened');
  });
});
