/**
 * In Chromium: a page on another port of 127.0.0.1 is "same-site" with the studio, so the browser sends
 * it the studio's cookie. It must still not load a stored image (an `<img>` there would learn the
 * picture's size, and a canvas more); the studio's own page loads the same URL with the cookie alone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Host } from '../../electron/host/host.js';
import { withTextChunks } from '../../electron/history/png.js';
import { startServer, type RunningServer } from '../../electron/host/server.js';
import { openStudio, type StudioBrowser } from './support/browser.js';
import { ok, tempDir, TEST_ENGINE_SETTINGS } from '../unit/host/support/host-fixtures.js';

const data = tempDir('e2e-image-origin');
let host: Host;
let server: RunningServer;
let other: Server;
let otherPort: number;
let browser: StudioBrowser;
let hash: string;

before(async () => {
  const staticRoot = join(data.dir, 'renderer');
  mkdirSync(staticRoot);
  writeFileSync(join(staticRoot, 'index.html'), '<!doctype html><title>studio</title>');
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  server = await startServer(host, { port: 0, staticRoot });
  const file = join(data.dir, 'picture.png');
  const pixels = await sharp({ create: { width: 24, height: 16, channels: 3, background: '#123456' } }).png().toBuffer();
  writeFileSync(file, withTextChunks(pixels, { parameters: 'a picture\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 24x16' }));
  const imported = ok('history.import', await host.invoke('history.import', { paths: [file] })).results[0] as { id: number };
  hash = host.history.get(imported.id).output!.hash;
  // Another site on the same address: it only serves a page.
  other = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>other</title>');
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  otherPort = (other.address() as AddressInfo).port;
  browser = await openStudio(server.url);
});

after(async () => {
  await browser?.close();
  await new Promise((r) => other?.close(r));
  await server?.close();
  await host?.close();
  data.remove();
});

/** Loads `src` in an <img> on the current page: its natural size, or null when it failed. */
function loadImage(src: string): Promise<{ width: number; height: number } | null> {
  // A string, run in the page (the tests' TypeScript has no DOM types).
  return browser.page.evaluate(`new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => resolve(null);
    img.src = ${JSON.stringify(src)};
  })`) as Promise<{ width: number; height: number } | null>;
}

test("the studio's own page loads a stored image with the cookie; a page on another port of 127.0.0.1 cannot", async () => {
  const imageUrl = `http://127.0.0.1:${server.port}/api/images/${hash}`;
  assert.equal(await browser.page.title(), 'studio');
  assert.deepEqual(await loadImage(`/api/images/${hash}`), { width: 24, height: 16 }, 'own page, cookie only');

  await browser.page.goto(`http://127.0.0.1:${otherPort}/`);
  assert.equal(await browser.page.title(), 'other');
  assert.equal(await loadImage(imageUrl), null, 'the other port gets no image');
  assert.equal(await loadImage(`${imageUrl}?thumbnail=1`), null, 'nor a thumbnail');
});
