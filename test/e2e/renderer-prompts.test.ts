/**
 * A1111 prompts in the prompt panel, end to end in Chromium against a real `studio serve`: a long weighted
 * prompt shows A1111's counter over two chunks (…/150), Ctrl+Up writes (word:1.1) around the word under the
 * caret, and the generated item's details and PNG infotext keep the prompt exactly as typed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseA1111Parameters } from '../../electron/shared/a1111.js';
import { readPngMetadata } from '../../electron/history/png.js';
import { useStudio } from './support/studio-suite.js';
import { REPO_ROOT } from './support/renderer-build.js';

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
    const shown = await page.locator('.canvas-info').textContent();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.waitForFunction(`document.querySelector('.canvas-info')?.textContent !== ${JSON.stringify(shown)}`);
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

  it('offers the installed embeddings as completions while a word is typed; choosing one inserts its name, and the run records it', async () => {
    const { page } = app.studio;
    // A 3-vector embedding (emb_params [3, 32], the tiny text encoder's width), installed in this data folder.
    const file = join(REPO_ROOT, 'test', 'fixtures', 'parity', 'prompt-embedding.safetensors');
    mkdirSync(join(app.server.dataDir, 'embeddings'), { recursive: true });
    copyFileSync(file, join(app.server.dataDir, 'embeddings', 'shiny-style.safetensors'));
    copyFileSync(file, join(app.server.dataDir, 'embeddings', 'shiny-other.safetensors'));

    const box = page.getByRole('textbox', { name: 'Prompt', exact: true });
    await box.fill('');
    await box.focus(); // the panel asks for the names again on focus
    await box.pressSequentially('a red fox, shi');
    const list = page.getByRole('listbox', { name: 'Embeddings for prompt' });
    await list.getByRole('option', { name: /^shiny-other/ }).waitFor();
    assert.deepEqual(await list.getByRole('option').allInnerTexts().then((t) => t.map((x) => x.split('\n')[0]!.replace(/embedding$/, '').trim())), ['shiny-other', 'shiny-style']);
    await app.studio.screenshot('prompts-03-completions');
    await box.press('ArrowDown');
    await list.getByRole('option', { name: /^shiny-style/, selected: true }).waitFor();
    await box.press('Enter');
    await list.waitFor({ state: 'detached' });
    assert.equal(await box.inputValue(), 'a red fox, shiny-style');
    // The caret is after the name: typing goes on from there.
    await box.pressSequentially(', snow');
    assert.equal(await box.inputValue(), 'a red fox, shiny-style, snow');
    // A1111's counter counts the embedding as its 3 vectors.
    const plain = (await app.server.invoke('tokenize', { text: 'a red fox, , snow' })).count;
    await page.locator('#prompt-tokens').getByText(`${plain + 3}/75`, { exact: true }).waitFor();

    // In the negative prompt, a click chooses; Esc closes the list without changing the text.
    const negative = page.getByRole('textbox', { name: 'Negative prompt' });
    await negative.fill('');
    await negative.pressSequentially('blurry, SHINY-O');
    const negList = page.getByRole('listbox', { name: 'Embeddings for negative prompt' });
    await negList.getByRole('option', { name: /^shiny-other/ }).click();
    assert.equal(await negative.inputValue(), 'blurry, shiny-other');
    await negative.pressSequentially(' shin');
    await negList.waitFor();
    await negative.press('Escape');
    await negList.waitFor({ state: 'detached' });
    await negative.press('Backspace');
    await negative.press('Backspace');
    await negative.press('Backspace');
    await negative.press('Backspace');
    await negative.press('Backspace');
    assert.equal(await negative.inputValue(), 'blurry, shiny-other');

    const shown = await page.locator('.canvas-info').textContent();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.waitForFunction(`document.querySelector('.canvas-info')?.textContent !== ${JSON.stringify(shown)}`);
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    const hash = createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 12);
    assert.equal(item.params.prompt, 'a red fox, shiny-style, snow');
    assert.deepEqual(item.params.embeddings, [
      { name: 'shiny-style', hash },
      { name: 'shiny-other', hash },
    ]);
  });

  it('an imported A1111 PNG (weights, BREAK, escapes, Clip skip 2, TI hashes) comes back whole with Reuse parameters', async () => {
    const { page } = app.studio;
    // Written by Pillow as A1111 writes it (test/unit/history/fixtures/make_a1111_fixtures.py).
    const file = join(REPO_ROOT, 'test', 'unit', 'history', 'fixtures', 'a1111-prompt-features.png');
    const { results } = await app.server.invoke('history.import', { paths: [file] });
    const id = (results[0] as { id: number }).id;
    assert.ok(Number.isInteger(id), JSON.stringify(results));
    // The panel holds something else first, so every field is seen to change.
    await page.getByRole('spinbutton', { name: 'Clip skip' }).fill('1');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('3');
    await page.getByRole('combobox', { name: 'Sampler' }).selectOption('ddim');

    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${id}"]`).click();
    const details = page.getByRole('region', { name: `Details of #${id}` });
    await details.getByRole('button', { name: 'Reuse parameters' }).click();
    const prompt = '(masterpiece:1.2), a red apple on a table, ((shiny)), [blurry]\nBREAK\n(green leaves:0.8), \\(still life\\)';
    await page.waitForFunction(`document.querySelector('#prompt').value === ${JSON.stringify(prompt)}`);
    assert.equal(await page.getByRole('textbox', { name: 'Negative prompt' }).inputValue(), '(worst quality:1.4), EasyNegative');
    assert.equal(await page.getByRole('spinbutton', { name: 'Clip skip' }).inputValue(), '2');
    assert.equal(await page.getByRole('combobox', { name: 'Seed mode' }).inputValue(), 'fixed');
    assert.equal(await page.getByRole('spinbutton', { name: 'Seed' }).inputValue(), '1234');
    assert.equal(await page.getByRole('spinbutton', { name: 'Steps' }).inputValue(), '20');
    assert.equal(await page.getByRole('spinbutton', { name: 'CFG' }).inputValue(), '7');
    assert.equal(await page.getByRole('combobox', { name: 'Sampler' }).inputValue(), 'euler_a');
    assert.equal(await page.getByRole('combobox', { name: 'Size' }).inputValue(), '64x64');
    // Two chunks (BREAK), counted as A1111 does (86 tokens in the tiny vocabulary).
    await page.locator('#prompt-tokens').getByText('86/150', { exact: true }).waitFor();
    await app.studio.screenshot('prompts-04-a1111-reuse');
  });
});
