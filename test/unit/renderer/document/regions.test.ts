import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EditorDocument, exportRegionPng, type DocumentChange, type ImageLayer } from '../../../../renderer/src/document/document.js';
import { REGION_COLOURS, colourToHex, hexToColour } from '../../../../renderer/src/document/regions.js';
import type { BrushSettings } from '../../../../renderer/src/document/brush.js';
import { inflateSync } from 'node:zlib';

const HARD: BrushSettings = { size: 8, hardness: 1, opacity: 1 };

function image(id: number, width: number, height: number): ImageLayer {
  return { width, height, source: { kind: 'history', historyId: id, hash: id.toString(16).padStart(64, '0') } };
}

function drag(doc: EditorDocument, id: number, points: Array<[number, number]>, tool: 'brush' | 'eraser' = 'brush'): void {
  doc.beginRegionStroke(id, tool, HARD, { x: points[0]![0], y: points[0]![1], pressure: 1 });
  for (const [x, y] of points.slice(1)) doc.continueStroke({ x, y, pressure: 1 });
  doc.endStroke();
}

describe('regions in the document', () => {
  it('adds regions with distinct colours and empty masks, one undo step each', () => {
    const doc = new EditorDocument(32, 32);
    const a = doc.addRegion({ prompt: 'a red fox' });
    const b = doc.addRegion();
    assert.deepEqual(doc.regions.map((r) => r.prompt), ['a red fox', '']);
    assert.deepEqual([a.colour, b.colour], [REGION_COLOURS[0], REGION_COLOURS[1]]);
    assert.ok(a.mask.isEmpty() && b.mask.isEmpty());
    assert.equal(doc.undoLabel, 'Add region');
    doc.undo();
    assert.deepEqual(doc.regions.map((r) => r.id), [a.id]);
    doc.redo();
    assert.deepEqual(doc.regions.map((r) => r.id), [a.id, b.id]);
  });

  it('paints a region with the brush: only its mask changes, one undo step per stroke, Esc cancels', () => {
    const doc = new EditorDocument(32, 32);
    const a = doc.addRegion({ prompt: 'left' });
    const b = doc.addRegion({ prompt: 'right' });
    const changes: DocumentChange[] = [];
    doc.subscribe((c) => changes.push(c));
    drag(doc, a.id, [[6, 4], [6, 28]]);
    assert.equal(doc.region(a.id)!.mask.at(6, 16), 255);
    assert.ok(doc.region(b.id)!.mask.isEmpty());
    assert.ok(doc.mask.isEmpty(), 'the inpaint mask is untouched');
    assert.ok(changes.some((c) => c.kind === 'region' && c.id === a.id), 'dabs announce the region and rect');
    assert.ok(!changes.some((c) => c.kind === 'mask' || c.kind === 'document'));
    assert.equal(doc.undoLabel, 'Region brush stroke');

    drag(doc, b.id, [[26, 4], [26, 28]]);
    drag(doc, b.id, [[26, 10], [26, 20]], 'eraser');
    assert.equal(doc.region(b.id)!.mask.at(26, 15), 0);
    assert.equal(doc.region(b.id)!.mask.at(26, 5), 255);
    doc.undo();
    assert.equal(doc.region(b.id)!.mask.at(26, 15), 255, 'undo takes back the eraser stroke');
    doc.undo();
    assert.ok(doc.region(b.id)!.mask.isEmpty());
    assert.equal(doc.region(a.id)!.mask.at(6, 16), 255);

    const before = doc.region(a.id)!.mask.data.slice();
    doc.beginRegionStroke(a.id, 'brush', HARD, { x: 16, y: 16, pressure: 1 });
    doc.continueStroke({ x: 20, y: 16, pressure: 1 });
    assert.ok(doc.cancelStroke());
    assert.deepEqual(doc.region(a.id)!.mask.data, before);
  });

  it('remove is undoable with the mask and the prompt as they were (typed text is kept by undo/redo)', () => {
    const doc = new EditorDocument(16, 16);
    const a = doc.addRegion({ prompt: 'sky' });
    drag(doc, a.id, [[2, 2], [12, 2]]);
    const painted = doc.region(a.id)!.mask.data.slice();
    doc.updateRegion(a.id, { prompt: 'blue sky', weight: 0.6 });
    assert.equal(doc.undoLabel, 'Region brush stroke', 'editing a prompt is not an undo step');
    doc.removeRegion(a.id);
    assert.equal(doc.regions.length, 0);
    doc.undo();
    const back = doc.region(a.id)!;
    assert.deepEqual(back.mask.data, painted);
    assert.equal(back.prompt, 'blue sky');
    assert.equal(back.weight, 0.6);

    // Type after an add, undo the add, redo it: the typed prompt comes back with it.
    const b = doc.addRegion();
    doc.updateRegion(b.id, { prompt: 'grass' });
    doc.undo();
    assert.equal(doc.region(b.id), undefined);
    doc.redo();
    assert.equal(doc.region(b.id)!.prompt, 'grass');
  });

  it('loadRegions replaces the list in one undo step; masks must be the document size', () => {
    const doc = new EditorDocument(8, 8);
    doc.addRegion({ prompt: 'old' });
    const m1 = new Uint8Array(64).fill(255, 0, 32);
    const m2 = new Uint8Array(64).fill(128, 32);
    const loaded = doc.loadRegions([{ prompt: 'top', weight: 0.7, mask: m1 }, { prompt: 'bottom', mask: m2 }]);
    assert.deepEqual(doc.regions.map((r) => [r.prompt, r.weight]), [['top', 0.7], ['bottom', 1]]);
    assert.deepEqual(doc.region(loaded[1]!.id)!.mask.data, m2);
    assert.notDeepEqual(loaded[0]!.colour, loaded[1]!.colour);
    assert.equal(doc.undoLabel, 'Reuse regions');
    doc.undo();
    assert.deepEqual(doc.regions.map((r) => r.prompt), ['old']);
    assert.throws(() => doc.loadRegions([{ prompt: 'x', mask: new Uint8Array(10) }]), /8×8/);
  });

  it('regions stay with the composition: kept over an accepted picture, stretched to a new size, moved when extending, all undoable', () => {
    const doc = new EditorDocument(16, 16);
    const a = doc.addRegion({ prompt: 'left half' });
    drag(doc, a.id, [[2, 0], [2, 16]]);
    doc.setImage(image(1, 16, 16), 'Accept result');
    assert.equal(doc.region(a.id)!.mask.at(2, 8), 255, 'same size: kept');
    doc.setImage(image(2, 32, 32));
    assert.equal(doc.region(a.id)!.mask.width, 32);
    assert.equal(doc.region(a.id)!.mask.at(5, 16), 255, 'stretched with the picture');
    doc.extendCanvas(image(3, 48, 32), 16, 0);
    assert.equal(doc.region(a.id)!.mask.at(21, 16), 255, 'moved with the old pixels');
    assert.equal(doc.region(a.id)!.mask.at(2, 16), 0, 'the new strip is outside the region');
    doc.undo();
    doc.undo();
    assert.equal(doc.region(a.id)!.mask.width, 16);
    assert.equal(doc.region(a.id)!.mask.at(2, 8), 255);
    // A painted region makes resizing the blank canvas an undo step.
    const blank = new EditorDocument(16, 16);
    const r = blank.addRegion();
    drag(blank, r.id, [[8, 8], [9, 8]]);
    blank.resizeBlank(32, 32);
    assert.equal(blank.undoLabel, 'Resize canvas');
    assert.equal(blank.region(r.id)!.mask.width, 32);
  });

  it('adding regions re-packs none of the masks already packed (they are shared with the step before)', () => {
    const doc = new EditorDocument(512, 512);
    const a = doc.addRegion();
    drag(doc, a.id, [[10, 10], [500, 500]]);
    doc.addRegion();
    const afterSecond = doc.undoMemoryBytes;
    doc.addRegion();
    // The third add holds both lists, but the two existing masks are the same packed planes as in the step before.
    assert.ok(doc.undoMemoryBytes - afterSecond < 1024, `the third add cost ${doc.undoMemoryBytes - afterSecond} bytes`);
  });

  it('clearRegion empties one mask as one undo step; undo of a region stroke survives whole-document steps', () => {
    const doc = new EditorDocument(16, 16);
    const a = doc.addRegion();
    drag(doc, a.id, [[4, 4], [12, 12]]);
    doc.clearRegion(a.id);
    assert.ok(doc.region(a.id)!.mask.isEmpty());
    doc.undo();
    assert.equal(doc.region(a.id)!.mask.at(8, 8), 255);
  });

  it('a 2048² region costs the undo history about what it changed', () => {
    const doc = new EditorDocument(2048, 2048);
    const a = doc.addRegion();
    const b = doc.addRegion();
    drag(doc, a.id, [[100, 100], [900, 900]]);
    drag(doc, b.id, [[1900, 100], [1100, 900]]);
    for (let i = 0; i < 6; i++) doc.setImage(image(10 + i, 2048, 2048), 'Accept result');
    assert.ok(doc.undoMemoryBytes < 512 * 1024, `undo history holds ${doc.undoMemoryBytes} bytes`);
    for (let i = 0; i < 6; i++) doc.undo();
    assert.equal(doc.region(a.id)!.mask.at(500, 500), 255);
    assert.equal(doc.region(b.id)!.mask.at(1500, 500), 255);
  });

  it('exports a region as a greyscale PNG at the picture size', async () => {
    const doc = new EditorDocument(12, 10);
    const a = doc.addRegion();
    drag(doc, a.id, [[3, 3], [8, 3]]);
    const png = await exportRegionPng(doc, doc.region(a.id)!, async (raw) => new Uint8Array(await import('node:zlib').then((z) => z.deflateSync(raw))));
    assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
    const view = new DataView(png.buffer, png.byteOffset);
    assert.deepEqual([view.getUint32(16), view.getUint32(20), png[24], png[25]], [12, 10, 8, 0], '12×10, 8-bit grey');
    const idat = png.subarray(41, 41 + view.getUint32(33));
    const rows = inflateSync(idat);
    assert.equal(rows[3 * 13 + 1 + 5], 255);
    assert.equal(rows[9 * 13 + 1 + 5], 0);
  });

  it('colours go to and from #rrggbb', () => {
    assert.equal(colourToHex([64, 160, 255]), '#40a0ff');
    assert.deepEqual(hexToColour('#40A0ff'), [64, 160, 255]);
    assert.equal(hexToColour('blue'), null);
  });
});
