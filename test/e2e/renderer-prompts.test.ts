/**
 * A1111 prompts in the prompt panel, end to end in Chromium against a real `studio serve`: a long weighted
 * prompt shows A1111's counter over two chunks (…/150), Ctrl+Up writes (word:1.1) around the word under the
 * caret, and the generated item's details and PNG infotext keep the prompt exactly as typed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseA1111Parameters } from '../../electron/shared/a1111.js';
import { readPngMetadata } from '../../electron/history/png.js';
import { useStudio } from './support/studio-suite.js';

/** 92 tokens in the fixtures' tiny vocabulary (tiny-sd1-inpaint): two chunks, so A1111's counter reads 92/150. */
const LONG = `(a red apple:1.2), ${Array.from({ length: 16 }, (_, i) => `leaf ${i}`).join(', ')}`;

describe('renderer end to end: A1111 prompts', { timeout: 240_000 }, () => {
  const app = useStudio();

  it('counts a long weighted prompt in chunks, Ctrl+Up weights a word, and history keeps the prompt as typed', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    const box = page.getByRole('textbox', { name: 'Prompt', exact: true });
    await box.fill(LONG);
    await page.locator('#prompt-tokens').getByText('92/150', { exact: true }).waitFor();

    // Caret inside "apple", Ctrl+Up: (a red apple:1.2) becomes (a red apple:1.3).
    const at = LONG.indexOf('apple') + 2;
    await box.focus();
    await page.evaluate(`document.querySelector('#prompt').setSelectionRange(${at}, ${at})`);
    await box.press('Control+ArrowUp');
    await page.waitForFunction(`document.querySelector('#prompt').value.startsWith('(a red apple:1.3)')`);
    // A plain word: "leaf" of "leaf 7" gets (leaf:1.1).
    const value = await box.inputValue();
    const leaf = value.indexOf('leaf 7') + 1;
    await page.evaluate(`document.querySelector('#prompt').setSelectionRange(${leaf}, ${leaf})`);
    await box.press('Control+ArrowUp');
    await page.waitForFunction(`document.querySelector('#prompt').value.includes('(leaf:1.1) 7')`);
    const typed = await box.inputValue();
    assert.ok(typed.startsWith('(a red apple:1.3), leaf 0'), typed);
    await app.studio.screenshot('prompts-01-weighted');

    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.params.prompt, typed, 'history keeps the prompt as typed');
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${id}"]`).click();
    await page.getByRole('region', { name: `Details of #${id}` }).locator('.detail-prompt').getByText(typed).waitFor();
    const png = await app.server.invoke('history.image', { hash: item.output!.hash, thumbnail: false });
    const infotext = readPngMetadata(Buffer.from(png.data, 'base64')).parameters!;
    assert.equal(parseA1111Parameters(infotext).prompt, typed, 'the PNG infotext too');
  });

  it('Clip skip: set in the panel, shown in the details and the infotext, and put back by Reuse parameters', async () => {
    const { page } = app.studio;
    const clipSkip = page.getByRole('spinbutton', { name: 'Clip skip' });
    assert.equal(await clipSkip.inputValue(), '1', 'A1111’s default');
    await clipSkip.fill('2');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a small red fox');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.params.clipSkip, 2);
    const png = await app.server.invoke('history.image', { hash: item.output!.hash, thumbnail: false });
    const infotext = readPngMetadata(Buffer.from(png.data, 'base64')).parameters!;
    assert.match(infotext.split('\n').at(-1)!, /(^|, )Clip skip: 2(, |$)/, infotext);

    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${id}"]`).click();
    const details = page.getByRole('region', { name: `Details of #${id}` });
    await details.locator('dt', { hasText: 'Clip skip' }).locator('xpath=following-sibling::dd[1]').getByText('2', { exact: true }).waitFor();
    await app.studio.screenshot('prompts-02-clip-skip');

    await clipSkip.fill('1');
    await details.getByRole('button', { name: 'Reuse parameters' }).click();
    await page.waitForFunction(`document.querySelector('input[aria-label="Clip skip"]').value === '2'`);
    assert.equal(await page.getByRole('textbox', { name: 'Prompt', exact: true }).inputValue(), 'a small red fox');
  });
});
