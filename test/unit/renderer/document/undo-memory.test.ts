import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EditorDocument, DEFAULT_UNDO_BUDGET_BYTES, type ImageLayer } from '../../../../renderer/src/document/document.js';
import { applyDelta, isEmptyDelta, packDelta, packPlane, unpackPlane } from '../../../../renderer/src/document/packed.js';
import type { BrushSettings } from '../../../../renderer/src/document/brush.js';

const SOFT: BrushSettings = { size: 96, hardness: 0.3, opacity: 1 };

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function historyImage(id: number, side: number): ImageLayer {
  return { width: side, height: side, source: { kind: 'history', historyId: id, hash: id.toString(16).padStart(64, '0') } };
}

function paintCircle(doc: EditorDocument, cx: number, cy: number, r: number): void {
  doc.beginStroke('brush', SOFT, { x: cx + r, y: cy, pressure: 1 });
  for (let i = 1; i <= 24; i++) {
    const a = (i / 24) * Math.PI * 2;
    doc.continueStroke({ x: cx + Math.cos(a) * r, y: cy + Math.sin(a) * r, pressure: 1 });
  }
  doc.endStroke();
}

describe('packed planes (the undo history\'s storage)', () => {
  it('round-trips runs, noise, soft gradients and edge cases exactly', () => {
    const rnd = random(3);
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array(1),
      new Uint8Array(2048 * 2048),
      new Uint8Array(2048 * 2048).fill(255),
      Uint8Array.from({ length: 100_000 }, () => Math.floor(rnd() * 256)),
      Uint8Array.from({ length: 70_000 }, (_, i) => Math.floor(i / 300) % 256),
      Uint8Array.from({ length: 5000 }, (_, i) => (i % 200 < 130 ? 0 : 255)),
      // Runs longer than one LEB128 byte, two, three.
      Uint8Array.from({ length: 3 * 2 ** 21 + 17 }, (_, i) => (i < 127 ? 1 : i < 128 + 16384 ? 2 : i < 2 ** 21 ? 3 : 4)),
    ];
    for (const plane of cases) {
      const packed = packPlane(plane);
      assert.deepEqual(unpackPlane(packed), plane);
      assert.ok(packed.data.byteLength <= Math.max(plane.length, 1), 'never bigger than the raw bytes');
    }
  });

  it('a 2048² mask of one circle packs into kilobytes; noise stays raw-sized', () => {
    const side = 2048;
    const mask = new Uint8Array(side * side);
    for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) if ((x - 900) ** 2 + (y - 1100) ** 2 < 300 ** 2) mask[y * side + x] = 255;
    assert.ok(packPlane(mask).bytes < 16 * 1024, `circle: ${packPlane(mask).bytes} bytes`);
    const rnd = random(9);
    const noise = Uint8Array.from({ length: 65536 }, () => Math.floor(rnd() * 256));
    const packed = packPlane(noise);
    assert.equal(packed.raw, true);
    assert.deepEqual(unpackPlane(packed), noise);
  });

  it('a delta is its own inverse: before → after → before', () => {
    const rnd = random(5);
    const before = Uint8Array.from({ length: 40_000 }, (_, i) => (i % 1000 < 400 ? 0 : Math.floor(rnd() * 256)));
    const after = before.slice();
    for (let i = 10_000; i < 12_000; i++) after[i] = 255 - after[i]!;
    const delta = packDelta(before, after);
    assert.equal(isEmptyDelta(delta), false);
    const x = before.slice();
    applyDelta(x, delta);
    assert.deepEqual(x, after);
    applyDelta(x, delta);
    assert.deepEqual(x, before);
    assert.equal(isEmptyDelta(packDelta(before, before)), true);
    assert.ok(packDelta(before, after).bytes < 4000, 'only the changed span costs bytes');
  });
});

