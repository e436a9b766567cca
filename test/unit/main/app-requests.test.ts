/**
 * The app protocol's answers (electron/main/app-requests.ts) as a plain module, since the Electron binary
 * can't run here: stored images and thumbnails by hash with their real type, unknown hashes and
 * malformed routes refused, and no path out of the renderer folder, however it is spelled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HistoryStore } from '../../../electron/history/store.js';
import { createAppRequestHandler, imageMime } from '../../../electron/main/app-requests.js';
import { APP_ORIGIN, CONTENT_SECURITY_POLICY } from '../../../electron/main/security-policy.js';
import { MODEL, noiseImage, params, tempDir } from '../../support/history-fixtures.js';

const temp = tempDir('app-requests-');
const SECRET = 'not for the renderer';
let store: HistoryStore;
let handle: (request: Request) => Promise<Response>;
let hash: string;

before(async () => {
  const rendererRoot = join(temp.dir, 'renderer', 'dist');
  mkdirSync(join(rendererRoot, 'assets'), { recursive: true });
  writeFileSync(join(rendererRoot, 'index.html'), '<!doctype html><title>studio</title>');
  writeFileSync(join(rendererRoot, 'assets', 'app.js'), 'console.log(1)');
  // Beside the renderer folder: what a traversal would be after.
  writeFileSync(join(temp.dir, 'renderer', 'secret.txt'), SECRET);
  writeFileSync(join(temp.dir, 'secret.txt'), SECRET);
  store = await HistoryStore.open(join(temp.dir, 'history'));
  const item = await store.add({ params: params(), model: MODEL, output: noiseImage(1) });
  hash = item.output!.hash;
  handle = createAppRequestHandler({ rendererRoot, images: store });
});
after(() => {
  store.close();
  temp.cleanup();
});

function get(path: string, method = 'GET'): Promise<Response> {
  return handle(new Request(`${APP_ORIGIN}${path}`, { method }));
}

test('a stored image and its thumbnail, by hash, with the type of their bytes', async () => {
  for (const [path, mime, file] of [
    [`/api/images/${hash}`, 'image/png', () => store.imagePath(hash)],
    [`/api/images/${hash}.png`, 'image/png', () => store.imagePath(hash)],
    [`/api/images/${hash}?thumbnail=1`, 'image/webp', () => store.thumbnailPath(hash)],
  ] as const) {
    const res = await get(path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), mime, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(file()), path);
  }
  const head = await get(`/api/images/${hash}`, 'HEAD');
  assert.deepEqual([head.status, head.headers.get('content-length'), (await head.arrayBuffer()).byteLength], [200, String(readFileSync(store.imagePath(hash)).length), 0]);
});

test('unknown hashes, malformed image routes and other /api paths are 404, never the page', async () => {
  for (const path of [
    `/api/images/${'0'.repeat(64)}`,
    `/api/images/${hash.slice(1)}`,
    `/api/images/${hash.toUpperCase()}`,
    `/api/images/${hash}.jpg`,
    `/api/images/${hash}/x`,
    '/api/images/..%2f..%2fsecret.txt',
    '/api/images/',
    '/api/invoke/app.info',
  ]) {
    const res = await get(path);
    assert.equal(res.status, 404, path);
    assert.doesNotMatch(await res.text(), /doctype/, path);
  }
});

test('a file in the store that is no image is not served as one', async () => {
  const other = 'ab'.repeat(32);
  mkdirSync(join(store.imagePath(other), '..'), { recursive: true });
  writeFileSync(store.imagePath(other), '<script>alert(1)</script>');
  assert.equal((await get(`/api/images/${other}`)).status, 404);
});

test('renderer files with their type and the CSP; a route without a file is the page', async () => {
  const js = await get('/assets/app.js');
  assert.deepEqual([js.status, js.headers.get('content-type')], [200, 'text/javascript; charset=utf-8']);
  for (const path of ['/', '/index.html', '/history/12']) {
    const res = await get(path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY);
    assert.match(await res.text(), /<title>studio<\/title>/);
  }
});

test('no path leaves the renderer folder: dot segments, encoded or not, encoded slashes and NUL', async () => {
  for (const path of [
    '/../secret.txt',
    '/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/%2e%2e/secret.txt',
    '/..%2fsecret.txt',
    '/..%2f..%2fsecret.txt',
    '/assets/..%2f..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/index.html%00.png',
    '/%E0%A4%A', // not valid percent-encoding
  ]) {
    const res = await get(path);
    const body = await res.text();
    assert.notEqual(body, SECRET, path);
    assert.ok(res.status === 404 || (res.status === 200 && /<title>studio/.test(body)), `${path}: ${res.status}`);
  }
});

test('other hosts and methods are refused', async () => {
  assert.equal((await handle(new Request('app://elsewhere/index.html'))).status, 404);
  assert.equal((await get(`/api/images/${hash}`, 'POST')).status, 405);
  assert.equal((await get('/index.html', 'DELETE')).status, 405);
});

test('image types are read from the bytes', () => {
  assert.equal(imageMime(readFileSync(store.imagePath(hash))), 'image/png');
  assert.equal(imageMime(readFileSync(store.thumbnailPath(hash))), 'image/webp');
  assert.equal(imageMime(Uint8Array.from([0xff, 0xd8, 0xff, 0xe0])), 'image/jpeg');
  assert.equal(imageMime(new TextEncoder().encode('GIF89a')), null);
  assert.equal(imageMime(new Uint8Array()), null);
});
