/** Paths and helpers for tests that run the engine on the tiny fixture models in test/fixtures/models. */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../../electron/engine/tensor/image.js';
import { readNpyFloat32 } from '../../electron/engine/tensor/npy.js';
import type { SamplerName } from '../../electron/shared/generation.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures');
export const MODELS = join(FIXTURES, 'models');
/** Reference images and case lists written by native-models/tools/make_fixtures.py. */
export const PARITY = join(FIXTURES, 'parity');

export const FIXTURE_MODELS = [
  'tiny-sd1',
  'tiny-sd1-inpaint',
  'tiny-sd1-fp16',
  'tiny-optimum',
  'tiny-sd2-v',
  'tiny-lcm',
  'tiny-sdxl',
  'tiny-sdxl-inpaint',
  'tiny-sdxl-turbo',
] as const;
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

/**
 * The fields every reference case in test/fixtures/parity/*cases.json carries; file names are relative
 * to PARITY, `model` to FIXTURES.
 */
export interface ReferenceCase {
  name: string;
  model: string;
  prompt: string;
  negative: string;
  steps: number;
  cfg: number;
  sampler: SamplerName;
  width: number;
  height: number;
  latents: string;
  reference: string;
  reference_float: string;
}

export function readCases<C extends ReferenceCase>(file: string): C[] {
  return JSON.parse(readFileSync(join(PARITY, file), 'utf8')) as C[];
}

export function readParityNpy(file: string): Float32Array {
  return readNpyFloat32(readFileSync(join(PARITY, file))).data;
}

/** The request fields a reference case fixes; with the case's initial latents given, the seed is unused. */
export function caseRequest(c: ReferenceCase) {
  return {
    prompt: c.prompt,
    negativePrompt: c.negative,
    seed: 0,
    steps: c.steps,
    cfg: c.cfg,
    sampler: c.sampler,
    width: c.width,
    height: c.height,
    latents: readParityNpy(c.latents),
  };
}

/**
 * Our image against the case's reference: at most `maxLevels`/255 per pixel from the reference PNG, and
 * every pixel the nearest 8-bit level of the exact float value (≤ 0.5/255 plus slack for float noise).
 */
export async function assertMatchesReference(t: TestContext, image: RgbImage, c: ReferenceCase, maxLevels: number): Promise<void> {
  const diff = maxAbsDiff(image, await readRgb(join(PARITY, c.reference)));
  const exact = readParityNpy(c.reference_float);
  let floatDiff = 0;
  for (let i = 0; i < exact.length; i++) floatDiff = Math.max(floatDiff, Math.abs(image.rgb[i]! / 255 - exact[i]!));
  t.diagnostic(`max diff ${diff}/255 vs reference PNG; ${(floatDiff * 255).toFixed(3)}/255 vs float reference`);
  assert.ok(diff <= maxLevels, `${c.name}: max pixel difference ${diff}/255 exceeds ${maxLevels}/255`);
  assert.ok(floatDiff * 255 <= 0.6, `${c.name}: ${(floatDiff * 255).toFixed(3)}/255 from the float reference`);
}

/**
 * A fixture as a folder under `into` whose U-Net config.json says `sample_size` 8 (a native size of
 * 64 px), its files linked, not copied. The tiny SD 1.x fixtures have no U-Net config, so their native
 * size is SD 1.x's 512, and what runs at the native size (live frames) takes a minute there on a loaded
 * CI machine.
 */
export function withNativeSide64(name: string, into: string): string {
  const from = join(MODELS, name);
  const dir = join(into, name);
  mkdirSync(join(dir, 'unet'), { recursive: true });
  for (const entry of readdirSync(from)) if (entry !== 'unet') symlinkSync(join(from, entry), join(dir, entry));
  for (const entry of readdirSync(join(from, 'unet'))) symlinkSync(join(from, 'unet', entry), join(dir, 'unet', entry));
  writeFileSync(join(dir, 'unet', 'config.json'), JSON.stringify({ sample_size: 8 }));
  return dir;
}
