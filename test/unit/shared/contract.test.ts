import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANNELS, EVENTS } from '../../../electron/shared/contract.js';
import sharp from 'sharp';
import { filePathProblem, parseRequest, pngSizeFromBase64, requestSchemas } from '../../../electron/shared/contract-schemas.js';
import { isSerializedError } from '../../../electron/shared/errors.js';
import { EXAMPLES, TINY_PNG_BASE64 } from '../host/support/contract-payloads.js';

function rejection(channel: Parameters<typeof parseRequest>[0], payload: unknown): { name: string; code: string; message: string } {
  try {
    parseRequest(channel, payload);
  } catch (err) {
    const e = err as { name: string; code: string; message: string };
    return { name: e.name, code: e.code, message: e.message };
  }
  assert.fail(`${channel} accepted ${JSON.stringify(payload)?.slice(0, 200)}`);
}

test('the channel list and the schema table name the same channels', () => {
  assert.deepEqual([...CHANNELS].sort(), Object.keys(requestSchemas).sort());
  assert.equal(new Set(CHANNELS).size, CHANNELS.length);
  assert.deepEqual([...EVENTS].sort(), ['engine.status', 'history.changed', 'job.preview', 'job.progress', 'models.changed', 'models.downloadProgress', 'queue.changed']);
});

test('every channel accepts its example request', () => {
  for (const channel of CHANNELS) parseRequest(channel, EXAMPLES[channel]);
});

test('a rejection is a serializable {name, code, message} that names the channel and the field', () => {
  const err = rejection('generate', { ...EXAMPLES.generate, steps: 'twenty' });
  assert.equal(err.code, 'E_INVALID_REQUEST');
  assert.equal(err.name, 'InvalidRequestError');
  assert.match(err.message, /^generate: steps: /);
  assert.ok(isSerializedError(JSON.parse(JSON.stringify(err))));
  assert.match(rejection('history.page', { filter: { mode: 'video' } }).message, /history\.page: filter\.mode: /);
  assert.match(rejection('history.delete', { ids: [1, -2] }).message, /ids\.1: /);
});

test('unknown keys are rejected, not ignored', () => {
  assert.match(rejection('history.counts', { sneaky: true }).message, /sneaky/);
  assert.match(rejection('generate', { ...EXAMPLES.generate, model: 'x' }).message, /model/);
});

test('generate checks the fields that depend on the mode', () => {
  assert.match(rejection('generate', { mode: 'img2img', prompt: 'x' }).message, /initImage: img2img needs an init image/);
  assert.match(rejection('generate', { mode: 'inpaint', prompt: 'x', initImage: TINY_PNG_BASE64 }).message, /mask: inpaint needs a mask/);
  assert.match(rejection('generate', { mode: 'txt2img', prompt: 'x', mask: TINY_PNG_BASE64 }).message, /mask: a mask is only for inpaint/);
  assert.match(
    rejection('generate', { mode: 'img2img', prompt: 'x', initImage: TINY_PNG_BASE64, initImageHash: 'a'.repeat(64) }).message,
    /initImageHash: give initImage or initImageHash, not both/,
  );
  parseRequest('generate', { mode: 'inpaint', prompt: 'x', initImageHash: 'b'.repeat(64), mask: TINY_PNG_BASE64, parentId: 3 });
});

