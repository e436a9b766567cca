/**
 * Seam figure for soft inpainting: the mean gradient energy across the mask border, soft vs hard, on a
 * fixed set of pictures, masks, seeds and models (the tiny inpaint fixtures and the bundled
 * emoji-ldm-inpaint). Prints JSON.
 *
 *   npm run bench:seam
 *
 * Each case repaints one picture with a soft-edged mask (a disc painted at brush hardness 0.5: full inside
 * radius r/2, falling smoothly to 0 at r):
 * - hard: today's path, soft inpainting off (the mask binarized at ½, inward feather by Mask blur);
 * - soft: soft inpainting on (differential diffusion on the same mask's grey levels, the same Mask blur).
 * Border band: pixels within BAND px of the binarized mask's edge (inside or out). Energy: the mean over
 * the band of |∇I|² with I in [0, 1] per channel (forward differences, summed over RGB and both axes).
 * Lower is a smoother transition; the picture's own edges count the same in both runs.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { Engine } from '../electron/engine/engine.js';
import type { RgbImage } from '../electron/engine/tensor/image.js';

const ROOT = join(import.meta.dirname, '..');
const BAND = 3;
const MASK_BLUR = 4;
const SEEDS = [1, 2, 3];

interface Model {
  name: string;
  dir: string;
  size: number;
  steps: number;
}
const MODELS: Model[] = [
  { name: 'tiny-sd1', dir: join(ROOT, 'test/fixtures/models/tiny-sd1'), size: 64, steps: 8 },
  { name: 'tiny-sd1-inpaint', dir: join(ROOT, 'test/fixtures/models/tiny-sd1-inpaint'), size: 64, steps: 8 },
  { name: 'emoji-ldm-inpaint', dir: join(ROOT, 'native-models/emoji-ldm-inpaint'), size: 128, steps: 20 },
];

/** Three fixed pictures: gradients, a checkerboard, stripes. */
function picture(kind: number, size: number): RgbImage {
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 3;
      const u = x / size;
      const v = y / size;
      const px =
        kind === 0 ? [u * 255, v * 255, 128]
        : kind === 1 ? (Math.floor(x / (size / 8)) + Math.floor(y / (size / 8))) % 2 === 0 ? [220, 200, 60] : [40, 60, 160]
        : [128 + 100 * Math.sin(u * 12), 90, 128 + 100 * Math.cos(v * 9)];
      rgb.set(px.map((c) => Math.round(c)), i);
    }
  }
  return { width: size, height: size, rgb };
}

/** A disc at the centre painted at hardness 0.5: 255 inside r/2, a smoothstep down to 0 at r. */
function softDisc(size: number): Uint8Array {
  const data = new Uint8Array(size * size);
  const r = size * 0.3;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x + 0.5 - size / 2, y + 0.5 - size / 2);
      const t = Math.min(1, Math.max(0, (r - d) / (r / 2)));
      data[y * size + x] = Math.round(t * t * (3 - 2 * t) * 255);
    }
  }
  return data;
}

function borderBand(mask: Uint8Array, size: number): Uint8Array {
  const band = new Uint8Array(size * size);
  const inside = (x: number, y: number) => mask[y * size + x]! >= 128;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let edge = false;
      for (let dy = -BAND; dy <= BAND && !edge; dy++) {
        for (let dx = -BAND; dx <= BAND && !edge; dx++) {
          const xx = x + dx;
          const yy = y + dy;
          if (xx >= 0 && yy >= 0 && xx < size && yy < size && inside(xx, yy) !== inside(x, y)) edge = true;
        }
      }
      band[y * size + x] = edge ? 1 : 0;
    }
  }
  return band;
}

function gradientEnergy(img: RgbImage, band: Uint8Array): number {
  const { width: w, height: h, rgb } = img;
  let sum = 0;
  let count = 0;
  for (let y = 0; y < h - 1; y++) {
    for (let x = 0; x < w - 1; x++) {
      if (!band[y * w + x]) continue;
      let e = 0;
      for (let c = 0; c < 3; c++) {
        const v = rgb[(y * w + x) * 3 + c]! / 255;
        const dx = rgb[(y * w + x + 1) * 3 + c]! / 255 - v;
        const dy = rgb[((y + 1) * w + x) * 3 + c]! / 255 - v;
        e += dx * dx + dy * dy;
      }
      sum += e;
      count++;
    }
  }
  return sum / count;
}

const png = (img: RgbImage) => sharp(Buffer.from(img.rgb), { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const engine = new Engine({ providers: ['cpu'] });
const perModel: Record<string, { hard: number; soft: number; cases: number; softLower: number }> = {};
const all = { hard: [] as number[], soft: [] as number[] };
for (const m of MODELS) {
  const mask = softDisc(m.size);
  const maskPng = await sharp(Buffer.from(mask), { raw: { width: m.size, height: m.size, channels: 1 } }).png().toBuffer();
  const band = borderBand(mask, m.size);
  const hard: number[] = [];
  const soft: number[] = [];
  for (let kind = 0; kind < 3; kind++) {
    const init = await png(picture(kind, m.size));
    for (const seed of SEEDS) {
      const base = { mode: 'inpaint' as const, prompt: 'a smiling face', seed, steps: m.steps, width: m.size, height: m.size, maskBlur: MASK_BLUR, initImage: init, mask: maskPng };
      hard.push(gradientEnergy((await engine.generate(m.dir, base)).image, band));
      soft.push(gradientEnergy((await engine.generate(m.dir, { ...base, softInpaint: true })).image, band));
    }
  }
  perModel[m.name] = {
    hard: Number((hard.reduce((a, b) => a + b, 0) / hard.length).toFixed(5)),
    soft: Number((soft.reduce((a, b) => a + b, 0) / soft.length).toFixed(5)),
    cases: hard.length,
    softLower: hard.filter((h, i) => soft[i]! < h).length,
  };
  all.hard.push(...hard);
  all.soft.push(...soft);
}
await engine.unloadAll();
console.log(JSON.stringify({
  metric: 'mean gradient energy |∇I|² (RGB in [0,1]) within 3 px of the mask border; lower = smoother seam',
  maskBlur: MASK_BLUR,
  mask: 'disc, brush hardness 0.5',
  pictures: 3,
  seeds: SEEDS,
  overall: {
    hard: { mean: Number((all.hard.reduce((a, b) => a + b, 0) / all.hard.length).toFixed(5)), median: Number(median(all.hard).toFixed(5)) },
    soft: { mean: Number((all.soft.reduce((a, b) => a + b, 0) / all.soft.length).toFixed(5)), median: Number(median(all.soft).toFixed(5)) },
    cases: all.hard.length,
    softLower: all.hard.filter((h, i) => all.soft[i]! < h).length,
  },
  perModel,
}, null, 1));
