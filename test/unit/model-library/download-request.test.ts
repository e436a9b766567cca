import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeDownloadRequest } from '../../../electron/model-library/download-request.js';

const HF = 'https://huggingface.co/someone/sd15-onnx/resolve/onnx/';

test('a list of URLs becomes the files below their common folder, sorted, with a stable id', () => {
  const urls = [`${HF}unet/model.onnx`, `${HF}model_index.json`, `${HF}unet/weights.pb`, `${HF}tokenizer/vocab%20v2.json`];
  const a = normalizeDownloadRequest({ name: 'sd15', urls });
  assert.deepEqual(a.files.map((f) => f.path), ['model_index.json', 'tokenizer/vocab v2.json', 'unet/model.onnx', 'unet/weights.pb']);
  assert.equal(a.files[0]!.url, `${HF}model_index.json`);
  assert.match(a.id, /^[0-9a-f]{64}$/);
  assert.equal(normalizeDownloadRequest({ name: 'sd15', urls: [...urls].reverse() }).id, a.id, 'order does not matter');
  assert.notEqual(normalizeDownloadRequest({ name: 'other', urls }).id, a.id);
  // Files all in one subfolder keep that subfolder only when something else is outside it.
  assert.deepEqual(normalizeDownloadRequest({ name: 'x', urls: [`${HF}unet/model.onnx`, `${HF}unet/weights.pb`] }).files.map((f) => f.path), ['model.onnx', 'weights.pb']);
  assert.deepEqual(normalizeDownloadRequest({ name: 'x', urls: [`${HF}model_index.json`] }).files.map((f) => f.path), ['model_index.json']);
});

test('a manifest keeps sizes and checksums (lowercased) and rejects what could escape the folder', () => {
  const sha = 'AB'.repeat(32);
  const ok = normalizeDownloadRequest({ name: ' m ', files: [{ path: 'unet/model.onnx', url: `${HF}unet/model.onnx`, size: 10, sha256: sha }] });
  assert.deepEqual(ok.files, [{ path: 'unet/model.onnx', url: `${HF}unet/model.onnx`, size: 10, sha256: sha.toLowerCase() }]);
  assert.equal(ok.name, 'm');
  const bad: Array<[unknown, RegExp]> = [
    [{ name: 'm', files: [{ path: '../evil', url: HF }] }, /not a usable file path/],
    [{ name: 'm', files: [{ path: '/etc/passwd', url: HF }] }, /not a usable file path/],
    [{ name: 'm', files: [{ path: 'a//b', url: HF }] }, /not a usable file path/],
    [{ name: 'm', files: [{ path: 'a\\b', url: HF }] }, /not a usable file path/],
    [{ name: 'm', files: [{ path: '.git/config', url: HF }] }, /not a usable file path/],
    [{ name: 'm', files: [{ path: 'a', url: 'file:///etc/passwd' }] }, /only http and https/],
    [{ name: 'm', files: [{ path: 'a', url: 'not a url' }] }, /is not a URL/],
    [{ name: 'm', files: [{ path: 'a', url: HF, size: -1 }] }, /size must be a whole number/],
    [{ name: 'm', files: [{ path: 'a', url: HF, sha256: 'abc' }] }, /sha256 must be 64 hex digits/],
    [{ name: 'm', files: [{ path: 'a', url: HF }, { path: 'a', url: HF }] }, /listed twice/],
    [{ name: 'm', files: [] }, /no files/],
    [{ name: 'm', urls: [] }, /no file URLs/],
    [{ name: '  ', urls: [HF] }, /1 to 128 characters/],
  ];
  for (const [request, message] of bad) {
    assert.throws(() => normalizeDownloadRequest(request as never), (err: unknown) => (err as { code?: string }).code === 'E_INVALID_REQUEST' && message.test((err as Error).message));
  }
});
