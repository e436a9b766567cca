/**
 * End to end in Chromium: the model manager. Against a studio that starts with only the txt2img fixture,
 * import the inpainting fixture by path (copied into the library), see it listed with its kind in the
 * manager and the picker, generate with it, and remove it again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Locator } from 'playwright-core';
import { FIXTURE_MODELS, INPAINT_MODEL_DIR } from './support/studio-server.js';
import { useStudio } from './support/studio-suite.js';

describe('renderer end to end: model manager', { timeout: 180_000 }, () => {
  const app = useStudio({ models: [join(FIXTURE_MODELS, 'tiny-sd1')] });
  let importedId = '';

  it('imports a folder by path into the library and lists it with its kind, in the manager and the picker', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /^tiny-sd1 · txt2img/ }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Models' }).click();
    const dialog = page.getByRole('dialog', { name: 'Models' });
    await dialog.getByRole('row', { name: /tiny-sd1/ }).first().waitFor();
    assert.equal(await dialog.getByRole('row', { name: /tiny-sd1-inpaint/ }).count(), 0);

    await dialog.getByRole('textbox', { name: 'Folder to import' }).fill(INPAINT_MODEL_DIR);
    await dialog.getByRole('checkbox', { name: 'Copy into the library' }).check();
    await dialog.getByRole('button', { name: 'Import', exact: true }).click();
    const row = dialog.getByRole('row', { name: /tiny-sd1-inpaint/ });
    await row.waitFor();
    const cells = await row.getByRole('cell').allInnerTexts();
    assert.equal(cells[1], 'inpaint', `kind column: ${JSON.stringify(cells)}`);
    assert.equal(cells[2], 'copied', `origin column: ${JSON.stringify(cells)}`);
    assert.equal(cells[5], 'ready');
    await app.studio.screenshot('20-models-imported');

    const { models } = await app.server.invoke('models.list', {});
    const entry = models.find((m) => m.name === 'tiny-sd1-inpaint');
    assert.ok(entry, `listed by the host: ${JSON.stringify(models.map((m) => m.name))}`);
    assert.equal(entry.origin, 'copied');
    assert.notEqual(entry.dir, INPAINT_MODEL_DIR, 'the folder was copied into the library');
    importedId = entry.id;

    // Importing from the manager also selects the new model, which makes it the library's default.
    await row.getByText('(default)').waitFor();
    assert.equal(await dialog.getByRole('button', { name: `Make ${entry.name} the default` }).isDisabled(), true);
    const other = models.find((m) => m.name === 'tiny-sd1');
    assert.ok(other);
    const otherRow = dialog.locator(`tr[data-model-id="${other.id}"]`);
    await dialog.getByRole('button', { name: `Make ${other.name} the default` }).click();
    await otherRow.getByText('(default)').waitFor();
    assert.equal((await app.server.invoke('models.list', {})).defaultId, other.id);
    await dialog.getByRole('button', { name: `Make ${entry.name} the default` }).click();
    await row.getByText('(default)').waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
  });

  it('generates with the imported model', async () => {
    const { page } = app.studio;
    const picker = page.getByRole('combobox', { name: 'Model', exact: true });
    await waitForSelected(picker, /tiny-sd1-inpaint/);
    await page.getByRole('combobox', { name: 'Size' }).selectOption('64x64');
    await page.getByRole('spinbutton', { name: 'Steps' }).fill('4');
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a lighthouse at dusk');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).waitFor();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    const id = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    const item = await app.server.invoke('history.get', { id });
    assert.equal(item.model.id, importedId);
  });

  it('removes the imported model', async () => {
    const { page } = app.studio;
    await page.getByRole('button', { name: 'Models' }).click();
    const dialog = page.getByRole('dialog', { name: 'Models' });
    await dialog.getByRole('button', { name: 'Remove tiny-sd1-inpaint' }).click();
    await dialog.getByRole('row', { name: /tiny-sd1-inpaint/ }).waitFor({ state: 'detached' });
    const { models } = await app.server.invoke('models.list', {});
    assert.equal(models.some((m) => m.id === importedId), false);
    await app.studio.screenshot('21-models-removed');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.getByRole('option', { name: /tiny-sd1-inpaint/ }).waitFor({ state: 'detached' });
  });
});

async function waitForSelected(picker: Locator, name: RegExp): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (name.test(await picker.locator('option:checked').innerText())) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`the picker did not select ${name}`);
}
