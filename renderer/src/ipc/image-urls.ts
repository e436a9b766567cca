/**
 * Where stored images are, the same way through both front doors: `/api/images/<hash>` (and
 * `?thumbnail=1`) on the page's own origin (`studio serve`, or the app protocol in Electron), or on the
 * origin the preload names (Electron with the renderer on a dev server). No image crosses the contract
 * as base64. Plain TS (no DOM), so it is unit-tested under Node.
 */
import type { StudioApi } from '../../../electron/shared/contract.js';

/** The route that serves stored images through both front doors. */
export const IMAGES_PATH = '/api/images';

export function imageBaseUrl(api: Pick<StudioApi, 'imageOrigin'> | undefined, pageOrigin: string): string {
  return `${api?.imageOrigin ?? pageOrigin}${IMAGES_PATH}`;
}

export function storedImageUrl(base: string, hash: string, thumbnail = false): string {
  return `${base}/${hash}${thumbnail ? '?thumbnail=1' : ''}`;
}
