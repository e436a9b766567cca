/**
 * Request bodies in browser mode, held to about twice their size in memory, one large body at a time.
 *
 * Four simultaneous 79 MiB uploads took the server to a 905 MB peak, and 654 MB stayed resident: each
 * body was held as its chunks, then joined into one buffer, then as a string of the whole body, then
 * parsed, which copies every string value again. Here:
 * - a request whose body may be large waits for a slot before its body is read (its bytes stay in the
 *   socket meanwhile: the client is slowed by TCP, not buffered here), and keeps the slot until its
 *   answer is sent, so one large body is in memory at a time;
 * - a body of declared length is read straight into one buffer of exactly that length;
 * - the body is parsed without a string of the whole of it: each long string value (a base64 image)
 *   is decoded straight from the buffer, and only the rest (a few hundred bytes) goes through
 *   JSON.parse. Peak: the buffer plus its long strings, about twice the body, instead of four times;
 * - once a very large body has been answered, a full garbage collection runs before the next large
 *   body is read (freeLargeGarbage): V8 collects such strings only at its next major collection, so
 *   one body's leftovers were still resident while the next arrived (and for seconds after the last).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bodies up to this size (declared by Content-Length) need no slot: every ordinary request. */
export const LARGE_BODY_BYTES = 1024 * 1024;
/** How many large bodies may be in memory at once. */
export const MAX_LARGE_BODIES = 1;
/** String values at least this long are decoded straight from the body buffer. */
const LONG_STRING_BYTES = 64 * 1024;
/** Past this many strings the body is not a request with a few images: plain JSON.parse. */
const MAX_SCANNED_STRINGS = 10_000;

/** After a body at least this large, its garbage is collected at once. */
export const COLLECT_AFTER_BYTES = 8 * 1024 * 1024;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

export class PayloadTooLargeError extends Error {}

/** A counting semaphore: at most `slots` holders at once, the others wait in arrival order. */
export class BodySlots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(slots = MAX_LARGE_BODIES) {
    this.free = slots;
  }

  /** How many requests wait for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with the release once a slot is free (release is idempotent). */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

let collect: (() => void) | null | undefined;

/**
 * A full garbage collection, now. The flag is set at run time (once, the first time): `studio serve`
 * is started by a plain `node` (bin/studio.mjs), whose command line we don't choose.
 */
export function freeLargeGarbage(): void {
  if (collect === undefined) {
    try {
      const global = globalThis as { gc?: () => void };
      if (typeof global.gc === 'function') collect = global.gc;
      else {
        setFlagsFromString('--expose-gc');
        collect = runInNewContext('gc') as () => void;
      }
    } catch {
      collect = null;
    }
  }
  collect?.();
}

/** True unless the request declares a body of at most LARGE_BODY_BYTES (no length: may be large). */
export function mayBeLarge(headers: { 'content-length'?: string | undefined }): boolean {
  const declared = Number(headers['content-length']);
  return !(headers['content-length'] !== undefined && Number.isFinite(declared) && declared <= LARGE_BODY_BYTES);
}

/**
 * Reads a request body up to `limit` bytes; throws PayloadTooLargeError beyond it. With a declared
 * length the bytes go straight into one buffer of that size (no chunk list, no second copy to join).
 */
export async function readBody(req: AsyncIterable<Buffer> & { headers: { 'content-length'?: string | undefined } }, limit: number): Promise<Buffer> {
  const header = req.headers['content-length'];
  const declared = header === undefined ? NaN : Number(header);
  if (Number.isFinite(declared) && declared > limit) throw new PayloadTooLargeError();
  if (Number.isInteger(declared) && declared >= 0) {
    const body = Buffer.allocUnsafe(declared);
    let size = 0;
    for await (const chunk of req) {
      if (size + chunk.length > declared) throw new PayloadTooLargeError();
      chunk.copy(body, size);
      size += chunk.length;
    }
    return size === declared ? body : body.subarray(0, size);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new PayloadTooLargeError();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Where a string literal's characters start and end (quotes excluded) in the body. */
interface Span {
  start: number;
  end: number;
}

/**
 * JSON.parse of a UTF-8 body (an empty body is `{}`), the same values and the same refusals, without
 * a string of the whole body: each long string value without escapes is decoded from the buffer
 * directly, and the rest is parsed with placeholders put back by a reviver.
 */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return {};
  if (body.length < LONG_STRING_BYTES) return JSON.parse(body.toString('utf8'));
  const spans = longStringValues(body);
  if (spans === null || spans.length === 0) return JSON.parse(body.toString('utf8'));

  // A placeholder no client can forge: it names this call's random nonce.
  const nonce = `\u0000${Math.random().toString(36).slice(2)}${Date.now().toString(36)}:`;
  const values = new Map<string, string>();
  const parts: Buffer[] = [];
  let from = 0;
  spans.forEach((span, i) => {
    const value = body.toString('utf8', span.start, span.end);
    // JSON allows no raw control character in a string (JSON.parse refuses them; so does this).
    if (/[\u0000-\u001f]/.test(value)) throw new SyntaxError(`Bad control character in string literal in JSON at position ${span.start}`);
    const key = `${nonce}${i}`;
    values.set(key, value);
    parts.push(body.subarray(from, span.start), Buffer.from(JSON.stringify(key).slice(1, -1), 'utf8'));
    from = span.end;
  });
  parts.push(body.subarray(from));
  const skeleton = Buffer.concat(parts).toString('utf8');
  return JSON.parse(skeleton, (_key, value: unknown) => (typeof value === 'string' && value.startsWith(nonce) ? values.get(value) ?? value : value));
}

/**
 * The long string values of a JSON body that have no escapes, or null when the body has too many
 * strings (or an unterminated one) to be worth it. Scans from quote to quote with Buffer.indexOf, so a
 * long value costs no JavaScript per byte. A string followed by ':' is a key, and stays as it is.
 */
function longStringValues(body: Buffer): Span[] | null {
  const spans: Span[] = [];
  let pos = 0;
  let strings = 0;
  for (;;) {
    const open = body.indexOf(QUOTE, pos);
    if (open < 0) return spans;
    if (++strings > MAX_SCANNED_STRINGS) return null;
    let close = open + 1;
    for (;;) {
      close = body.indexOf(QUOTE, close);
      if (close < 0) return null; // unterminated: JSON.parse says so
      let backslashes = 0;
      while (body[close - 1 - backslashes] === BACKSLASH) backslashes++;
      if (backslashes % 2 === 0) break;
      close++;
    }
    const start = open + 1;
    if (close - start >= LONG_STRING_BYTES && !isKey(body, close + 1) && body.subarray(start, close).indexOf(BACKSLASH) < 0) {
      spans.push({ start, end: close });
    }
    pos = close + 1;
  }
}

/** True when the next byte after JSON whitespace is ':' (the string was an object key). */
function isKey(body: Buffer, from: number): boolean {
  let i = from;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return body[i] === COLON;
}
