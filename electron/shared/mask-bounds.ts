/**
 * The bounding box of a mask's pixels of at least `min` (1: every painted pixel; 128: the pixels ≥ ½;
 * Number.MIN_VALUE on a soft change map: every pixel above 0), or null when there are none. Each row is searched from both ends, so a picture-size mask with a small
 * stroke costs little: the renderer's live `maskRect` and the engine's only-masked crops (hard and soft) all use it.
 */
export function maskBoundsAtLeast(
  data: Uint8Array | Float32Array,
  width: number,
  height: number,
  min: number,
): { x: number; y: number; width: number; height: number } | null {
  let x0 = width;
  let x1 = -1;
  let y0 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let first = 0;
    while (first < width && data[row + first]! < min) first++;
    if (first === width) continue;
    if (y0 < 0) y0 = y;
    y1 = y;
    if (first < x0) x0 = first;
    let last = width - 1;
    while (last > x1 && data[row + last]! < min) last--;
    if (last > x1) x1 = last;
  }
  return y0 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}
