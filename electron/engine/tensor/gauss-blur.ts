/**
 * libvips' `gaussblur` of a one-band 8-bit image (what sharp's `.blur(sigma)` runs, with its defaults:
 * integer precision, minimum amplitude 0.2), in JavaScript and to the byte.
 *
 * The mask blur and soft inpainting's change map blur a mask of the working size on every inpaint and on
 * every live frame. Through sharp each blur is a trip to libvips' thread pool (a few milliseconds at
 * 128², most of it hand-off) whose threads then compete with onnxruntime's for the same cores while the
 * VAE and the U-Net run; here it is a fraction of a millisecond on the calling thread. Same bytes as
 * sharp (tensor/gauss-blur.test.ts compares them over sizes, sigmas and masks), so queued inpaints, live
 * frames and history give the pictures they gave before.
 *
 * The steps, as libvips 8.18 (create/gaussmat.c, convolution/convsep.c, convi.c, convi_hwy.cpp):
 * - σ < 0.2: a copy.
 * - the mask: half-width x₀ = the first x ≥ 0 with exp(−x²/2σ²) < 0.2 (at most 8σ), width
 *   2·max(x₀ − 1, 0) + 1, entries rint(20·exp(−d²/2σ²)), scale their sum;
 * - fixed point ("intize"): v = entry / sum; shift = ⌈log₂(max v) + 1⌉, exp = 7 − shift,
 *   mant = rint(128 · v · 2^−shift);
 * - two passes, horizontal then vertical, each over the image extended by copying its edge pixels:
 *   out = clip(((1 << (exp − 1)) + Σ mant · p) >> exp, 0, 255), the first pass rounded to 8 bits.
 */

/** The 8-bit fixed-point mask libvips convolves with for σ: `mant` (odd length, centred) and its shift. */
export function gaussMask(sigma: number, minAmplitude = 0.2): { mant: Int32Array; exp: number } {
  const sig2 = 2 * sigma * sigma;
  const maxX = Math.trunc(Math.max(0, Math.min(8 * sigma, 10000))); // an int in libvips
  let x = 0;
  for (; x < maxX; x++) if (Math.exp(-(x * x) / sig2) < minAmplitude) break;
  const width = 2 * Math.max(x - 1, 0) + 1;
  const entries = new Float64Array(width);
  let sum = 0;
  for (let i = 0; i < width; i++) {
    const d = i - Math.floor(width / 2);
    entries[i] = rint(20 * Math.exp(-(d * d) / sig2));
    sum += entries[i]!;
  }
  if (sum === 0) sum = 1;
  let max = -Infinity;
  for (const e of entries) max = Math.max(max, e / sum);
  const shift = Math.ceil(Math.log2(max) + 1);
  const mant = new Int32Array(width);
  for (let i = 0; i < width; i++) mant[i] = rint(128 * (entries[i]! / sum) * Math.pow(2, -shift));
  return { mant, exp: 7 - shift };
}

/** Blurs a one-band 8-bit image as sharp's `.blur(sigma)` does; returns a new array. */
export function gaussBlurU8(src: Uint8Array, width: number, height: number, sigma: number): Uint8Array {
  if (src.length !== width * height) throw new Error(`gaussBlurU8: ${src.length} bytes for ${width}×${height}`);
  if (sigma < 0.2) return new Uint8Array(src);
  const { mant, exp } = gaussMask(sigma);
  const half = (mant.length - 1) / 2;
  const round = 1 << (exp - 1);
  const n = mant.length;
  let total = 0;
  for (const m of mant) total += m;
  // A window of one value c gives the same byte wherever it is: masks are mostly rows of 0 or 255.
  const flat = (c: number): number => clip8((round + c * total) >> exp);
  // Horizontal pass: each row extended by its edge pixels. rowValue[y]: the row's one value, or -1.
  const rowPad = new Uint8Array(width + 2 * half);
  const mid = new Uint8Array(width * height);
  const rowValue = new Int16Array(height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const first = src[row]!;
    let same = true;
    for (let x = 1; x < width && same; x++) same = src[row + x] === first;
    if (same) {
      rowValue[y] = first;
      mid.fill(flat(first), row, row + width);
      continue;
    }
    rowValue[y] = -1;
    for (let i = 0; i < half; i++) {
      rowPad[i] = first;
      rowPad[half + width + i] = src[row + width - 1]!;
    }
    rowPad.set(src.subarray(row, row + width), half);
    for (let x = 0; x < width; x++) {
      let s = round;
      for (let k = 0; k < n; k++) s += mant[k]! * rowPad[x + k]!;
      mid[row + x] = clip8(s >> exp);
    }
  }
  // Vertical pass over the rounded rows, extended by the first and last rows.
  const out = new Uint8Array(width * height);
  const acc = new Int32Array(width);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    const c = rowValue[clampRow(y - half, height)]!;
    let same = c >= 0;
    for (let k = 1; k < n && same; k++) same = rowValue[clampRow(y + k - half, height)] === c;
    if (same) {
      // Rows of one value c came out of the first pass as flat(c): the column window is flat(c) too.
      out.fill(flat(flat(c)), row, row + width);
      continue;
    }
    acc.fill(round);
    for (let k = 0; k < n; k++) {
      const from = clampRow(y + k - half, height) * width;
      const m = mant[k]!;
      for (let x = 0; x < width; x++) acc[x]! += m * mid[from + x]!;
    }
    for (let x = 0; x < width; x++) out[row + x] = clip8(acc[x]! >> exp);
  }
  return out;
}

function clampRow(y: number, height: number): number {
  return y < 0 ? 0 : y >= height ? height - 1 : y;
}

/** C's rint: round half to even. */
function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function clip8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * A mask blurred by A1111's mask blur of `blur` pixels: a Gaussian with σ = blur / 2, so the visible
 * falloff stays within the radius (at least σ 0.3). The hard mask's feather and soft inpainting's change
 * map both blur this way.
 */
export function blurMaskU8(mask: Uint8Array, width: number, height: number, blur: number): Uint8Array {
  return gaussBlurU8(mask, width, height, Math.max(0.3, blur / 2));
}
