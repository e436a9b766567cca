/**
 * The sizes the prompt panel's picker offers for a model. SD 1.x/2.x: square and a few aspect ratios
 * around the native side, in the model's size multiple. SDXL: the aspect buckets it was trained on
 * (Stability's SDXL report, appendix; the list A1111/ComfyUI users pick from), scaled to the model's
 * native side (1024 for the real models; the tiny test folders are smaller) — the native square first.
 */
import type { ModelInfo } from '../../../electron/shared/model.js';

export interface SizePreset {
  width: number;
  height: number;
  label: string;
}

/** SDXL's training buckets at 1024² (about one megapixel each), width × height. */
export const SDXL_SIZE_BUCKETS: ReadonlyArray<readonly [number, number]> = [
  [1024, 1024],
  [1152, 896],
  [896, 1152],
  [1216, 832],
  [832, 1216],
  [1344, 768],
  [768, 1344],
  [1536, 640],
  [640, 1536],
];
/** The square bucket's side: the list is scaled from it to the folder's native side. */
const SDXL_BUCKET_SIDE = SDXL_SIZE_BUCKETS[0]![0];

function ratioLabel(width: number, height: number): string {
  if (width === height) return '';
  const r = width / height;
  return ` (${r >= 1 ? `${r.toFixed(2).replace(/\.?0+$/, '')}:1` : `1:${(1 / r).toFixed(2).replace(/\.?0+$/, '')}`})`;
}

function sdxlPresets(info: ModelInfo): SizePreset[] {
  const scale = info.nativeResolution.width / SDXL_BUCKET_SIDE;
  const m = info.sizeMultiple;
  const round = (v: number): number => Math.max(m, Math.round(v / m) * m);
  const out: SizePreset[] = [];
  for (const [w, h] of SDXL_SIZE_BUCKETS) {
    const width = round(w * scale);
    const height = round(h * scale);
    if (out.some((p) => p.width === width && p.height === height)) continue;
    out.push({ width, height, label: `${width} × ${height}${ratioLabel(width, height)}` });
  }
  return out;
}

/** Sizes the model accepts, from its size multiple around its native resolution. */
export function sizePresets(info: ModelInfo | undefined): SizePreset[] {
  if (!info) return [512, 768].map((s) => ({ width: s, height: s, label: `${s} × ${s}` }));
  if (info.fixedSize) return [{ ...info.fixedSize, label: `${info.fixedSize.width} × ${info.fixedSize.height} (fixed)` }];
  if (info.family === 'sdxl' || info.family === 'sdxl-refiner') return sdxlPresets(info);
  const base = info.nativeResolution.width;
  const m = info.sizeMultiple;
  const round = (v: number): number => Math.max(m, Math.round(v / m) * m);
  const shapes: Array<[number, number, string]> = [
    [1, 1, 'square'],
    [4 / 3, 3 / 4, '4:3'],
    [3 / 4, 4 / 3, '3:4'],
    [16 / 9, 9 / 16, '16:9'],
  ];
  const out: SizePreset[] = [];
  // The tiny test models train at 512 but run fast at one latent tile: offer the small sizes too.
  for (const side of [m, base / 2, base, base * 1.5]) {
    if (side < m) continue;
    for (const [wr, hr, name] of shapes) {
      const width = round(side * Math.sqrt(wr / hr));
      const height = round(side * Math.sqrt(hr / wr));
      if (out.some((p) => p.width === width && p.height === height)) continue;
      out.push({ width, height, label: `${width} × ${height}${name === 'square' ? '' : ` (${name})`}` });
    }
  }
  return out;
}
