/**
 * Live painting in the session: while Live is on, every change that could change the picture (a mask
 * dab while the stroke is still being painted, a prompt edit, a weight or setting change, another
 * model) schedules a frame. At most one frame is in flight; changes that arrive meanwhile only mark the
 * session dirty, so when the frame comes back the next one is built from the newest state and every
 * state in between is dropped, never queued. Frames go through the host's live channel (live.frame),
 * beside the job queue: nothing reaches the queue or history until Keep.
 *
 * While a stroke is being painted, frames take at most `liveStrokeSteps` steps (Steps while painting,
 * default 2: an LCM model's frame in about half the time); when the stroke ends, the area is rendered
 * again at Steps. 0 keeps Steps throughout. That frame at Steps is the one frame a newer state replaces
 * while it is computed: when the next stroke begins over it, its request is sent at once and the host
 * cancels the stale frame (answered 'superseded') instead of the stroke's dabs waiting for it.
 *
 * The picture crosses once: after a frame that sent it was answered, the next ones say `samePicture` (the
 * host keeps the bytes), until the document's picture changes or a request fails.
 *
 * The answer is the repainted crop as RGBA; the editor draws it on its live layer over the picture
 * (editor/live-layer.ts). Each frame carries when the oldest change it answers happened, so the view can
 * measure stroke-to-pixels latency.
 */
import type { LiveFrameAnswer, RequestInputs } from '../../../electron/shared/contract.js';
import type { EditorDocument } from '../document/document.js';
import { encodeRgbPng, type ZlibCompress } from '../document/png.js';
import type { StudioClient } from '../ipc/studio-client.js';
import { maskBoundsAtLeast } from '../../../electron/shared/mask-bounds.js';
import { promptOptions, Store, type GenerationSettings } from './store.js';

export interface LiveFrameView {
  frameId: string;
  crop: { x: number; y: number; width: number; height: number };
  rgba: Uint8ClampedArray<ArrayBuffer>;
  /** Counts shown frames in this session. */
  seq: number;
  /** performance.now() of the oldest change this frame answers. */
  changedAt: number;
  /** Round trip of this frame, from the request to the answer, in ms. */
  roundTripMs: number;
  /** The engine's time for the frame, in ms. */
  engineMs: number;
  /** The steps the frame took (fewer than Steps while a stroke is painted: liveStrokeSteps). */
  steps: number;
  /** The CPU threads of the frame's sessions when the engine runs live frames on fewer threads than queued jobs, else null. */
  threads: number | null;
  /**
   * Where the frame's latency went, in ms (bench:live reads it): `waitMs` from the oldest change to
   * the request's start (the frame before was still being computed), `buildMs` building the request,
   * `hostMs` / `engineCallMs` from the host's answer, `receiveMs` turning the answer into pixels;
   * `answeredAt` is performance.now() when the answer arrived.
   */
  timing: { waitMs: number; buildMs: number; hostMs: number | null; engineCallMs: number | null; receiveMs: number; answeredAt: number };
}

export interface LiveState {
  on: boolean;
  /** The newest frame, shown over the picture; null before the first one and when Live is off. */
  frame: LiveFrameView | null;
  /** A frame is being computed. */
  computing: boolean;
  error: string | null;
}

const OFF: LiveState = { on: false, frame: null, computing: false, error: null };
/** Random live seeds stay in 32 bits, like the host's random seeds. */
const SEED_LIMIT = 2 ** 32;

export interface LivePaintingDeps {
  client: StudioClient;
  doc: EditorDocument;
  settingsStore: Store<GenerationSettings>;
  /** The model a frame uses (null: the host's default). */
  selectedModelId: () => string | null;
  /** Subscribes to model selection changes. */
  onModelChange: (listener: () => void) => () => void;
  compress: ZlibCompress;
  toBase64: (bytes: Uint8Array) => string;
  describeError: (err: unknown) => string;
  notify: (kind: 'info' | 'error', text: string) => void;
  /** A frame was kept as this history item (and is now the base image). */
  onKept?: (historyId: number) => void;
}

