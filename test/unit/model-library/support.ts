/**
 * Real things for the model library tests: temp folders, a history database, and an HTTP server on
 * 127.0.0.1 that serves a fixture model folder (with Range support) and can misbehave on purpose.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadMigrations, openDatabase, type SqliteDatabase } from '../../../electron/history/database.js';
import { ModelLibrary, type ModelLibraryOptions } from '../../../electron/model-library/library.js';
import { venvPython } from '../../../electron/model-library/convert-command.js';
import { engineInspector } from '../../../electron/model-library/inspect.js';
import type { DownloadFileSpec } from '../../../electron/shared/model-library.js';
import { modelDir } from '../../support/engine-fixtures.js';

export const TINY_SD1 = modelDir('tiny-sd1');

export interface Sandbox {
  dir: string;
  modelsDir: string;
  historyDir: string;
  cleanup(): void;
}

export function sandbox(prefix = 'model-library-'): Sandbox {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    modelsDir: join(dir, 'models'),
    historyDir: join(dir, 'history'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function openHistoryDb(file: string): SqliteDatabase {
  return openDatabase(file, loadMigrations());
}

/** A library over its own database file in the sandbox, with no bundled models unless given. */
export async function openLibrary(box: Sandbox, options: Partial<ModelLibraryOptions> = {}): Promise<ModelLibrary> {
  return ModelLibrary.openInDataDir(box.historyDir, {
    modelsDir: box.modelsDir,
    bundledDirs: [],
    inspect: engineInspector(),
    download: { maxRetries: 3, retryDelayMs: 20 },
    ...options,
  });
}

/** A copy of a fixture model under `parent/name` (so tests can break or change it). */
export function copyFixture(source: string, parent: string, name: string): string {
  const target = join(parent, name);
  cpSync(source, target, { recursive: true });
  return target;
}

/** Every file of a folder: relative path (with /) → bytes, in path order. */
export function readFolder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), readFileSync(p));
    }
  };
  walk(dir);
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface ServedRequest {
  method: string;
  path: string;
  range: string | null;
  ifRange: string | null;
}

export interface ServerBehaviour {
  /**
   * Drop the connection after this many body bytes of `path`, on its first GET only; `before` (if set)
   * is awaited between sending the bytes and dropping (fetch discards bytes it received but had not
   * yet handed over when the body errors, so a test that wants an exact resume point waits for them
   * to reach the disk).
   */
  dropOnce?: { path: string; afterBytes: number; before?: () => Promise<void> };
  /** Serve these files with some bytes flipped (same size). */
  corrupt?: string[];
  /** Send this many body bytes of `path`, then hang (until the client goes away), on every GET. */
  stall?: { path: string; afterBytes: number };
  /**
   * Send this many body bytes of `path`, then wait for `until` and send the rest (every GET): a download
   * that is visibly in progress for as long as a test needs. `stalled` resolves when the bytes are out.
   */
  hold?: { path: string; afterBytes: number; until: Promise<void> };
  /** Answer HEAD without Content-Length and GET without Content-Length (chunked). */
  hideLengths?: boolean;
  /** Answer every GET of `path` with this HTTP status (e.g. 503: the server is down for a while). */
  failGet?: { path: string; status: number };
}

export interface ModelServer {
  baseUrl: string;
  files: Map<string, Buffer>;
  requests: ServedRequest[];
  behaviour: ServerBehaviour;
  /** Resolves when the stalled file has sent its bytes. */
  stalled: Promise<void>;
  manifest(options?: { sizes?: boolean; sha256?: boolean }): DownloadFileSpec[];
  close(): Promise<void>;
}

/** Serves `dir` under http://127.0.0.1:PORT/repo/resolve/onnx/<path>, with Range, ETag and If-Range. */
export async function serveModel(dir: string, behaviour: ServerBehaviour = {}): Promise<ModelServer> {
  const files = readFolder(dir);
  const requests: ServedRequest[] = [];
  const sockets = new Set<Socket>();
  let dropped = false;
  let markStalled: () => void = () => undefined;
  const stalled = new Promise<void>((resolve) => (markStalled = resolve));
  const prefix = '/repo/resolve/onnx/';

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(url.pathname.slice(prefix.length));
    requests.push({ method: req.method ?? '', path, range: req.headers.range ?? null, ifRange: (req.headers['if-range'] as string | undefined) ?? null });
    const original = url.pathname.startsWith(prefix) ? files.get(path) : undefined;
    if (!original) {
      res.writeHead(404).end('not found');
      return;
    }
    let body = original;
    if (server.behaviour.corrupt?.includes(path)) {
      body = Buffer.from(original);
      for (let i = Math.floor(body.length / 3); i < body.length; i += 97) body[i] = body[i]! ^ 0xff;
    }
    const etag = `"${sha256(body).slice(0, 16)}"`;
    const headers: Record<string, string | number> = { etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && (ifRange === undefined || ifRange === etag)) {
      start = Number(range[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    }
    const fail = server.behaviour.failGet;
    if (fail && fail.path === path && req.method === 'GET') {
      res.writeHead(fail.status).end();
      return;
    }
    const slice = body.subarray(start);
    if (!server.behaviour.hideLengths) headers['content-length'] = slice.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = server.behaviour.dropOnce;
    if (drop && drop.path === path && !dropped) {
      dropped = true;
      // A clean close (FIN) after the bytes, so the client has them all before it sees the body end early.
      res.write(slice.subarray(0, drop.afterBytes), () => {
        void (drop.before?.() ?? Promise.resolve()).finally(() => res.socket?.end());
      });
      return;
    }
    const stall = server.behaviour.stall;
    if (stall && stall.path === path) {
      res.write(slice.subarray(0, Math.max(0, stall.afterBytes - start)), () => markStalled());
      return; // never ends; the client aborts
    }
    const hold = server.behaviour.hold;
    if (hold && hold.path === path) {
      const split = Math.max(0, hold.afterBytes - start);
      res.write(slice.subarray(0, split), () => {
        markStalled();
        void hold.until.then(() => res.end(slice.subarray(split)));
      });
      return;
    }
    res.end(slice);
  };

  const httpServer: Server = createServer(handle);
  httpServer.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}${prefix}`;

  const server: ModelServer = {
    baseUrl,
    files,
    requests,
    behaviour,
    stalled,
    manifest({ sizes = true, sha256: withSha = true } = {}) {
      return [...files.entries()].map(([path, bytes]) => ({
        path,
        url: baseUrl + path.split('/').map(encodeURIComponent).join('/'),
        ...(sizes ? { size: bytes.length } : {}),
        ...(withSha ? { sha256: sha256(bytes) } : {}),
      }));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
  return server;
}

/** Runs the native-models venv's Python (two threads, no model hub) and returns what it printed. */
export function runVenvPython(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(venvPython(), args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '2', HF_HUB_OFFLINE: '1' } });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/**
 * A .safetensors file holding only the named tensors (float16 zeros): enough for the convert tool to read
 * the header and pick an architecture. Format: u64 little-endian header length, JSON header, data.
 */
export function fakeCheckpoint(file: string, tensors: Record<string, number[]>): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'F16', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([length, json, Buffer.alloc(offset)]));
}
