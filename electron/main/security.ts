/**
 * Window and session hardening. The renderer is untrusted content as far as main is concerned: it runs
 * sandboxed with context isolation, can't navigate or open windows, gets no permissions, and main
 * answers IPC only from the main frame of its own windows showing its own origin.
 */
import { session, shell, type WebContents } from 'electron';
import { CONTENT_SECURITY_POLICY, isAllowedNavigation, opensExternally } from './security-policy.js';

export { APP_ORIGIN, APP_SCHEME, CONTENT_SECURITY_POLICY, isTrustedSender, rendererOrigins } from './security-policy.js';

/** Applies the navigation, window and webview rules to a WebContents. */
export function hardenContents(contents: WebContents, origins: readonly string[]): void {
  contents.on('will-navigate', (event, url) => {
    if (!isAllowedNavigation(url, origins)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAllowedNavigation(url, origins)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    // Links to the web open in the browser; nothing opens inside the app.
    if (opensExternally(url)) void shell.openExternal(url);
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
