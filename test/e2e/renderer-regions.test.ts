/**
 * End to end in Chromium against a real `studio serve` with the tiny fixture model: regional prompts.
 * Add two regions in the prompt panel, paint each with real mouse drags, give each a prompt (one a
 * weight), generate; the history item keeps both regions (prompts, weights, masks at the picture size),
 * its details and its PNG's infotext say so; Reuse brings both back: the list and the painted areas
 * (checked by the canvas's pixels), as one undo step.
 * Screenshots go to test-results/renderer/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { useStudio } from './support/studio-suite.js';
import { dragOnImage, stageColors } from './support/canvas.js';

const SIZE = 64;
/** The canvas's blank colour (CanvasView's backdrop #1b1d22) and how strongly regions tint (REGION_OPACITY). */
const BLANK: [number, number, number] = [0x1b, 0x1d, 0x22];
const REGION_OPACITY = 0.5;
/** The first two colours new regions take (document/regions.ts REGION_COLOURS). */
const COLOURS: Array<[number, number, number]> = [[64, 160, 255], [80, 220, 120]];

const LEFT_STROKE: Array<[number, number]> = [[14, 10], [14, 54]];
const RIGHT_STROKE: Array<[number, number]> = [[48, 10], [50, 54]];
const LEFT_PROBE: [number, number] = [14, 32];
const RIGHT_PROBE: [number, number] = [49, 32];
const EMPTY_PROBE: [number, number] = [32, 4];

function tinted(colour: [number, number, number]): [number, number, number] {
  return BLANK.map((b, i) => b + (colour[i]! - b) * REGION_OPACITY) as [number, number, number];
}

function assertColour(actual: [number, number, number], expected: readonly number[], what: string): void {
  assert.ok(actual.every((c, i) => Math.abs(c - expected[i]!) <= 3), `${what}: ${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`);
}

