/** The layout's overlay: each label in its palette colour, background left clear so the image shows. */
import { BACKGROUND_LABEL, type LayoutPalette } from '../document/layout.js';
import { TiledOverlay } from './mask-overlay.js';

/** A label the palette doesn't have (painted with another model's labels): magenta, which no palette here uses. */
const UNKNOWN_LABEL_RGB = [255, 0, 255] as const;

export class LayoutOverlay extends TiledOverlay {
  private readonly colors: Array<readonly [number, number, number]>;

  constructor(width: number, height: number, palette: LayoutPalette) {
    super(width, height);
    this.colors = palette.map((l) => l.color);
  }

  protected paint(rgba: Uint8ClampedArray, o: number, value: number): void {
    if (value === BACKGROUND_LABEL) {
      rgba[o + 3] = 0;
      return;
    }
    const c = this.colors[value] ?? UNKNOWN_LABEL_RGB;
    rgba[o] = c[0];
    rgba[o + 1] = c[1];
    rgba[o + 2] = c[2];
    rgba[o + 3] = 255;
  }
}
