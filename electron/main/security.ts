/**
 * Window and session hardening. The renderer is untrusted content as far as main is concerned: it runs
 * sandboxed with context isolation, can't navigate or open windows, gets no permissions, and main
 * answers IPC only from the main frame of its own windows showing its own origin.
 */
import { session, shell, type WebContents, type WebFrameMain } from 'electron';

/** The renderer's origin in the packaged app: files served by the `app://` protocol (see app-protocol.ts). */
export const APP_SCHEME = 'app';
export const APP_ORIGIN = `${APP_SCHEME}://studio`;

/**
 * Strict Content-Security-Policy: only our own scripts, no eval, no plugins, no framing; images may be
 * data:/blob: (canvas exports) and our own `/api/images/…`.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'none'",
].join('; ');

/**
 * Where the renderer is loaded from: the app protocol, or (development only, when
 * STUDIO_RENDERER_URL is set and the app isn't packaged) a local dev server.
 */
export function rendererOrigins(devServerUrl: string | null): string[] {
  return devServerUrl ? [APP_ORIGIN, new URL(devServerUrl).origin] : [APP_ORIGIN];
}

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** True when an IPC message comes from the main frame of one of our windows, showing our origin. */
export function isTrustedSender(frame: WebFrameMain | null, windows: ReadonlySet<WebContents>, origins: readonly string[]): boolean {
  if (!frame || frame.parent !== null) return false;
  const contents = [...windows].find((w) => w.mainFrame === frame);
  if (!contents) return false;
  const origin = originOf(frame.url);
  return origin !== null && origins.includes(origin);
}

/** Applies the navigation, window and webview rules to a WebContents. */
export function hardenContents(contents: WebContents, origins: readonly string[]): void {
  contents.on('will-navigate', (event, url) => {
    if (!origins.includes(originOf(url) ?? '')) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!origins.includes(originOf(url) ?? '')) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    // Links to the web open in the browser; nothing opens inside the app.
    if (/^https:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
}

/** Session rules: CSP on every response, no permissions (camera, notifications, …) for anyone. */
export function hardenSession(): void {
  const ses = session.defaultSession;
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({
      responseHeaders: {
        ...details.responseHeaders,
        'Content-Security-Policy': [CONTENT_SECURITY_POLICY],
      },
    });
  });
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
}
