/**
 * Layout mode's rules (auto mode, the palette, what Generate says while it can't run), with the real
 * ModelInfo the engine detects for the tiny layout and inpainting fixtures.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import type { ModelInfo } from '../../../../electron/shared/model.js';
import { autoMode, layoutPaletteOf, layoutProblem } from '../../../../renderer/src/session/layout-mode.js';
import { EditorDocument } from '../../../../renderer/src/document/document.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'models');

async function detect(name: string): Promise<ModelInfo> {
  const model = await openModelFolder(join(FIXTURES, name), { providers: ['cpu'], threads: 1 });
  try {
    return model.info;
  } finally {
    await model.release();
  }
}

function painted(label: number): EditorDocument {
  const doc = new EditorDocument(64, 64);
  doc.beginLayoutStroke('brush', label, 6, { x: 20, y: 20, pressure: 1 });
  doc.endStroke();
  return doc;
}

describe('layout mode rules', () => {
  let layout: ModelInfo;
  let inpaint: ModelInfo;

  before(async () => {
    layout = await detect('tiny-sd1-layout');
    inpaint = await detect('tiny-sd1-inpaint');
  });

  it('the palette is the chosen layout model’s labels, else the first layout model’s', () => {
    assert.ok(layout.layout);
    assert.equal(layout.layout.labels.length, 4, 'the fixture has K = 4');
    const info = { layout, inpaint };
    assert.deepEqual(layoutPaletteOf({ selectedId: 'layout', info }), layout.layout.labels);
    assert.deepEqual(layoutPaletteOf({ selectedId: 'inpaint', info }), layout.layout.labels, 'a painted layout keeps its colours under another model');
    assert.deepEqual(layoutPaletteOf({ selectedId: 'inpaint', info: { inpaint } }), []);
  });

  it('auto is layout for a layout model (it does nothing else); Generate waits for paint', () => {
    const blank = new EditorDocument(64, 64);
    assert.equal(autoMode(blank, layout), 'layout');
    assert.match(layoutProblem(blank, 'layout', layout) ?? '', /^Paint a layout first/);
    const doc = painted(2);
    assert.equal(autoMode(doc, layout), 'layout');
    assert.equal(layoutProblem(doc, 'layout', layout), null);
  });

  it('a painted layout does not make an inpainting model do layout; asking for layout says why not', () => {
    const doc = painted(1);
    assert.equal(autoMode(doc, inpaint), 'txt2img');
    assert.equal(autoMode(doc, undefined), 'txt2img', 'model info not loaded yet');
    assert.match(layoutProblem(doc, 'tiny-sd1-inpaint', inpaint) ?? '', /^tiny-sd1-inpaint is not a layout model/);
  });

  it('a label the model does not have is a problem to fix, not a request to send', () => {
    const k = layout.layout!.labels.length;
    const doc = painted(k);
    assert.match(layoutProblem(doc, 'tiny-sd1-layout', layout) ?? '', new RegExp(`uses labels tiny-sd1-layout doesn't have \\(it has ${k}\\)`));
    doc.undo();
    doc.beginLayoutStroke('brush', k - 1, 6, { x: 20, y: 20, pressure: 1 });
    doc.endStroke();
    assert.equal(layoutProblem(doc, 'tiny-sd1-layout', layout), null);
  });
});
