/**
 * End to end through the front door a browser uses: `studio serve` started as a process, a WebSocket
 * client imports the tiny-sd1 fixture, generates through the contract, receives progress events, and
 * finds the result in history.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { WebSocket } from 'ws';
import type { ChannelName, EventName, Events, InvokeResult, RequestInputs, Responses } from '../../electron/shared/contract.js';

const STUDIO_BIN = fileURLToPath(new URL('../../bin/studio.mjs', import.meta.url));
const TINY_SD1 = fileURLToPath(new URL('../fixtures/models/tiny-sd1', import.meta.url));
const START_TIMEOUT_MS = 60_000;

const dataDir = mkdtempSync(join(tmpdir(), 'studio-e2e-'));
let child: ChildProcess | null = null;
after(() => {
  child?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

interface Started {
  url: string;
  token: string;
  host: string;
  port: number;
  dataDir: string;
}

/** Starts `studio serve`; resolves with its JSON line (stdout) and its stderr up to the sentence for a person. */
function startServe(): Promise<{ started: Started; stderr: string }> {
  child = spawn(process.execPath, [STUDIO_BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--providers', 'cpu', '--threads', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = child;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`studio serve did not start: ${out} ${err}`)), START_TIMEOUT_MS);
    const check = (): void => {
      const line = out.split('\n')[0];
      if (out.includes('\n') && line && /in a browser.*\n/.test(err)) {
        clearTimeout(timer);
        resolve({ started: JSON.parse(line) as Started, stderr: err });
      }
    };
    proc.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      check();
    });
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      check();
    });
    proc.once('exit', (code) => reject(new Error(`studio serve exited with ${code}: ${err}`)));
  });
}

class Client {
  private nextId = 1;
  private readonly pending = new Map<number, (r: InvokeResult<ChannelName>) => void>();
  readonly events: Array<{ event: EventName; payload: unknown }> = [];
  private readonly waiters: Array<{ match: (e: { event: EventName; payload: unknown }) => boolean; resolve: (p: unknown) => void }> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string; id: number; result: InvokeResult<ChannelName>; event: EventName; payload: unknown };
      if (m.type === 'result') this.pending.get(m.id)?.(m.result);
      if (m.type === 'event') {
        const e = { event: m.event, payload: m.payload };
        this.events.push(e);
        for (const w of [...this.waiters]) {
          if (w.match(e)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(e.payload);
          }
        }
      }
    });
  }

  async call<C extends ChannelName>(channel: C, payload: RequestInputs[C]): Promise<Responses[C]> {
    const id = this.nextId++;
    const result = await new Promise<InvokeResult<ChannelName>>((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ type: 'invoke', id, channel, payload }));
    });
    if (!result.ok) throw new Error(`${channel} failed: ${JSON.stringify(result.error)}`);
    return result.result as Responses[C];
  }

  waitFor<E extends EventName>(event: E, match: (p: Events[E]) => boolean, timeoutMs = 120_000): Promise<Events[E]> {
    const seen = this.events.find((e) => e.event === event && match(e.payload as Events[E]));
    if (seen) return Promise.resolve(seen.payload as Events[E]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        match: (e) => e.event === event && match(e.payload as Events[E]),
        resolve: (p) => {
          clearTimeout(timer);
          resolve(p as Events[E]);
        },
      });
    });
  }
}

test('studio serve: a WebSocket client generates with the tiny-sd1 fixture, sees progress, finds the result in history', async () => {
  const { started, stderr } = await startServe();
  assert.equal(started.host, '127.0.0.1');
  assert.match(started.token, /^[\w-]{32}$/);
  // stdout stays one JSON line for scripts; a person reads one sentence on stderr with the address, token included.
  const told = stderr.trim().split('\n').filter((l) => l.includes('in a browser'));
  assert.deepEqual(told, [`Latent Studio is ready: open ${started.url} in a browser (Ctrl+C stops it).`]);
  assert.ok(started.url.includes(`token=${started.token}`), started.url);

  const ws = new WebSocket(`ws://127.0.0.1:${started.port}/api/ws?token=${started.token}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const client = new Client(ws);
  try {
    const info = await client.call('app.info', {});
    assert.equal(info.frontDoor, 'serve');
    assert.equal(info.dataDir, dataDir);

    const model = await client.call('models.import', { path: TINY_SD1 });
    assert.deepEqual([model.id, model.origin, model.kind], ['tiny-sd1', 'referenced', 'txt2img']);
    assert.deepEqual(await client.call('models.setDefault', { modelId: 'tiny-sd1' }), { defaultId: 'tiny-sd1' });
    const { models, defaultId } = await client.call('models.list', {});
    assert.equal(defaultId, 'tiny-sd1');
    assert.ok(models.some((m) => m.id === 'tiny-sd1' && m.isDefault));
    const tokens = await client.call('tokenize', { text: 'a small red fox' });
    // The fixture's small BPE vocabulary splits words further than CLIP's: at least one token per word.
    assert.ok(tokens.count >= 4, `count ${tokens.count}`);
    assert.deepEqual([tokens.maxTokens, tokens.truncated], [75, false]);

    const steps = 3;
    const { jobId, seed } = await client.call('generate', { mode: 'txt2img', prompt: 'a small red fox', steps, sampler: 'euler', width: 64, height: 64, seed: 42 });
    assert.equal(seed, 42);
    const ended = (j: { id: string; status: string }) => j.id === jobId && ['succeeded', 'failed', 'cancelled'].includes(j.status);
    const done = await client.waitFor('queue.changed', (d) => d.changed.some(ended));
    const job = done.changed.find(ended)!;
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));

    const progress = client.events.filter((e) => e.event === 'job.progress').map((e) => e.payload as Events['job.progress']);
    assert.deepEqual(progress.filter((p) => p.jobId === jobId).map((p) => p.step), Array.from({ length: steps }, (_, i) => i + 1));
    const preview = await client.waitFor('job.preview', (p) => p.jobId === jobId, 5000);
    assert.ok((await sharp(Buffer.from(preview.png, 'base64')).metadata()).width === preview.width);
    await client.waitFor('history.changed', (h) => h.kind === 'added' && h.ids.includes(job.historyId!), 5000);

    const page = await client.call('history.search', { text: 'fox' });
    assert.equal(page.items.length, 1);
    const item = page.items[0]!;
    assert.equal(item.id, job.historyId);
    assert.deepEqual([item.params.prompt, item.params.seed, item.params.steps, item.model.id], ['a small red fox', 42, steps, 'tiny-sd1']);
    assert.equal(item.model.hash, model.contentHash, 'history records the library content hash');

    // The image itself, as a browser's <img> would load it.
    const res = await fetch(`http://127.0.0.1:${started.port}/api/images/${item.output!.hash}?token=${started.token}`);
    assert.equal(res.status, 200);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 64, 64]);
  } finally {
    ws.terminate();
  }

  // A graceful stop on SIGTERM.
  const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
  child!.kill('SIGTERM');
  assert.equal(await exited, 0);
});
