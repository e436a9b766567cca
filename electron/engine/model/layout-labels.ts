/**
 * A layout model's labels: `labels.json` at the model folder's root (written next to the export by
 * native-models/training, whose labels.py owns the label rule):
 *
 *   {"format": "latent-studio-labels/1",
 *    "labels": [{"id": 0, "name": "background", "color": [255, 255, 255]}, …]}
 *
 * ids run 0..K-1 in order, names are lowercase words, colours are distinct RGB triples. Anything else
 * is a ModelFolderError naming the file, so a broken folder is refused when it is opened, not mid-run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelFolderError } from '../../shared/errors.js';
import type { LayoutLabel } from '../../shared/model.js';

export const LABELS_FILE = 'labels.json';
export const LABELS_FORMAT = 'latent-studio-labels/1';
/** More labels than this is not a label set a person paints with (the bundled model has 9). */
export const MAX_LABELS = 256;
/** Lowercase words: "background", "light skin", "blue-green". */
const LABEL_NAME = /^[a-z][a-z0-9]*(?:[ _-][a-z0-9]+)*$/;

function fail(message: string): never {
  throw new ModelFolderError(message, LABELS_FILE);
}

/** Checks parsed labels.json content; returns the labels in id order. */
export function parseLabels(json: unknown): LayoutLabel[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('expected a JSON object');
  const root = json as Record<string, unknown>;
  if (root['format'] !== LABELS_FORMAT) {
    fail(`"format" must be "${LABELS_FORMAT}", found ${JSON.stringify(root['format']) ?? 'nothing'}`);
  }
  const list = root['labels'];
  if (!Array.isArray(list) || list.length === 0) fail('"labels" must be a non-empty array');
  if (list.length > MAX_LABELS) fail(`at most ${MAX_LABELS} labels, found ${list.length}`);
  const seen = new Map<string, number>();
  return list.map((entry: unknown, index): LayoutLabel => {
    const where = `labels[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`${where} must be an object {id, name, color}`);
    const { id, name, color } = entry as Record<string, unknown>;
    if (id !== index) fail(`${where}: ids must run 0..K-1 in order; expected id ${index}, found ${JSON.stringify(id) ?? 'nothing'}`);
    if (typeof name !== 'string' || !LABEL_NAME.test(name)) {
      fail(`${where}: name must be lowercase words, found ${JSON.stringify(name) ?? 'nothing'}`);
    }
    if (!Array.isArray(color) || color.length !== 3 || !color.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) {
      fail(`${where} (${name}): color must be [r, g, b] with integers 0 to 255, found ${JSON.stringify(color) ?? 'nothing'}`);
    }
    const key = color.join(',');
    const twin = seen.get(key);
    if (twin !== undefined) fail(`${where} (${name}) has the same color [${key}] as labels[${twin}]: colours must be distinct`);
    seen.set(key, index);
    return { id: index, name, color: [color[0], color[1], color[2]] as [number, number, number] };
  });
}

/** Reads and checks `<dir>/labels.json`. */
export function readLabels(dir: string): LayoutLabel[] {
  const file = join(dir, LABELS_FILE);
  if (!existsSync(file)) {
    fail('file is missing: a layout model (its U-Net has a label_map input) needs its labels and their colours');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelFolderError(`not valid JSON (${(err as Error).message})`, LABELS_FILE, { cause: err });
  }
  return parseLabels(parsed);
}
