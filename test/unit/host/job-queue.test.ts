/**
 * The job queue with the real engine process and the tiny-sd1 fixture: FIFO order and reorder,
 * cancel (queued and running), persistence across a host restart, a crash of the whole app mid-job,
 * and the engine process killed mid-job followed by recovery.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { EngineStatus, JobSummary } from '../../../electron/shared/contract.js';
import { Host } from '../../../electron/host/host.js';
import {
  FIXTURE_SIZE,
  jobFinished,
  nextEvent,
  ok,
  tempDir,
  TEST_ENGINE_SETTINGS,
  TINY_SD1,
  TINY_SD1_INPAINT,
} from './support/host-fixtures.js';

/**
 * Steps for a job that must still be running when the test acts on it (it is always cancelled or
 * killed): about 4 s of work on the tiny fixture. Euler, because PNDM can't run the full 1000.
 */
const LONG_STEPS = 1000;
const SHORT_STEPS = 2;

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function openHost(dataDir?: string): Promise<{ host: Host; dataDir: string }> {
  let dir = dataDir;
  if (!dir) {
    const t = tempDir('queue');
    cleanups.push(t.remove);
    dir = t.dir;
  }
  const host = await Host.open({ dataDir: dir, engineSettings: TEST_ENGINE_SETTINGS });
  cleanups.push(() => host.close());
  return { host, dataDir: dir };
}

async function withModel(host: Host, path = TINY_SD1): Promise<string> {
  return ok('models.import', await host.invoke('models.import', { path })).id;
}

function txt2img(prompt: string, steps: number, extra: Record<string, unknown> = {}) {
  return { mode: 'txt2img' as const, prompt, steps, sampler: 'euler' as const, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 7, ...extra };
}

async function enqueue(host: Host, request: Record<string, unknown>): Promise<string> {
  return ok('generate', await host.invoke('generate', request)).jobId;
}

/** Resolves once the job has reported its first step; fails at once if the job ends first. */
async function firstProgress(host: Host, jobId: string): Promise<void> {
  const ended = jobFinished(host, jobId).then((j) => {
    throw new Error(`job ${j.prompt} ended (${j.status}: ${j.error?.message}) before its first step was seen`);
  });
  await Promise.race([nextEvent(host, 'job.progress', (p) => p.jobId === jobId), ended]);
  ended.catch(() => undefined);
}

/** Records the order in which jobs start running. */
function recordStarts(host: Host): string[] {
  const started: string[] = [];
  host.subscribe((e) => {
    if (e.event !== 'queue.changed') return;
    for (const job of e.payload.changed) if (job.status === 'running' && started.at(-1) !== job.id) started.push(job.id);
  });
  return started;
}

test('jobs run one at a time in FIFO order; reorder moves queued jobs to the front', async () => {
  const { host } = await openHost();
  await withModel(host);
  const started = recordStarts(host);
  const a = await enqueue(host, txt2img('a', LONG_STEPS));
  await firstProgress(host, a);
  const b = await enqueue(host, txt2img('b', SHORT_STEPS));
  const c = await enqueue(host, txt2img('c', SHORT_STEPS));
  const d = await enqueue(host, txt2img('d', SHORT_STEPS));
  const listed = ok('queue.list', await host.invoke('queue.list', {}));
  assert.equal(listed.running?.id, a);
  assert.deepEqual(listed.queued.map((j) => j.id), [b, c, d]);
  assert.ok(listed.running.progress && listed.running.progress.total === LONG_STEPS, 'the running job shows its progress');

  const reordered = ok('queue.reorder', await host.invoke('queue.reorder', { jobIds: [d, c] }));
  assert.deepEqual(reordered.queued.map((j) => j.id), [d, c, b]);
  const notQueued = await host.invoke('queue.reorder', { jobIds: [a] });
  assert.equal(notQueued.ok, false);

  assert.equal(ok('cancel', await host.invoke('cancel', { jobId: a })).status, 'cancelled');
  const results = await Promise.all([b, c, d].map((id) => jobFinished(host, id)));
  assert.deepEqual(results.map((j) => j.status), ['succeeded', 'succeeded', 'succeeded']);
  assert.deepEqual(started, [a, d, c, b]);
  // Never two at once: each job started after the one before it finished.
  const byId = new Map(results.map((j) => [j.id, j]));
  assert.ok(byId.get(d)!.finishedAt! <= byId.get(c)!.startedAt!);
  assert.ok(byId.get(c)!.finishedAt! <= byId.get(b)!.startedAt!);
});