describe('editor document: undo memory is bounded by bytes', () => {
  it('200 accepted 2048² results with a painted mask stay far under the default budget, and undo walks back through all of them', () => {
    const side = 2048;
    const doc = new EditorDocument(64, 64);
    doc.setImage(historyImage(1, side));
    paintCircle(doc, 800, 900, 200);
    const mask = doc.mask.data.slice();
    for (let i = 2; i <= 201; i++) doc.setImage(historyImage(i, side), 'Accept result');
    // Before: each accept kept four full copies (mask and layout, before and after): 16 MiB at 2048².
    assert.equal(doc.undoDepth, 202);
    assert.ok(doc.undoMemoryBytes < 8 * 2 ** 20, `200 accepts hold ${(doc.undoMemoryBytes / 2 ** 20).toFixed(2)} MiB`);
    assert.ok(doc.undoMemoryBytes <= DEFAULT_UNDO_BUDGET_BYTES);
    assert.deepEqual(doc.mask.data, mask, 'the accepted results kept the mask');
    for (let i = 200; i >= 1; i--) {
      assert.ok(doc.undo());
      assert.equal((doc.image!.source as { historyId: number }).historyId, i);
      assert.deepEqual(doc.mask.data, mask);
    }
    assert.ok(doc.undo(), 'the stroke');
    assert.equal(doc.mask.isEmpty(), true);
    assert.ok(doc.undo(), 'the first open');
    assert.equal(doc.image, null);
    assert.equal(doc.width, 64);
    // And forward again.
    while (doc.redo());
    assert.equal((doc.image!.source as { historyId: number }).historyId, 201);
    assert.deepEqual(doc.mask.data, mask);
  });

  it('past the budget the oldest steps go first; what remains undoes exactly; the newest step always stays', () => {
    const side = 256;
    const doc = new EditorDocument(side, side, { undoBudgetBytes: 400_000 });
    const rnd = random(11);
    const states: Uint8Array[] = [doc.mask.data.slice()];
    for (let i = 0; i < 20; i++) {
      // Clear, then a magic-wand pick on a noise picture: whole-mask edits that pack badly (tens of KiB each).
      doc.clearMask();
      if (i > 0) states.push(doc.mask.data.slice());
      const picture = Uint8Array.from({ length: side * side * 4 }, () => Math.floor(rnd() * 256));
      doc.selectColourRange(picture, i, i, { tolerance: 90, contiguous: false });
      states.push(doc.mask.data.slice());
      assert.ok(doc.undoMemoryBytes <= 400_000, `step ${i}: ${doc.undoMemoryBytes} bytes held`);
    }
    const depth = doc.undoDepth;
    assert.equal(states.length, 40, '39 steps were taken');
    assert.ok(depth >= 2 && depth < 39, `old steps were dropped (depth ${depth})`);
    for (let k = 1; k <= depth; k++) {
      assert.ok(doc.undo());
      assert.deepEqual(doc.mask.data, states[states.length - 1 - k], `undo ${k} gives the state before it exactly`);
    }
    assert.equal(doc.undo(), false, 'the dropped steps are gone');
    for (let k = depth - 1; k >= 0; k--) {
      assert.ok(doc.redo());
      assert.deepEqual(doc.mask.data, states[states.length - 1 - k]);
    }
    doc.setUndoBudget(0);
    assert.equal(doc.undoDepth, 1, 'a budget of 0 keeps only the newest step');
    assert.throws(() => doc.setUndoBudget(-1), /undo budget/);
  });

  it('a budget smaller than one 2048² raw step keeps just that step', () => {
    const doc = new EditorDocument(2048, 2048, { undoBudgetBytes: 1024 });
    const rnd = random(2);
    const picked = Uint8Array.from({ length: 2048 * 2048 * 4 }, () => Math.floor(rnd() * 256));
    doc.selectColourRange(picked, 5, 5, { tolerance: 60, contiguous: false });
    doc.featherMask(3);
    assert.equal(doc.undoDepth, 1);
    const before = doc.mask.data.slice();
    assert.ok(doc.undo());
    assert.ok(doc.redo());
    assert.deepEqual(doc.mask.data, before);
  });
});
