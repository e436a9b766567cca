import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { EditorDocument, exportMaskPng } from '../../../../renderer/src/document/document.js';
import type { BrushSettings, StrokePoint } from '../../../../renderer/src/document/brush.js';
import { imageToScreen, screenToImage, type Viewport } from '../../../../renderer/src/editor/viewport.js';
import { pngSize } from '../../../../renderer/src/document/png.js';

const HARD: BrushSettings = { size: 9, hardness: 1, opacity: 1 };

function at(x: number, y: number): StrokePoint {
  return { x, y, pressure: 1 };
}

/** Paints a stroke given in screen pixels through the viewport, as the canvas view does. */
function paintOnScreen(doc: EditorDocument, view: Viewport, screenPoints: Array<{ x: number; y: number }>, brush = HARD, tool: 'brush' | 'eraser' = 'brush'): void {
  const points = screenPoints.map((p) => ({ ...screenToImage(view, p), pressure: 1 }));
  doc.beginStroke(tool, brush, points[0]!);
  for (const p of points.slice(1)) doc.continueStroke(p);
  doc.endStroke();
}

/** The horizontal stroke through the centres of row 32, columns 10 to 50, as screen points at `view`, sampled every 7 screen px. */
function horizontalStrokeOnScreen(view: Viewport): Array<{ x: number; y: number }> {
  const a = imageToScreen(view, { x: 10.5, y: 32.5 });
  const b = imageToScreen(view, { x: 50.5, y: 32.5 });
  const n = Math.max(2, Math.ceil((b.x - a.x) / 7));
  return Array.from({ length: n + 1 }, (_, i) => ({ x: a.x + ((b.x - a.x) * i) / n, y: a.y }));
}

function hash(data: Uint8Array): string {
  let h = 2166136261;
  for (const b of data) h = Math.imul(h ^ b, 16777619);
  return (h >>> 0).toString(16);
}

describe('editor document: painting the mask', () => {
  for (const view of [
    { scale: 0.25, x: 3, y: -7 },
    { scale: 1, x: 0, y: 0 },
    { scale: 1, x: 120, y: 45 },
    { scale: 3.5, x: -80, y: 12 },
    { scale: 16, x: -400, y: -300 },
  ] satisfies Viewport[]) {
    it(`a stroke paints exactly the pixels under the brush at zoom ${view.scale} (offset ${view.x},${view.y})`, () => {
      const doc = new EditorDocument(64, 64);
      paintOnScreen(doc, view, horizontalStrokeOnScreen(view));
      const m = doc.mask;
      // The 9 px hard brush covers pixel centres within 4.5 px of the segment.
      for (let x = 10; x <= 50; x++) {
        for (let dy = -4; dy <= 4; dy++) assert.equal(m.at(x, 32 + dy), 255, `(${x}, ${32 + dy}) is inside the stroke`);
        assert.equal(m.at(x, 32 - 6), 0, `(${x}, 26) is above the stroke`);
        assert.equal(m.at(x, 32 + 5), 0, `(${x}, 37) is below the stroke`);
      }
      assert.equal(m.at(4, 32), 0, 'left of the round start cap');
      assert.equal(m.at(56, 32), 0, 'right of the round end cap');
      assert.equal(m.at(0, 0), 0);
      assert.equal(doc.undoDepth, 1, 'one undo step for the whole stroke');
    });
  }

  it('paints the same mask whatever the zoom (brush size is in image pixels)', () => {
    const results = [0.5, 1, 2, 8].map((scale) => {
      const doc = new EditorDocument(64, 64);
      const view = { scale, x: 17, y: 5 };
      paintOnScreen(doc, view, horizontalStrokeOnScreen(view));
      return doc.mask.countMarked();
    });
    // Pointer samples land at different sub-pixel positions, so allow a sliver of edge pixels.
    for (const n of results) assert.ok(Math.abs(n - results[1]!) <= 8, `marked ${n} vs ${results[1]}`);
    assert.ok(results[1]! > 41 * 9 && results[1]! < 64 * 12, `about a 41×9 band plus caps, got ${results[1]}`);
  });

  it('a soft brush falls off from the centre, and pen pressure shrinks the dab', () => {
    const doc = new EditorDocument(64, 64);
    doc.beginStroke('brush', { size: 20, hardness: 0, opacity: 1 }, at(32, 32));
    doc.endStroke();
    const centre = doc.mask.at(32, 32);
    const mid = doc.mask.at(37, 32);
    const rim = doc.mask.at(41, 32);
    assert.ok(centre > mid && mid > rim && rim > 0, `falloff ${centre} > ${mid} > ${rim} > 0`);
    assert.equal(doc.mask.at(43, 32), 0);

    const light = new EditorDocument(64, 64);
    light.beginStroke('brush', HARD, { x: 32, y: 32, pressure: 0.34 });
    light.endStroke();
    assert.equal(light.mask.at(32, 32), 255);
    assert.equal(light.mask.at(35, 32), 0, 'a third of the size at a third of the pressure');
  });

  it('opacity limits the painted value, and overlapping dabs of one stroke do not add up', () => {
    const doc = new EditorDocument(32, 32);
    const brush = { size: 8, hardness: 1, opacity: 0.5 };
    doc.beginStroke('brush', brush, at(16, 16));
    for (let i = 0; i < 20; i++) doc.continueStroke(at(16 + (i % 2) * 0.3, 16));
    doc.endStroke();
    assert.equal(doc.mask.at(16, 16), 128);
  });

  it('the eraser takes mask away', () => {
    const doc = new EditorDocument(32, 32);
    doc.fillMask();
    doc.beginStroke('eraser', HARD, at(4, 16));
    doc.continueStroke(at(28, 16));
    doc.endStroke();
    assert.equal(doc.mask.at(16, 16), 0);
    assert.equal(doc.mask.at(16, 2), 255);
    assert.equal(doc.undoDepth, 2);
  });
});