test('generate in layout mode: a label map is required, refused for other modes, and must be a PNG of the picture size', async () => {
  const png = (width: number, height: number): Promise<string> =>
    sharp({ create: { width, height, channels: 3, background: '#ffffff' } }).png().toBuffer().then((b) => b.toString('base64'));
  const map = await png(64, 48);
  assert.deepEqual(pngSizeFromBase64(map), { width: 64, height: 48 });
  assert.deepEqual(pngSizeFromBase64(TINY_PNG_BASE64), { width: 1, height: 1 });
  const parsed = parseRequest('generate', { mode: 'layout', prompt: 'a face', labelMap: map, width: 64, height: 48 });
  assert.equal(parsed.labelMap, map);
  parseRequest('generate', { mode: 'layout', prompt: 'a face', labelMap: map }); // size unsaid: the model's default, checked by the engine

  assert.match(rejection('generate', { mode: 'layout', prompt: 'x' }).message, /labelMap: layout needs a label map/);
  assert.match(rejection('generate', { mode: 'txt2img', prompt: 'x', labelMap: map }).message, /labelMap: a label map is only for layout, not txt2img/);
  assert.match(
    rejection('generate', { mode: 'inpaint', prompt: 'x', initImage: TINY_PNG_BASE64, mask: TINY_PNG_BASE64, labelMap: map }).message,
    /labelMap: a label map is only for layout, not inpaint/,
  );
  assert.match(
    rejection('generate', { mode: 'layout', prompt: 'x', labelMap: map, initImage: TINY_PNG_BASE64 }).message,
    /initImage: layout draws from the label map: it takes no init image/,
  );
  assert.match(
    rejection('generate', { mode: 'layout', prompt: 'x', labelMap: map, width: 64, height: 64 }).message,
    /labelMap: the label map is 64×48; it must be the picture's size 64×64/,
  );
  assert.match(rejection('generate', { mode: 'layout', prompt: 'x', labelMap: map, width: 128 }).message, /must be the picture's size 128×48/);
  const jpeg = (await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ffffff' } }).jpeg().toBuffer()).toString('base64');
  assert.equal(pngSizeFromBase64(jpeg), null);
  assert.match(rejection('generate', { mode: 'layout', prompt: 'x', labelMap: jpeg }).message, /labelMap: must be a PNG/);
  assert.match(rejection('generate', { mode: 'layout', prompt: 'x', labelMap: 'not base64!' }).message, /labelMap: must be base64/);
  assert.equal(pngSizeFromBase64('AAAA'), null, 'too short for a PNG header');
});

test('sizes must be positive multiples of 8 within the engine limits; NaN and Infinity are refused', () => {
  for (const width of [0, -64, 63, 4104, NaN, Infinity]) {
    assert.match(rejection('generate', { ...EXAMPLES.generate, width }).message, /generate: width: /, String(width));
  }
  assert.match(rejection('generate', { ...EXAMPLES.generate, cfg: NaN }).message, /cfg: /);
  assert.match(rejection('generate', { ...EXAMPLES.generate, seed: -1 }).message, /seed: /);
});

test('file paths must be absolute and free of traversal and NUL bytes', () => {
  assert.equal(filePathProblem('/home/me/models/sd'), null);
  assert.equal(filePathProblem('C:\\Users\\me\\models'), null);
  assert.equal(filePathProblem('\\\\nas\\share\\models'), null);
  assert.match(filePathProblem('models/sd')!, /absolute/);
  assert.match(filePathProblem('/home/me/../../etc')!, /traversal/);
  assert.match(filePathProblem('C:\\a\\..\\..\\Windows')!, /traversal/);
  assert.match(filePathProblem('/tmp/a\0b')!, /NUL/);
  assert.match(rejection('models.import', { path: '/models/../../etc/passwd' }).message, /models\.import: path: .*traversal/);
  assert.match(rejection('history.import', { paths: ['/ok.png', 'rel.png'] }).message, /paths\.1: must be an absolute path/);
});

test('a huge value is reported without echoing it back', () => {
  const huge = 'x'.repeat(1_000_000);
  const err = rejection('tokenize', { text: huge });
  assert.ok(err.message.length < 1000, `message is ${err.message.length} characters`);
  const keyErr = rejection('app.info', { [huge]: 1 });
  assert.ok(keyErr.message.length < 1000, `message is ${keyErr.message.length} characters`);
});

test('models.import: copy defaults to referencing the folder in place; names are trimmed and bounded', () => {
  assert.deepEqual(parseRequest('models.import', { path: '/models/sd' }), { path: '/models/sd', copy: false });
  assert.deepEqual(parseRequest('models.import', { path: '/models/sd', copy: true, name: '  My SD  ' }), { path: '/models/sd', copy: true, name: 'My SD' });
  assert.match(rejection('models.import', { path: '/models/sd', name: '   ' }).message, /name: must not be empty/);
  assert.match(rejection('models.import', { path: '/models/sd', name: 'x'.repeat(129) }).message, /name: /);
});

test('models.download: a manifest or a URL list (exactly one), http(s) only, paths that stay in the folder', () => {
  const file = { path: 'unet/model.onnx', url: 'http://127.0.0.1:8080/unet/model.onnx' };
  parseRequest('models.download', { name: 'm', files: [file] });
  parseRequest('models.download', { name: 'm', urls: ['https://huggingface.co/x/resolve/onnx/unet/model.onnx'] });
  assert.match(rejection('models.download', { name: 'm' }).message, /files: give files \(a manifest\) or urls, exactly one/);
  assert.match(rejection('models.download', { name: 'm', files: [file], urls: [file.url] }).message, /exactly one/);
  for (const url of ['file:///etc/passwd', 'ftp://host/x', 'data:text/plain,hi', 'javascript:alert(1)', '/relative', 'not a url']) {
    assert.match(rejection('models.download', { name: 'm', urls: [url] }).message, /urls\.0: must be an http or https URL/, url);
    assert.match(rejection('models.download', { name: 'm', files: [{ ...file, url }] }).message, /files\.0\.url: /, url);
  }
  for (const path of ['../x.onnx', 'unet/../../x', '/abs/x', 'unet\\model.onnx', '.hidden', 'unet/.git/x', 'a//b', 'unet/', 'a\0b', 'C:/x', '']) {
    assert.match(rejection('models.download', { name: 'm', files: [{ ...file, path }] }).message, /files\.0\.path: /, JSON.stringify(path));
  }
  assert.match(rejection('models.download', { name: 'm', files: [{ ...file, sha256: 'ABC' }] }).message, /files\.0\.sha256: /);
  assert.match(rejection('models.download', { name: 'm', files: [{ ...file, size: -1 }] }).message, /files\.0\.size: /);
});

test('download ids are 64 lowercase hex digits; model channels take model ids', () => {
  parseRequest('models.cancelDownload', { downloadId: 'a'.repeat(64) });
  for (const downloadId of ['a'.repeat(63), 'A'.repeat(64), '../'.repeat(22), 'g'.repeat(64)]) {
    assert.match(rejection('models.cancelDownload', { downloadId }).message, /downloadId: must be a download id/);
  }
  for (const channel of ['models.remove', 'models.setDefault', 'models.select'] as const) {
    assert.match(rejection(channel, { modelId: '../etc' }).message, new RegExp(`^${channel.replace('.', '\\.')}: modelId: `));
  }
});
