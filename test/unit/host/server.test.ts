/**
 * Browser-mode security: token required (401), Host and Origin checked (403), loopback unless asked,
 * upload size limit (413 / WebSocket close 1009), static files confined to the renderer folder.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { Host } from '../../../electron/host/host.js';
import { isLoopbackHost, startServer, type RunningServer } from '../../../electron/host/server.js';
import { tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const UPLOAD_LIMIT = 64 * 1024;

let host: Host;
let server: RunningServer;
let bare: RunningServer;
const data = tempDir('server');
const staticRoot = join(data.dir, 'renderer-dist');

before(async () => {
  mkdirSync(join(staticRoot, 'assets'), { recursive: true });
  writeFileSync(join(staticRoot, 'index.html'), '<!doctype html><title>renderer</title>');
  writeFileSync(join(staticRoot, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(join(data.dir, 'secret.txt'), 'do not serve');
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  server = await startServer(host, { port: 0, staticRoot, maxUploadBytes: UPLOAD_LIMIT });
  bare = await startServer(host, { port: 0, staticRoot: join(data.dir, 'missing') });
});

after(async () => {
  await server?.close();
  await bare?.close();
  await host?.close();
  data.remove();
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request, so tests control Host, Origin and the exact path. */
function send(options: { path: string; method?: string; headers?: Record<string, string>; body?: string | Buffer; port?: number; chunked?: boolean }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: options.port ?? server.port, path: options.path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    if (options.body !== undefined) {
      if (options.chunked) {
        // No Content-Length: the limit must hold while streaming too.
        const buf = Buffer.from(options.body);
        for (let i = 0; i < buf.length; i += 8192) req.write(buf.subarray(i, i + 8192));
      } else req.write(options.body);
    }
    req.end();
  });
}

function invoke(channel: string, payload: unknown, headers: Record<string, string> = {}, port = server.port): Promise<Reply> {
  return send({
    path: `/api/invoke/${channel}`,
    method: 'POST',
    port,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${port === server.port ? server.token : bare.token}`, ...headers },
    body: JSON.stringify(payload),
  });
}

function wsStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

test('binds to loopback unless another address is asked for', () => {
  assert.equal(server.host, '127.0.0.1');
  assert.match(server.url, new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[\\w-]{32}$`));
  for (const h of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.8.9.10']) assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['0.0.0.0', '192.168.1.10', '::', 'example.com', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  assert.notEqual(server.token, bare.token, 'each server gets its own random token');
});

