/**
 * Browser mode: the contract over HTTP + WebSocket, plus the built renderer, for `studio serve`.
 *
 * Security (the server can start a GPU job and read history; a web page must not be able to):
 * - loopback by default: binding anywhere else happens only when asked for (`--host`);
 * - a random token, printed at start, is required on every request (header, `?token=` or the cookie
 *   set when a page is opened with `?token=`), compared in constant time; 401 without, and the
 *   connection is closed at once (its body is never read);
 * - the cookie alone opens `/api/` only to the studio's own page: a page on another port of the same
 *   address is "same-site", so the browser sends it the cookie too (an `<img>` there could load stored
 *   images). Such a request must be same-origin by its fetch metadata (`Sec-Fetch-Site`), or, from a
 *   browser that sends none (plain http on a LAN address), by its Origin or Referer; 403 otherwise. The
 *   renderer's `<img src="/api/images/…">` keeps working unchanged, and the token never goes into image
 *   URLs (where "copy image address", logs or a shared link would carry it off);
 * - concurrent connections are capped (`maxConnections`); one past the cap is closed;
 * - the Host header must name this server (a loopback name, or what was asked for), which defeats DNS
 *   rebinding; a cross-origin Origin is rejected (CSRF, cross-site WebSocket hijacking); 403;
 * - request bodies and WebSocket messages are limited in size; 413 (WebSocket: close 1009).
 *
 * Wire protocol:
 * - `POST /api/invoke/<channel>` with the JSON request: answers the `InvokeResult` JSON.
 * - `GET /api/images/<hash>` (`?thumbnail=1`): the stored image bytes, for `<img src>`.
 * - `GET /api/ws` (WebSocket): send `{type:'invoke', id, channel, payload}`, receive
 *   `{type:'result', id, result}`; every event arrives as `{type:'event', event, payload}`.
 * - any other GET: the renderer's files from the static root (index.html for unknown routes), or a
 *   placeholder page when no renderer is built.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StudioEvent } from '../shared/contract.js';
import type { SerializedError } from '../shared/errors.js';
import type { Host } from './host.js';
import { BodySlots, COLLECT_AFTER_BYTES, freeLargeGarbage, mayBeLarge, parseJsonBody, PayloadTooLargeError, readBody } from './request-body.js';

export const DEFAULT_SERVE_HOST = '127.0.0.1';
export const DEFAULT_SERVE_PORT = 7870;
/**
 * Largest request body or WebSocket message: two base64 images (init + mask) at the contract's limit
 * would be 128 MiB; 80 MiB covers a 4096² PNG pair with room to spare.
 */
export const DEFAULT_MAX_UPLOAD_BYTES = 80 * 1024 * 1024;
/**
 * Concurrent connections (HTTP and WebSocket together). A browser opens about six per server and a
 * WebSocket per tab; 64 leaves room for several tabs and scripts while bounding what a flood can hold.
 */
export const DEFAULT_MAX_CONNECTIONS = 64;
/** A slow client that has this much unsent data gets no more previews (they are the bulky events). */
const MAX_BUFFERED_FOR_PREVIEW = 8 * 1024 * 1024;
const TOKEN_COOKIE = 'studio_token';
/** 24 random bytes: 192 bits, base64url (32 characters). */
const TOKEN_BYTES = 24;

export interface ServeOptions {
  /** Address to bind; default 127.0.0.1. Anything but loopback must be asked for. */
  host?: string;
  /** Default 7870; 0 picks a free port. */
  port?: number;
  /** Default: a fresh random token. */
  token?: string;
  /** The built renderer (renderer/dist); a placeholder page is served when it is missing. */
  staticRoot?: string | null;
  maxUploadBytes?: number;
  /** More Host names to accept (for a server reached by name on a LAN). */
  allowedHosts?: string[];
  /** See DEFAULT_MAX_CONNECTIONS. */
  maxConnections?: number;
}

