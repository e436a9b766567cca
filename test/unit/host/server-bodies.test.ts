/**
 * Large request bodies in browser mode are read one at a time (electron/host/request-body.ts): while
 * one large upload is still arriving, a second one waits unread, and small requests are answered
 * meanwhile; once the first is done the second is read and answered. Real host, real server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { Host } from '../../../electron/host/host.js';
import { LARGE_BODY_BYTES } from '../../../electron/host/request-body.js';
import { startServer, type RunningServer } from '../../../electron/host/server.js';
import { tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

let host: Host;
let server: RunningServer;
const data = tempDir('server-bodies');

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  server = await startServer(host, { port: 0, staticRoot: null });
});

after(async () => {
  await server?.close();
  await host?.close();
  data.remove();
});

interface Answer {
  status: number;
  body: { ok: boolean; error?: { code: string } };
}

/** A POST whose body the caller writes; `answer` settles when the server has answered. */
function post(channel: string, contentLength: number): { req: ClientRequest; answer: Promise<Answer> } {
  let req!: ClientRequest;
  const answer = new Promise<Answer>((resolve, reject) => {
    req = httpRequest(
      {
        host: '127.0.0.1',
        port: server.port,
        path: `/api/invoke/${channel}`,
        method: 'POST',
        agent: false,
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${server.token}`, 'Content-Length': contentLength },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Answer['body'] }));
      },
    );
    req.on('error', reject);
  });
  return { req, answer };
}

/** A generate body of `size` bytes with an unknown mode: refused by the contract, nothing queued. */
function largeGenerate(size: number): Buffer {
  const body = Buffer.alloc(size, 'A');
  Buffer.from('{"mode":"nope","prompt":"x","initImage":"').copy(body);
  body.write('"}', size - 2);
  return body;
}

test('a second large upload waits unread until the first is answered; small requests go on meanwhile', { timeout: 120_000 }, async () => {
  const size = 4 * LARGE_BODY_BYTES;
  const bodyA = largeGenerate(size);
  const bodyB = largeGenerate(size);
  const a = post('settings.get', size);
  const pendingA = { settled: false };
  void a.answer.finally(() => (pendingA.settled = true));
  // Half of A: the server is reading it, and holds the slot.
  a.req.write(bodyA.subarray(0, size / 2));

  const b = post('generate', size);
  const pendingB = { settled: false };
  void b.answer.finally(() => (pendingB.settled = true));
  b.req.end(bodyB);

  // Small requests are answered while A is incomplete; B is not, however long we wait for them.
  for (let i = 0; i < 5; i++) {
    const small = post('app.info', 2);
    small.req.end('{}');
    assert.equal((await small.answer).status, 200);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(pendingA.settled, false);
  assert.equal(pendingB.settled, false, 'the second large body waited for the first');

  a.req.end(bodyA.subarray(size / 2));
  const answerA = await a.answer;
  assert.equal(answerA.status, 400, JSON.stringify(answerA.body));
  const answerB = await b.answer;
  assert.equal(answerB.status, 400);
  assert.equal(answerB.body.error?.code, 'E_INVALID_REQUEST', JSON.stringify(answerB.body));
});

test('a declared upload over the limit is refused at once, without waiting for the large-body slot', async () => {
  const size = 4 * LARGE_BODY_BYTES;
  const a = post('generate', size);
  a.req.write(largeGenerate(size).subarray(0, size / 2)); // holds the slot
  const over = post('generate', 200 * 1024 * 1024);
  over.req.on('error', () => undefined);
  over.req.write('{');
  const refused = await over.answer;
  assert.equal(refused.status, 413);
  assert.equal(refused.body.error?.code, 'E_TOO_LARGE');
  a.req.end(largeGenerate(size).subarray(size / 2));
  assert.equal((await a.answer).status, 400);
});
