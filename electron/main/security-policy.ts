/**
 * The security rules of the desktop app as plain functions and constants (no Electron at run time, so
 * they are unit-tested under Node); security.ts applies them to windows and the session.
 */
import type { WebContents, WebFrameMain } from 'electron';
import { ELECTRON_APP_ORIGIN } from '../shared/contract.js';

/** The renderer's origin in the app: files served by the `app://` protocol (see app-protocol.ts). */
export const APP_ORIGIN = ELECTRON_APP_ORIGIN;
export const APP_SCHEME = new URL(APP_ORIGIN).protocol.slice(0, -1);

/**
 * Strict Content-Security-Policy: only our own scripts, no eval, no plugins, no framing; images may be
 * data:/blob: (canvas exports, live previews) and our own `/api/images/…` (named explicitly too, for a
 * page loaded from a dev server, whose 'self' is another origin).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  `img-src 'self' data: blob: ${APP_ORIGIN}`,
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

/**
 * Where the renderer may be loaded from: the app protocol, plus (development only) a dev server on a
 * loopback address.
 */
export function rendererOrigins(devServerUrl: string | null): string[] {
  if (!devServerUrl) return [APP_ORIGIN];
  const url = new URL(devServerUrl);
  if (url.protocol !== 'http:' || !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
    throw new Error(`STUDIO_RENDERER_URL must be a loopback http:// URL, got ${devServerUrl}`);
  }
  return [APP_ORIGIN, url.origin];
}

/**
 * The origin of a URL as Chromium sees it. Node's WHATWG URL gives every non-special scheme the opaque
 * origin "null", but our `app:` scheme is registered as standard, so Chromium gives it a real one
 * (`app://studio`): build it from scheme and host. Schemes without a host (file:, data:,
 * javascript:) have no origin we trust.
 */
export function originOf(url: string): string | null {
  try {
    const parsed = new URL(url);
    if (parsed.origin !== 'null') return parsed.origin;
    return parsed.host ? `${parsed.protocol}//${parsed.host}` : null;
  } catch {
    return null;
  }
}

/** Navigation (and redirects) may only stay on our own origins. */
export function isAllowedNavigation(url: string, origins: readonly string[]): boolean {
  const origin = originOf(url);
  return origin !== null && origins.includes(origin);
}

/** Links a person clicks open in their browser when they are plain https:// pages; nothing else does. */
export function opensExternally(url: string): boolean {
  return /^https:\/\/[^/\s]/.test(url);
}

type FrameLike = Pick<WebFrameMain, 'url'> & { parent: unknown };
type ContentsLike = Pick<WebContents, 'mainFrame'>;

/** True when an IPC message comes from the main frame of one of our windows, showing our origin. */
export function isTrustedSender(frame: FrameLike | null, windows: Iterable<ContentsLike>, origins: readonly string[]): boolean {
  if (!frame || frame.parent !== null) return false;
  let ours = false;
  for (const contents of windows) if (contents.mainFrame === frame) ours = true;
  return ours && isAllowedNavigation(frame.url, origins);
}