export interface RunningServer {
  /** The address to open in a browser, token included. */
  url: string;
  host: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Constant-time comparison (both sides hashed first, so lengths don't leak either). */
function tokenMatches(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** Splits a Host header (`name:port`, `[v6]:port`) into a lowercase name and a port. */
function parseHostHeader(value: string | undefined): { name: string; port: number | null } | null {
  if (!value) return null;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return null;
  return { name: m[1]!.toLowerCase(), port: m[2] === undefined ? null : Number(m[2]) };
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

const PLACEHOLDER_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Latent Studio</title></head>
<body><h1>Latent Studio</h1>
<p>The studio host is running, but no renderer is built. Build it (<code>npm run build:renderer</code>)
or talk to the contract directly: <code>POST /api/invoke/&lt;channel&gt;</code>, WebSocket <code>/api/ws</code>.</p>
</body></html>
`;

/**
 * Headers on every response: no sniffing, no framing, and a referrer only to this server (the token is
 * in the first URL, which must not go elsewhere; our own Referer is the same-origin proof of a browser
 * that sends no fetch metadata).
 */
const BASE_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/**
 * The renderer's Content-Security-Policy in browser mode: same as the Electron window's, plus the
 * WebSocket back to this server.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body));
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { ...BASE_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, name: string, code: string, message: string): void {
  const error: SerializedError = { name, code, message };
  sendJson(res, status, { ok: false, error });
}

function httpStatusFor(error: SerializedError): number {
  switch (error.code) {
    case 'E_INVALID_REQUEST':
      return 400;
    case 'E_NOT_FOUND':
      return 404;
    case 'E_INTERNAL':
      return 500;
    default:
      return 422;
  }
}

export async function startServer(host: Host, options: ServeOptions = {}): Promise<RunningServer> {
  const bindHost = options.host ?? DEFAULT_SERVE_HOST;
  const token = options.token ?? newToken();
  const maxUpload = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const staticRoot = options.staticRoot ? resolve(options.staticRoot) : null;
  const extraHosts = new Set((options.allowedHosts ?? []).map((h) => h.toLowerCase()));
  let port = options.port ?? DEFAULT_SERVE_PORT;
  /** One large request body in memory at a time (request-body.ts). */
  const largeBodies = new BodySlots();

  /** DNS rebinding defence: the Host header must name this server. */
  function hostAllowed(req: IncomingMessage): boolean {
    const h = parseHostHeader(req.headers.host);
    if (!h || (h.port ?? 80) !== port) return false;
    if (isLoopbackHost(h.name) || extraHosts.has(h.name)) return true;
    const bare = h.name.replace(/^\[|\]$/g, '');
    if (!isWildcard(bindHost) && bare === bindHost.replace(/^\[|\]$/g, '').toLowerCase()) return true;
    // Bound to every interface: any IP literal is this machine; a DNS name could be a rebinding.
    return isWildcard(bindHost) && isIP(bare) !== 0;
  }

  /** CSRF and cross-site WebSocket defence: a browser's Origin must be this server. */
  function originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true; // not a browser (curl, the ws package): the token still applies
    try {
      const url = new URL(origin);
      return url.protocol === 'http:' && url.host.toLowerCase() === (req.headers.host ?? '').toLowerCase();
    } catch {
      return false;
    }
  }

  function tokenOf(req: IncomingMessage, url: URL): { token: string | null; fromCookie: boolean } {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return { token: auth.slice('Bearer '.length).trim(), fromCookie: false };
    const query = url.searchParams.get('token');
    if (query !== null) return { token: query, fromCookie: false };
    return { token: parseCookies(req.headers.cookie).get(TOKEN_COOKIE) ?? null, fromCookie: true };
  }

  /**
   * A browser request made by this server's own page. Fetch metadata says so directly ('none': typed in
   * the address bar). Without it (a browser that sends none, or plain http on a LAN address), an Origin
   * has already been checked to be this server, and a Referer must be too.
   */
  function fromOwnPage(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined) return site === 'same-origin' || site === 'none';
    if (req.headers.origin !== undefined) return true;
    const referer = req.headers.referer;
    if (referer === undefined) return false;
    try {
      const from = new URL(referer);
      return from.protocol === 'http:' && from.host.toLowerCase() === (req.headers.host ?? '').toLowerCase();
    } catch {
      return false;
    }
  }

  /** Host, Origin and token checks shared by HTTP and the WebSocket upgrade; returns the refusal, if any. */
  function refusal(req: IncomingMessage, url: URL): { status: 401 | 403; message: string } | null {
    if (!hostAllowed(req)) return { status: 403, message: `Host "${String(req.headers.host).slice(0, 100)}" is not this server (DNS rebinding protection).` };
    if (!originAllowed(req)) return { status: 403, message: `Origin "${String(req.headers.origin).slice(0, 100)}" may not use this server.` };
    const given = tokenOf(req, url);
    if (!tokenMatches(given.token, token)) return { status: 401, message: 'A valid token is required (printed by `studio serve` at start).' };
    // The static files are the public renderer bundle; the API and the stored images are not.
    if (given.fromCookie && url.pathname.startsWith('/api/') && !fromOwnPage(req)) {
      return { status: 403, message: "This request came from another page (another port or site): the studio's API and images answer only its own page, or a request that carries the token." };
    }
    return null;
  }

  /** The data folder's location is the machine's business: error messages name it "<data folder>". */
  const internalRoots = [...new Set([host.dataDir, realpathOrSelf(host.dataDir)])].sort((a, b) => b.length - a.length);
  function scrub(message: string): string {
    let out = message;
    for (const root of internalRoots) out = out.split(root).join('<data folder>');
    return out;
  }
  /** JSON for a browser client: every `error` (an invoke's, a job's, a download's) with its message scrubbed. */
  function toClientJson(value: unknown): string {
    return JSON.stringify(value, (key, v: unknown) => {
      if (key !== 'error' || typeof v !== 'object' || v === null || typeof (v as { message?: unknown }).message !== 'string') return v;
      return { ...v, message: scrub((v as { message: string }).message) };
    });
  }

  async function serveStatic(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const headers = { ...BASE_HEADERS, 'Content-Security-Policy': CONTENT_SECURITY_POLICY } as Record<string, string>;
    // Opened with ?token=: keep it in a cookie so the page's own requests and WebSocket carry it.
    if (url.searchParams.has('token')) headers['Set-Cookie'] = `${TOKEN_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    const indexFile = staticRoot ? join(staticRoot, 'index.html') : null;
    if (!staticRoot || !indexFile || !existsSync(indexFile)) {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : PLACEHOLDER_PAGE);
      return;
    }
    let relativePath: string;
    try {
      relativePath = decodeURIComponent(url.pathname);
    } catch {
      sendError(res, 400, 'InvalidRequestError', 'E_INVALID_REQUEST', 'Malformed path.');
      return;
    }
    let file = resolve(staticRoot, `.${relativePath}`);
    if (relativePath.includes('\0') || (file !== staticRoot && !file.startsWith(staticRoot + sep))) {
      sendError(res, 403, 'ForbiddenError', 'E_FORBIDDEN', 'Path outside the renderer folder.');
      return;
    }
    const st = await stat(file).catch(() => null);
    if (!st || st.isDirectory()) file = st?.isDirectory() && existsSync(join(file, 'index.html')) ? join(file, 'index.html') : indexFile;
    const body = await readFile(file);
    res.writeHead(200, { ...headers, 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream', 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const refused = refusal(req, url);
    if (refused) {
      // Answer and hang up: a refused client's body is never read (it could be 80 MiB, sent for minutes).
      res.setHeader('Connection', 'close');
      sendError(res, refused.status, refused.status === 401 ? 'UnauthorizedError' : 'ForbiddenError', refused.status === 401 ? 'E_UNAUTHORIZED' : 'E_FORBIDDEN', refused.message);
      return;
    }
    const invoke = /^\/api\/invoke\/([\w.]+)$/.exec(url.pathname);
    if (invoke) {
      if (req.method !== 'POST') return sendError(res, 405, 'MethodNotAllowedError', 'E_METHOD', 'Use POST for /api/invoke.');
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
        // A cross-site form can't send application/json without a preflight: one more CSRF guard.
        return sendError(res, 415, 'InvalidRequestError', 'E_INVALID_REQUEST', 'The body must be application/json.');
      }
      const tooLarge = (): void => {
        res.setHeader('Connection', 'close');
        sendError(res, 413, 'PayloadTooLargeError', 'E_TOO_LARGE', `The request is larger than the upload limit of ${maxUpload} bytes.`);
        req.destroy();
      };
      if (Number(req.headers['content-length']) > maxUpload) return tooLarge(); // refused before waiting for a slot
      // A body that may be large waits for the slot unread, and holds it until its answer is sent.
      const release = mayBeLarge(req.headers) ? await largeBodies.acquire() : null;
      let size = 0;
      try {
        let payload: unknown;
        try {
          let body: Buffer | null = await readBody(req, maxUpload);
          size = body.length;
          payload = parseJsonBody(body);
          body = null; // not kept through the invoke below
        } catch (err) {
          if (err instanceof PayloadTooLargeError) return tooLarge();
          return sendError(res, 400, 'InvalidRequestError', 'E_INVALID_REQUEST', 'The body is not valid JSON.');
        }
        const result = await host.invoke(invoke[1], payload);
        payload = undefined;
        return sendText(res, result.ok ? 200 : httpStatusFor(result.error), toClientJson(result));
      } finally {
        if (size >= COLLECT_AFTER_BYTES) freeLargeGarbage();
        release?.();
      }
    }
    const image = /^\/api\/images\/([0-9a-f]{64})(?:\.(?:png|webp))?$/.exec(url.pathname);
    if (image && (req.method === 'GET' || req.method === 'HEAD')) {
      const thumbnail = url.searchParams.get('thumbnail') === '1';
      const path = thumbnail ? host.history.thumbnailPath(image[1]!) : host.history.imagePath(image[1]!);
      // The content never changes (it is named by its hash), but a cached copy would be handed to any
      // page of the same site without asking: every use is revalidated (304 when unchanged), so each
      // passes the checks above.
      const etag = `"${image[1]!}${thumbnail ? '-thumbnail' : ''}"`;
      const caching = { 'Cache-Control': 'private, no-cache', ETag: etag };
      if (req.headers['if-none-match'] === etag && existsSync(path)) {
        res.writeHead(304, { ...BASE_HEADERS, ...caching });
        res.end();
        return;
      }
      const body = await readFile(path).catch(() => null);
      if (!body) return sendError(res, 404, 'StudioError', 'E_NOT_FOUND', `No image ${image[1]}.`);
      res.writeHead(200, { ...BASE_HEADERS, ...caching, 'Content-Type': thumbnail ? 'image/webp' : 'image/png', 'Content-Length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (url.pathname.startsWith('/api/')) return sendError(res, 404, 'StudioError', 'E_NOT_FOUND', `No route ${url.pathname}.`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendError(res, 405, 'MethodNotAllowedError', 'E_METHOD', `${req.method} is not allowed here.`);
    await serveStatic(req, res, url);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      console.error('studio serve: request failed with a bug:', err);
      if (!res.headersSent) sendError(res, 500, 'InternalError', 'E_INTERNAL', 'Internal error.');
      else res.destroy();
    });
  });
  // Bound the time a client may take to send headers and body (slowloris).
  server.headersTimeout = 30_000;
  server.requestTimeout = 300_000;
  // Past the cap Node closes each new connection as it arrives.
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;

  const wss = new WebSocketServer({ noServer: true, maxPayload: maxUpload });
  const sockets = new Set<WebSocket>();
  const unsubscribe = host.subscribe((event: StudioEvent) => {
    const text = toClientJson({ type: 'event', event: event.event, payload: event.payload });
    for (const ws of sockets) {
      if (ws.readyState !== ws.OPEN) continue;
      if (event.event === 'job.preview' && ws.bufferedAmount > MAX_BUFFERED_FOR_PREVIEW) continue;
      ws.send(text);
    }
  });

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const refused = url.pathname === '/api/ws' ? refusal(req, url) : { status: 404 as const, message: 'No WebSocket here.' };
    if (refused) {
      const reason = refused.status === 401 ? 'Unauthorized' : refused.status === 403 ? 'Forbidden' : 'Not Found';
      socket.end(`HTTP/1.1 ${refused.status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${refused.message}\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      // Invokes start one per event-loop turn: a burst of messages (hundreds of generates arrive in one
      // read) must not run back to back in one turn, holding up every other client's request meanwhile.
      const starts: Array<() => void> = [];
      const startNext = (): void => {
        starts.shift()?.();
        if (starts.length > 0) setImmediate(startNext);
      };
      const startSoon = (start: () => void): void => {
        starts.push(start);
        if (starts.length === 1) setImmediate(startNext);
      };
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => sockets.delete(ws));
      ws.on('message', (data, isBinary) => {
        let message: { type?: unknown; id?: unknown; channel?: unknown; payload?: unknown };
        try {
          if (isBinary || !Buffer.isBuffer(data) || data.length === 0) throw new Error('not a JSON text');
          message = parseJsonBody(data) as typeof message;
          if (typeof message !== 'object' || message === null) throw new Error('not an object');
        } catch {
          ws.send(JSON.stringify({ type: 'error', error: { name: 'InvalidRequestError', code: 'E_INVALID_REQUEST', message: 'Messages must be JSON objects {type, id, channel, payload}.' } }));
          return;
        }
        if (message.type !== 'invoke') {
          ws.send(JSON.stringify({ type: 'error', error: { name: 'InvalidRequestError', code: 'E_INVALID_REQUEST', message: 'Unknown message type; send {type:"invoke", id, channel, payload}.' } }));
          return;
        }
        const id = typeof message.id === 'string' || typeof message.id === 'number' ? message.id : null;
        const channel = message.channel;
        let payload = message.payload;
        const size = data.length;
        startSoon(() => {
          void host.invoke(channel, payload).then((result) => {
            payload = undefined;
            if (ws.readyState === ws.OPEN) ws.send(toClientJson({ type: 'result', id, result }));
            if (size >= COLLECT_AFTER_BYTES) setImmediate(freeLargeGarbage);
          });
        });
      });
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, bindHost, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = isWildcard(bindHost) ? '127.0.0.1' : bindHost.includes(':') && !bindHost.startsWith('[') ? `[${bindHost}]` : bindHost;

  return {
    url: `http://${urlHost}:${port}/?token=${token}`,
    host: bindHost,
    port,
    token,
    async close() {
      unsubscribe();
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