test('without the token (or with a wrong one) every route answers 401', async () => {
  const noToken = await send({ path: '/api/invoke/app.info', method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
  assert.equal(noToken.status, 401);
  assert.equal(JSON.parse(noToken.body).error.code, 'E_UNAUTHORIZED');
  assert.equal((await invoke('app.info', {}, { Authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await send({ path: '/' })).status, 401);
  assert.equal((await send({ path: `/api/images/${'a'.repeat(64)}` })).status, 401);
  assert.equal(await wsStatus(`ws://127.0.0.1:${server.port}/api/ws`), 401);
  assert.equal(await wsStatus(`ws://127.0.0.1:${server.port}/api/ws?token=${server.token}x`), 401);
});

test('the token works as a header, a query parameter, or the cookie set when the page is opened', async () => {
  const viaHeader = await invoke('app.info', {});
  assert.equal(viaHeader.status, 200);
  assert.equal(JSON.parse(viaHeader.body).result.frontDoor, 'embedded');
  const page = await send({ path: `/?token=${server.token}` });
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>renderer<\/title>/);
  const cookie = String(page.headers['set-cookie']);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  const viaCookie = await send({ path: '/assets/app.js', headers: { Cookie: cookie.split(';')[0]! } });
  assert.equal(viaCookie.status, 200);
  assert.equal(viaCookie.body, 'console.log(1)');
  assert.equal(await wsStatus(`ws://127.0.0.1:${server.port}/api/ws?token=${server.token}`), 101);
});

test('a cross-origin request or WebSocket is rejected; the same origin is accepted', async () => {
  const evil = await invoke('app.info', {}, { Origin: 'http://evil.example' });
  assert.equal(evil.status, 403);
  assert.equal(JSON.parse(evil.body).error.code, 'E_FORBIDDEN');
  assert.equal((await invoke('app.info', {}, { Origin: `http://127.0.0.1:${server.port + 1}` })).status, 403);
  assert.equal((await invoke('app.info', {}, { Origin: 'null' })).status, 403);
  assert.equal((await invoke('app.info', {}, { Origin: `http://127.0.0.1:${server.port}` })).status, 200);
  const wsUrl = `ws://127.0.0.1:${server.port}/api/ws?token=${server.token}`;
  assert.equal(await wsStatus(wsUrl, { Origin: 'http://evil.example' }), 403);
  assert.equal(await wsStatus(wsUrl, { Origin: `http://127.0.0.1:${server.port}` }), 101);
});

test('a Host header that is not this server is rejected (DNS rebinding)', async () => {
  assert.equal((await invoke('app.info', {}, { Host: `evil.example:${server.port}` })).status, 403);
  assert.equal((await invoke('app.info', {}, { Host: `127.0.0.1:${server.port + 1}` })).status, 403);
  assert.equal((await invoke('app.info', {}, { Host: 'evil.example' })).status, 403);
  assert.equal((await invoke('app.info', {}, { Host: `localhost:${server.port}` })).status, 200);
  assert.equal(await wsStatus(`ws://127.0.0.1:${server.port}/api/ws?token=${server.token}`, { Host: `rebind.example:${server.port}` }), 403);
});

test('uploads over the limit get 413 (declared or streamed); WebSocket messages over it close with 1009', async () => {
  const big = JSON.stringify({ text: 'x'.repeat(UPLOAD_LIMIT) });
  const declared = await invoke('tokenize', JSON.parse(big));
  assert.equal(declared.status, 413);
  assert.equal(JSON.parse(declared.body).error.code, 'E_TOO_LARGE');
  const streamed = await send({
    path: '/api/invoke/tokenize',
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}`, 'Transfer-Encoding': 'chunked' },
    body: big,
    chunked: true,
  });
  assert.equal(streamed.status, 413);

  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/ws?token=${server.token}`);
  await new Promise((r) => ws.once('open', r));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  ws.send(JSON.stringify({ type: 'invoke', id: 1, channel: 'tokenize', payload: { text: 'x'.repeat(UPLOAD_LIMIT) } }));
  assert.equal(await closed, 1009);
  // The server is still fine.
  assert.equal((await invoke('app.info', {})).status, 200);
});

test('contract errors come back as data with a fitting status; the body must be JSON', async () => {
  const bad = await invoke('history.get', { id: 'one' });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).error.message, /history\.get: id: /);
  assert.equal((await invoke('history.get', { id: 99 })).status, 404);
  assert.equal((await invoke('no.such', {})).status, 400);
  const form = await send({ path: '/api/invoke/app.info', method: 'POST', headers: { 'Content-Type': 'text/plain', Authorization: `Bearer ${server.token}` }, body: '{}' });
  assert.equal(form.status, 415, 'a cross-site form post (text/plain) is refused');
  const notJson = await send({ path: '/api/invoke/app.info', method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}` }, body: '{nope' });
  assert.equal(notJson.status, 400);
  assert.equal((await send({ path: '/api/invoke/app.info', headers: { Authorization: `Bearer ${server.token}` } })).status, 405);
});

test('static files stay inside the renderer folder; a missing renderer gets the placeholder page', async () => {
  const auth = { Authorization: `Bearer ${server.token}` };
  for (const path of ['/..%2fsecret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
    const r = await send({ path, headers: auth });
    // Refused, or (when URL parsing already dropped the dots) answered with the renderer's index.
    assert.ok(r.status === 403 || r.status === 400 || /<title>renderer/.test(r.body), `${path}: ${r.status}`);
    assert.doesNotMatch(r.body, /do not serve/);
  }
  const spaRoute = await send({ path: '/history/42', headers: auth });
  assert.equal(spaRoute.status, 200);
  assert.match(spaRoute.body, /<title>renderer<\/title>/, 'unknown routes get index.html');
  const placeholder = await send({ path: '/', port: bare.port, headers: { Authorization: `Bearer ${bare.token}` } });
  assert.equal(placeholder.status, 200);
  assert.match(placeholder.body, /no renderer is built/);
});
