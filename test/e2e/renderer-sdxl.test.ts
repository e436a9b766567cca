/**
 * End to end in Chromium: SDXL sizes. With an SD 1.x and an SDXL folder in the library, choosing the SDXL
 * model sets the size picker to its native square and offers SDXL's aspect buckets (scaled to the tiny
 * fixture's 64-pixel native side); a bucket generates at that size; after switching back to SD 1.x,
 * Reuse parameters on the SDXL item selects the SDXL model again with the item's size and prompt.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Locator } from 'playwright-core';
import { FIXTURE_MODELS } from './support/studio-server.js';
import { useStudio } from './support/studio-suite.js';

const PROMPT = '(a red apple:1.2) on a table BREAK studio light';

describe('renderer end to end: SDXL size buckets', { timeout: 240_000 }, () => {
  const app = useStudio({ models: [join(FIXTURE_MODELS, 'tiny-sd1'), join(FIXTURE_MODELS, 'tiny-sdxl')] });
  let itemId = 0;

  it('choosing the SDXL model offers its buckets at its native size, and a bucket generates at that size', async () => {
    const { page } = app.studio;
    const picker = page.getByRole('combobox', { name: 'Model', exact: true });
    const size = page.getByRole('combobox', { name: 'Size' });
    await page.getByRole('option', { name: /^tiny-sdxl · txt2img/ }).waitFor({ state: 'attached' });
    await picker.selectOption({ label: (await page.getByRole('option', { name: /^tiny-sdxl · txt2img/ }).innerText()).trim() });
    await waitFor(size, '64x64');
    assert.deepEqual(await size.locator('option').allInnerTexts(), [
      '64 × 64',
      '80 × 64 (1.25:1)',
      '64 × 80 (1:1.25)',
      '80 × 48 (1.67:1)',
      '48 × 80 (1:1.67)',
      '96 × 48 (2:1)',
      '48 × 96 (1:2)',
    ]);
    await size.selectOption('80x48');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('3');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill(PROMPT);
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/80 × 48 · #\d+/).waitFor();
    itemId = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id: itemId });
    assert.deepEqual([item.output?.width, item.output?.height, item.params.prompt], [80, 48, PROMPT]);
    await app.studio.screenshot('sdxl-01-bucket');
  });

  it('Reuse parameters brings back the SDXL model, its bucket size and the prompt', async () => {
    const { page } = app.studio;
    const picker = page.getByRole('combobox', { name: 'Model', exact: true });
    const size = page.getByRole('combobox', { name: 'Size' });
    await picker.selectOption({ label: (await page.getByRole('option', { name: /^tiny-sd1 · txt2img/ }).innerText()).trim() });
    for (let i = 0; i < 100 && (await size.inputValue()) === '80x48'; i++) await new Promise((r) => setTimeout(r, 100));
    assert.notEqual(await size.inputValue(), '80x48', 'SD 1.x has no 80×48 preset');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('something else');
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${itemId}"]`).click();
    await page.getByRole('region', { name: `Details of #${itemId}` }).getByRole('button', { name: 'Reuse parameters' }).click();
    await waitFor(size, '80x48');
    assert.match(await picker.locator('option:checked').innerText(), /^tiny-sdxl · txt2img/);
    assert.equal(await page.getByRole('textbox', { name: 'Prompt', exact: true }).inputValue(), PROMPT);
  });
});

async function waitFor(select: Locator, value: string): Promise<void> {
  let seen = '';
  for (let i = 0; i < 100; i++) {
    seen = await select.inputValue();
    if (seen === value) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the select shows ${seen}, not ${value}`);
}
