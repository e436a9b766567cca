/**
 * The regions' overlay: each visible region's mask tinted in its colour, all in one set of tiles (one
 * canvas layer however many regions there are). Where regions overlap the colours mix by mask value;
 * the tint's alpha is the strongest mask there. A dab recolours only its rect.
 */
import type { PixelRect } from '../document/mask.js';
import type { Region } from '../document/regions.js';
import { TiledOverlay } from './mask-overlay.js';

export class RegionOverlay extends TiledOverlay {
  private shown: readonly Region[] = [];
  /** Which regions, colours and masks the tiles were last drawn from. */
  private drawnKey = '';

  /** The key of what the overlay shows: it must be redrawn in full when this changes. */
  static keyOf(regions: readonly Region[]): string {
    return regions.map((r) => `${r.id}:${r.visible ? r.colour.join(',') : '-'}:${maskIds.get(r.mask) ?? maskIds.set(r.mask, nextMaskId++).get(r.mask)}`).join(';');
  }

  /** Redraws everything from `regions` unless it shows just these already (or `force`). */
  show(regions: readonly Region[], force = false): boolean {
    const key = RegionOverlay.keyOf(regions);
    if (!force && key === this.drawnKey) return false;
    this.drawnKey = key;
    this.shown = regions.filter((r) => r.visible);
    this.recolour({ x: 0, y: 0, width: this.width, height: this.height });
    return true;
  }

  /** Recolours `rect` from the regions' masks (after a dab on one of them). */
  recolour(rect: PixelRect): void {
    const shown = this.shown;
    this.updateWith(rect, (rgba, o, i) => {
      let sum = 0;
      let max = 0;
      let r = 0;
      let g = 0;
      let b = 0;
      for (const region of shown) {
        const v = region.mask.data[i]!;
        if (v === 0) continue;
        sum += v;
        if (v > max) max = v;
        r += v * region.colour[0];
        g += v * region.colour[1];
        b += v * region.colour[2];
      }
      if (sum > 0) {
        rgba[o] = r / sum;
        rgba[o + 1] = g / sum;
        rgba[o + 2] = b / sum;
      }
      rgba[o + 3] = max;
    });
  }

  protected paint(): void {
    // Unused: recolour() mixes several layers per pixel.
  }
}

const maskIds = new WeakMap<object, number>();
let nextMaskId = 1;
