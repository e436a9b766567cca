/**
 * Regional prompts on the canvas: each region is a prompt (with a weight) and a mask of its own, one byte
 * per image pixel as the inpaint mask (0 = outside, 255 = inside, soft edges in between), painted with the
 * same brush and eraser. The engine conditions the picture inside each mask with the region's prompt and
 * the rest with the main prompt (engine/pipelines/regions.ts). Plain TS with no DOM.
 */
import { MaskLayer } from './mask.js';

/** What a region is, apart from its pixels. */
export interface RegionProps {
  prompt: string;
  /** 1 = its prompt alone inside its mask; below 1 mixes in the main prompt; above 1 wins where regions overlap. */
  weight: number;
  /** The overlay colour on the canvas (display only). */
  colour: RegionColour;
  /** Whether the overlay is drawn (display only: a hidden region still conditions the picture). */
  visible: boolean;
}
export type RegionColour = readonly [number, number, number];

export interface Region extends RegionProps {
  /** Stable within a document (undo and the brush's target refer to it), not sent anywhere. */
  readonly id: number;
  readonly mask: MaskLayer;
}

/** A region as plain data (what a new picture or a reused history item brings). */
export interface RegionState extends RegionProps {
  id: number;
  mask: Uint8Array;
}

/**
 * Overlay colours, in the order new regions take them: saturated, far apart in hue, and none of them the
 * mask's red, so a region and the inpaint mask can be told apart.
 */
export const REGION_COLOURS: readonly RegionColour[] = [
  [64, 160, 255],
  [80, 220, 120],
  [255, 200, 40],
  [200, 90, 255],
  [40, 220, 220],
  [255, 130, 40],
  [160, 255, 60],
  [255, 90, 200],
];

/** The first colour no region has yet (the palette's first when all are taken). */
export function nextRegionColour(regions: readonly RegionProps[]): RegionColour {
  const used = new Set(regions.map((r) => r.colour.join(',')));
  return REGION_COLOURS.find((c) => !used.has(c.join(','))) ?? REGION_COLOURS[regions.length % REGION_COLOURS.length]!;
}

export function regionProps(r: RegionProps): RegionProps {
  return { prompt: r.prompt, weight: r.weight, colour: r.colour, visible: r.visible };
}

export function makeRegion(id: number, props: RegionProps, width: number, height: number, mask?: Uint8Array): Region {
  return { id, ...regionProps(props), mask: new MaskLayer(width, height, mask) };
}

/** `#rrggbb` for a colour input. */
export function colourToHex(c: RegionColour): string {
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/** A colour from `#rrggbb`; null when it isn't one. */
export function hexToColour(hex: string): RegionColour | null {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)] : null;
}
