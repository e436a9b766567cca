/**
 * Requests that could do harm or never run are answered at once, in words: client paths are checked
 * for this platform (no `C:\x` resolved against the working folder on Linux), requests the chosen model
 * can't run get no job id, a wrongly sized mask is resized with a warning on the job, and a queued job
 * whose init image was purged fails with a plain message that names no internal path.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Host } from '../../../electron/host/host.js';
import { FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1 } from './support/host-fixtures.js';

const data = tempDir('request-hardening');
const dataDir = join(data.dir, 'data');
let host: Host;

before(async () => {
  host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
});

after(async () => {
  await host?.close();
  data.remove();
});

async function png(width: number, height: number, background = '#808080'): Promise<string> {
  return (await sharp({ create: { width, height, channels: 3, background } }).png().toBuffer()).toString('base64');
}

test('a Windows path is not absolute on Linux: export, output folder and import refuse it, and nothing is written', { skip: process.platform === 'win32' && 'POSIX-only case' }, async () => {
  const cwdBefore = readdirSync(process.cwd());
  for (const [channel, payload, field] of [
    ['history.export', { ids: [1], folder: 'C:\\exports' }, 'folder'],
    ['settings.set', { outputFolder: 'C:\\outputs' }, 'outputFolder'],
    ['history.import', { paths: ['\\\\server\\share\\a.png'] }, 'paths.0'],
    ['models.import', { path: 'D:/models/sd' }, 'path'],
  ] as const) {
    const r = await host.invoke(channel, payload);
    assert.equal(r.ok, false, channel);
    if (!r.ok) {
      assert.equal(r.error.code, 'E_INVALID_REQUEST', channel);
      assert.match(r.error.message, new RegExp(`^${channel.replace('.', '\\.')}: ${field}: is not an absolute path on this computer`), r.error.message);
    }
  }
  assert.equal(ok('settings.get', await host.invoke('settings.get', {})).outputFolder, null);
  assert.deepEqual(readdirSync(process.cwd()), cwdBefore, 'nothing was created in the working folder');
  assert.equal(existsSync(join(process.cwd(), 'C:\\outputs')), false);
});

test('requests the model cannot run are refused at enqueue, with no job', async () => {
  const { info } = host.library.info('tiny-sd1');
  assert.ok(info.sizeMultiple > 8, `the fixture needs multiples of ${info.sizeMultiple}`);
  const init = await png(FIXTURE_SIZE, FIXTURE_SIZE);
  const recentBefore = host.queue.snapshot().recent.length;
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ mode: 'txt2img', width: info.sizeMultiple + 8 }, new RegExp(`needs width and height that are multiples of ${info.sizeMultiple}, got ${info.sizeMultiple + 8}×`)],
    [{ mode: 'img2img', initImage: init, strength: 0 }, /img2img at strength 0 would hand back the init image unchanged/],
    [{ mode: 'inpaint', initImage: init, mask: init, strength: 0 }, /inpaint at strength 0/],
    [{ mode: 'img2img', initImage: init, strength: 0.1, steps: 5 }, /strength × steps must be at least 1 step/],
  ];
  for (const [patch, message] of cases) {
    const r = await host.invoke('generate', { prompt: 'x', seed: 1, steps: 2, ...patch });
    assert.equal(r.ok, false, JSON.stringify(patch));
    if (!r.ok) {
      assert.equal(r.error.code, 'E_INVALID_REQUEST');
      assert.match(r.error.message, message);
    }
  }
  const after = host.queue.snapshot();
  assert.equal(after.queued.length, 0);
  assert.equal(after.running, null);
  assert.equal(after.recent.length, recentBefore, 'no job was created, so none failed');
});

test('a mask of another size than the picture is resized, and the job says so', async () => {
  const request = { mode: 'inpaint', prompt: 'x', seed: 3, steps: 2, initImage: await png(FIXTURE_SIZE, FIXTURE_SIZE), mask: await png(32, 48, '#ffffff') } as const;
  const answer = ok('generate', await host.invoke('generate', request));
  assert.deepEqual(answer.warnings, [`The mask is 32×48 but the picture is ${FIXTURE_SIZE}×${FIXTURE_SIZE}; it was resized to fit.`]);
  const job = await jobFinished(host, answer.jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.deepEqual(job.warnings, answer.warnings);
  const fitting = ok('generate', await host.invoke('generate', { ...request, mask: await png(FIXTURE_SIZE, FIXTURE_SIZE, '#ffffff') }));
  assert.deepEqual(fitting.warnings, []);
  assert.deepEqual((await jobFinished(host, fitting.jobId)).warnings, []);
});

test('a queued job whose init image was purged fails with a plain message and no path', async () => {
  const first = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'parent', seed: 5, steps: 2 }));
  const parent = host.history.get((await jobFinished(host, first.jobId)).historyId!);
  // A long job holds the queue while the img2img job waits with the parent's image hash.
  const blocker = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'long', seed: 1, steps: 1000, sampler: 'euler' }));
  const child = ok('generate', await host.invoke('generate', { mode: 'img2img', prompt: 'child', seed: 6, steps: 4, initImageHash: parent.output!.hash }));
  ok('history.delete', await host.invoke('history.delete', { ids: [parent.id] }));
  assert.equal(ok('history.purge', await host.invoke('history.purge', { ids: [parent.id] })).filesRemoved, 1);
  ok('cancel', await host.invoke('cancel', { jobId: blocker.jobId }));
  const job = await jobFinished(host, child.jobId);
  assert.equal(job.status, 'failed');
  assert.equal(job.error?.code, 'E_NOT_FOUND');
  assert.match(job.error?.message ?? '', /The init image of this job is no longer in history \(it was purged while the job waited\)/);
  assert.doesNotMatch(job.error?.message ?? '', /\/|\\|ENOENT/);
});
