/**
 * Request bodies (electron/host/request-body.ts): the lean parse gives exactly what JSON.parse gives
 * (same values, same refusals) while decoding long string values straight from the buffer; bodies of a
 * declared length are read into one buffer of that length; large bodies take turns for one slot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { BodySlots, freeLargeGarbage, LARGE_BODY_BYTES, mayBeLarge, parseJsonBody, PayloadTooLargeError, readBody } from '../../../electron/host/request-body.js';

const LONG = 'A'.repeat(200_000);
const LONG_B64 = Buffer.alloc(150_000, 0xab).toString('base64');

/** The same outcome as JSON.parse: the value, or a SyntaxError. */
function sameAsJsonParse(text: string): void {
  const body = Buffer.from(text, 'utf8');
  let expected: unknown;
  try {
    expected = text.length === 0 ? {} : JSON.parse(text);
  } catch (err) {
    assert.throws(() => parseJsonBody(body), SyntaxError, `JSON.parse refused ${JSON.stringify(text.slice(0, 60))}, so must this (${String(err)})`);
    return;
  }
  assert.deepEqual(parseJsonBody(body), expected, text.slice(0, 80));
}

test('parseJsonBody: the values JSON.parse gives, long strings included', () => {
  const cases = [
    '',
    '{}',
    '{"a":1}',
    `{"mode":"img2img","prompt":"x","initImage":"${LONG_B64}","mask":"${LONG_B64}","width":64}`,
    `{"initImage" : \t\n"${LONG}"\n, "n": [1, 2, {"k": "${LONG}"}]}`,
    `["${LONG}", "${LONG}", "short", null, true, 1.5e3]`,
    `"${LONG}"`,
    // Escapes in a long string: left to JSON.parse.
    `{"a":"${LONG}\\"${LONG}\\\\","b":"\\u00e9${LONG}\\n"}`,
    // A string ending in an escaped backslash, right before the closing quote, then a long value.
    `{"a":"x\\\\","b":"${LONG}"}`,
    // Non-ASCII in a long value (UTF-8 bytes decoded the same way).
    `{"prompt":"${'é€😀'.repeat(30_000)}"}`,
    // A long key stays a key.
    `{"${LONG}": "${LONG}"}`,
    // __proto__ as a key: an own property, as JSON.parse makes it.
    `{"__proto__": {"polluted": "${LONG}"}, "x": "${LONG}"}`,
  ];
  for (const text of cases) sameAsJsonParse(text);
  const parsed = parseJsonBody(Buffer.from(`{"__proto__": {"p": "${LONG}"}}`)) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  assert.ok(Object.hasOwn(parsed, '__proto__'));
});

test('parseJsonBody: refuses what JSON.parse refuses', () => {
  const cases = [
    '{',
    `{"a":"${LONG}`, // unterminated
    `{"a":"${LONG}"`, // unclosed object
    `{"a":"${LONG}",}`, // trailing comma
    `{"a":"${LONG}" "b":1}`,
    `{"a":"${LONG}\u0001"}`, // a raw control character in a long string
    `{"a":"${LONG}\n"}`,
    `{a:"${LONG}"}`,
    `\\"${LONG}"`,
    `{"a":"${LONG}"}garbage`,
    `\ufeff{"a":"${LONG}"}`,
  ];
  for (const text of cases) sameAsJsonParse(text);
});

test('parseJsonBody: a client cannot forge the placeholder of a long value', () => {
  const value = parseJsonBody(Buffer.from(`{"a":"${LONG}","b":"\\u0000x:0","c":"\\u00000"}`)) as Record<string, string>;
  assert.equal(value['a'], LONG);
  assert.equal(value['b'], '\u0000x:0');
  assert.equal(value['c'], '\u00000');
});

test('parseJsonBody: many small strings are parsed plainly, the same', () => {
  const many = JSON.stringify({ tags: Array.from({ length: 20_000 }, (_, i) => `t${i}`), big: LONG });
  sameAsJsonParse(many);
});

function request(chunks: Buffer[], contentLength?: number): Readable & { headers: { 'content-length'?: string } } {
  const stream = Readable.from(chunks) as Readable & { headers: { 'content-length'?: string } };
  stream.headers = contentLength === undefined ? {} : { 'content-length': String(contentLength) };
  return stream;
}

test('readBody: a declared length is read into one buffer of that length; the limit holds either way', async () => {
  const chunks = [Buffer.from('{"a":'), Buffer.from('"xyz"'), Buffer.from('}')];
  const declared = await readBody(request(chunks, 11), 100);
  assert.equal(declared.toString(), '{"a":"xyz"}');
  assert.equal(declared.buffer.byteLength >= 11, true);
  assert.equal((await readBody(request(chunks), 100)).toString(), '{"a":"xyz"}');
  await assert.rejects(readBody(request(chunks, 500), 100), PayloadTooLargeError);
  await assert.rejects(readBody(request(chunks), 5), PayloadTooLargeError);
  // More bytes than declared: refused, not written past the buffer.
  await assert.rejects(readBody(request(chunks, 4), 100), PayloadTooLargeError);
});

test('mayBeLarge: only a declared small body skips the slot', () => {
  assert.equal(mayBeLarge({ 'content-length': '2' }), false);
  assert.equal(mayBeLarge({ 'content-length': String(LARGE_BODY_BYTES) }), false);
  assert.equal(mayBeLarge({ 'content-length': String(LARGE_BODY_BYTES + 1) }), true);
  assert.equal(mayBeLarge({}), true);
  assert.equal(mayBeLarge({ 'content-length': 'x' }), true);
});

test('BodySlots: one holder at a time, the others in arrival order; release is idempotent', async () => {
  const slots = new BodySlots(1);
  const order: string[] = [];
  const first = await slots.acquire();
  const second = slots.acquire().then((release) => {
    order.push('second');
    return release;
  });
  const third = slots.acquire().then((release) => {
    order.push('third');
    return release;
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, []);
  assert.equal(slots.queued, 2);
  first();
  first();
  const releaseSecond = await second;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['second'], 'a second release of the first holder freed nothing more');
  releaseSecond();
  (await third)();
  assert.deepEqual(order, ['second', 'third']);
  assert.equal(slots.queued, 0);
});

test("freeLargeGarbage: a large body's strings and buffer are collected at once, not at V8's next major collection", async () => {
  let body: Buffer | null = Buffer.from(`{"initImage":"${'A'.repeat(4 * 1024 * 1024)}"}`);
  let parsed: { initImage: string } | null = parseJsonBody(body) as { initImage: string };
  const refs = [new WeakRef(body), new WeakRef(parsed)];
  body = null;
  parsed = null;
  // A WeakRef keeps its target until the current job ends.
  await new Promise((r) => setImmediate(r));
  freeLargeGarbage();
  assert.deepEqual(refs.map((r) => r.deref() === undefined), [true, true]);
  freeLargeGarbage(); // again: the collector is looked up once
});
