/**
 * Live painting's channels (live.frame, live.keep, live.stop) reach browser mode's server the way the
 * page sends them (over its WebSocket, or POST /api/invoke) and pass the same Host, Origin, token and
 * own-page checks as every other request: a tokenless or cross-origin live request is refused before
 * the host sees it (no frame is rendered, Live is not stopped), and one with the token goes through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { Host } from '../../../electron/host/host.js';
import { startServer, type RunningServer } from '../../../electron/host/server.js';
import { tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

let host: Host;
let server: RunningServer;
const data = tempDir('server-live');
/** The channels the host was asked for through the server. */
const reached: string[] = [];

const LIVE_REQUESTS = {
  'live.frame': { prompt: 'x', initImage: 'iVBORw0KGgo=', mask: 'iVBORw0KGgo=', width: 64, height: 64 },
  'live.keep': { frameId: '00000000-0000-4000-8000-000000000000' },
  'live.stop': {},
} as const;

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  const invoke = host.invoke.bind(host);
  host.invoke = (channel, payload) => {
    reached.push(String(channel));
    return invoke(channel, payload);
  };
  server = await startServer(host, { port: 0, staticRoot: null });
});

after(async () => {
  await server?.close();
  await host?.close();
  data.remove();
});

function post(channel: string, payload: unknown, headers: Record<string, string>): Promise<{ status: number; code: string | null }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: server.port, path: `/api/invoke/${channel}`, method: 'POST', headers: { 'Content-Type': 'application/json', ...headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          const parsed = JSON.parse(body) as { ok: boolean; error?: { code: string } };
          resolve({ status: res.statusCode ?? 0, code: parsed.ok ? null : parsed.error!.code });
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(payload));
  });
}

/** Opens the page's WebSocket and sends one live request: the upgrade's status, and the answer if it opened. */
function overWebSocket(url: string, headers: Record<string, string>, channel: string, payload: unknown): Promise<{ status: number; ok?: boolean }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.send(JSON.stringify({ type: 'invoke', id: 1, channel, payload }));
      ws.once('message', (data) => {
        const m = JSON.parse(data.toString()) as { result: { ok: boolean } };
        ws.terminate();
        resolve({ status: 101, ok: m.result.ok });
      });
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

test('a tokenless, cross-origin or other-page live request is refused before the host sees it', async () => {
  const self = `http://127.0.0.1:${server.port}`;
  const otherPort = `http://127.0.0.1:${server.port + 1}`;
  const bearer = { Authorization: `Bearer ${server.token}` };
  const cookie = { Cookie: `studio_token=${server.token}` };
  for (const [channel, payload] of Object.entries(LIVE_REQUESTS)) {
    const refusals: Array<[Record<string, string>, number, string]> = [
      [{}, 401, 'no token'],
      [{ Authorization: 'Bearer wrong' }, 401, 'a wrong token'],
      [{ ...bearer, Origin: 'http://evil.example' }, 403, 'another origin'],
      [{ ...bearer, Origin: otherPort }, 403, 'another port'],
      [{ ...bearer, Host: `evil.example:${server.port}` }, 403, 'a rebound Host'],
      // The cookie is sent by a page on another port of 127.0.0.1 too (same site): not the studio's page.
      [{ ...cookie, 'Sec-Fetch-Site': 'same-site', Origin: self }, 403, 'the cookie from another page'],
      [{ ...cookie }, 403, 'the cookie with no proof of the own page'],
    ];
    for (const [headers, status, what] of refusals) {
      const answer = await post(channel, payload, headers);
      assert.equal(answer.status, status, `${channel} with ${what}`);
      assert.equal(answer.code, status === 401 ? 'E_UNAUTHORIZED' : 'E_FORBIDDEN', `${channel} with ${what}`);
    }
    const wsUrl = `ws://127.0.0.1:${server.port}/api/ws`;
    assert.equal((await overWebSocket(wsUrl, {}, channel, payload)).status, 401, `${channel} over a tokenless WebSocket`);
    assert.equal((await overWebSocket(`${wsUrl}?token=${server.token}`, { Origin: 'http://evil.example' }, channel, payload)).status, 403, `${channel} over a cross-origin WebSocket`);
    assert.equal((await overWebSocket(wsUrl, { ...cookie, Origin: otherPort }, channel, payload)).status, 403, `${channel} over another page's WebSocket`);
  }
  assert.deepEqual(reached, [], 'no refused live request reached the host');
  assert.equal(host.live.busy, false, 'no frame is being rendered');
});

test('with the token a live request goes through, over HTTP and over the WebSocket', async () => {
  reached.length = 0;
  const answer = await post('live.stop', {}, { Authorization: `Bearer ${server.token}` });
  assert.deepEqual(answer, { status: 200, code: null });
  const ws = await overWebSocket(`ws://127.0.0.1:${server.port}/api/ws`, { Cookie: `studio_token=${server.token}`, Origin: `http://127.0.0.1:${server.port}` }, 'live.stop', {});
  assert.deepEqual(ws, { status: 101, ok: true });
  assert.deepEqual(reached, ['live.stop', 'live.stop']);
});
