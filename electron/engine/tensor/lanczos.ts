/**
 * Pillow's LANCZOS resize of an 8-bit image (`Image.resize(size, Image.LANCZOS)`), in JavaScript and to
 * the byte: what AUTOMATIC1111's "Inpaint area: Only masked" scales its crop with (to the working size,
 * and the result back to the crop's size, `images.resize_image`), so the studio's crop matches it.
 * It runs on the calling thread: ~1 ms for an RGB crop of 100² to 128² (and 0.5 ms for its mask), where
 * each trip through sharp took ~2 ms, mostly hand-off to libvips' threads (three per live frame). Large
 * crops cost more than libvips' SIMD resize (~12 ms for a 659² crop to 128²).
 *
 * Pillow 12 (src/libImaging/Resample.c), 8 bits per channel:
 * - per axis: scale = in / out, filterscale = max(scale, 1), support = 3 · filterscale; output pixel
 *   i samples centre (i + ½) · scale over [trunc(centre − support + ½), trunc(centre + support + ½)) ∩
 *   [0, in), weights lanczos3((x − centre + ½) / filterscale) normalised to sum 1, then fixed point
 *   with 22 fraction bits (rounded half away from zero);
 * - horizontal pass (only on the rows the vertical pass reads), then vertical pass, each
 *   clip(((1 << 21) + Σ w · p) >> 22, 0, 255), the first pass rounded to 8 bits;
 * - an axis whose size does not change is not resampled.
 * tensor/lanczos.test.ts compares it with Pillow's own output (goldens made by
 * native-models/tools/make_resize_goldens.py).
 */

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

function lanczos3(x: number): number {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

interface Coefficients {
  /** Per output pixel: the first input index and how many follow. */
  bounds: Int32Array;
  /** Per output pixel, `ksize` fixed-point weights (unused ones 0). */
  weights: Int32Array;
  ksize: number;
}

function coefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  const inv = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = lanczos3((x + xmin - center + 0.5) * inv);
      ww += k[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function clip8(v: number): number {
  const s = v >> PRECISION_BITS;
  return s < 0 ? 0 : s > 255 ? 255 : s;
}

/**
 * Resizes an interleaved 8-bit image (`channels` bytes a pixel) from `from` to `to` as Pillow's LANCZOS.
 * Returns a new array (a copy when the size does not change). `spans` (optional, two numbers per output
 * row: the columns [x0, x1) wanted) computes those pixels and may skip the rest (left 0): a repaint pasted
 * back through a mask needs only the masked ones. The pixels computed are the same either way.
 */
export function resizeLanczos(
  data: Uint8Array,
  from: { width: number; height: number },
  channels: number,
  to: { width: number; height: number },
  spans?: Int32Array,
): Uint8Array {
  if (data.length !== from.width * from.height * channels) {
    throw new Error(`resizeLanczos: ${data.length} bytes for ${from.width}×${from.height}×${channels}`);
  }
  if (to.width < 1 || to.height < 1) throw new Error(`resizeLanczos: target ${to.width}×${to.height}`);
  const vertical = coefficients(from.height, to.height);
  let src = data;
  let srcWidth = from.width;
  let vBounds = vertical.bounds;
  if (to.width !== from.width) {
    // Only the rows the vertical pass reads.
    const first = vertical.bounds[0]!;
    const last = vertical.bounds[(to.height - 1) * 2]! + vertical.bounds[(to.height - 1) * 2 + 1]!;
    const rows = to.height !== from.height ? last - first : from.height;
    const top = to.height !== from.height ? first : 0;
    const { bounds, weights, ksize } = coefficients(from.width, to.width);
    // The columns any wanted pixel needs (all of them without spans).
    let colFrom = 0;
    let colTo = to.width;
    if (spans) {
      colFrom = to.width;
      colTo = 0;
      for (let yy = 0; yy < to.height; yy++) {
        if (spans[yy * 2 + 1]! <= spans[yy * 2]!) continue;
        colFrom = Math.min(colFrom, spans[yy * 2]!);
        colTo = Math.max(colTo, spans[yy * 2 + 1]!);
      }
    }
    const out = new Uint8Array(to.width * rows * channels);
    for (let y = 0; y < rows; y++) {
      const inRow = (y + top) * from.width * channels;
      let o = (y * to.width + colFrom) * channels;
      for (let xx = colFrom; xx < colTo; xx++) {
        const n = bounds[xx * 2 + 1]!;
        const kOff = xx * ksize;
        let p = inRow + bounds[xx * 2]! * channels;
        if (channels === 3) {
          // The three channels in one pass over the taps.
          let s0 = HALF;
          let s1 = HALF;
          let s2 = HALF;
          for (let x = 0; x < n; x++, p += 3) {
            const w = weights[kOff + x]!;
            s0 += data[p]! * w;
            s1 += data[p + 1]! * w;
            s2 += data[p + 2]! * w;
          }
          out[o++] = clip8(s0);
          out[o++] = clip8(s1);
          out[o++] = clip8(s2);
        } else {
          for (let c = 0; c < channels; c++) {
            let s0 = HALF;
            for (let x = 0, q = p + c; x < n; x++, q += channels) s0 += data[q]! * weights[kOff + x]!;
            out[o++] = clip8(s0);
          }
        }
      }
    }
    src = out;
    srcWidth = to.width;
    if (to.height !== from.height) {
      vBounds = Int32Array.from(vertical.bounds);
      for (let i = 0; i < to.height; i++) vBounds[i * 2]! -= top;
    }
  }
  if (to.height === from.height) return src === data ? new Uint8Array(data) : src;
  const { weights, ksize } = vertical;
  const rowBytes = srcWidth * channels;
  const out = new Uint8Array(to.height * rowBytes);
  // Row by row (the taps' rows are read in order: far faster than a column walk on large pictures).
  const acc = new Int32Array(rowBytes);
  for (let yy = 0; yy < to.height; yy++) {
    const b0 = spans ? Math.max(0, spans[yy * 2]!) * channels : 0;
    const b1 = spans ? Math.min(srcWidth, spans[yy * 2 + 1]!) * channels : rowBytes;
    if (b1 <= b0) continue;
    const n = vBounds[yy * 2 + 1]!;
    const kOff = yy * ksize;
    const first = vBounds[yy * 2]!;
    acc.fill(HALF, b0, b1);
    for (let y = 0; y < n; y++) {
      const w = weights[kOff + y]!;
      const row = (first + y) * rowBytes;
      for (let i = b0; i < b1; i++) acc[i]! += src[row + i]! * w;
    }
    const outRow = yy * rowBytes;
    for (let i = b0; i < b1; i++) out[outRow + i] = clip8(acc[i]!);
  }
  return out;
}
