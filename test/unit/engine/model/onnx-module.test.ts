/** The WebGPU pre-check: a missing Vulkan loader becomes a reason, not a native warning on stderr. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webgpuUnavailableReason } from '../../../../electron/engine/model/onnx-module.js';

test('a Vulkan loader that cannot be opened is a reason naming it; elsewhere than Linux nothing is checked', () => {
  const reason = webgpuUnavailableReason('linux', 'libstudio-no-such-vulkan.so.1');
  assert.match(reason ?? '', /^Couldn't load Vulkan .*libstudio-no-such-vulkan\.so\.1/);
  assert.equal(webgpuUnavailableReason('darwin', 'libstudio-no-such-vulkan.so.1'), null);
  assert.equal(webgpuUnavailableReason('win32', 'libstudio-no-such-vulkan.so.1'), null);
});

test('a library that loads is no reason to skip WebGPU', { skip: process.platform !== 'linux' && 'dlopen of libc: Linux only' }, () => {
  assert.equal(webgpuUnavailableReason('linux', 'libc.so.6'), null);
});
