/**
 * A live frame's mask sent raw (no PNG): the grey bytes of the rectangle of the picture that holds every
 * non-zero pixel. Plain loops only, so the host can turn one into the PNG history stores without
 * loading the engine's runtime.
 */
import { InvalidRequestError } from '../../shared/errors.js';
import type { GrayImage } from './image.js';

/**
 * A mask as raw 8-bit grey bytes of the rectangle of the picture that holds every non-zero pixel (0
 * outside it): what the renderer sends per frame instead of a PNG (no encode there, no decode here).
 */
export interface RawMaskRect {
  x: number;
  y: number;
  width: number;
  height: number;
  /** width × height bytes, row-major; white = repaint. */
  data: Uint8Array;
}

/** The picture-size mask a RawMaskRect stands for; a rectangle outside the picture is refused. */
export function maskFromRect(rect: RawMaskRect, size: { width: number; height: number }): GrayImage {
  const { x, y, width, height, data } = rect;
  const whole = [x, y, width, height].every(Number.isInteger) && x >= 0 && y >= 0 && width >= 1 && height >= 1;
  if (!whole || x + width > size.width || y + height > size.height) {
    throw new InvalidRequestError(`maskRect: the rectangle ${width}×${height} at (${x}, ${y}) is not inside the ${size.width}×${size.height} picture`);
  }
  if (data.length !== width * height) throw new InvalidRequestError(`maskRect: ${data.length} bytes for a ${width}×${height} rectangle (expected ${width * height})`);
  const out = new Uint8Array(size.width * size.height);
  for (let r = 0; r < height; r++) out.set(data.subarray(r * width, (r + 1) * width), (y + r) * size.width + x);
  return { width: size.width, height: size.height, data: out };
}
