/**
 * Messages between the host and the engine process. Both Node's `fork` (with `serialization:
 * 'advanced'`) and Electron's utilityProcess carry them by structured clone, so typed arrays (image
 * bytes, pixels, latents) cross without base64.
 */
import type { SerializedError } from '../../shared/errors.js';
import type { ExecutionProviderName } from '../../shared/generation.js';
import type { PreparedImage } from '../../shared/history.js';
import type { ModelInfo, SessionReport } from '../../shared/model.js';
import type { LiveFrame, LiveRequest } from '../../engine/pipelines/live.js';
import type { CropRegion } from '../../engine/pipelines/only-masked.js';
import type { RgbImage } from '../../engine/tensor/image.js';
import type { GenerateProgress, GenerateRequest, GenerateResult } from '../../engine/pipelines/types.js';
import type { JobImageFiles } from '../job-images.js';

// The heartbeat travels beside these messages, on a socket of its own (heartbeat.ts).

export interface EngineProcessSettings {
  providers?: readonly ExecutionProviderName[];
  threads?: number;
  releaseTextEncoders?: boolean;
}

/** Host → engine. Every message but `init` and `cancel` is answered by `result` or `error` with its id. */
export type HostMessage =
  | { type: 'init'; settings: EngineProcessSettings }
  /**
   * `files`: a queued job's images, read here from the data folder (job-images.ts) into the request's
   * fields (control.image and each region's mask: placeholders in `request`), so they never pass
   * through the host's memory.
   */
  | { type: 'generate'; id: number; modelDir: string; request: GenerateRequest; previewEvery: number; files?: JobImageFiles }
  | { type: 'cancel'; id: number }
  | { type: 'info'; id: number; modelDir: string }
  | { type: 'configure'; id: number; settings: EngineProcessSettings }
  | { type: 'unload'; id: number; modelDir: string | null }
  | { type: 'live'; id: number; modelDir: string; request: LiveRequest }
  | { type: 'liveEnd'; id: number }
  /** A live frame's whole picture for Keep: the picture's bytes with the frame's crop put back. */
  | { type: 'liveCompose'; id: number; picture: Uint8Array; crop: CropRegion; image: RgbImage }
  /** User images for history, decoded and thumbnailed here so the host never decodes them (stored-image.ts). */
  | { type: 'prepareImages'; id: number; images: ImageSource[]; maxPixels: number };

/** An image's bytes, or the file (absolute path) the engine process reads them from. */
export type ImageSource = { bytes: Uint8Array; what: string } | { path: string; what: string };

/** What each request message answers with. */
export interface EngineReplies {
  generate: GenerateResult;
  info: { info: ModelInfo; sessions: SessionReport };
  configure: { providers: ExecutionProviderName[]; threads: number };
  unload: { unloaded: boolean };
  live: LiveFrame;
  liveEnd: { ended: true };
  liveCompose: RgbImage;
  prepareImages: PreparedImage[];
}

/** Engine → host. */
export type EngineMessage =
  | { type: 'ready'; pid: number; settings: { providers: ExecutionProviderName[]; threads: number } }
  | ({ type: 'progress'; id: number } & GenerateProgress)
  | { type: 'result'; id: number; value: EngineReplies[keyof EngineReplies] }
  | { type: 'error'; id: number; error: SerializedError };
