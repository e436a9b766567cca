import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { EditorDocument, exportLayoutPng } from '../../../../renderer/src/document/document.js';
import type { StrokePoint } from '../../../../renderer/src/document/brush.js';
import { labelsFromPixels, LayoutPaletteError, nearestLabel, resampleLabels, type LayoutPalette } from '../../../../renderer/src/document/layout.js';
import { pngSize } from '../../../../renderer/src/document/png.js';

/** Four labels, as the tiny layout fixture has (background white, as in labels.json). */
const PALETTE: LayoutPalette = [
  { id: 0, name: 'background', color: [255, 255, 255] },
  { id: 1, name: 'outline', color: [0, 0, 0] },
  { id: 2, name: 'skin', color: [250, 200, 40] },
  { id: 3, name: 'red', color: [220, 30, 40] },
];

function at(x: number, y: number): StrokePoint {
  return { x, y, pressure: 1 };
}

function hash(data: Uint8Array): string {
  let h = 2166136261;
  for (const b of data) h = Math.imul(h ^ b, 16777619);
  return (h >>> 0).toString(16);
}

function layoutStroke(doc: EditorDocument, label: number, points: StrokePoint[], size = 9, tool: 'brush' | 'eraser' = 'brush'): void {
  doc.beginLayoutStroke(tool, label, size, points[0]!);
  for (const p of points.slice(1)) doc.continueStroke(p);
  doc.endStroke();
}

describe('layout layer: painting labels', () => {
  it('a layout brush stroke sets exactly the pixels under the brush to its label, and leaves the mask alone', () => {
    const doc = new EditorDocument(64, 64);
    layoutStroke(doc, 2, [at(10.5, 32.5), at(30.5, 32.5), at(50.5, 32.5)]);
    const l = doc.layout;
    // The 9 px brush covers pixel centres less than 4.5 px from the segment.
    for (let x = 10; x <= 50; x++) {
      for (let dy = -4; dy <= 4; dy++) assert.equal(l.at(x, 32 + dy), 2, `(${x}, ${32 + dy}) is inside the stroke`);
      assert.equal(l.at(x, 27), 0, `(${x}, 27) is above the stroke`);
      assert.equal(l.at(x, 37), 0, `(${x}, 37) is below the stroke`);
    }
    assert.equal(l.at(5, 32), 0, 'left of the round start cap');
    assert.equal(l.at(56, 32), 0, 'right of the round end cap');
    assert.ok(doc.mask.isEmpty(), 'the mask is untouched');
    assert.equal(doc.undoDepth, 1, 'one undo step for the whole stroke');
    assert.equal(doc.undoLabel, 'Layout brush stroke');
    assert.deepEqual(l.histogram(4), [64 * 64 - l.countMarked(), 0, l.countMarked(), 0]);
  });

  it('labels are hard: a second label paints over the first, and the eraser paints background', () => {
    const doc = new EditorDocument(32, 32);
    layoutStroke(doc, 1, [at(4, 16), at(28, 16)], 8);
    layoutStroke(doc, 3, [at(16, 4), at(16, 28)], 6);
    assert.equal(doc.layout.at(16, 16), 3, 'the later label wins where they cross');
    assert.equal(doc.layout.at(6, 16), 1);
    assert.equal(doc.layout.at(16, 6), 3);
    assert.ok(doc.layout.data.every((v) => v === 0 || v === 1 || v === 3), 'no in-between values at the edges');
    // The eraser ignores its label argument: it always paints background.
    layoutStroke(doc, 2, [at(0, 16), at(32, 16)], 10, 'eraser');
    for (let x = 0; x < 32; x++) assert.equal(doc.layout.at(x, 16), 0);
    assert.equal(doc.layout.at(16, 4), 3, 'outside the eraser stroke nothing changed');
    assert.equal(doc.undoLabel, 'Layout eraser stroke');
    assert.equal(doc.undoDepth, 3);
  });

  it('rejects a label that is not a byte', () => {
    const doc = new EditorDocument(8, 8);
    assert.throws(() => doc.beginLayoutStroke('brush', 256, 4, at(1, 1)), /label id/);
    assert.throws(() => doc.beginLayoutStroke('brush', 1.5, 4, at(1, 1)), /label id/);
    assert.equal(doc.isPainting, false);
  });
});

