/**
 * Every channel rejects 1,000 generated bad payloads with a clear, serializable error naming the
 * field, and the host keeps serving: through `Host.invoke` (both front doors' entry) and, for a sample,
 * over the browser-mode WebSocket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { CHANNELS, type ChannelName } from '../../../electron/shared/contract.js';
import { requestSchemas } from '../../../electron/shared/contract-schemas.js';
import { Host } from '../../../electron/host/host.js';
import { startServer, type RunningServer } from '../../../electron/host/server.js';
import { badPayloads, EXAMPLES, seededRandom } from './support/contract-payloads.js';
import { ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const PAYLOADS_PER_CHANNEL = 1000;
const WEBSOCKET_PAYLOADS_PER_CHANNEL = 40;
const SEED = 20261126;

let host: Host;
let server: RunningServer;
const data = tempDir('fuzz');

before(async () => {
  host = await Host.open({ dataDir: data.dir, engineSettings: TEST_ENGINE_SETTINGS });
  server = await startServer(host, { port: 0 });
});

after(async () => {
  await server?.close();
  await host?.close();
  data.remove();
});

function payloadsFor(channel: ChannelName, count: number, seed: number) {
  return badPayloads(requestSchemas[channel], EXAMPLES[channel] as Record<string, unknown>, count, seededRandom(seed));
}

test(`every channel rejects ${PAYLOADS_PER_CHANNEL} bad payloads with a clear error, and the host keeps serving`, async () => {
  for (const [i, channel] of CHANNELS.entries()) {
    for (const bad of payloadsFor(channel, PAYLOADS_PER_CHANNEL, SEED + i)) {
      const result = await host.invoke(channel, bad.payload);
      assert.equal(result.ok, false, `${channel} accepted ${bad.what}`);
      if (result.ok) continue;
      const { error } = result;
      assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'name'], `${channel}: ${bad.what}`);
      assert.equal(error.code, 'E_INVALID_REQUEST', `${channel}: ${bad.what}: ${error.message}`);
      assert.ok(error.message.startsWith(`${channel}: `), `${channel}: ${bad.what}: ${error.message}`);
      if (bad.field !== '(request)') assert.ok(error.message.includes(bad.field), `${channel}: ${bad.what}: the message should name ${bad.field}: ${error.message}`);
      assert.ok(error.message.length < 2000, `${channel}: ${bad.what}: message of ${error.message.length} characters`);
    }
  }
  // Still serving, and the example payloads still pass validation.
  assert.equal(ok('history.counts', await host.invoke('history.counts', {})).total, 0);
  assert.equal(ok('app.info', await host.invoke('app.info', {})).name, 'Latent Studio');
});

test('unknown channels are rejected by name', async () => {
  for (const channel of ['nope', 'history.nuke', '__proto__', 'constructor', 42, null, 'x'.repeat(10_000)]) {
    const result = await host.invoke(channel, {});
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.error.code, 'E_INVALID_REQUEST');
      assert.match(result.error.message, /unknown channel/);
      assert.ok(result.error.message.length < 200);
    }
  }
});

test('over the WebSocket, bad payloads get error results and the connection keeps working', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/ws?token=${server.token}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  try {
    const pending = new Map<number, (r: { ok: boolean; error?: { code: string; message: string } }) => void>();
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string; id: number; result: { ok: boolean } };
      if (m.type === 'result') pending.get(m.id)?.(m.result);
    });
    let nextId = 1;
    const call = (channel: unknown, payload: unknown) =>
      new Promise<{ ok: boolean; error?: { code: string; message: string } }>((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ type: 'invoke', id, channel, payload }));
      });
    for (const [i, channel] of CHANNELS.entries()) {
      for (const bad of payloadsFor(channel, WEBSOCKET_PAYLOADS_PER_CHANNEL, SEED * 7 + i)) {
        // JSON turns NaN into null and drops undefined: skip the few payloads that JSON makes valid.
        const wire = JSON.parse(JSON.stringify({ p: bad.payload }) ?? '{}') as { p?: unknown };
        if (requestSchemas[channel].safeParse(wire.p).success) continue;
        const result = await call(channel, wire.p);
        assert.equal(result.ok, false, `${channel} accepted ${bad.what} over the WebSocket`);
        assert.equal(result.error?.code, 'E_INVALID_REQUEST');
      }
    }
    const info = await call('app.info', {});
    assert.equal(info.ok, true);
  } finally {
    ws.terminate();
  }
});