test('cancel: a queued job at once, a running job between steps; neither reaches history', async () => {
  const { host } = await openHost();
  await withModel(host);
  const running = await enqueue(host, txt2img('running', LONG_STEPS));
  const queued = await enqueue(host, txt2img('queued', SHORT_STEPS));
  await firstProgress(host, running);

  assert.equal(ok('cancel', await host.invoke('cancel', { jobId: queued })).status, 'cancelled');
  assert.equal(host.queue.get(running).status, 'running', 'cancelling a queued job leaves the running one alone');

  const t0 = Date.now();
  assert.equal(ok('cancel', await host.invoke('cancel', { jobId: running })).status, 'cancelled');
  assert.ok(Date.now() - t0 < 10_000, 'a running job stops within a step or two');
  const summary: JobSummary = host.queue.get(running);
  assert.equal(summary.error?.code, 'E_CANCELLED');
  assert.ok(summary.progress === null && summary.historyId === null);
  assert.equal(host.queue.get(queued).error?.code, 'E_CANCELLED');
  assert.equal(ok('history.counts', await host.invoke('history.counts', {})).total, 0);

  // queue.clear cancels everything queued.
  const x = await enqueue(host, txt2img('x', LONG_STEPS));
  await firstProgress(host, x);
  const y = await enqueue(host, txt2img('y', SHORT_STEPS));
  const cleared = ok('queue.clear', await host.invoke('queue.clear', { includeRunning: true }));
  assert.deepEqual(cleared.cancelled.sort(), [x, y].sort());
  assert.equal(ok('queue.list', await host.invoke('queue.list', {})).running, null);
});

test('results go to history with their parameters and the parent link (txt2img, then inpaint of it)', async () => {
  const { host } = await openHost();
  await withModel(host);
  const inpaintModel = await withModel(host, TINY_SD1_INPAINT);
  const events: string[] = [];
  host.subscribe((e) => events.push(e.event));
  const first = await jobFinished(host, await enqueue(host, txt2img('a fox', SHORT_STEPS)));
  assert.equal(first.status, 'succeeded', JSON.stringify(first.error));
  const parent = ok('history.get', await host.invoke('history.get', { id: first.historyId! }));
  assert.equal(parent.params.prompt, 'a fox');
  assert.equal(parent.params.steps, SHORT_STEPS);
  assert.equal(parent.model.id, 'tiny-sd1');
  assert.match(parent.model.hash ?? '', /^[0-9a-f]{64}$/);
  assert.ok(events.includes('job.progress') && events.includes('job.preview') && events.includes('history.changed'));

  const mask = await sharp({ create: { width: FIXTURE_SIZE, height: FIXTURE_SIZE, channels: 3, background: '#000' } })
    .composite([{ input: { create: { width: 32, height: 32, channels: 3, background: '#fff' } }, left: 16, top: 16 }])
    .png()
    .toBuffer();
  const child = await jobFinished(host, await enqueue(host, {
    mode: 'inpaint', prompt: 'a hat', steps: SHORT_STEPS, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 3,
    modelId: inpaintModel, initImageHash: parent.output!.hash, mask: mask.toString('base64'), parentId: parent.id,
  }));
  assert.equal(child.status, 'succeeded', JSON.stringify(child.error));
  const lineage = ok('history.lineage', await host.invoke('history.lineage', { id: child.historyId! }));
  assert.deepEqual(lineage.ancestors.map((i) => i.id), [parent.id]);
  assert.equal(lineage.item.initImage?.hash, parent.output!.hash);
  assert.equal(lineage.item.mode, 'inpaint');
  const image = ok('history.image', await host.invoke('history.image', { hash: lineage.item.output!.hash }));
  const meta = await sharp(Buffer.from(image.data, 'base64')).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', FIXTURE_SIZE, FIXTURE_SIZE]);
});

