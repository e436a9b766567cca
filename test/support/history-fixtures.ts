/** Small real inputs for the history tests: temp folders, seeded images, generation requests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GenerationParams } from '../../electron/shared/generation.js';
import type { NewGeneration, RgbImage } from '../../electron/shared/history.js';

export function tempDir(prefix = 'history-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** mulberry32: a tiny seeded PRNG, so every test image and kill time can be reproduced. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Noise: every seed gives different pixels (so a different content hash). */
export function noiseImage(seed: number, width = 16, height = 16): RgbImage {
  const random = seededRandom(seed);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = Math.floor(random() * 256);
  return { rgb, width, height };
}

export const MODEL = { id: 'tiny-sd', hash: 'c0ffee'.padEnd(64, '0') };

export function params(overrides: Partial<GenerationParams> = {}): GenerationParams {
  return {
    mode: 'txt2img',
    prompt: 'a lighthouse on a cliff',
    negativePrompt: 'blurry',
    seed: 42,
    steps: 20,
    cfg: 7,
    sampler: 'euler_a',
    width: 16,
    height: 16,
    strength: 1,
    maskBlur: 4,
    ...overrides,
  };
}

export function generation(
  seed: number,
  overrides: Omit<Partial<NewGeneration>, 'params'> & { params?: Partial<GenerationParams> } = {},
): NewGeneration {
  const { params: p, ...rest } = overrides;
  return {
    params: params({ seed, ...p }),
    model: MODEL,
    output: noiseImage(seed),
    executionProvider: 'cpu',
    timings: { totalMs: 120, textEncodeMs: 10, vaeEncodeMs: 0, denoiseMs: 100, vaeDecodeMs: 10, stepsRun: 20 },
    ...rest,
  };
}
