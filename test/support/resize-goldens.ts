/** Pillow's LANCZOS resize goldens (native-models/tools/make_resize_goldens.py), read as raw pixels. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT } from '../../electron/host/cli.js';

export const RESIZE_GOLDENS = join(REPO_ROOT, 'test/fixtures/resize-lanczos');

export interface ResizeCase {
  case: number;
  mode: 'RGB' | 'L';
  from: [number, number];
  to: [number, number];
  /** A1111's only-masked steps: this box (left, top, right, bottom) cut out first. */
  crop?: [number, number, number, number];
}

/** One of the goldens' PNGs as interleaved 8-bit pixels. */
export async function goldenPixels(file: string, channels: 1 | 3): Promise<{ data: Uint8Array; width: number; height: number }> {
  // libvips may hand a grey picture back as three bands.
  const img = channels === 1 ? sharp(join(RESIZE_GOLDENS, file)).extractChannel(0) : sharp(join(RESIZE_GOLDENS, file)).removeAlpha();
  const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, channels, file);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}