test('queued jobs survive a host restart; the job running at shutdown ends cancelled', async () => {
  const { host, dataDir } = await openHost();
  await withModel(host);
  const a = await enqueue(host, txt2img('a', LONG_STEPS));
  await firstProgress(host, a);
  const b = await enqueue(host, txt2img('b', SHORT_STEPS));
  const c = await enqueue(host, txt2img('c', SHORT_STEPS));
  await host.close();

  const { host: again } = await openHost(dataDir);
  assert.equal(again.queue.get(a).status, 'cancelled');
  assert.match(again.queue.get(a).error?.message ?? '', /closed/);
  const [rb, rc] = await Promise.all([jobFinished(again, b), jobFinished(again, c)]);
  assert.deepEqual([rb.status, rc.status], ['succeeded', 'succeeded']);
  assert.ok(rb.finishedAt! <= rc.startedAt!, 'they ran in their queued order');
  assert.equal(ok('history.counts', await again.invoke('history.counts', {})).total, 2);
});

test('a job interrupted by a crash of the app is marked failed with the reason; the queued one runs at the next start', async () => {
  const data = tempDir('crash');
  cleanups.push(data.remove);
  const script = fileURLToPath(new URL('./support/host-crash-child.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, data.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let enginePid = 0;
  cleanups.push(() => {
    child.kill('SIGKILL');
    if (enginePid) {
      try {
        process.kill(enginePid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const lines = await new Promise<{ running: string; queued: string }>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the child did not start its job: ${out}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const running = /RUNNING (\S+) (\d+)/.exec(out);
      const queued = /QUEUED (\S+)/.exec(out);
      if (running && queued) {
        clearTimeout(timer);
        enginePid = Number(running[2]);
        resolve({ running: running[1]!, queued: queued[1]! });
      }
    });
    child.once('exit', () => reject(new Error(`the child exited early: ${out}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));

  const { host } = await openHost(data.dir);
  const interrupted = host.queue.get(lines.running);
  assert.equal(interrupted.status, 'failed');
  assert.equal(interrupted.error?.code, 'E_INTERRUPTED');
  assert.match(interrupted.error?.message ?? '', /stopped .* while this job was running/);
  const next = await jobFinished(host, lines.queued);
  assert.equal(next.status, 'succeeded', JSON.stringify(next.error));
});

test('the engine process killed mid-job: the job fails with a clear message, the engine restarts, the next job succeeds', async () => {
  const { host } = await openHost();
  await withModel(host);
  const statuses: EngineStatus[] = [];
  host.subscribe((e) => {
    if (e.event === 'engine.status') statuses.push(e.payload);
  });
  const doomed = await enqueue(host, txt2img('doomed', LONG_STEPS));
  const next = await enqueue(host, txt2img('next', SHORT_STEPS));
  await firstProgress(host, doomed);
  const pid = host.engine.pid;
  assert.ok(pid && pid !== process.pid);
  process.kill(pid, 'SIGKILL');

  const failed = await jobFinished(host, doomed);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error?.code, 'E_ENGINE_CRASHED');
  assert.match(failed.error?.message ?? '', /engine process stopped unexpectedly \(killed by SIGKILL\)/);
  const recovered = await jobFinished(host, next);
  assert.equal(recovered.status, 'succeeded', JSON.stringify(recovered.error));
  assert.ok(statuses.some((s) => s.state === 'crashed'), 'a crashed status was sent');
  const status = ok('app.info', await host.invoke('app.info', {})).engine;
  assert.equal(status.restarts, 1);
  assert.notEqual(status.pid, pid);
  assert.ok(status.state === 'ready' || status.state === 'busy');
});
