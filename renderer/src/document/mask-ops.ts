/**
 * Whole-mask edits as pure functions on a mask's bytes (one byte per pixel, 0 = keep, 255 = repaint):
 * grow and shrink by N pixels, feather, and a mask from a colour range (the magic wand). Each returns a
 * new array and leaves its input alone; EditorDocument turns each into one undo step.
 *
 * Grow / shrink are a grey-level dilation / erosion with a square of side 2N+1 (separable: a sliding
 * max / min per row, then per column, O(pixels) whatever N). Feather is a three-pass box blur of radius N
 * per axis, three times, which approximates a Gaussian of sigma ≈ √(N(N+1)).
 */

/** The largest N any of these take: far beyond a useful edit, small enough to stay fast. */
export const MAX_MASK_OP_RADIUS = 256;

function checkRadius(radius: number): void {
  if (!Number.isInteger(radius) || radius < 0 || radius > MAX_MASK_OP_RADIUS) {
    throw new RangeError(`a mask radius is a whole number of pixels from 0 to ${MAX_MASK_OP_RADIUS}, got ${radius}`);
  }
}

function checkSize(data: Uint8Array, width: number, height: number): void {
  if (data.length !== width * height) throw new RangeError(`a ${width}×${height} mask has ${width * height} bytes, got ${data.length}`);
}

/**
 * Sliding max (or min) of window 2r+1 over `n` values read at src[offset + i*stride], written the same
 * way into dst. Monotonic deque: each value enters and leaves once.
 */
function slide(src: Uint8Array, dst: Uint8Array, offset: number, stride: number, n: number, r: number, max: boolean, deque: Int32Array): void {
  let head = 0;
  let tail = 0;
  const better = (a: number, b: number): boolean => (max ? a >= b : a <= b);
  let next = 0; // next index to push
  for (let i = 0; i < n; i++) {
    const end = Math.min(n - 1, i + r);
    while (next <= end) {
      const v = src[offset + next * stride]!;
      while (tail > head && better(v, src[offset + deque[tail - 1]! * stride]!)) tail--;
      deque[tail++] = next++;
    }
    while (deque[head]! < i - r) head++;
    dst[offset + i * stride] = src[offset + deque[head]! * stride]!;
  }
}

function morph(data: Uint8Array, width: number, height: number, radius: number, max: boolean): Uint8Array {
  checkSize(data, width, height);
  checkRadius(radius);
  if (radius === 0) return data.slice();
  const rows = new Uint8Array(data.length);
  const out = new Uint8Array(data.length);
  const deque = new Int32Array(Math.max(width, height));
  for (let y = 0; y < height; y++) slide(data, rows, y * width, 1, width, radius, max, deque);
  for (let x = 0; x < width; x++) slide(rows, out, x, width, height, radius, max, deque);
  return out;
}

/** Grows the marked area by `radius` pixels (each pixel takes the largest value within the square around it). */
export function growMask(data: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return morph(data, width, height, radius, true);
}

/** Shrinks the marked area by `radius` pixels (each pixel takes the smallest value within the square around it). */
export function shrinkMask(data: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  return morph(data, width, height, radius, false);
}

/** One box blur pass of radius r along a line; edges repeat the border value (the mask doesn't fade at the frame). */
function boxLine(src: Float32Array, dst: Float32Array, offset: number, stride: number, n: number, r: number): void {
  const at = (i: number): number => src[offset + Math.min(n - 1, Math.max(0, i)) * stride]!;
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += at(i);
  const win = 2 * r + 1;
  for (let i = 0; i < n; i++) {
    dst[offset + i * stride] = sum / win;
    sum += at(i + r + 1) - at(i - r);
  }
}

/** Softens the mask's edges over about `radius` pixels (three box blurs per axis, ≈ a Gaussian). */
export function featherMask(data: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  checkSize(data, width, height);
  checkRadius(radius);
  if (radius === 0) return data.slice();
  // Three passes of radius r ≈ a Gaussian of sigma r (variance 3·((2r+1)²−1)/12 = r(r+1)).
  let a = Float32Array.from(data);
  let b = new Float32Array(data.length);
  for (let pass = 0; pass < 3; pass++) {
    for (let y = 0; y < height; y++) boxLine(a, b, y * width, 1, width, radius);
    [a, b] = [b, a];
    for (let x = 0; x < width; x++) boxLine(a, b, x, width, height, radius);
    [a, b] = [b, a];
  }
  const out = new Uint8Array(data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(a[i]!);
  return out;
}

export interface ColourRangeOptions {
  /** Largest difference per channel (0..255) from the clicked pixel's colour that still counts. */
  tolerance: number;
  /** True: only the region connected to the clicked pixel (4-neighbours), as a magic wand; false: every such pixel. */
  contiguous: boolean;
}

/**
 * The pixels of an RGBA image whose colour is within `tolerance` of the pixel at (`x`, `y`), as a mask
 * (255 there, 0 elsewhere). The caller decides how it joins the current mask (maskUnion).
 */
export function colourRangeMask(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, x: number, y: number, options: ColourRangeOptions): Uint8Array {
  if (rgba.length !== width * height * 4) throw new RangeError(`a ${width}×${height} RGBA image has ${width * height * 4} bytes, got ${rgba.length}`);
  const { tolerance, contiguous } = options;
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 255) throw new RangeError(`tolerance is from 0 to 255, got ${tolerance}`);
  const px = Math.floor(x);
  const py = Math.floor(y);
  const out = new Uint8Array(width * height);
  if (px < 0 || py < 0 || px >= width || py >= height) return out;
  const s = (py * width + px) * 4;
  const r0 = rgba[s]!;
  const g0 = rgba[s + 1]!;
  const b0 = rgba[s + 2]!;
  const near = (i: number): boolean => {
    const o = i * 4;
    return Math.abs(rgba[o]! - r0) <= tolerance && Math.abs(rgba[o + 1]! - g0) <= tolerance && Math.abs(rgba[o + 2]! - b0) <= tolerance;
  };
  if (!contiguous) {
    for (let i = 0; i < out.length; i++) if (near(i)) out[i] = 255;
    return out;
  }
  const stack = new Int32Array(width * height);
  let top = 0;
  const start = py * width + px;
  out[start] = 255;
  stack[top++] = start;
  while (top > 0) {
    const i = stack[--top]!;
    const cx = i % width;
    const visit = (j: number): void => {
      if (out[j] === 0 && near(j)) {
        out[j] = 255;
        stack[top++] = j;
      }
    };
    if (cx > 0) visit(i - 1);
    if (cx < width - 1) visit(i + 1);
    if (i >= width) visit(i - width);
    if (i < width * (height - 1)) visit(i + width);
  }
  return out;
}

/** Per pixel the larger of the two masks (adds a selection to the mask). */
export function maskUnion(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError(`masks differ in size: ${a.length} and ${b.length} bytes`);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.max(a[i]!, b[i]!);
  return out;
}
