/**
 * Browser mode against clients that are not the studio's page: a refused connection is closed at once
 * (its body is never read) and connections are capped; stored images need the token or a same-origin
 * request (a page on another port of 127.0.0.1 is same-site, so it sends the cookie); and errors reach
 * the browser in words, without the data folder's path.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Host } from '../../../electron/host/host.js';
import { withTextChunks } from '../../../electron/history/png.js';
import { startServer, type RunningServer } from '../../../electron/host/server.js';
import { ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

let host: Host;
let server: RunningServer;
let capped: RunningServer;
let hash: string;
const data = tempDir('server-hardening');
const dataDir = join(data.dir, 'data');

before(async () => {
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  server = await startServer(host, { port: 0, staticRoot: null });
  capped = await startServer(host, { port: 0, staticRoot: null, maxConnections: 2 });
  const file = join(data.dir, 'picture.png');
  const pixels = await sharp({ create: { width: 24, height: 16, channels: 3, background: '#123456' } }).png().toBuffer();
  writeFileSync(file, withTextChunks(pixels, { parameters: 'a test picture\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 24x16' }));
  const report = ok('history.import', await host.invoke('history.import', { paths: [file] }));
  const imported = report.results[0]!;
  assert.equal(imported.status, 'imported');
  hash = host.history.get((imported as { id: number }).id).output!.hash;
});

after(async () => {
  await server?.close();
  await capped?.close();
  await host?.close();
  data.remove();
});

function get(path: string, headers: Record<string, string>, port = server.port): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('latin1')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function getWithHeaders(path: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function invoke(channel: string, payload: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: server.port, path: `/api/invoke/${channel}`, method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(payload));
  });
}

/** Resolves when the server closes the socket, with what it sent; rejects after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('data', (c: Buffer) => (got += c.toString()));
    const timer = setTimeout(() => reject(new Error(`the socket was still open after ${ms} ms; got ${JSON.stringify(got.slice(0, 80))}`)), ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    socket.on('error', () => undefined);
  });
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

test('after a 401 the server answers and closes the connection at once, without reading the body', async () => {
  const socket = await open(server.port);
  const closed = closedWithin(socket, 2000);
  socket.write(`POST /api/invoke/app.info HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n`);
  socket.write('x'.repeat(1024));
  const reply = await closed;
  assert.match(reply, /^HTTP\/1\.1 401 /);
  assert.match(reply, /Connection: close/i);
});

test('concurrent connections are capped: one past the cap is closed, and a freed slot is reusable', async () => {
  const first = await open(capped.port);
  const second = await open(capped.port);
  // The server counts a connection once it has accepted it.
  await new Promise((r) => setTimeout(r, 100));
  const third = await open(capped.port);
  await closedWithin(third, 2000);
  first.destroy();
  second.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const reply = await get('/api/invoke/app.info', { Authorization: `Bearer ${capped.token}` }, capped.port);
  assert.equal(reply.status, 405, 'the server answers again once connections are freed');
});

test('an image needs the token, or the cookie on a same-origin request: a page on another port gets nothing', async () => {
  const path = `/api/images/${hash}`;
  const cookie = `studio_token=${server.token}`;
  const origin = `http://127.0.0.1:${server.port}`;
  assert.equal((await get(path, { Authorization: `Bearer ${server.token}` })).status, 200);
  assert.equal((await get(`${path}?token=${server.token}`, {})).status, 200);
  // What Chromium sends for the studio's own <img>, and for the address typed in the bar.
  assert.equal((await get(path, { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' })).status, 200);
  assert.equal((await get(path, { Cookie: cookie, 'Sec-Fetch-Site': 'none' })).status, 200);
  // A browser that sends no fetch metadata (plain http on a LAN address): the Referer must be this server.
  assert.equal((await get(path, { Cookie: cookie, Referer: `${origin}/` })).status, 200);

  // <img src> on a page at http://127.0.0.1:<other port>: same-site, so the cookie goes along.
  for (const headers of <Array<Record<string, string>>>[
    { Cookie: cookie, 'Sec-Fetch-Site': 'same-site' },
    { Cookie: cookie, 'Sec-Fetch-Site': 'cross-site' },
    { Cookie: cookie, Referer: `http://127.0.0.1:${server.port + 1}/` },
    { Cookie: cookie },
  ]) {
    const r = await get(path, headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(JSON.parse(r.body).error.code, 'E_FORBIDDEN');
    assert.doesNotMatch(r.body, /PNG/);
  }
  const thumbnail = await get(`${path}?thumbnail=1`, { Cookie: cookie, 'Sec-Fetch-Site': 'same-site' });
  assert.equal(thumbnail.status, 403);
});

test('a stored image is revalidated at every use, so a cached copy never skips the checks', async () => {
  const path = `/api/images/${hash}`;
  const cookie = `studio_token=${server.token}`;
  const first = await getWithHeaders(path, { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin' });
  assert.equal(first.status, 200);
  assert.match(String(first.headers['cache-control']), /no-cache/);
  assert.doesNotMatch(String(first.headers['cache-control']), /immutable|max-age=[1-9]/);
  const etag = String(first.headers['etag']);
  assert.equal((await getWithHeaders(path, { Cookie: cookie, 'Sec-Fetch-Site': 'same-origin', 'If-None-Match': etag })).status, 304);
  assert.equal((await getWithHeaders(path, { Cookie: cookie, 'Sec-Fetch-Site': 'same-site', 'If-None-Match': etag })).status, 403);
});

test('a download URL with a malformed % escape is a 400 in words, not a 500', async () => {
  const r = await invoke('models.download', { name: 'm', urls: ['http://127.0.0.1:9/models/unet%zz/model.onnx'] });
  assert.equal(r.status, 400, r.body);
  const { error } = JSON.parse(r.body) as { error: { code: string; message: string } };
  assert.equal(error.code, 'E_INVALID_REQUEST');
  assert.match(error.message, /malformed "%" escape/);
  assert.doesNotMatch(error.message, /URI malformed/);
});

test("an error a browser client sees never shows the data folder's path", async () => {
  const r = await invoke('settings.set', { outputFolder: join(dataDir, 'host.sqlite', 'out') });
  assert.equal(r.status, 422);
  const { error } = JSON.parse(r.body) as { error: { code: string; message: string } };
  // Refused by the folder check before anything is created (a file stands where a folder should be).
  assert.equal(error.code, 'E_INVALID');
  assert.ok(!error.message.includes(dataDir), error.message);
  assert.match(error.message, /<data folder>/);
});
