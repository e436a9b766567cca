/**
 * The `app://studio/` protocol: serves the built renderer (so the page has a real origin that the CSP's
 * 'self' and the IPC sender check can name) and stored images at `/api/images/<hash>`, the same path
 * browser mode uses, so the renderer loads images the same way through both front doors.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { protocol } from 'electron';
import type { Host } from '../host/host.js';
import { APP_SCHEME, CONTENT_SECURITY_POLICY } from './security.js';

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

/** Must run before `app.ready`. */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } },
  ]);
}

function notFound(): Response {
  return new Response('Not found', { status: 404, headers: { 'Content-Type': 'text/plain' } });
}

export function handleAppProtocol(rendererRoot: string, host: Host): void {
  const root = resolve(rendererRoot);
  protocol.handle(APP_SCHEME, async (request) => {
    const url = new URL(request.url);
    if (url.host !== 'studio') return notFound();
    const image = /^\/api\/images\/([0-9a-f]{64})(?:\.(?:png|webp))?$/.exec(url.pathname);
    if (image) {
      const thumbnail = url.searchParams.get('thumbnail') === '1';
      const bytes = await readFile(thumbnail ? host.history.thumbnailPath(image[1]!) : host.history.imagePath(image[1]!)).catch(() => null);
      if (!bytes) return notFound();
      return new Response(new Uint8Array(bytes), { headers: { 'Content-Type': thumbnail ? 'image/webp' : 'image/png', 'Cache-Control': 'private, max-age=31536000, immutable' } });
    }
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return notFound();
    }
    let file = resolve(root, `.${path}`);
    if (path.includes('\0') || (file !== root && !file.startsWith(root + sep))) return notFound();
    if (!existsSync(file) || !extname(file)) file = join(root, 'index.html');
    const body = await readFile(file).catch(() => null);
    if (!body) return new Response('The renderer is not built (renderer/dist is missing).', { status: 500, headers: { 'Content-Type': 'text/plain' } });
    return new Response(new Uint8Array(body), {
      headers: {
        'Content-Type': MIME[extname(file)] ?? 'application/octet-stream',
        'Content-Security-Policy': CONTENT_SECURITY_POLICY,
        'X-Content-Type-Options': 'nosniff',
      },
    });
  });
}
