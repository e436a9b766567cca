/**
 * Live painting in the host: frames go straight to the engine, beside the persisted job queue.
 *
 * - At most one frame is wanted at a time: a new frame supersedes the one in flight, which is
 *   cancelled in the engine at once and answered 'superseded' without waiting for the engine to stop.
 *   Nothing is ever queued behind it, so only the newest request is computed.
 * - Frames and queued jobs share the engine's one-at-a-time chain (Engine.liveFrame), so a job that
 *   arrives while a frame runs starts when that frame is done: it waits for one frame at most.
 * - Only the newest finished frame is kept (for live.keep); stop() cancels the frame in flight, forgets
 *   it and frees the engine's live session, so Live off leaves no work running.
 * - The picture crosses from the renderer once: a frame may name `samePicture` instead, the bytes the
 *   last request sent (kept here until stop()).
 */
import { randomUUID } from 'node:crypto';
import type { LiveFrame, LiveRequest } from '../engine/pipelines/live.js';
import type { LiveFrameAnswer } from '../shared/contract.js';
import { StudioError } from '../shared/errors.js';

/** Renders one frame in the engine; the signal cancels it. */
export type LiveFrameRunner = (modelDir: string, request: LiveRequest, signal: AbortSignal) => Promise<LiveFrame>;

/** The newest finished frame, with what live.keep needs to put it into history. */
export interface ShownFrame {
  frameId: string;
  modelId: string;
  request: LiveRequest;
  frame: LiveFrame;
  /** The history item the picture came from (the kept frame's parent). */
  parentId: number | null;
}

interface InFlight {
  controller: AbortController;
  answer: (value: LiveFrameAnswer) => void;
}

const SUPERSEDED: LiveFrameAnswer = { status: 'superseded' };

export class LiveFrames {
  private inFlight: InFlight | null = null;
  private shown: ShownFrame | null = null;
  /** The picture the last frame request sent (its file bytes), for the requests that say samePicture. */
  private picture: { id: string; bytes: Buffer } | null = null;
  /** A frame was asked for since the last stop: the engine may hold a live session. */
  private active = false;
  /** Engine calls not settled yet (a cancelled frame settles when the engine has stopped it). */
  private readonly unsettled = new Set<Promise<unknown>>();

  constructor(
    private readonly run: LiveFrameRunner,
    /** Frees the engine's live session. */
    private readonly end: () => Promise<unknown>,
  ) {}

  /** Renders a frame; a newer frame or stop() answers this one with 'superseded'. */
  frame(modelId: string, modelDir: string, request: LiveRequest, parentId: number | null = null): Promise<LiveFrameAnswer> {
    this.supersede();
    this.active = true;
    const controller = new AbortController();
    return new Promise<LiveFrameAnswer>((resolve, reject) => {
      const entry: InFlight = { controller, answer: resolve };
      this.inFlight = entry;
      const calledAt = performance.now();
      const work = this.run(modelDir, request, controller.signal);
      this.unsettled.add(work);
      work.then(
        (frame) => {
          if (this.inFlight !== entry) return; // already answered 'superseded'
          this.inFlight = null;
          const frameId = randomUUID();
          this.shown = { frameId, modelId, request, frame, parentId };
          resolve(answerOf(frameId, frame, performance.now() - calledAt));
        },
        (err: unknown) => {
          if (this.inFlight !== entry) return;
          this.inFlight = null;
          reject(err);
        },
      ).finally(() => this.unsettled.delete(work));
    });
  }

  /** The shown frame named, or E_NOT_FOUND once a newer frame (or stop) replaced it. */
  shownFrame(frameId: string): ShownFrame {
    if (this.shown?.frameId !== frameId) {
      throw new StudioError('E_NOT_FOUND', 'That live frame is gone (a newer frame replaced it, or Live was turned off).');
    }
    return this.shown;
  }

  /** Keeps a request's picture for the ones after it (samePicture: the id). */
  rememberPicture(bytes: Buffer): { id: string; bytes: Buffer } {
    this.picture = { id: randomUUID(), bytes };
    return this.picture;
  }

  /** The picture named (by a frame answer's pictureId), or a clear error when the host holds another or none. */
  pictureFor(id: string): { id: string; bytes: Buffer } {
    if (this.picture?.id !== id) {
      throw new StudioError(
        'E_INVALID_REQUEST',
        'samePicture: the host no longer holds that picture (Live was turned off, or another picture was sent since); send initImage or initImageHash.',
      );
    }
    return this.picture;
  }

  /** Live off: cancels the frame in flight, forgets the shown one and the picture, frees the engine's live session. */
  async stop(): Promise<boolean> {
    const stopped = this.supersede();
    this.shown = null;
    this.picture = null;
    if (this.active) {
      this.active = false;
      await this.end().catch(() => undefined);
    }
    return stopped;
  }

  /** True while a frame is wanted (computing, or waiting in the engine for the job in front of it). */
  get busy(): boolean {
    return this.inFlight !== null;
  }

  /** Resolves when every engine call made for a frame has settled (cancelled ones included). */
  async idle(): Promise<void> {
    while (this.unsettled.size > 0) await Promise.allSettled([...this.unsettled]);
  }

  private supersede(): boolean {
    const old = this.inFlight;
    if (!old) return false;
    this.inFlight = null;
    old.controller.abort();
    old.answer(SUPERSEDED);
    return true;
  }
}

/** The crop of the picture the frame repainted, as RGBA for the canvas. */
function answerOf(frameId: string, frame: LiveFrame, engineCallMs: number): LiveFrameAnswer {
  const { crop, image } = frame;
  const rgba = Buffer.alloc(crop.width * crop.height * 4);
  for (let i = 0, s = 0, d = 0; i < crop.width * crop.height; i++, s += 3, d += 4) {
    rgba[d] = image.rgb[s]!;
    rgba[d + 1] = image.rgb[s + 1]!;
    rgba[d + 2] = image.rgb[s + 2]!;
    rgba[d + 3] = 255;
  }
  return {
    status: 'done',
    frameId,
    crop: { ...crop },
    rgba: rgba.toString('base64'),
    params: frame.params,
    timings: frame.timings,
    provider: frame.provider,
    ...(frame.threads !== undefined ? { threads: frame.threads } : {}),
    hostTimings: { hostMs: engineCallMs, engineCallMs },
  };
}
