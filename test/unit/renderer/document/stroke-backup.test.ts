/** StrokeBackup: a layer's pixels before a stroke, copied block by block as the stroke reaches them. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MaskLayer, StrokeBackup, type PixelRect } from '../../../../renderer/src/document/mask.js';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('StrokeBackup', () => {
  test('reads back exactly the pixels as they were, whatever was written after save, for any rect', () => {
    const rnd = random(3);
    // A size that is not a multiple of the block side, so edge blocks are partial.
    const layer = new MaskLayer(201, 133);
    for (let i = 0; i < layer.data.length; i++) layer.data[i] = Math.floor(rnd() * 256);
    const original = layer.data.slice();
    const backup = new StrokeBackup(layer);
    for (let n = 0; n < 60; n++) {
      const w = 1 + Math.floor(rnd() * 70);
      const h = 1 + Math.floor(rnd() * 70);
      // Rects that reach past the edges too: save clips them.
      const rect: PixelRect = { x: Math.floor(rnd() * 230) - 20, y: Math.floor(rnd() * 160) - 20, width: w, height: h };
      backup.save(rect);
      const r = layer.clip(rect);
      for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) layer.data[y * layer.width + x] = Math.floor(rnd() * 256);
    }
    for (let n = 0; n < 40; n++) {
      const x = Math.floor(rnd() * 200);
      const y = Math.floor(rnd() * 132);
      const rect = { x, y, width: 1 + Math.floor(rnd() * (201 - x)), height: 1 + Math.floor(rnd() * (133 - y)) };
      assert.deepEqual(backup.read(rect), new MaskLayer(201, 133, original).read(rect), JSON.stringify(rect));
    }
    assert.deepEqual(backup.read(layer.fullRect), original);
  });

  test('copies nothing until saved: blocks never saved read as the layer is now', () => {
    const layer = new MaskLayer(128, 128);
    const backup = new StrokeBackup(layer);
    layer.data.fill(7);
    assert.deepEqual(backup.read({ x: 10, y: 10, width: 5, height: 5 }), new Uint8Array(25).fill(7));
  });
});
