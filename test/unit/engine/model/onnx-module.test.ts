/**
 * The WebGPU pre-check: a missing Vulkan loader becomes a reason, not a native warning on stderr. The
 * options sessions are made with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OnnxModule, sessionOptions, webgpuUnavailableReason } from '../../../../electron/engine/model/onnx-module.js';
import { MODELS } from '../../../support/engine-fixtures.js';

test('a Vulkan loader that cannot be opened is a reason naming it; elsewhere than Linux nothing is checked', () => {
  const reason = webgpuUnavailableReason('linux', 'libstudio-no-such-vulkan.so.1');
  assert.match(reason ?? '', /^Couldn't load Vulkan .*libstudio-no-such-vulkan\.so\.1/);
  assert.equal(webgpuUnavailableReason('darwin', 'libstudio-no-such-vulkan.so.1'), null);
  assert.equal(webgpuUnavailableReason('win32', 'libstudio-no-such-vulkan.so.1'), null);
});

test('a library that loads is no reason to skip WebGPU', { skip: process.platform !== 'linux' && 'dlopen of libc: Linux only' }, () => {
  assert.equal(webgpuUnavailableReason('linux', 'libc.so.6'), null);
});

test("sessions take the thread setting and stop their threads' spinning when a run returns", async () => {
  const two = sessionOptions('cpu', { threads: 2 });
  assert.equal(two.intraOpNumThreads, 2);
  assert.equal(two.graphOptimizationLevel, 'all');
  assert.deepEqual(two.extra, { session: { force_spinning_stop: '1' } });
  assert.equal('intraOpNumThreads' in sessionOptions('cpu', { threads: 0 }), false, '0: onnxruntime decides');
  // onnxruntime takes the option: a session made with it runs.
  const vae = await OnnxModule.open(join(MODELS, 'tiny-sd1', 'vae_decoder', 'model.onnx'), 'vae_decoder/model.onnx', { providers: ['cpu'], threads: 2 });
  try {
    const dims = [1, 4, 8, 8];
    const out = await vae.run({ latent_sample: { data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims } }, [vae.outputName(['sample'])]);
    assert.ok(Object.values(out)[0]!.data.length > 0);
  } finally {
    await vae.release();
  }
});