describe('editor document: undo and redo', () => {
  it('undo and redo restore the exact pixels, one step per stroke', () => {
    const doc = new EditorDocument(64, 48);
    const empty = hash(doc.mask.data);
    doc.beginStroke('brush', HARD, at(5, 5));
    doc.continueStroke(at(40, 30));
    doc.endStroke();
    const afterFirst = hash(doc.mask.data);
    doc.beginStroke('brush', { size: 15, hardness: 0.3, opacity: 0.8 }, at(60, 2));
    for (let i = 0; i < 50; i++) doc.continueStroke(at(60 - i, 2 + i * 0.9));
    doc.endStroke();
    const afterSecond = hash(doc.mask.data);
    assert.notEqual(afterFirst, afterSecond);
    assert.equal(doc.undoDepth, 2);

    assert.ok(doc.undo());
    assert.equal(hash(doc.mask.data), afterFirst);
    assert.ok(doc.undo());
    assert.equal(hash(doc.mask.data), empty);
    assert.equal(doc.undo(), false, 'nothing left to undo');
    assert.ok(doc.redo());
    assert.equal(hash(doc.mask.data), afterFirst);
    assert.ok(doc.redo());
    assert.equal(hash(doc.mask.data), afterSecond);
    assert.equal(doc.canRedo, false);
  });

  it('a new stroke after undo drops the redo steps', () => {
    const doc = new EditorDocument(32, 32);
    doc.beginStroke('brush', HARD, at(5, 5));
    doc.endStroke();
    doc.undo();
    assert.ok(doc.canRedo);
    doc.beginStroke('brush', HARD, at(20, 20));
    doc.endStroke();
    assert.equal(doc.canRedo, false);
    assert.equal(doc.mask.at(5, 5), 0);
    assert.equal(doc.mask.at(20, 20), 255);
  });

  it('Esc cancels the stroke in progress: pixels back, no undo entry, redo kept', () => {
    const doc = new EditorDocument(32, 32);
    doc.beginStroke('brush', HARD, at(8, 8));
    doc.endStroke();
    doc.undo();
    const before = hash(doc.mask.data);
    doc.beginStroke('brush', HARD, at(2, 16));
    doc.continueStroke(at(30, 16));
    assert.equal(doc.mask.at(16, 16), 255, 'painted while the stroke is in progress');
    assert.ok(doc.cancelStroke());
    assert.equal(hash(doc.mask.data), before);
    assert.equal(doc.undoDepth, 0);
    assert.ok(doc.canRedo, 'the cancelled stroke did not clear redo');
    doc.continueStroke(at(16, 2));
    assert.equal(hash(doc.mask.data), before, 'samples after Esc paint nothing');
  });

  it('replacing the image is one undo step and brings back the old mask', () => {
    const doc = new EditorDocument(32, 32);
    doc.fillMask();
    doc.setImage({ width: 64, height: 64, source: { kind: 'history', historyId: 1, hash: 'a'.repeat(64) } });
    assert.equal(doc.width, 64);
    assert.ok(doc.mask.isEmpty(), 'a new size starts with an empty mask');
    assert.equal(doc.inferredMode(), 'img2img');
    doc.undo();
    assert.equal(doc.width, 32);
    assert.equal(doc.image, null);
    assert.equal(doc.mask.countMarked(), 32 * 32);
  });
});

