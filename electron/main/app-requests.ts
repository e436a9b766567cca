/**
 * What the `app://studio/` protocol answers, as a plain function from a fetch `Request` to a `Response`
 * (no Electron here, so it is unit-tested under Node; app-protocol.ts hands it to `protocol.handle`):
 *
 * - `/api/images/<sha256>[.png|.webp]` and `?thumbnail=1`: a stored image or its thumbnail, the same route
 *   browser mode serves, so the renderer builds image URLs the same way through both front doors
 *   instead of moving base64 over IPC. The type is read from the bytes (PNG, WebP, JPEG).
 * - anything else: a file of the built renderer, never outside it (`..`, encoded or not, and NUL are
 *   refused), with index.html for routes without a file.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { APP_ORIGIN, CONTENT_SECURITY_POLICY } from './security-policy.js';

/** The app protocol's one host: `app://studio/…`. */
const APP_HOST = new URL(APP_ORIGIN).host;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

const IMAGE_ROUTE = /^\/api\/images\/([0-9a-f]{64})(?:\.(?:png|webp))?$/;

/** Where the history keeps an image and its thumbnail (HistoryStore has both). */
export interface StoredImages {
  imagePath(hash: string): string;
  thumbnailPath(hash: string): string;
}

export interface AppRequestOptions {
  /** renderer/dist */
  rendererRoot: string;
  images: StoredImages;
}

/** The image type from the first bytes; null when it is none we store. */
export function imageMime(bytes: Uint8Array): string | null {
  const ascii = (from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(1, 4) === 'PNG') return 'image/png';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg';
  return null;
}

function plain(status: number, text: string): Response {
  return new Response(text, { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' } });
}

export function createAppRequestHandler(options: AppRequestOptions): (request: Request) => Promise<Response> {
  const root = resolve(options.rendererRoot);
  return async (request) => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return plain(400, 'Bad request');
    }
    if (url.host !== APP_HOST) return plain(404, 'Not found');
    if (request.method !== 'GET' && request.method !== 'HEAD') return plain(405, `${request.method} is not allowed here.`);
    const head = request.method === 'HEAD';

    if (url.pathname.startsWith('/api/')) {
      const image = IMAGE_ROUTE.exec(url.pathname);
      if (!image) return plain(404, `No route ${url.pathname}.`);
      const hash = image[1]!;
      const thumbnail = url.searchParams.get('thumbnail') === '1';
      const bytes = await readFile(thumbnail ? options.images.thumbnailPath(hash) : options.images.imagePath(hash)).catch(() => null);
      const mime = bytes ? imageMime(bytes) : null;
      if (!bytes || !mime) return plain(404, `No image ${hash}.`);
      return new Response(head ? null : new Uint8Array(bytes), {
        headers: {
          'Content-Type': mime,
          'Content-Length': String(bytes.length),
          'Cache-Control': 'private, max-age=31536000, immutable',
          'X-Content-Type-Options': 'nosniff',
        },
      });
    }

    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return plain(404, 'Not found');
    }
    let file = resolve(root, `.${path}`);
    if (path.includes('\0') || (file !== root && !file.startsWith(root + sep))) return plain(404, 'Not found');
    if (!existsSync(file) || !extname(file)) file = join(root, 'index.html');
    const body = await readFile(file).catch(() => null);
    if (!body) return plain(500, 'The renderer is not built (renderer/dist is missing).');
    return new Response(head ? null : new Uint8Array(body), {
      headers: {
        'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'X-Content-Type-Options': 'nosniff',
      },
    });
  };
}
