/**
 * Layout models: detection on test/fixtures/models/tiny-sd1-layout (a U-Net with a `label_map` input and
 * labels.json), and a ModelFolderError naming labels.json for every way the labels can be wrong.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLabels } from '../../../../electron/engine/model/layout-labels.js';
import { openModelFolder } from '../../../../electron/engine/model/model-folder.js';
import { ModelFolderError } from '../../../../electron/shared/errors.js';
import { MODELS, modelDir } from '../../../support/engine-fixtures.js';

const settings = { providers: ['cpu'] as const, threads: 1 };
const LAYOUT = join(MODELS, 'tiny-sd1-layout');
const labelsJson = JSON.parse(readFileSync(join(LAYOUT, 'labels.json'), 'utf8')) as { format: string; labels: unknown[] };

function isFolderError(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ModelFolderError, `expected a ModelFolderError, got ${String(err)}`);
    assert.match(err.message, pattern);
    assert.equal(err.code, 'E_MODEL_FOLDER');
    return true;
  };
}

describe('layout model detection', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'layout-labels-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  let copies = 0;
  /** A copy of the layout fixture with labels.json replaced (or removed when `labels` is undefined). */
  function withLabels(labels: string | undefined): string {
    const dir = join(tmp, `copy-${copies++}`);
    cpSync(LAYOUT, dir, { recursive: true });
    if (labels === undefined) unlinkSync(join(dir, 'labels.json'));
    else writeFileSync(join(dir, 'labels.json'), labels);
    return dir;
  }

  test('tiny-sd1-layout is a layout model with its four labels; the sample input keeps the 4 latent channels', async () => {
    const model = await openModelFolder(LAYOUT, settings);
    try {
      const { info } = model;
      assert.equal(info.kind, 'layout');
      assert.deepEqual(info.supports, ['layout']);
      assert.deepEqual(info.layout, { labels: labelsJson.labels });
      assert.deepEqual(info.layout?.labels.map((l) => l.name), ['background', 'outline', 'skin', 'accent']);
      assert.equal(info.unetInChannels, 4, 'unet/config.json says in_channels 8: the inner U-Net also takes the 4 label channels');
      assert.equal(info.latentChannels, 4);
      assert.equal(info.exporter, 'optimum');
      assert.deepEqual(info.warnings, []);
    } finally {
      await model.release();
    }
  });

  test('other models have no labels (layout: null)', async () => {
    const model = await openModelFolder(modelDir('tiny-sd1'), settings);
    try {
      assert.equal(model.info.layout, null);
      assert.equal(model.info.kind, 'txt2img');
    } finally {
      await model.release();
    }
  });

  test('a missing labels.json is a ModelFolderError naming it', async () => {
    await assert.rejects(openModelFolder(withLabels(undefined), settings), isFolderError(/^labels\.json: file is missing: a layout model/));
  });

  test('labels.json with fewer labels than the U-Net has label channels is refused', async () => {
    const three = JSON.stringify({ ...labelsJson, labels: labelsJson.labels.slice(0, 3) });
    await assert.rejects(
      openModelFolder(withLabels(three), settings),
      isFolderError(/^labels\.json: 3 labels, but the U-Net's label_map input takes 4 channels/),
    );
  });

  test('labels.json that is not JSON is refused', async () => {
    await assert.rejects(openModelFolder(withLabels('{"format": '), settings), isFolderError(/^labels\.json: not valid JSON/));
  });

  test('a bad label inside an otherwise good file is refused when the folder opens', async () => {
    const bad = JSON.stringify({ ...labelsJson, labels: [...labelsJson.labels.slice(0, 3), { id: 3, name: 'accent', color: [255, 255, 255] }] });
    await assert.rejects(openModelFolder(withLabels(bad), settings), isFolderError(/same color \[255,255,255\] as labels\[0\]/));
  });

  test('labels.json next to a U-Net without label_map is ignored, with a warning', async () => {
    const dir = join(tmp, 'sd1-with-labels');
    cpSync(modelDir('tiny-sd1'), dir, { recursive: true });
    writeFileSync(join(dir, 'labels.json'), JSON.stringify(labelsJson));
    const model = await openModelFolder(dir, settings);
    try {
      assert.equal(model.info.kind, 'txt2img');
      assert.equal(model.info.layout, null);
      assert.ok(model.info.warnings.some((w) => /labels\.json is ignored: the U-Net has no label_map input/.test(w)), model.info.warnings.join('; '));
    } finally {
      await model.release();
    }
  });
});

describe('parseLabels', () => {
  const good = { format: 'latent-studio-labels/1', labels: [{ id: 0, name: 'background', color: [255, 255, 255] }, { id: 1, name: 'light skin', color: [250, 200, 160] }] };
  const withLabel = (i: number, patch: Record<string, unknown>): unknown => ({
    ...good,
    labels: good.labels.map((l, j) => (j === i ? { ...l, ...patch } : l)),
  });

  test('a good file gives the labels in id order', () => {
    assert.deepEqual(parseLabels(good), good.labels);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ['not an object', [1, 2], /expected a JSON object/],
    ['a wrong format', { ...good, format: 'latent-studio-labels/2' }, /"format" must be "latent-studio-labels\/1", found "latent-studio-labels\/2"/],
    ['no format', { labels: good.labels }, /"format" must be .* found nothing/],
    ['no labels', { format: good.format, labels: [] }, /"labels" must be a non-empty array/],
    ['ids out of order', withLabel(1, { id: 2 }), /labels\[1\]: ids must run 0\.\.K-1 in order; expected id 1, found 2/],
    ['a missing id', withLabel(0, { id: undefined }), /labels\[0\]: ids must run .* found nothing/],
    ['an upper-case name', withLabel(1, { name: 'Skin' }), /labels\[1\]: name must be lowercase words, found "Skin"/],
    ['an empty name', withLabel(1, { name: '' }), /name must be lowercase words/],
    ['a colour with two channels', withLabel(1, { color: [1, 2] }), /labels\[1\] \(light skin\): color must be \[r, g, b\]/],
    ['a colour above 255', withLabel(1, { color: [1, 2, 256] }), /color must be \[r, g, b\] with integers 0 to 255, found \[1,2,256\]/],
    ['a fractional colour', withLabel(1, { color: [1, 2.5, 3] }), /color must be \[r, g, b\]/],
    ['two labels with one colour', withLabel(1, { color: [255, 255, 255] }), /labels\[1\] \(light skin\) has the same color \[255,255,255\] as labels\[0\]/],
  ];
  for (const [what, json, message] of cases) {
    test(`refuses ${what}`, () => {
      assert.throws(() => parseLabels(json), isFolderError(new RegExp(`^labels\\.json: .*${message.source}`)));
    });
  }
});
