import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { actualSize, fitToView, MAX_ZOOM, MIN_ZOOM, screenToImage, wheelZoom, zoomAt } from '../../../../renderer/src/editor/viewport.js';

describe('editor viewport', () => {
  it('zooming keeps the image point under the pointer in place', () => {
    const v = { scale: 1.3, x: 40, y: -12 };
    const anchor = { x: 321, y: 200 };
    const before = screenToImage(v, anchor);
    for (const scale of [0.1, 0.5, 2, 17]) {
      const after = screenToImage(zoomAt(v, anchor, scale), anchor);
      assert.ok(Math.abs(after.x - before.x) < 1e-9 && Math.abs(after.y - before.y) < 1e-9);
    }
  });

  it('wheel zoom: up zooms in, down zooms out, within the limits', () => {
    const v = { scale: 1, x: 0, y: 0 };
    assert.ok(wheelZoom(v, { x: 0, y: 0 }, -100).scale > 1);
    assert.ok(wheelZoom(v, { x: 0, y: 0 }, 100).scale < 1);
    assert.equal(wheelZoom(v, { x: 0, y: 0 }, -1e6).scale, MAX_ZOOM);
    assert.equal(wheelZoom(v, { x: 0, y: 0 }, 1e6).scale, MIN_ZOOM);
  });

  it('fit centres the whole image with a margin; 100 % is one pixel per pixel', () => {
    const fit = fitToView(1000, 600, 2048, 1024);
    assert.ok(2048 * fit.scale <= 1000 && 1024 * fit.scale <= 600);
    assert.ok(Math.abs(fit.x + (2048 * fit.scale) / 2 - 500) < 1e-9);
    assert.ok(Math.abs(fit.y + (1024 * fit.scale) / 2 - 300) < 1e-9);
    assert.equal(fitToView(1000, 600, 64, 64, false).scale, 1);
    assert.deepEqual(actualSize(1000, 600, 64, 64), { scale: 1, x: 468, y: 268 });
  });
});
