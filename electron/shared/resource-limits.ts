/**
 * Bounds on the work one request may cause, so that no single input (an image bomb, a huge output
 * size, a flood of jobs) can exhaust the host's or the engine's memory. The defaults live here; the
 * ones a person may change are settings (StudioSettings).
 */

/** Most jobs waiting in the queue; one more is refused with E_QUEUE_FULL. */
export const MAX_QUEUED_JOBS = 1000;

/**
 * Default bound on an input image's pixel count (init image, mask, control image, label map), read
 * from the file's header before anything decodes it: 4096² (the contract's largest side, squared).
 */
export const DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096;
export const MIN_MAX_INPUT_PIXELS = 64 * 64;
export const MAX_MAX_INPUT_PIXELS = 16384 * 16384;

/** Default bound on an output side: the model's native size times this (2: 1024 on a 512 model). */
export const DEFAULT_MAX_SIZE_FACTOR = 2;
export const MAX_SIZE_FACTOR_LIMIT = 8;

/**
 * Memory the engine needs per output pixel, roughly: the VAE decoder's activations at full resolution
 * dominate at large sizes (measured: 1024² on the 128-px bundled model took 9.7 GB, ≈ 9.3 KB per
 * pixel; SD 1.5's decoder at 512² in fp32 is of the same order).
 */
export const ENGINE_BYTES_PER_OUTPUT_PIXEL = 10 * 1024;

/** The engine's memory estimate for one output of width×height, in bytes. */
export function estimateJobBytes(width: number, height: number): number {
  return width * height * ENGINE_BYTES_PER_OUTPUT_PIXEL;
}

/** The canvas's undo history budget (the undoMemoryMb setting), in MiB: default, least and most. */
export const DEFAULT_UNDO_MEMORY_MB = 256;
export const MIN_UNDO_MEMORY_MB = 16;
export const MAX_UNDO_MEMORY_MB = 64 * 1024;

/** A job whose output has more than this many times the model's native pixels gets its sessions released after it. */
export const OUTSIZED_JOB_PIXEL_RATIO = 2;

export function formatMegapixels(pixels: number): string {
  return pixels < 100_000 ? `${pixels.toLocaleString('en-US')} pixels` : `${(pixels / 1e6).toFixed(1)} megapixels`;
}

export function formatBytes(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : `${Math.round(bytes / 1024 ** 2)} MB`;
}
