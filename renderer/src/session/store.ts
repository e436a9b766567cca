/**
 * Session state outside React: a small observable store per concern, read with `useStore`. The editor
 * document has its own (document/document.ts). The stores themselves are made per session
 * (session.ts createSession); this file holds the store type and the shapes of their values.
 */
import { useSyncExternalStore } from 'react';
import type { GenerationMode, InpaintArea, SamplerName } from '../../../electron/shared/generation.js';
import {
  DEFAULT_CFG,
  DEFAULT_HIRES_SCALE,
  DEFAULT_HIRES_STRENGTH,
  DEFAULT_HIRES_UPSCALER,
  DEFAULT_EMPHASIS,
  DEFAULT_IMG2IMG_STRENGTH,
  DEFAULT_MASK_BLUR,
  DEFAULT_MASK_PADDING,
  DEFAULT_STEPS,
  type EmphasisMode,
} from '../../../electron/shared/generation-limits.js';
import type { HistoryItem } from '../../../electron/shared/history.js';

export class Store<T> {
  private listeners = new Set<() => void>();
  constructor(private value: T) {}
  get(): T {
    return this.value;
  }
  set(next: T | ((prev: T) => T)): void {
    const value = typeof next === 'function' ? (next as (prev: T) => T)(this.value) : next;
    if (Object.is(value, this.value)) return;
    this.value = value;
    for (const l of [...this.listeners]) l();
  }
  update(patch: Partial<T>): void {
    this.set((prev) => ({ ...prev, ...patch }));
  }
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

export function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(store.subscribe, () => store.get());
}

export type SeedMode = 'random' | 'fixed';
export type ModeChoice = 'auto' | GenerationMode;

/** Everything the prompt panel edits; kept across generations so nothing typed is lost. */
export interface GenerationSettings {
  prompt: string;
  negativePrompt: string;
  modeChoice: ModeChoice;
  sampler: SamplerName;
  steps: number;
  cfg: number;
  seedMode: SeedMode;
  seed: number;
  width: number;
  height: number;
  strength: number;
  maskBlur: number;
  /** inpaint: repaint the whole picture, or only a crop around the mask ("only masked"). */
  inpaintArea: InpaintArea;
  /** inpaint, only masked: pixels of context kept around the mask. */
  maskPadding: number;
  /** A1111's "Clip skip" (1 = the text encoder's last layer). */
  clipSkip: number;
  /** A1111's "Emphasis" and "Pad conds": no field of their own yet; set by Reuse parameters and sent on. */
  emphasis: EmphasisMode;
  padConds: boolean;
  batchCount: number;
  /** txt2img: A1111's hires fix (kept while off, so turning it back on restores the last settings). */
  hires: HiresSettings;
  /** inpaint: soft inpainting (differential diffusion on the mask's grey levels: brush hardness, mask blur). */
  softInpaint: boolean;
  /**
   * Live painting: the most steps a frame takes while a stroke is being painted (0 = Steps). When the
   * stroke ends, the area is rendered again at Steps (session/live-painting.ts).
   */
  liveStrokeSteps: number;
}

/** Live frames while painting: 2 steps (an LCM model's fewest good ones), Steps again on release. */
export const DEFAULT_LIVE_STROKE_STEPS = 2;

/** The Hires fix section: A1111's fields (resize 0 × 0 = upscale by `scale`; steps 0 = the first pass's). */
export interface HiresSettings {
  enabled: boolean;
  upscaler: string;
  scale: number;
  steps: number;
  strength: number;
  resizeWidth: number;
  resizeHeight: number;
}

export const DEFAULT_HIRES: HiresSettings = {
  enabled: false,
  upscaler: DEFAULT_HIRES_UPSCALER,
  scale: DEFAULT_HIRES_SCALE,
  steps: 0,
  strength: DEFAULT_HIRES_STRENGTH,
  resizeWidth: 0,
  resizeHeight: 0,
};

/** The panel before any model is known (the chosen model's own defaults replace steps, CFG and size). */
export const DEFAULT_SETTINGS: GenerationSettings = {
  prompt: '',
  negativePrompt: '',
  modeChoice: 'auto',
  sampler: 'euler_a',
  steps: DEFAULT_STEPS,
  cfg: DEFAULT_CFG,
  seedMode: 'random',
  seed: 0,
  width: 512,
  height: 512,
  strength: DEFAULT_IMG2IMG_STRENGTH,
  maskBlur: DEFAULT_MASK_BLUR,
  inpaintArea: 'whole',
  maskPadding: DEFAULT_MASK_PADDING,
  clipSkip: 1,
  emphasis: DEFAULT_EMPHASIS,
  padConds: false,
  batchCount: 1,
  hires: DEFAULT_HIRES,
  softInpaint: false,
  liveStrokeSteps: DEFAULT_LIVE_STROKE_STEPS,
};

/**
 * How the prompt is encoded, as a request carries it (only what differs from the defaults): the same for
 * Generate and for live frames, so a kept frame is what Generate would have made.
 */
export function promptOptions(s: GenerationSettings): { clipSkip?: number; emphasis?: EmphasisMode; padConds?: true } {
  return {
    ...(s.clipSkip > 1 ? { clipSkip: s.clipSkip } : {}),
    ...(s.emphasis !== DEFAULT_EMPHASIS ? { emphasis: s.emphasis } : {}),
    ...(s.padConds ? { padConds: true as const } : {}),
  };
}

/** Most images one Generate press queues (the panel's own bound: each image is its own request). */
export const MAX_BATCH_COUNT = 16;

/** Results of the latest generate press, waiting on the canvas to be accepted or discarded. */
export interface StagingState {
  /** The jobs of this batch, in order. */
  jobIds: string[];
  items: HistoryItem[];
  index: number;
  /** What each staged result's job said it changed or left out (job warnings), by history id. */
  warnings: Record<number, string[]>;
}
export const EMPTY_STAGING: StagingState = { jobIds: [], items: [], index: 0, warnings: {} };

/** The warnings of the staged result on show (none when nothing is staged). */
export function stagedWarnings(staging: StagingState): string[] {
  const item = staging.items[staging.index];
  return item ? (staging.warnings[item.id] ?? []) : [];
}

/** A generation's live state while it runs, for the progress bar and the canvas preview. */
export interface LiveJob {
  jobId: string;
  step: number;
  total: number;
  etaMs: number;
  elapsedMs: number;
  /** Object URL or data URL of the latest preview. */
  preview: string | null;
}

/** A message for the person: what went wrong, in plain words. */
export interface Notice {
  id: number;
  kind: 'error' | 'info';
  text: string;
}