describe('renderer end to end: regional prompts', { timeout: 300_000 }, () => {
  const app = useStudio();
  let resultId = 0;

  it('adds two regions, paints each with the mouse, and shows them in their colours', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption(`${SIZE}x${SIZE}`);
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('4');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a green meadow');
    await page.getByRole('slider', { name: 'Brush size' }).fill('10');
    const regions = page.getByRole('region', { name: 'Regions' });

    await regions.getByRole('button', { name: '+ Add region' }).click();
    const first = regions.getByRole('group', { name: 'Region 1' });
    assert.equal(await first.getByRole('button', { name: 'Paint region 1' }).getAttribute('aria-pressed'), 'true', 'a new region is what the brush paints');
    await page.getByRole('status', { name: 'Painting region' }).getByText('Region 1').waitFor();
    await page.getByText('Region 1 needs a prompt.').waitFor();
    await first.getByRole('textbox', { name: 'Region 1 prompt' }).fill('a red fox');
    await page.getByText('Region 1 has no area: paint it on the canvas, or remove it.').waitFor();
    await first.getByText('No area yet: press Paint, then paint it on the canvas.').waitFor();
    await dragOnImage(page, LEFT_STROKE);
    await first.getByText('No area yet', { exact: false }).waitFor({ state: 'detached' });

    await regions.getByRole('button', { name: '+ Add region' }).click();
    const second = regions.getByRole('group', { name: 'Region 2' });
    await second.getByRole('textbox', { name: 'Region 2 prompt' }).fill('a blue bird');
    await second.getByRole('spinbutton', { name: 'Region 2 weight' }).fill('0.7');
    await dragOnImage(page, RIGHT_STROKE);
    await page.getByText(/^txt2img · Ctrl\+Enter/).waitFor();

    const [left, right, empty] = await stageColors(page, [LEFT_PROBE, RIGHT_PROBE, EMPTY_PROBE]);
    assertColour(left!, tinted(COLOURS[0]!), 'region 1 is painted in its colour');
    assertColour(right!, tinted(COLOURS[1]!), 'region 2 is painted in its colour');
    assertColour(empty!, BLANK, 'outside both regions');
    assert.equal(await page.getByRole('button', { name: 'Undo' }).getAttribute('title'), 'Undo region brush stroke (Ctrl+Z)');
    await app.studio.screenshot('50-regions-painted');

    // Hiding a region hides its colour only.
    await second.getByRole('button', { name: 'Show region 2' }).click();
    assertColour((await stageColors(page, [RIGHT_PROBE]))[0]!, BLANK, 'hidden');
    await second.getByRole('button', { name: 'Show region 2' }).click();
    assertColour((await stageColors(page, [RIGHT_PROBE]))[0]!, tinted(COLOURS[1]!), 'shown again');
  });

  it('generates with both regions: the history item, its details and its infotext keep them', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor({ timeout: 120_000 });
    const { recent } = await app.server.invoke('queue.list', {});
    resultId = recent.find((j) => j.historyId !== null)?.historyId ?? 0;
    assert.ok(resultId > 0);

    const item = await app.server.invoke('history.get', { id: resultId });
    assert.deepEqual(item.params.regions?.map((r) => [r.prompt, r.weight]), [['a red fox', 1], ['a blue bird', 0.7]]);
    assert.equal(item.regions?.length, 2);
    for (const [i, region] of item.regions!.entries()) {
      assert.deepEqual([region.mask.width, region.mask.height], [SIZE, SIZE], 'masks at the picture size');
      const stored = await app.server.invoke('history.image', { hash: region.mask.hash });
      const { data } = await sharp(Buffer.from(stored.data, 'base64')).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      const at = ([x, y]: [number, number]) => data[y * SIZE + x];
      assert.equal(at(i === 0 ? LEFT_PROBE : RIGHT_PROBE), 255, `region ${i + 1} covers its stroke`);
      assert.equal(at(i === 0 ? RIGHT_PROBE : LEFT_PROBE), 0, `region ${i + 1} stops at the other stroke`);
      assert.equal(at(EMPTY_PROBE), 0);
    }

    // The PNG's infotext carries the Regions summary.
    const output = await app.server.invoke('history.image', { hash: item.output!.hash });
    const meta = await sharp(Buffer.from(output.data, 'base64')).metadata();
    const parameters = meta.comments?.find((c) => c.keyword === 'parameters')?.text ?? '';
    assert.match(parameters, /Regions: "a red fox \(area [\d.]+%, weight 1\); a blue bird \(area [\d.]+%, weight 0\.7\)"/, parameters);

    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${resultId}"]`).click();
    const detail = page.getByRole('region', { name: `Details of #${resultId}` });
    await detail.getByText(/^a red fox \(weight 1, area [\d.]+%\)$/).waitFor();
    await detail.getByText(/^a blue bird \(weight 0\.7, area [\d.]+%\)$/).waitFor();
    await app.studio.screenshot('51-regions-history-detail');
  });

  it('Reuse brings both regions back: the list and the painted areas, as one undo step', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Discard' }).click();
    const regions = page.getByRole('region', { name: 'Regions' });
    await regions.getByRole('button', { name: 'Remove region 2' }).click();
    await regions.getByRole('button', { name: 'Remove region 1' }).click();
    assert.equal(await regions.getByRole('group').count(), 0);
    const [leftGone, rightGone] = await stageColors(page, [LEFT_PROBE, RIGHT_PROBE]);
    assertColour(leftGone!, BLANK, 'region 1 removed');
    assertColour(rightGone!, BLANK, 'region 2 removed');

    await page.getByRole('region', { name: `Details of #${resultId}` }).getByRole('button', { name: 'Reuse parameters' }).click();
    await regions.getByRole('group', { name: 'Region 2' }).waitFor();
    assert.equal(await regions.getByRole('textbox', { name: 'Region 1 prompt' }).inputValue(), 'a red fox');
    assert.equal(await regions.getByRole('textbox', { name: 'Region 2 prompt' }).inputValue(), 'a blue bird');
    assert.equal(await regions.getByRole('spinbutton', { name: 'Region 1 weight' }).inputValue(), '1');
    assert.equal(await regions.getByRole('spinbutton', { name: 'Region 2 weight' }).inputValue(), '0.7');
    const [left, right, empty] = await stageColors(page, [LEFT_PROBE, RIGHT_PROBE, EMPTY_PROBE]);
    assertColour(left!, tinted(COLOURS[0]!), 'region 1 painted back');
    assertColour(right!, tinted(COLOURS[1]!), 'region 2 painted back');
    assertColour(empty!, BLANK, 'nothing else painted');
    await page.getByText(/^txt2img · Ctrl\+Enter/).waitFor();
    await app.studio.screenshot('52-regions-reused');

    assert.equal(await page.getByRole('button', { name: 'Undo' }).getAttribute('title'), 'Undo reuse regions (Ctrl+Z)');
    await page.getByRole('button', { name: 'Undo' }).click();
    assert.equal(await regions.getByRole('group').count(), 0);
    await page.getByRole('button', { name: 'Redo' }).click();
    await regions.getByRole('group', { name: 'Region 2' }).waitFor();
    assertColour((await stageColors(page, [LEFT_PROBE]))[0]!, tinted(COLOURS[0]!), 'redo paints it again');
  });
});