export function createLivePainting(deps: LivePaintingDeps) {
  const { client, doc, settingsStore } = deps;
  const store = new Store<LiveState>(OFF);
  let inFlight = false;
  /** Counts pumps: a pump whose frame was superseded by a newer pump's stops at once. */
  let pumps = 0;
  /** The frame in flight renders the area again at Steps after a stroke (a new stroke supersedes it). */
  let inFlightRefines = false;
  let dirty = false;
  /** performance.now() of the oldest change not yet sent. */
  let pendingSince: number | null = null;
  let seed = 0;
  let seq = 0;
  let blank: { width: number; height: number; base64: string } | null = null;
  /** The last frame sent took fewer steps than Steps (a stroke was being painted). */
  let sentFewerSteps = false;
  /**
   * The picture the host holds for this live session (a frame that sent it was answered with its id):
   * the document's image object, or the blank picture's.
   */
  let hostPicture: { of: object; id: string } | null = null;
  const unsubscribe: Array<() => void> = [];

  /** Marks the state as changed and starts a frame unless one is in flight. */
  function schedule(): void {
    if (!store.get().on) return;
    dirty = true;
    pendingSince ??= performance.now();
    if (!inFlight || (inFlightRefines && doc.isPainting)) void pump();
  }

  async function pump(): Promise<void> {
    const me = ++pumps;
    inFlight = true;
    inFlightRefines = false;
    store.update({ computing: true });
    try {
      while (dirty && store.get().on && me === pumps) {
        dirty = false;
        const changedAt = pendingSince ?? performance.now();
        pendingSince = null;
        const sentAt = performance.now();
        const built = await buildRequest();
        const builtAt = performance.now();
        if (!built) {
          store.update({ frame: null });
          continue;
        }
        const { request, picture } = built;
        let answer: LiveFrameAnswer;
        try {
          answer = await client.call('live.frame', request);
        } catch (err) {
          // The host may not hold the picture any more: the next request sends it again.
          hostPicture = null;
          if (me !== pumps) return;
          if (request.samePicture && store.get().on) {
            dirty = true;
            continue;
          }
          if (store.get().on) store.update({ error: deps.describeError(err) });
          continue;
        }
        if (store.get().on && answer.status === 'done' && answer.pictureId !== undefined) hostPicture = { of: picture, id: answer.pictureId };
        const answeredAt = performance.now();
        if (me !== pumps) return; // superseded by a newer pump's request
        if (!store.get().on || answer.status !== 'done') continue;
        const { frameId, crop, rgba, timings, hostTimings } = answer;
        const pixels = base64ToRgba(rgba);
        store.update({
          frame: {
            frameId,
            crop,
            rgba: pixels,
            seq: ++seq,
            changedAt,
            roundTripMs: answeredAt - sentAt,
            engineMs: timings.totalMs,
            steps: request.steps ?? settingsStore.get().steps,
            threads: answer.threads ?? null,
            timing: {
              waitMs: sentAt - changedAt,
              buildMs: builtAt - sentAt,
              hostMs: hostTimings?.hostMs ?? null,
              engineCallMs: hostTimings?.engineCallMs ?? null,
              receiveMs: performance.now() - answeredAt,
              answeredAt,
            },
          },
          error: null,
        });
      }
    } finally {
      if (me === pumps) {
        inFlight = false;
        inFlightRefines = false;
        store.update({ computing: false });
      }
    }
  }

  /**
   * The frame request for the document and settings as they are now, and the picture it names (the
   * document's image object, or the blank one); null when nothing is masked.
   */
  async function buildRequest(): Promise<{ request: RequestInputs['live.frame']; picture: object } | null> {
    if (doc.mask.isEmpty()) return null;
    // The mask goes raw, as the rectangle that holds its painted pixels: no PNG to encode here or to
    // decode in the engine, a few KiB for a stroke on a large picture.
    const s = settingsStore.get();
    const modelId = deps.selectedModelId();
    const steps = doc.isPainting && s.liveStrokeSteps > 0 ? Math.min(s.steps, s.liveStrokeSteps) : s.steps;
    sentFewerSteps = steps < s.steps;
    // At Steps where a stroke would take fewer: the area rendered again after a stroke.
    inFlightRefines = !doc.isPainting && s.liveStrokeSteps > 0 && s.liveStrokeSteps < s.steps;
    const request: RequestInputs['live.frame'] = {
      prompt: s.prompt,
      negativePrompt: s.negativePrompt,
      seed: s.seedMode === 'fixed' ? s.seed : seed,
      steps,
      cfg: s.cfg,
      sampler: s.sampler,
      width: s.width,
      height: s.height,
      maskBlur: s.maskBlur,
      maskPadding: s.maskPadding,
      ...promptOptions(s),
      maskRect: maskRect(doc.mask.data, doc.width, doc.height, deps.toBase64),
      ...(modelId ? { modelId } : {}),
    };
    const image = doc.image;
    // On a picture the Strength setting applies, as Generate's inpaint has it (a blank canvas repaints from noise).
    if (image) request.strength = s.strength;
    // The history item the picture is (or was made from): a kept frame becomes its child.
    const parentId = image?.source.kind === 'history' ? image.source.historyId : image?.source.parentId;
    if (parentId !== undefined) request.parentId = parentId;
    // The picture: named when the host holds it, else sent (a history picture by its hash).
    const blankBase64 = image ? null : await blankPicture();
    const picture: object = image ?? blank!;
    if (picture === hostPicture?.of) request.samePicture = hostPicture.id;
    else if (image?.source.kind === 'history') request.initImageHash = image.source.hash;
    else if (image?.source.kind === 'file') request.initImage = deps.toBase64(image.source.bytes);
    else request.initImage = blankBase64!;
    return { request, picture };
  }

  /** A blank canvas is painted on as a white picture. */
  async function blankPicture(): Promise<string> {
    if (!blank || blank.width !== doc.width || blank.height !== doc.height) {
      const rgb = new Uint8Array(doc.width * doc.height * 3).fill(255);
      blank = { width: doc.width, height: doc.height, base64: deps.toBase64(await encodeRgbPng(doc.width, doc.height, rgb, deps.compress)) };
    }
    return blank.base64;
  }

  function setLive(on: boolean): void {
    if (on === store.get().on) return;
    if (on) {
      seed = Math.floor(Math.random() * SEED_LIMIT);
      store.set({ ...OFF, on: true });
      unsubscribe.push(
        doc.subscribe((change) => {
          if (change.kind === 'mask' || change.kind === 'document') schedule();
          // The stroke ended: render the area again at Steps if the last frame took fewer.
          else if (change.kind === 'history' && sentFewerSteps && !doc.isPainting) schedule();
        }),
        settingsStore.subscribe(schedule),
        deps.onModelChange(schedule),
      );
      schedule();
      return;
    }
    for (const u of unsubscribe.splice(0)) u();
    dirty = false;
    hostPicture = null;
    sentFewerSteps = false;
    pendingSince = null;
    store.set(OFF);
    client.call('live.stop', {}).catch((err: unknown) => deps.notify('error', deps.describeError(err)));
  }

  /**
   * Keep: the shown frame goes into history as an inpaint with its mask and parameters, and onto the
   * canvas as the base image (as accepting a result does), with the mask cleared in the same undo step,
   * so the kept area stays as it is and the next strokes repaint only where they go.
   */
  async function keep(): Promise<number | null> {
    const frame = store.get().frame;
    if (!frame) return null;
    try {
      const { historyId, output } = await client.call('live.keep', { frameId: frame.frameId });
      const { width, height, hash } = output;
      doc.setImage({ width, height, source: { kind: 'history', historyId, hash } }, 'Keep live frame', { clearMask: true });
      deps.onKept?.(historyId);
      deps.notify('info', `Kept as #${historyId}`);
      return historyId;
    } catch (err) {
      deps.notify('error', deps.describeError(err));
      return null;
    }
  }

  return { store, setLive, keep, schedule, dispose: () => setLive(false) };
}

export type LivePainting = ReturnType<typeof createLivePainting>;

/**
 * The mask's painted pixels as the contract's `maskRect`: the bytes of the smallest rectangle that holds
 * every non-zero pixel (the rest is 0). Null for an empty mask.
 */
export function maskRect(
  data: Uint8Array,
  width: number,
  height: number,
  toBase64: (bytes: Uint8Array) => string,
): NonNullable<RequestInputs['live.frame']['maskRect']> | undefined {
  const bounds = maskBoundsAtLeast(data, width, height, 1);
  if (!bounds) return undefined;
  const { x: x0, y: y0, width: w, height: h } = bounds;
  const bytes = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) bytes.set(data.subarray((y0 + y) * width + x0, (y0 + y) * width + x0 + w), y * w);
  return { x: x0, y: y0, width: w, height: h, data: toBase64(bytes) };
}

function base64ToRgba(base64: string): Uint8ClampedArray<ArrayBuffer> {
  const s = atob(base64);
  const out = new Uint8ClampedArray(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