describe('editor document: whole-mask operations and export', () => {
  it('invert, clear and fill', () => {
    const doc = new EditorDocument(16, 8);
    doc.beginStroke('brush', { size: 4, hardness: 1, opacity: 1 }, at(4, 4));
    doc.endStroke();
    const painted = doc.mask.countMarked();
    assert.ok(painted > 0);
    doc.invertMask();
    assert.equal(doc.mask.at(4, 4), 0);
    assert.equal(doc.mask.at(15, 7), 255);
    assert.equal(doc.mask.countMarked(), 16 * 8 - painted);
    doc.clearMask();
    assert.ok(doc.mask.isEmpty());
    doc.fillMask();
    assert.equal(doc.mask.countMarked(), 16 * 8);
    assert.ok(doc.mask.data.every((v) => v === 255));
    doc.undo();
    doc.undo();
    assert.equal(doc.mask.countMarked(), 16 * 8 - painted, 'undo walks back through fill and clear');
  });

  it('mode follows the canvas: no image → txt2img, image → img2img, image with mask → inpaint', () => {
    const doc = new EditorDocument(64, 64);
    assert.equal(doc.inferredMode(), 'txt2img');
    doc.setImage({ width: 64, height: 64, source: { kind: 'file', name: 'x.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    assert.equal(doc.inferredMode(), 'img2img');
    doc.beginStroke('brush', HARD, at(10, 10));
    doc.endStroke();
    assert.equal(doc.inferredMode(), 'inpaint');
  });

  for (const [w, h] of [[64, 64], [96, 40], [300, 7]] as const) {
    it(`the exported mask PNG is ${w}×${h}, the image size, with the painted pixels white`, async () => {
      const doc = new EditorDocument(w, h);
      doc.beginStroke('brush', { size: 5, hardness: 1, opacity: 1 }, at(2, 2));
      doc.endStroke();
      const png = await exportMaskPng(doc);
      assert.deepEqual(pngSize(png), { width: w, height: h });
      assert.equal((await sharp(png).metadata()).channels, 1, 'a one-channel greyscale PNG');
      const { data, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      assert.equal(info.width, w);
      assert.equal(info.height, h);
      assert.equal(info.channels, 1);
      assert.deepEqual(new Uint8Array(data), doc.mask.data);
      assert.equal(data[2 * w + 2], 255);
      assert.equal(data[data.length - 1], 0);
    });
  }
});

describe('editor document: outpainting', () => {
  it('extending the canvas keeps the old mask in place, masks the new area, and undoes in one step', () => {
    const doc = new EditorDocument(32, 16);
    doc.setImage({ width: 32, height: 16, source: { kind: 'file', name: 'a.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    doc.beginStroke('brush', { size: 3, hardness: 1, opacity: 1 }, at(5.5, 5.5));
    doc.endStroke();
    const old = doc.mask.data.slice();
    doc.extendCanvas({ width: 48, height: 24, source: { kind: 'file', name: 'b.png', bytes: new Uint8Array(2), mime: 'image/png' } }, 16, 8);
    assert.equal(doc.width, 48);
    assert.equal(doc.height, 24);
    for (let y = 0; y < 24; y++) {
      for (let x = 0; x < 48; x++) {
        const inside = x >= 16 && y >= 8;
        const expected = inside ? old[(y - 8) * 32 + (x - 16)] : 255;
        assert.equal(doc.mask.at(x, y), expected, `(${x}, ${y})`);
      }
    }
    assert.equal(doc.inferredMode(), 'inpaint');
    doc.undo();
    assert.equal(doc.width, 32);
    assert.deepEqual(doc.mask.data, old);
    assert.throws(() => doc.extendCanvas({ width: 40, height: 16, source: { kind: 'file', name: 'c.png', bytes: new Uint8Array(1), mime: 'image/png' } }, 16, 0), /does not fit/);
  });
});

describe('editor document: blank canvas', () => {
  it('a blank canvas follows the chosen size without an undo step; an image is never resized', () => {
    const doc = new EditorDocument(64, 64);
    doc.resizeBlank(128, 96);
    assert.deepEqual([doc.width, doc.height, doc.undoDepth], [128, 96, 0]);
    doc.setImage({ width: 64, height: 64, source: { kind: 'file', name: 'a.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    doc.resizeBlank(512, 512);
    assert.deepEqual([doc.width, doc.height], [64, 64]);
  });
});

describe('editor document: mask emptiness', () => {
  it('isEmpty follows every kind of edit (it is cached between them)', () => {
    const doc = new EditorDocument(16, 16);
    assert.ok(doc.mask.isEmpty());
    doc.beginStroke('brush', HARD, at(8, 8));
    assert.equal(doc.mask.isEmpty(), false, 'during the stroke');
    doc.cancelStroke();
    assert.ok(doc.mask.isEmpty(), 'after Esc');
    doc.fillMask();
    assert.equal(doc.mask.isEmpty(), false);
    doc.undo();
    assert.ok(doc.mask.isEmpty(), 'after undo');
    doc.redo();
    assert.equal(doc.mask.isEmpty(), false, 'after redo');
    doc.beginStroke('eraser', { size: 64, hardness: 1, opacity: 1 }, at(8, 8));
    doc.endStroke();
    assert.ok(doc.mask.isEmpty(), 'after erasing everything');
  });
});
