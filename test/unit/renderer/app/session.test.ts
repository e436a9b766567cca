/**
 * The session's layout-mode rules (auto mode, what Generate says while it can't run), with the real
 * ModelInfo the engine detects for the tiny layout and inpainting fixtures.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import type { ModelInfo } from '../../../../electron/shared/model.js';
import { doc, effectiveMode, generateProblem, layoutPalette, modelsStore, usesPanelSize } from '../../../../renderer/src/app/session.js';
import { DEFAULT_SETTINGS, settingsStore } from '../../../../renderer/src/app/store.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'models');

async function detect(name: string): Promise<ModelInfo> {
  const model = await openModelFolder(join(FIXTURES, name), { providers: ['cpu'], threads: 1 });
  try {
    return model.info;
  } finally {
    await model.release();
  }
}

function choose(id: string): void {
  modelsStore.update({ selectedId: id, loading: false });
}

function paintLabel(label: number): void {
  doc.beginLayoutStroke('brush', label, 6, { x: 20, y: 20, pressure: 1 });
  doc.endStroke();
}

describe('session: layout mode', () => {
  let layout: ModelInfo;
  let inpaint: ModelInfo;

  before(async () => {
    layout = await detect('tiny-sd1-layout');
    inpaint = await detect('tiny-sd1-inpaint');
    modelsStore.update({ info: { layout, inpaint }, loading: false });
  });
  after(() => modelsStore.update({ info: {}, selectedId: null }));
  beforeEach(() => {
    settingsStore.set({ ...DEFAULT_SETTINGS, width: 64, height: 64 });
    doc.newBlank(64, 64);
  });

  it('the palette is the chosen layout model’s labels, else the first layout model’s', () => {
    choose('layout');
    assert.ok(layout.layout);
    assert.deepEqual(layoutPalette(), layout.layout.labels);
    choose('inpaint');
    assert.deepEqual(layoutPalette(), layout.layout.labels, 'a painted layout keeps its colours under another model');
    assert.deepEqual(layoutPalette({ ...modelsStore.get(), info: { inpaint } }), []);
  });

  it('auto is layout for a layout model (it does nothing else); Generate waits for paint', () => {
    choose('layout');
    assert.equal(effectiveMode(), 'layout');
    assert.match(generateProblem() ?? '', /^Paint a layout first/);
    paintLabel(2);
    assert.equal(effectiveMode(), 'layout');
    assert.equal(generateProblem(), null);
    assert.ok(usesPanelSize(settingsStore.get(), 'layout'), 'a blank layout canvas follows the size picker');
  });

  it('a painted layout does not make an inpainting model do layout; choosing layout says why not', () => {
    choose('inpaint');
    paintLabel(1);
    assert.equal(effectiveMode(), 'txt2img');
    assert.equal(generateProblem(), null);
    settingsStore.update({ modeChoice: 'layout' });
    assert.match(generateProblem() ?? '', /^inpaint is not a layout model/);
  });

  it('a label the model does not have is a problem to fix, not a request to send', () => {
    choose('layout');
    const k = layout.layout!.labels.length;
    paintLabel(k);
    assert.match(generateProblem() ?? '', new RegExp(`uses labels layout doesn't have \\(it has ${k}\\)`));
    doc.undo();
    paintLabel(k - 1);
    assert.equal(generateProblem(), null);
  });
});