describe('layout layer: undo, redo, Esc', () => {
  it('undo and redo restore the exact labels, one step per stroke, interleaved with mask strokes', () => {
    const doc = new EditorDocument(64, 48);
    const empty = hash(doc.layout.data);
    layoutStroke(doc, 1, [at(5, 5), at(40, 30)]);
    const afterFirst = hash(doc.layout.data);
    doc.beginStroke('brush', { size: 9, hardness: 1, opacity: 1 }, at(50, 10));
    doc.endStroke();
    const mask = hash(doc.mask.data);
    layoutStroke(doc, 2, [at(60, 2), at(20, 40)], 15);
    const afterSecond = hash(doc.layout.data);
    assert.notEqual(afterFirst, afterSecond);
    assert.equal(doc.undoDepth, 3);

    assert.ok(doc.undo());
    assert.equal(hash(doc.layout.data), afterFirst);
    assert.equal(hash(doc.mask.data), mask, 'undoing a layout stroke leaves the mask');
    assert.ok(doc.undo());
    assert.ok(doc.mask.isEmpty(), 'then the mask stroke goes');
    assert.equal(hash(doc.layout.data), afterFirst);
    assert.ok(doc.undo());
    assert.equal(hash(doc.layout.data), empty);
    assert.ok(doc.layout.isEmpty());
    assert.equal(doc.undo(), false);
    assert.ok(doc.redo());
    assert.ok(doc.redo());
    assert.ok(doc.redo());
    assert.equal(hash(doc.layout.data), afterSecond);
    assert.equal(hash(doc.mask.data), mask);
    assert.equal(doc.canRedo, false);
  });

  it('Esc cancels a layout stroke in progress: labels back, no undo entry, redo kept', () => {
    const doc = new EditorDocument(32, 32);
    layoutStroke(doc, 1, [at(8, 8)]);
    doc.undo();
    const before = hash(doc.layout.data);
    doc.beginLayoutStroke('brush', 2, 9, at(2, 16));
    doc.continueStroke(at(30, 16));
    assert.equal(doc.layout.at(16, 16), 2, 'painted while the stroke is in progress');
    assert.equal(doc.layout.isEmpty(), false);
    assert.ok(doc.cancelStroke());
    assert.equal(hash(doc.layout.data), before);
    assert.ok(doc.layout.isEmpty(), 'emptiness follows the cancel');
    assert.equal(doc.undoDepth, 0);
    assert.ok(doc.canRedo);
    doc.continueStroke(at(16, 2));
    assert.equal(hash(doc.layout.data), before, 'samples after Esc paint nothing');
  });
});

describe('layout layer: fill and clear', () => {
  it('the fill tool fills the 4-connected region under the click, bounded by other labels, in one undo step', () => {
    const doc = new EditorDocument(20, 12);
    // A closed 1-pixel outline box from (4,2) to (12,8) in label 1.
    const ids = new Uint8Array(20 * 12);
    for (let x = 4; x <= 12; x++) ids[2 * 20 + x] = ids[8 * 20 + x] = 1;
    for (let y = 2; y <= 8; y++) ids[y * 20 + 4] = ids[y * 20 + 12] = 1;
    doc.loadLayout(ids, 20, 12);
    assert.ok(doc.fillLayoutRegion(8.4, 5.7, 2));
    for (let y = 0; y < 12; y++) {
      for (let x = 0; x < 20; x++) {
        const inside = x > 4 && x < 12 && y > 2 && y < 8;
        const expected = inside ? 2 : ids[y * 20 + x]!;
        assert.equal(doc.layout.at(x, y), expected, `(${x}, ${y})`);
      }
    }
    assert.equal(doc.undoLabel, 'Layout fill');
    assert.equal(doc.fillLayoutRegion(8, 5, 2), false, 'filling a region with its own label changes nothing');
    assert.equal(doc.fillLayoutRegion(-1, 5, 3), false, 'outside the canvas');
    assert.equal(doc.undoDepth, 2, 'load + one fill');

    // Filling the outside reaches everything outside the box, but not inside it.
    assert.ok(doc.fillLayoutRegion(0, 0, 3));
    assert.equal(doc.layout.at(19, 11), 3);
    assert.equal(doc.layout.at(8, 5), 2);
    assert.equal(doc.layout.at(4, 4), 1);
    doc.undo();
    doc.undo();
    assert.deepEqual(doc.layout.data, ids, 'undo restores the exact labels before the fills');
    doc.redo();
    assert.equal(doc.layout.at(8, 5), 2);
    assert.equal(doc.layout.at(0, 0), 0);
  });

  it('fill does not leak through a diagonal gap (4-connected)', () => {
    const doc = new EditorDocument(4, 4);
    // Label 1 on the anti-diagonal splits the background into two triangles that touch only at corners.
    const ids = new Uint8Array(16);
    for (let i = 0; i < 4; i++) ids[i * 4 + (3 - i)] = 1;
    doc.loadLayout(ids, 4, 4);
    doc.fillLayoutRegion(0, 0, 2);
    assert.deepEqual([...doc.layout.data], [2, 2, 2, 1, 2, 2, 1, 0, 2, 1, 0, 0, 1, 0, 0, 0]);
  });

  it('clear layout puts everything back to background in one undo step', () => {
    const doc = new EditorDocument(16, 16);
    layoutStroke(doc, 3, [at(8, 8)], 6);
    const painted = hash(doc.layout.data);
    doc.clearLayout();
    assert.ok(doc.layout.isEmpty());
    assert.equal(doc.layout.maxLabel(), 0);
    doc.clearLayout();
    assert.equal(doc.undoDepth, 2, 'clearing an empty layout takes no step');
    doc.undo();
    assert.equal(hash(doc.layout.data), painted);
    assert.equal(doc.layout.maxLabel(), 3, 'the cached highest label follows undo');
  });
});

