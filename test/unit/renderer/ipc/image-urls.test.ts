/** Stored images load by URL through both front doors: the same route, built the same way. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ELECTRON_APP_ORIGIN } from '../../../../electron/shared/contract.js';
import { imageBaseUrl, storedImageUrl } from '../../../../renderer/src/ipc/image-urls.js';

const hash = 'ab'.repeat(32);

test('browser mode and Electron build image and thumbnail URLs the same way, on the route main serves', () => {
  const electron = { imageOrigin: ELECTRON_APP_ORIGIN };
  for (const [base, origin] of [
    [imageBaseUrl(undefined, 'http://127.0.0.1:7860'), 'http://127.0.0.1:7860'],
    [imageBaseUrl(electron, ELECTRON_APP_ORIGIN), 'app://studio'],
    // Electron with the renderer on a dev server: images still come from the app protocol.
    [imageBaseUrl(electron, 'http://localhost:5173'), 'app://studio'],
  ] as const) {
    assert.equal(storedImageUrl(base, hash), `${origin}/api/images/${hash}`);
    assert.equal(storedImageUrl(base, hash, true), `${origin}/api/images/${hash}?thumbnail=1`);
    // What app-requests.ts routes: the URL's path is exactly the image route.
    assert.match(new URL(storedImageUrl(base, hash, true)).pathname, /^\/api\/images\/[0-9a-f]{64}$/);
  }
});
