import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANNELS, EVENTS } from '../../../electron/shared/contract.js';
import { filePathProblem, parseRequest, requestSchemas } from '../../../electron/shared/contract-schemas.js';
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
  assert.deepEqual([...EVENTS].sort(), ['engine.status', 'history.changed', 'job.preview', 'job.progress', 'queue.changed']);
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
