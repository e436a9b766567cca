/**
 * The library's change event and what removing a model does to its queued jobs, through Host.invoke:
 * `models.changed` on import, setDefault, remove and a finished download; queued jobs of a removed
 * model fail at once with E_MODEL_REMOVED (others keep their place); a `.safetensors` file is answered
 * with the command that converts it. Real host, real engine process, tiny fixtures, a local HTTP server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Events } from '../../../electron/shared/contract.js';
import { Host } from '../../../electron/host/host.js';
import { convertCommand, venvPython } from '../../../electron/model-library/convert-command.js';
import { serveModel } from '../model-library/support.js';
import { FIXTURE_SIZE, nextEvent, ok, tempDir, TEST_ENGINE_SETTINGS, TINY_SD1, TINY_SD1_INPAINT } from './support/host-fixtures.js';

const data = tempDir('models-changed');
let host: Host;
const changes: Array<Events['models.changed']> = [];

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS });
  host.subscribe((e) => {
    if (e.event === 'models.changed') changes.push(e.payload);
  });
});

after(async () => {
  await host?.close();
  data.remove();
});

function failure(result: Awaited<ReturnType<Host['invoke']>>): { code: string; message: string } {
  assert.equal(result.ok, false, 'expected an error');
  if (result.ok) throw new Error('unreachable');
  return result.error;
}

test('models.changed fires for import, setDefault and remove, with the default after each; not for a refused import', async () => {
  const a = ok('models.import', await host.invoke('models.import', { path: TINY_SD1 }));
  assert.deepEqual(changes.splice(0), [{ kind: 'imported', modelId: a.id, defaultId: a.id }]);
  const b = ok('models.import', await host.invoke('models.import', { path: TINY_SD1_INPAINT, copy: true }));
  assert.deepEqual(changes.splice(0), [{ kind: 'imported', modelId: b.id, defaultId: a.id }]);

  failure(await host.invoke('models.import', { path: TINY_SD1 })); // the same model twice
  assert.deepEqual(changes.splice(0), [], 'nothing changed, nothing announced');

  ok('models.setDefault', await host.invoke('models.setDefault', { modelId: b.id }));
  assert.deepEqual(changes.splice(0), [{ kind: 'default', modelId: b.id, defaultId: b.id }]);
  ok('models.select', await host.invoke('models.select', { modelId: a.id }));
  assert.deepEqual(changes.splice(0), [{ kind: 'default', modelId: a.id, defaultId: a.id }]);

  ok('models.remove', await host.invoke('models.remove', { modelId: b.id }));
  assert.deepEqual(changes.splice(0), [{ kind: 'removed', modelId: b.id, defaultId: a.id }]);
});

test('a finished download announces the new model', async () => {
  const server = await serveModel(TINY_SD1_INPAINT);
  try {
    const changed = nextEvent(host, 'models.changed', (c) => c.kind === 'downloaded');
    const done = nextEvent(host, 'models.downloadProgress', (p) => p.phase === 'done' || p.phase === 'failed');
    ok('models.download', await host.invoke('models.download', { name: 'fetched', files: server.manifest() }));
    const final = await done;
    assert.equal(final.phase, 'done', JSON.stringify(final.error));
    const event = await changed;
    assert.equal(event.modelId, final.modelId);
    const list = ok('models.list', await host.invoke('models.list', {}));
    assert.ok(list.models.some((m) => m.id === event.modelId && m.origin === 'downloaded'));
    assert.equal(event.defaultId, list.defaultId);
    ok('models.remove', await host.invoke('models.remove', { modelId: event.modelId }));
  } finally {
    await server.close();
  }
});

test('removing a model fails its queued jobs at once with a clear error; other jobs keep their place', async () => {
  const keep = ok('models.list', await host.invoke('models.list', {})).models.find((m) => m.dir === TINY_SD1)!;
  const doomed = ok('models.import', await host.invoke('models.import', { path: TINY_SD1_INPAINT, copy: true }));
  // A long job on the kept model holds the engine, so the next three wait in the queue.
  const blocker = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'blocker', steps: 900, sampler: 'euler', width: 512, height: 512, seed: 1, modelId: keep.id }));
  const small = { mode: 'txt2img', steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 2 } as const;
  const first = ok('generate', await host.invoke('generate', { ...small, prompt: 'doomed 1', modelId: doomed.id }));
  const other = ok('generate', await host.invoke('generate', { ...small, prompt: 'kept', modelId: keep.id }));
  const second = ok('generate', await host.invoke('generate', { ...small, prompt: 'doomed 2', modelId: doomed.id }));
  try {
    assert.deepEqual(host.queue.snapshot().queued.map((j) => j.id), [first.jobId, other.jobId, second.jobId]);
    const started = Date.now();
    const removed = ok('models.remove', await host.invoke('models.remove', { modelId: doomed.id }));
    assert.deepEqual(removed.failedJobs, [first.jobId, second.jobId]);

    const snapshot = host.queue.snapshot();
    assert.equal(snapshot.running?.id, blocker.jobId, 'the running job is not touched');
    assert.deepEqual(snapshot.queued.map((j) => j.id), [other.jobId]);
    for (const id of [first.jobId, second.jobId]) {
      const job = snapshot.recent.find((j) => j.id === id);
      assert.equal(job?.status, 'failed');
      assert.equal(job?.error?.code, 'E_MODEL_REMOVED');
      assert.match(job?.error?.message ?? '', /The model "tiny-sd1-inpaint" was removed before this job started; pick another model/);
      assert.ok((job?.finishedAt ?? 0) >= started, 'failed now, not when its turn would have come');
    }
  } finally {
    await host.queue.clear(true);
  }
});

test('removing a model the library does not have is E_NOT_FOUND', async () => {
  const r = failure(await host.invoke('models.remove', { modelId: 'no-such-model' }));
  assert.equal(r.code, 'E_NOT_FOUND');
});

test('a .safetensors file: import answers the convert command, and models.convertCommand gives it as data', async () => {
  const file = join(data.dir, 'checkpoints', 'dreamy v2.safetensors');
  const expected = convertCommand({ source: file });
  const refused = failure(await host.invoke('models.import', { path: file }));
  assert.equal(refused.code, 'E_NEEDS_CONVERSION');
  assert.ok(refused.message.includes(expected.display), refused.message);
  assert.ok(refused.message.includes(`then import ${expected.out}`), refused.message);

  const command = ok('models.convertCommand', await host.invoke('models.convertCommand', { path: file, fp16: true }));
  assert.equal(command.out, join(data.dir, 'checkpoints', 'dreamy v2-onnx-fp16'));
  assert.deepEqual(command.argv.slice(-3), [file, command.out, '--fp16']);
  assert.match(command.command, /convert\.py '.*dreamy v2\.safetensors' '.*dreamy v2-onnx-fp16' --fp16$/);
});

test('the convert command points at the native-models folder beside the bundled model (the Electron build is elsewhere)', async () => {
  const nativeModels = join(data.dir, 'resources', 'native-models');
  // The bundled folder need not exist for this: absent bundled models are left out of the library.
  const desktop = await Host.open({ dataDir: join(data.dir, 'desktop'), engineSettings: TEST_ENGINE_SETTINGS, bundledModelDir: join(nativeModels, 'emoji-ldm') });
  try {
    const command = ok('models.convertCommand', await desktop.invoke('models.convertCommand', { path: join(data.dir, 'x.safetensors') }));
    assert.deepEqual(command.argv.slice(0, 2), [venvPython(process.platform, nativeModels), join(nativeModels, 'tools', 'convert.py')]);
  } finally {
    await desktop.close();
  }
});
