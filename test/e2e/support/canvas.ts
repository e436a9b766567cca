/** Helpers that act on the canvas the way a person does: real mouse drags, screenshots of the stage. */
import type { Page } from 'playwright-core';
import sharp from 'sharp';

/** The stage's view: screen = image × zoom + pan (CSS pixels, relative to the stage). */
export async function imageView(page: Page): Promise<{ zoom: number; x: number; y: number; box: { x: number; y: number } }> {
  const stage = page.getByTestId('canvas-stage');
  const zoom = Number(await stage.getAttribute('data-zoom'));
  const [x, y] = ((await stage.getAttribute('data-pan')) ?? '0,0').split(',').map(Number) as [number, number];
  const box = (await stage.boundingBox())!;
  return { zoom, x, y, box };
}

/** A real mouse drag through image-pixel points. */
export async function dragOnImage(page: Page, points: Array<[number, number]>): Promise<void> {
  const v = await imageView(page);
  const at = ([ix, iy]: [number, number]) => ({ x: v.box.x + v.x + (ix + 0.5) * v.zoom, y: v.box.y + v.y + (iy + 0.5) * v.zoom });
  const first = at(points[0]!);
  await page.mouse.move(first.x, first.y);
  await page.mouse.down();
  for (const p of points.slice(1)) {
    const q = at(p);
    await page.mouse.move(q.x, q.y, { steps: 10 });
  }
  await page.mouse.up();
}

export async function clickOnImage(page: Page, [ix, iy]: [number, number]): Promise<void> {
  const v = await imageView(page);
  await page.mouse.click(v.box.x + v.x + (ix + 0.5) * v.zoom, v.box.y + v.y + (iy + 0.5) * v.zoom);
}

/** The stage's screen colour at the centre of image pixels, once the stage has settled (stageSnapshot). */
export async function stageColors(page: Page, points: Array<[number, number]>): Promise<Array<[number, number, number]>> {
  const png = await stageSnapshot(page);
  const v = await imageView(page);
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return points.map(([ix, iy]) => {
    const sx = Math.floor(v.x + (ix + 0.5) * v.zoom);
    const sy = Math.floor(v.y + (iy + 0.5) * v.zoom);
    const o = (sy * info.width + sx) * 3;
    return [data[o]!, data[o + 1]!, data[o + 2]!];
  });
}

/** Drags the mouse across the stage through the given points, each in [0,1] of the stage box. */
export async function dragOnCanvas(page: Page, points: Array<[number, number]>, stepsPerSegment = 8): Promise<void> {
  const box = await page.getByTestId('canvas-stage').boundingBox();
  if (!box) throw new Error('the canvas stage is not on screen');
  const at = ([fx, fy]: [number, number]) => ({ x: box.x + fx * box.width, y: box.y + fy * box.height });
  const first = at(points[0]!);
  await page.mouse.move(first.x, first.y);
  await page.mouse.down();
  for (const p of points.slice(1)) {
    const q = at(p);
    await page.mouse.move(q.x, q.y, { steps: stepsPerSegment });
  }
  await page.mouse.up();
}

/**
 * Moves the pointer off the stage (hides the brush cursor) and screenshots the stage once it has settled:
 * two screenshots 100 ms apart that are the same (a loaded machine can take longer than a fixed wait to
 * draw an opened picture or an undo), or the last one after `timeoutMs`. Notices are hidden for the
 * screenshot: they float over the stage and leave on their own timer, so whether one shows is timing.
 */
export async function stageSnapshot(page: Page, timeoutMs = 10_000): Promise<Buffer> {
  await page.mouse.move(2, 2);
  const stage = page.getByTestId('canvas-stage');
  const deadline = Date.now() + timeoutMs;
  await page.waitForTimeout(100);
  const shoot = () => stage.screenshot({ style: '.notices { visibility: hidden !important; }' });
  let last = await shoot();
  for (;;) {
    await page.waitForTimeout(100);
    const next = await shoot();
    if (next.equals(last) || Date.now() > deadline) return next;
    last = next;
  }
}

/** Waits until the settled stage equals `expected` (or `timeoutMs` passes) and returns the last snapshot. */
export async function stageSnapshotEqualTo(page: Page, expected: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const shot = await stageSnapshot(page, Math.max(0, deadline - Date.now()));
    if (shot.equals(expected) || Date.now() > deadline) return shot;
  }
}

/**
 * Records every progress text the page shows, so a fast job's progress is not missed between polls.
 * (Page scripts are strings: the test program is type-checked without the DOM library.)
 */
export async function recordProgress(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    window.__progressSeen = [];
    new MutationObserver(() => {
      const t = document.querySelector('.progress-text')?.textContent;
      if (t && window.__progressSeen.at(-1) !== t) window.__progressSeen.push(t);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  })()`);
}

export async function progressSeen(page: Page): Promise<string[]> {
  return (await page.evaluate('window.__progressSeen')) as string[];
}

/**
 * Polls a page expression until it is truthy. (page.waitForFunction with a string compiles it in the
 * page, which the studio's Content-Security-Policy forbids; page.evaluate goes through the debugger.)
 */
export async function waitForPageValue(page: Page, expression: string, timeoutMs = 30_000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value: unknown = await page.evaluate(expression);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
