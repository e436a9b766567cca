/**
 * The `app://studio/` protocol: serves the built renderer (so the page has a real origin that the CSP's
 * 'self' and the IPC sender check can name) and stored images at `/api/images/<hash>`, the route browser
 * mode serves too: the renderer's studio-client puts these URLs in `<img src>` in both front doors, so no
 * image crosses IPC as base64. What each request gets is app-requests.ts (plain, unit-tested).
 */
import { protocol } from 'electron';
import type { Host } from '../host/host.js';
import { createAppRequestHandler } from './app-requests.js';
import { APP_SCHEME } from './security.js';

/** Must run before `app.ready`. */
export function registerAppScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } },
  ]);
}

export function handleAppProtocol(rendererRoot: string, host: Host): void {
  protocol.handle(APP_SCHEME, createAppRequestHandler({ rendererRoot, images: host.history }));
}