describe('layout layer: mode and the document', () => {
  it('a painted layout means layout mode, but only with a layout model', () => {
    const doc = new EditorDocument(64, 64);
    assert.equal(doc.inferredMode(true), 'txt2img', 'an empty layout is no layout');
    layoutStroke(doc, 1, [at(10, 10)]);
    assert.equal(doc.inferredMode(true), 'layout');
    assert.equal(doc.inferredMode(false), 'txt2img');
    assert.equal(doc.inferredMode(), 'txt2img');
    doc.setImage({ width: 64, height: 64, source: { kind: 'file', name: 'x.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    assert.equal(doc.inferredMode(true), 'layout', 'accepting a layout result keeps the layout');
    assert.equal(doc.layout.at(10, 10), 1);
    doc.setImage({ width: 32, height: 32, source: { kind: 'file', name: 'y.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    assert.ok(doc.layout.isEmpty(), 'another size starts with an empty layout');
    doc.undo();
    assert.equal(doc.layout.at(10, 10), 1);
  });

  it('a blank canvas with a painted layout is resized with its layout stretched, as one undo step', () => {
    const doc = new EditorDocument(8, 8);
    layoutStroke(doc, 2, [at(2, 2)], 2); // pixels (1..2, 1..2)
    const before = doc.layout.data.slice();
    doc.resizeBlank(16, 16);
    assert.deepEqual([doc.width, doc.height, doc.undoDepth], [16, 16, 2]);
    assert.equal(doc.layout.at(2, 2), 2);
    assert.equal(doc.layout.at(5, 5), 2);
    assert.equal(doc.layout.at(6, 6), 0);
    assert.equal(doc.layout.countMarked(), 4 * 4, 'the 2×2 dab became 4×4');
    doc.undo();
    assert.deepEqual([doc.width, doc.height], [8, 8]);
    assert.deepEqual(doc.layout.data, before);
    // An empty layout: a plain resize, no step.
    doc.clearLayout();
    const depth = doc.undoDepth;
    doc.resizeBlank(24, 24);
    assert.equal(doc.undoDepth, depth);
  });

  it('extending the canvas moves the layout with the image; the new strip is background', () => {
    const doc = new EditorDocument(8, 4);
    doc.setImage({ width: 8, height: 4, source: { kind: 'file', name: 'a.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    doc.fillLayoutRegion(0, 0, 3);
    doc.extendCanvas({ width: 8, height: 12, source: { kind: 'file', name: 'b.png', bytes: new Uint8Array(1), mime: 'image/png' } }, 0, 8);
    for (let y = 0; y < 12; y++) assert.equal(doc.layout.at(4, y), y >= 8 ? 3 : 0, `row ${y}`);
  });

  it('loading a stored map of the document size is one undo step; another size starts a blank canvas of that size', () => {
    const doc = new EditorDocument(4, 2);
    doc.loadLayout(new Uint8Array([0, 1, 2, 3, 3, 2, 1, 0]), 4, 2);
    assert.deepEqual([...doc.layout.data], [0, 1, 2, 3, 3, 2, 1, 0]);
    assert.equal(doc.undoLabel, 'Reuse layout');
    doc.setImage({ width: 4, height: 2, source: { kind: 'file', name: 'a.png', bytes: new Uint8Array(1), mime: 'image/png' } });
    doc.loadLayout(new Uint8Array(6).fill(2), 3, 2);
    assert.deepEqual([doc.width, doc.height, doc.image], [3, 2, null]);
    assert.deepEqual([...doc.layout.data], [2, 2, 2, 2, 2, 2]);
    doc.undo();
    assert.deepEqual([doc.width, doc.height], [4, 2]);
    assert.notEqual(doc.image, null, 'undo brings the image back');
    assert.throws(() => doc.loadLayout(new Uint8Array(5), 3, 2), /6 labels/);
  });
});

describe('layout layer: PNG export and import', () => {
  for (const [w, h] of [[64, 64], [96, 40], [300, 7]] as const) {
    it(`the exported label map is a ${w}×${h} RGB PNG of exact palette colours`, async () => {
      const doc = new EditorDocument(w, h);
      layoutStroke(doc, 1, [at(2, 2)], 5);
      layoutStroke(doc, 3, [at(w - 3, h - 3)], 5);
      const png = await exportLayoutPng(doc, PALETTE);
      assert.deepEqual(pngSize(png), { width: w, height: h });
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [w, h, 3], 'RGB, no alpha');
      for (let i = 0; i < w * h; i++) {
        const c = PALETTE[doc.layout.data[i]!]!.color;
        assert.deepEqual([data[i * 3], data[i * 3 + 1], data[i * 3 + 2]], [...c], `pixel ${i}`);
      }
      assert.deepEqual([data[(2 * w + 2) * 3], data[(2 * w + 2) * 3 + 1], data[(2 * w + 2) * 3 + 2]], [0, 0, 0], 'outline is black');
      assert.deepEqual([...data.subarray(((h - 3) * w + w - 3) * 3, ((h - 3) * w + w - 3) * 3 + 3)], [220, 30, 40]);

      // Read back (as reuse does): the same ids.
      assert.deepEqual(labelsFromPixels(new Uint8Array(data), w, h, 3, PALETTE), doc.layout.data);
    });
  }

  it('export refuses a layout that uses labels the palette does not have', async () => {
    const doc = new EditorDocument(8, 8);
    layoutStroke(doc, 5, [at(4, 4)], 3);
    await assert.rejects(() => exportLayoutPng(doc, PALETTE), (err: unknown) => err instanceof LayoutPaletteError && /label 5.*only 4 labels/.test(err.message));
  });

  it('import maps every colour to the nearest palette colour (ties to the lower id), reading RGBA too', () => {
    assert.equal(nearestLabel(PALETTE, 250, 250, 250), 0);
    assert.equal(nearestLabel(PALETTE, 10, 5, 0), 1);
    assert.equal(nearestLabel(PALETTE, 230, 40, 50), 3);
    // Equidistant from two colours: the lower id wins (the engine's rule).
    const tie: LayoutPalette = [
      { id: 0, name: 'a', color: [0, 0, 0] },
      { id: 1, name: 'b', color: [10, 0, 0] },
    ];
    assert.equal(nearestLabel(tie, 5, 0, 0), 0);
    const rgba = new Uint8Array([255, 255, 255, 0, 1, 2, 3, 255, 248, 205, 44, 128, 200, 20, 20, 255]);
    assert.deepEqual([...labelsFromPixels(rgba, 2, 2, 4, PALETTE)], [0, 1, 2, 3]);
    assert.throws(() => labelsFromPixels(rgba, 3, 2, 4, PALETTE), /expected 3×2×4/);
    assert.throws(() => labelsFromPixels(rgba, 2, 2, 4, []), LayoutPaletteError);
  });

  it('nearest-neighbour resampling keeps labels whole', () => {
    const ids = new Uint8Array([1, 2, 3, 0]);
    assert.deepEqual([...resampleLabels(ids, 2, 2, 4, 4)], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 0, 0, 3, 3, 0, 0]);
    assert.deepEqual([...resampleLabels(resampleLabels(ids, 2, 2, 4, 4), 4, 4, 2, 2)], [1, 2, 3, 0]);
  });
});
