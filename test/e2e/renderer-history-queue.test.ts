/**
 * End to end in Chromium against a real `studio serve` with the tiny inpainting fixture: "Reveal file"
 * in the history detail panel (browser mode shows the image file's path), outpainting a history item
 * keeps it as the parent of the result, and the queue list reorders waiting jobs by drag-and-drop and
 * by the Move up / Move down buttons, checked against the host's queue order.
 * Screenshots go to test-results/renderer/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { StudioBrowser } from './support/browser.js';
import { useStudio } from './support/studio-suite.js';

/** One 64 px latent tile of the fixture, a few steps: well under a second a job. */
const SIZE_OPTION = '64x64';
const FAST_STEPS = '4';
/** PNG files start with these 8 bytes. */
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('renderer end to end: reveal file, outpaint lineage, queue reorder', { timeout: 240_000 }, () => {
  const app = useStudio({ beforeClose: (server) => server.invoke('queue.clear', { includeRunning: true }).catch(() => undefined) });
  let originalId = 0;

  it('reveals the image file of a history item: in a browser the panel shows its path to copy', async () => {
    const { page } = app.studio;
    await page.getByRole('option', { name: /tiny-sd1-inpaint · inpaint/ }).waitFor({ state: 'attached' });
    await page.getByRole('combobox', { name: 'Size' }).selectOption(SIZE_OPTION);
    await page.getByRole('spinbutton', { name: 'Steps' }).fill(FAST_STEPS);
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a lighthouse on a cliff');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/64 × 64 · #\d+/).waitFor();
    originalId = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    assert.ok(originalId > 0);

    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${originalId}"]`).click();
    const detail = page.getByRole('region', { name: `Details of #${originalId}` });
    assert.equal(await detail.getByRole('textbox', { name: 'Image file path' }).count(), 0, 'no path before asking');
    await detail.getByRole('button', { name: 'Reveal file' }).click();
    const shown = await detail.getByRole('textbox', { name: 'Image file path' }).inputValue();
    const expected = await app.server.invoke('history.reveal', { id: originalId });
    assert.deepEqual(expected.revealed, false, 'browser mode has no file manager');
    assert.equal(shown, expected.path);
    assert.ok(shown.startsWith(app.server.dataDir), `inside the data folder: ${shown}`);
    assert.ok(existsSync(shown) && readFileSync(shown).subarray(0, 8).equals(PNG_SIGNATURE), 'the path is the PNG itself');
    await detail.getByRole('button', { name: 'Copy path' }).waitFor();
    await app.studio.screenshot('30-reveal-file');
  });

  it('outpaints a history item opened in the canvas, and the result is its child', async () => {
    const { page } = app.studio;
    // Start from a canvas that is not the item, so the link can only come from "Open in canvas".
    await page.getByRole('button', { name: 'New canvas' }).click();
    await page.getByRole('region', { name: 'History' }).locator(`[data-history-id="${originalId}"]`).click();
    await page.getByRole('region', { name: `Details of #${originalId}` }).getByRole('button', { name: 'Open in canvas' }).click();
    await page.getByText(`64 × 64 · #${originalId}`).waitFor();
    await page.getByRole('button', { name: 'Extend right' }).click();
    await page.getByText(`128 × 64 · #${originalId} (extended)`).waitFor();
    await page.getByRole('option', { name: 'Auto (inpaint)' }).waitFor({ state: 'attached' });
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByRole('button', { name: 'Accept' }).click();
    await page.getByText(/128 × 64 · #\d+$/).waitFor();
    const childId = Number(/#(\d+)/.exec((await page.locator('.canvas-info').textContent()) ?? '')?.[1]);
    assert.ok(childId > originalId);
    const child = await app.server.invoke('history.get', { id: childId });
    assert.equal(child.mode, 'inpaint');
    assert.deepEqual([child.output?.width, child.output?.height], [128, 64]);
    assert.equal(child.parentId, originalId, 'the outpainted result is a child of the history item it extended');
    await page.getByRole('region', { name: `Details of #${childId}` }).getByRole('button', { name: `Parent #${originalId}` }).waitFor();
    await app.studio.screenshot('31-outpaint-child');
  });

  it('reorders waiting jobs by dragging a row and with Move up / Move down; the host runs them in that order', async () => {
    const { page } = app.studio;
    // A long job holds the engine so the three small ones wait in the queue.
    await app.server.invoke('generate', { mode: 'txt2img', prompt: 'blocker', steps: 900, sampler: 'euler', width: 512, height: 512, seed: 1 });
    const small = { mode: 'txt2img', steps: 2, width: 64, height: 64, seed: 2 } as const;
    const ids: Record<string, string> = {};
    for (const name of ['job A', 'job B', 'job C']) ids[name] = (await app.server.invoke('generate', { ...small, prompt: name })).jobId;
    const queue = page.getByRole('region', { name: 'Queue' });
    const row = (name: string) => queue.locator(`li[data-job-id="${ids[name]}"]`);
    for (const name of ['job A', 'job B', 'job C']) await row(name).waitFor();
    const hostOrder = async () => (await app.server.invoke('queue.list', {})).queued.map((j) => j.prompt);
    assert.deepEqual(await hostOrder(), ['job A', 'job B', 'job C']);
    await app.studio.screenshot('32-queue-before');

    // Drag C onto the upper half of A: it lands before A.
    await row('job C').dragTo(row('job A'), { targetPosition: { x: 30, y: 3 } });
    await waitForOrder(hostOrder, ['job C', 'job A', 'job B']);
    await waitForUiOrder(queue, ['job C', 'job A', 'job B']);
    await app.studio.screenshot('33-queue-dragged');

    // Drag C onto the lower half of B: it lands after B, at the end.
    await row('job C').dragTo(row('job B'), { targetPosition: { x: 30, y: 18 } });
    await waitForOrder(hostOrder, ['job A', 'job B', 'job C']);

    // From the keyboard: Move up twice brings C to the front; Move down once puts it back behind A.
    await queue.getByRole('button', { name: 'Move up: job C' }).focus();
    await page.keyboard.press('Enter');
    await waitForOrder(hostOrder, ['job A', 'job C', 'job B']);
    await waitForUiOrder(queue, ['job A', 'job C', 'job B']);
    await queue.getByRole('button', { name: 'Move up: job C' }).click();
    await waitForOrder(hostOrder, ['job C', 'job A', 'job B']);
    await waitForUiOrder(queue, ['job C', 'job A', 'job B']);
    assert.equal(await queue.getByRole('button', { name: 'Move up: job C' }).isDisabled(), true, 'the first waiting job cannot go up');
    assert.equal(await queue.getByRole('button', { name: 'Move down: job B' }).isDisabled(), true, 'the last cannot go down');
    await queue.getByRole('button', { name: 'Move down: job C' }).click();
    await waitForOrder(hostOrder, ['job A', 'job C', 'job B']);
    await app.studio.screenshot('34-queue-moved');

    await app.server.invoke('queue.clear', { includeRunning: true });
    await queue.waitFor({ state: 'detached' });
  });
});

async function waitForOrder(read: () => Promise<string[]>, expected: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await read();
    if (JSON.stringify(last) === JSON.stringify(expected)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(last, expected, 'the host queue order');
}

async function waitForUiOrder(queue: ReturnType<StudioBrowser['page']['getByRole']>, expected: string[]): Promise<void> {
  await waitForOrder(async () => (await queue.locator('li[draggable="true"] .queue-prompt').allInnerTexts()).map((t) => t.replace(/^⠿\s*/, '').trim()), expected);
}
