/** Paths and helpers for tests that run the engine on the tiny fixture models in test/fixtures/models. */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../../electron/engine/tensor/image.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
export const MODELS = join(FIXTURES, 'models');

export const FIXTURE_MODELS = ['tiny-sd1', 'tiny-sd1-inpaint', 'tiny-sd1-fp16', 'tiny-optimum', 'tiny-sd2-v', 'tiny-lcm'] as const;
export type FixtureModel = (typeof FIXTURE_MODELS)[number];

export function modelDir(name: FixtureModel): string {
  return join(MODELS, name);
}

export async function readRgb(pathOrBytes: string | Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(pathOrBytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
}

export async function toPng(img: RgbImage): Promise<Buffer> {
  return sharp(Buffer.from(img.rgb), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
}

/** Largest per-channel difference in 8-bit levels. */
export function maxAbsDiff(a: RgbImage, b: RgbImage): number {
  if (a.rgb.length !== b.rgb.length) throw new Error(`size mismatch ${a.width}x${a.height} vs ${b.width}x${b.height}`);
  let m = 0;
  for (let i = 0; i < a.rgb.length; i++) m = Math.max(m, Math.abs(a.rgb[i]! - b.rgb[i]!));
  return m;
}

export function meanAbsDiff(a: RgbImage, b: RgbImage): number {
  let s = 0;
  for (let i = 0; i < a.rgb.length; i++) s += Math.abs(a.rgb[i]! - b.rgb[i]!);
  return s / a.rgb.length;
}

/** A deterministic test picture: smooth gradients plus a disc, so structure is visible. */
export function testPicture(width: number, height: number): RgbImage {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const inDisc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (width / 4) ** 2;
      rgb[i] = inDisc ? 220 : Math.round((x / width) * 255);
      rgb[i + 1] = inDisc ? 40 : Math.round((y / height) * 255);
      rgb[i + 2] = inDisc ? 40 : 128;
    }
  }
  return { width, height, rgb };
}
