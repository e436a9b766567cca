/**
 * LoRAs in the prompt panel, end to end in Chromium against a real `studio serve`: tiny LoRA fixtures
 * installed in the test's data folder are offered by the picker with their family (an SDXL one greyed for
 * the SD 1 model), choosing one inserts `<lora:name:1>`, the active LoRA's weight is edited in the panel
 * (the tag follows), a tag of the wrong family is flagged, and the generated item keeps the tag and the
 * LoRA's hash, shown in its details. An LCM-LoRA in the prompt offers the LCM sampler with its defaults,
 * and the run records them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { useStudio } from './support/studio-suite.js';
import { REPO_ROOT } from './support/renderer-build.js';

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');

describe('renderer end to end: LoRAs', { timeout: 240_000 }, () => {
  const app = useStudio({ models: [join(FIXTURES, 'models', 'tiny-sd1-named')] });

  it('picks an installed LoRA into the prompt, edits its weight, flags another family, and the run records it', async () => {
    const { page } = app.studio;
    const loras = join(app.server.dataDir, 'loras');
    mkdirSync(loras, { recursive: true });
    for (const name of ['tiny-kohya', 'tiny-sdxl-kohya']) copyFileSync(join(FIXTURES, 'loras', `${name}.safetensors`), join(loras, `${name}.safetensors`));

    await page.getByRole('combobox', { name: 'Model' }).getByRole('option', { name: /tiny-sd1-named/ }).first().waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    const box = page.getByRole('textbox', { name: 'Prompt', exact: true });
    await box.fill('a red apple');

    const picker = page.getByRole('combobox', { name: 'Add a LoRA' });
    await picker.focus(); // read again on focus: the files were copied after the page opened
    await picker.locator('option[value="tiny-sdxl-kohya"]').waitFor({ state: 'attached' });
    type OptionLike = { value: string; disabled: boolean; textContent: string | null };
    const options = await picker.locator('option').evaluateAll((els) => els.map((o) => [(o as unknown as OptionLike).value, (o as unknown as OptionLike).disabled, o.textContent]));
    assert.deepEqual(options.map(([value, disabled]) => [value, disabled]), [['', false], ['tiny-kohya', false], ['tiny-sdxl-kohya', true]]);
    assert.match(String(options[1]![2]), /tiny-kohya · SD 1\.x/);
    assert.match(String(options[2]![2]), /tiny-sdxl-kohya · SDXL · not for this model/);

    await picker.selectOption('tiny-kohya');
    assert.equal(await box.inputValue(), 'a red apple <lora:tiny-kohya:1>');
    const active = page.getByRole('list', { name: 'Active LoRAs' });
    const weight = active.getByRole('spinbutton', { name: 'Weight of tiny-kohya' });
    assert.equal(await weight.inputValue(), '1');
    await weight.fill('0.6');
    await page.waitForFunction(`document.querySelector('#prompt').value === 'a red apple <lora:tiny-kohya:0.6>'`);

    // Typed by hand: an SDXL LoRA on this SD 1 model is flagged with the reason, and removed from the list.
    await box.fill('a red apple <lora:tiny-kohya:0.6> <lora:tiny-sdxl-kohya:1>');
    await active.locator('li[data-lora="tiny-sdxl-kohya"].is-wrong').getByRole('note').getByText(/is a SDXL LoRA .*tiny-sd1-named is not SDXL/).waitFor();
    await app.studio.screenshot('loras-01-picker');
    await active.getByRole('button', { name: 'Remove tiny-sdxl-kohya' }).click();
    assert.equal(await box.inputValue(), 'a red apple <lora:tiny-kohya:0.6>');

    const shown = await page.locator('.canvas-info').textContent();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.waitForFunction(`document.querySelector('.canvas-info')?.textContent !== ${JSON.stringify(shown)}`);
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.params.prompt, 'a red apple <lora:tiny-kohya:0.6>');
    const { loras: listed } = await app.server.invoke('loras.list', {});
    assert.deepEqual(item.params.loras, [{ name: 'tiny-kohya', hash: listed.find((l) => l.name === 'tiny-kohya')!.hash }]);
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${id}"]`).click();
    await page.getByRole('region', { name: `Details of #${id}` }).locator('.detail-prompt').getByText('a red apple <lora:tiny-kohya:0.6>').waitFor();
  });

  it('an LCM-LoRA offers the LCM sampler with 4 steps and CFG 1; the run records them', async () => {
    const { page } = app.studio;
    copyFileSync(join(FIXTURES, 'loras', 'lcm-lora-tiny.safetensors'), join(app.server.dataDir, 'loras', 'lcm-lora-tiny.safetensors'));
    await page.getByRole('combobox', { name: 'Sampler' }).selectOption('euler');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('2');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a red apple');
    const picker = page.getByRole('combobox', { name: 'Add a LoRA' });
    await picker.focus();
    await picker.locator('option[value="lcm-lora-tiny"]').waitFor({ state: 'attached' });
    await picker.selectOption('lcm-lora-tiny');
    const use = page.getByRole('list', { name: 'Active LoRAs' }).getByRole('button', { name: 'Use LCM (4 steps, CFG 1)' });
    await use.click();
    assert.equal(await page.getByRole('combobox', { name: 'Sampler' }).inputValue(), 'lcm');
    assert.equal(await page.getByRole('spinbutton', { name: 'Steps' }).inputValue(), '4');
    assert.equal(await page.getByRole('spinbutton', { name: 'CFG' }).inputValue(), '1');
    await use.waitFor({ state: 'detached' }); // offered only while another sampler is chosen

    const shown = await page.locator('.canvas-info').textContent();
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.waitForFunction(`document.querySelector('.canvas-info')?.textContent !== ${JSON.stringify(shown)}`);
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.deepEqual([item.params.prompt, item.params.sampler, item.params.steps, item.params.cfg], ['a red apple <lora:lcm-lora-tiny:1>', 'lcm', 4, 1]);
  });
});
