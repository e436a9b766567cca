/**
 * The studio session: the stores the panels share (models, queue, settings, staged results, notices)
 * and the actions that cross panels (generate, cancel, accept, discard, open an image, reuse parameters).
 * It is made once by the composition root (app/App.tsx) from a studio client and the editor document,
 * and handed down through React context (hooks.ts useSession), never imported as a module global, so a
 * test can build its own with a fake host. It talks to the host only through the studio client.
 *
 * Imports run one way: app → features / editor → session → document, ipc (the LAYERS table in
 * eslint.config.js fails a session file that imports features/ or editor/).
 */
import type { JobSummary, ModelEntry, QueueDelta, QueueSnapshot, RequestInputs, StudioSettings } from '../../../electron/shared/contract.js';
import { applyQueueDelta, EMPTY_QUEUE } from './queue-state.js';
import type { GenerationMode, GenerationParams } from '../../../electron/shared/generation.js';
import {
  MAX_CFG,
  MAX_CLIP_SKIP,
  MAX_HIRES_SCALE,
  MAX_REGIONS,
  MAX_REGION_WEIGHT,
  MIN_REGION_WEIGHT,
  DEFAULT_EMPHASIS,
  MAX_MASK_BLUR,
  MAX_MASK_PADDING,
  MAX_SEED,
  MAX_STEPS,
  MAX_STRENGTH,
  MAX_SIDE,
  MIN_CFG,
  MIN_HIRES_SCALE,
  MIN_STEPS,
  MIN_STRENGTH,
  SIDE_MULTIPLE,
} from '../../../electron/shared/generation-limits.js';
import type { LayoutLabel, ModelInfo } from '../../../electron/shared/model.js';
import type { HistoryItem, ImageRef, RecordedParams } from '../../../electron/shared/history.js';
import { exportLayoutPng, exportMaskPng, exportRegionPng, type EditorDocument } from '../document/document.js';
import { labelsFromPixels, resampleLabels } from '../document/layout.js';
import { pngSize, type ZlibCompress } from '../document/png.js';
import { StudioCallError, type StudioClient } from '../ipc/studio-client.js';
import { autoMode, layoutPaletteOf, layoutProblem } from './layout-mode.js';
import { createLivePainting } from './live-painting.js';
import {
  DEFAULT_SETTINGS,
  EMPTY_STAGING,
  MAX_BATCH_COUNT,
  promptOptions,
  Store,
  type GenerationSettings,
  type HiresSettings,
  type LiveJob,
  type Notice,
  type StagingState,
} from './store.js';

export interface ModelsState {
  models: ModelEntry[];
  selectedId: string | null;
  /** Engine-detected info per model id (kind, size multiple, defaults). */
  info: Record<string, ModelInfo>;
  loading: boolean;
  error: string | null;
}

/** Plain words for an error from the host or the network. */
export function describeError(err: unknown): string {
  if (err instanceof StudioCallError) {
    if (err.code === 'E_DISCONNECTED') return 'The studio host is not reachable. Is `studio serve` still running?';
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The browser's zlib, so exported masks are compressed PNGs. */
export const browserDeflate: ZlibCompress = async (raw) => {
  const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
};

/** Why the Hires fix section's values can't be sent, in plain words; null when they can. */
export function hiresProblem(h: HiresSettings): string | null {
  if (h.upscaler.trim() === '') return 'Choose a hires upscaler.';
  if (!(h.scale >= MIN_HIRES_SCALE && h.scale <= MAX_HIRES_SCALE)) return `Upscale by must be from ${MIN_HIRES_SCALE} to ${MAX_HIRES_SCALE}.`;
  if (!(Number.isInteger(h.steps) && h.steps >= 0 && h.steps <= MAX_STEPS)) return `Hires steps must be a whole number from 0 (same as the first pass) to ${MAX_STEPS}.`;
  if (!(h.strength > MIN_STRENGTH && h.strength <= MAX_STRENGTH)) return `Denoising strength must be above ${MIN_STRENGTH} and at most ${MAX_STRENGTH}.`;
  for (const [name, v] of [['Resize width', h.resizeWidth], ['Resize height', h.resizeHeight]] as const) {
    if (!(Number.isInteger(v) && v >= 0 && v <= MAX_SIDE && v % SIDE_MULTIPLE === 0)) return `${name} must be 0 (from Upscale by) or a multiple of ${SIDE_MULTIPLE} up to ${MAX_SIDE}.`;
  }
  return null;
}

/** The request's `hires`: what the section holds, without the on switch. */
function hiresRequest(h: HiresSettings): NonNullable<RequestInputs['generate']['hires']> {
  return { upscaler: h.upscaler, scale: h.scale, steps: h.steps, strength: h.strength, resizeWidth: h.resizeWidth, resizeHeight: h.resizeHeight };
}

function toBase64(bytes: Uint8Array): string {
  let s = '';
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) s += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  return btoa(s);
}


import { sizePresets } from './size-presets.js';

export { sizePresets };

/** A model is found by hash from at least this many hex digits (A1111 writes 10), so a short value matches nothing by chance. */
const MIN_MODEL_HASH_DIGITS = 8;

function jobOf(item: HistoryItem, snapshot: QueueSnapshot): string {
  return snapshot.recent.find((j) => j.historyId === item.id)?.id ?? '';
}



async function decodePixels(blob: Blob): Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { rgba: ctx.getImageData(0, 0, canvas.width, canvas.height).data, width: canvas.width, height: canvas.height };
}


export type ExtendSide = 'left' | 'right' | 'top' | 'bottom';

export function createSession(client: StudioClient, doc: EditorDocument) {
  const settingsStore = new Store<GenerationSettings>(DEFAULT_SETTINGS);
  const stagingStore = new Store<StagingState>(EMPTY_STAGING);
  const liveJobStore = new Store<LiveJob | null>(null);
  /** The last seed a result used (for "reuse last"). */
  const lastSeedStore = new Store<number | null>(null);
  const noticesStore = new Store<Notice[]>([]);
  /** The history item shown in the detail panel. */
  const selectedHistoryStore = new Store<number | null>(null);
  /** The region the brush and eraser paint (its id in the document), or null for the mask / layout. */
  const paintRegionStore = new Store<number | null>(null);
  // A removed region (undo of its add included) can't be painted.
  doc.subscribe((c) => {
    if ((c.kind === 'regions' || c.kind === 'document') && paintRegionStore.get() !== null && !doc.region(paintRegionStore.get()!)) paintRegionStore.set(null);
  });
  let noticeId = 1;
  const noticeTimers = new Set<ReturnType<typeof setTimeout>>();

  /** Shows a message for the person (errors stay 10 s, the rest 4 s). */
  function notify(kind: Notice['kind'], text: string): void {
    const id = noticeId++;
    noticesStore.set((list) => [...list.slice(-3), { id, kind, text }]);
    const timer = setTimeout(() => {
      noticeTimers.delete(timer);
      noticesStore.set((list) => list.filter((n) => n.id !== id));
    }, kind === 'error' ? 10_000 : 4000);
    noticeTimers.add(timer);
  }

  const modelsStore = new Store<ModelsState>({ models: [], selectedId: null, info: {}, loading: true, error: null });
  const queueStore = new Store<QueueSnapshot>(EMPTY_QUEUE);
  const connectionStore = new Store<{ connected: boolean; engine: string }>({ connected: true, engine: 'starting' });

  /** Bumped when history changes, so the browser reloads what it shows. */
  const historyRevisionStore = new Store<number>(0);

  // ── models ─────────────────────────────────────────────────────────────────────────────────────

  async function loadModels(): Promise<void> {
    try {
      const { models, selectedId } = await client.call('models.list', {});
      modelsStore.update({ models, selectedId, loading: false, error: null });
      const info = { ...modelsStore.get().info };
      await Promise.all(
        models.map(async (m) => {
          try {
            info[m.id] = (await client.call('models.info', { modelId: m.id })).info;
          } catch {
            // A model that can't be opened stays listed; generating with it explains why.
          }
        }),
      );
      modelsStore.update({ info });
      const selected = selectedId ? info[selectedId] : undefined;
      if (selected) applyModelDefaults(selected, false);
    } catch (err) {
      modelsStore.update({ loading: false, error: describeError(err) });
    }
  }

  /** Picks sizes valid for the model (and its default steps/sampler on first load). */
  function applyModelDefaults(info: ModelInfo, force: boolean): void {
    const s = settingsStore.get();
    const sizes = sizePresets(info);
    const valid = sizes.some((p) => p.width === s.width && p.height === s.height);
    if (!valid || force) {
      const native = sizes.find((p) => p.width === info.defaults.width && p.height === info.defaults.height) ?? sizes[0];
      if (native) settingsStore.update({ width: native.width, height: native.height });
    }
    if (force) settingsStore.update({ steps: info.defaults.steps, cfg: info.defaults.cfg, sampler: info.defaults.sampler });
    doc.resizeBlank(settingsStore.get().width, settingsStore.get().height);
  }

  /** Selects a model; `size` (Reuse) is kept even when it is not one of the new model's presets. */
  async function selectModel(modelId: string, size?: { width: number; height: number }): Promise<void> {
    try {
      await client.call('models.select', { modelId });
      modelsStore.update({ selectedId: modelId });
      const info = modelsStore.get().info[modelId];
      if (size) {
        settingsStore.update(size);
        doc.resizeBlank(size.width, size.height);
      } else if (info) applyModelDefaults(info, false);
    } catch (err) {
      notify('error', describeError(err));
    }
  }

  // ── generation ─────────────────────────────────────────────────────────────────────────────────

  /** The chosen model's engine info, when known. */
  function selectedModelInfo(): ModelInfo | undefined {
    const { selectedId, info } = modelsStore.get();
    return selectedId ? info[selectedId] : undefined;
  }

  /** The labels the layout layer is drawn and exported with (layout-mode.ts says which). */
  function layoutPalette(models: ModelsState = modelsStore.get()): LayoutLabel[] {
    return layoutPaletteOf(models);
  }

  function effectiveMode(s: GenerationSettings = settingsStore.get()): GenerationMode {
    return s.modeChoice === 'auto' ? autoMode(doc, selectedModelInfo()) : s.modeChoice;
  }

  /**
   * The size the model runs at: the prompt panel's size for txt2img and for only-masked inpaint (the crop
   * around the mask is repainted at that size and pasted back, so the picture keeps its own), else the picture's.
   */
  function usesPanelSize(s: GenerationSettings, mode: GenerationMode): boolean {
    // Layout runs at the layout's size; on a blank canvas that is the panel's size (the blank follows it).
    if (mode === 'layout') return !doc.image;
    return mode === 'txt2img' || (mode === 'inpaint' && s.inpaintArea === 'masked');
  }
  function repaintSize(s: GenerationSettings, mode: GenerationMode): { width: number; height: number } {
    return usesPanelSize(s, mode) && mode !== 'layout' ? { width: s.width, height: s.height } : { width: doc.width, height: doc.height };
  }

  /**
   * An img2img pass runs ⌊steps × strength⌋ steps (LCM spreads strength over its own schedule instead); the
   * host refuses one that runs none (checkRequestForModel in shared/model-checks.ts).
   */
  function runsNoStep(sampler: string, steps: number, strength: number): boolean {
    return sampler !== 'lcm' && Math.floor(steps * strength) < 1;
  }

  /** Why Generate can't run now, in plain words; null when it can. */
  function generateProblem(s: GenerationSettings = settingsStore.get()): string | null {
    const models = modelsStore.get();
    const modelId = models.selectedId;
    if (!modelId) return models.loading ? 'Loading models…' : 'No model is installed. Import a model folder first.';
    const info = models.info[modelId];
    const mode = effectiveMode(s);
    const layoutIssue = mode === 'layout' ? layoutProblem(doc, modelId, info) : null;
    if (layoutIssue) return layoutIssue;
    if (info && !info.supports.includes(mode)) return `${modelId} cannot do ${mode}.`;
    if (mode !== 'txt2img' && mode !== 'layout' && !doc.image) return `${mode} needs an image: open one, or accept a result.`;
    if (mode === 'inpaint' && doc.mask.isEmpty()) return 'Paint a mask first: inpaint repaints the white area.';
    const { width, height } = repaintSize(s, mode);
    const multiple = info?.sizeMultiple ?? 8;
    if (info?.fixedSize && (width !== info.fixedSize.width || height !== info.fixedSize.height)) {
      return `${modelId} only runs at ${info.fixedSize.width} × ${info.fixedSize.height}; this is ${width} × ${height}.`;
    }
    if (width % multiple !== 0 || height % multiple !== 0) {
      return `The image is ${width} × ${height}; ${modelId} needs sides that are multiples of ${multiple}.`;
    }
    if (!Number.isInteger(s.steps) || s.steps < MIN_STEPS || s.steps > MAX_STEPS) return `Steps must be a whole number from ${MIN_STEPS} to ${MAX_STEPS}.`;
    if (!(s.cfg >= MIN_CFG && s.cfg <= MAX_CFG)) return `CFG must be from ${MIN_CFG} to ${MAX_CFG}.`;
    if (s.seedMode === 'fixed' && !(Number.isInteger(s.seed) && s.seed >= 0 && s.seed <= MAX_SEED)) return `The seed must be a whole number from 0 to ${MAX_SEED}.`;
    if (!(Number.isInteger(s.clipSkip) && s.clipSkip >= 1 && s.clipSkip <= MAX_CLIP_SKIP)) return `Clip skip must be a whole number from 1 to ${MAX_CLIP_SKIP}.`;
    if (!(s.batchCount >= 1 && s.batchCount <= MAX_BATCH_COUNT)) return `Batch count must be from 1 to ${MAX_BATCH_COUNT}.`;
    if (mode !== 'txt2img' && mode !== 'layout' && !(s.strength >= MIN_STRENGTH && s.strength <= MAX_STRENGTH)) return `Strength must be from ${MIN_STRENGTH} to ${MAX_STRENGTH}.`;
    if ((mode === 'img2img' || mode === 'inpaint') && runsNoStep(s.sampler, s.steps, s.strength)) {
      return `At strength ${s.strength}, ${s.steps} steps would run no step: raise Steps or Strength.`;
    }
    if (mode === 'inpaint' && !(s.maskBlur >= 0 && s.maskBlur <= MAX_MASK_BLUR)) return `Mask blur must be from 0 to ${MAX_MASK_BLUR}.`;
    if (mode === 'inpaint' && s.inpaintArea === 'masked' && !(Number.isInteger(s.maskPadding) && s.maskPadding >= 0 && s.maskPadding <= MAX_MASK_PADDING)) {
      return `Padding must be a whole number from 0 to ${MAX_MASK_PADDING}.`;
    }
    if (mode === 'txt2img' && s.hires.enabled) {
      const hires = hiresProblem(s.hires);
      if (hires) return hires;
      // The second pass is img2img.
      const steps = s.hires.steps || s.steps;
      if (runsNoStep(s.sampler, steps, s.hires.strength)) {
        return `The hires pass would run no step (${steps} steps × denoising strength ${s.hires.strength}): raise Hires steps or Denoising strength.`;
      }
    }
    return regionsProblem();
  }

  /** Why the regions can't be sent, in plain words; null when they can (or there are none). */
  function regionsProblem(): string | null {
    const regions = doc.regions;
    if (regions.length > MAX_REGIONS) return `At most ${MAX_REGIONS} regions: remove ${regions.length - MAX_REGIONS}.`;
    for (const [i, r] of regions.entries()) {
      if (r.prompt.trim() === '') return `Region ${i + 1} needs a prompt.`;
      if (!(r.weight >= MIN_REGION_WEIGHT && r.weight <= MAX_REGION_WEIGHT)) return `Region ${i + 1}'s weight must be from ${MIN_REGION_WEIGHT} to ${MAX_REGION_WEIGHT}.`;
      if (r.mask.isEmpty()) return `Region ${i + 1} has no area: paint it on the canvas, or remove it.`;
    }
    return null;
  }

  /** The request's `regions`: each mask a PNG at the picture's size. */
  async function regionsRequest(): Promise<RequestInputs['generate']['regions']> {
    const regions = doc.regions;
    if (regions.length === 0) return undefined;
    return Promise.all(
      regions.map(async (r) => ({ prompt: r.prompt, mask: toBase64(await exportRegionPng(doc, r, browserDeflate)), ...(r.weight !== 1 ? { weight: r.weight } : {}) })),
    );
  }

  /** Adds a region (at most MAX_REGIONS) and makes it what the brush paints. */
  function addRegion(): void {
    if (doc.regions.length >= MAX_REGIONS) {
      notify('error', `At most ${MAX_REGIONS} regions.`);
      return;
    }
    paintRegionStore.set(doc.addRegion().id);
  }

  let generating = false;

  /** Sends the batch: one job per image, seeds consecutive from the first when fixed. */
  async function generate(): Promise<void> {
    if (generating) return;
    const s = settingsStore.get();
    const problem = generateProblem(s);
    if (problem) {
      notify('error', problem);
      return;
    }
    generating = true;
    try {
      const mode = effectiveMode(s);
      const base: RequestInputs['generate'] = {
        mode,
        prompt: s.prompt,
        negativePrompt: s.negativePrompt,
        steps: s.steps,
        cfg: s.cfg,
        sampler: s.sampler,
        ...promptOptions(s),
        ...(mode === 'txt2img' && s.hires.enabled ? { hires: hiresRequest(s.hires) } : {}),
        ...repaintSize(s, mode),
        ...(modelsStore.get().selectedId ? { modelId: modelsStore.get().selectedId! } : {}),
      };
      const image = doc.image;
      if (mode !== 'txt2img' && mode !== 'layout' && image) {
        base.strength = s.strength;
        if (image.source.kind === 'history') {
          base.initImageHash = image.source.hash;
          base.parentId = image.source.historyId;
        } else {
          base.initImage = toBase64(image.source.bytes);
          if (image.source.parentId !== undefined) base.parentId = image.source.parentId;
        }
      }
      if (mode === 'inpaint') {
        base.mask = toBase64(await exportMaskPng(doc, browserDeflate));
        base.maskBlur = s.maskBlur;
        if (s.softInpaint) base.softInpaint = true;
        if (s.inpaintArea === 'masked') {
          base.inpaintArea = 'masked';
          base.maskPadding = s.maskPadding;
        }
      }
      if (mode === 'layout') base.labelMap = toBase64(await exportLayoutPng(doc, layoutPalette(), browserDeflate));
      const regions = await regionsRequest();
      if (regions) base.regions = regions;
      stagingStore.set(EMPTY_STAGING);
      const jobIds: string[] = [];
      for (let i = 0; i < s.batchCount; i++) {
        const request = { ...base, ...(s.seedMode === 'fixed' ? { seed: s.seed + i } : {}) };
        const { jobId } = await client.call('generate', request);
        jobIds.push(jobId);
        stagingStore.update({ jobIds: [...jobIds] });
      }
    } catch (err) {
      notify('error', describeError(err));
    } finally {
      generating = false;
    }
  }

  /** Cancels the running job of this batch and every queued one. */
  async function cancelGeneration(): Promise<void> {
    const { jobIds } = stagingStore.get();
    const q = queueStore.get();
    const active = [q.running, ...q.queued].filter((j): j is JobSummary => j !== null && jobIds.includes(j.id));
    const targets = active.length > 0 ? active : q.running ? [q.running] : [];
    for (const job of targets) {
      try {
        await client.call('cancel', { jobId: job.id });
      } catch (err) {
        notify('error', describeError(err));
      }
    }
  }

  /** Loads the whole queue (at start, after a reconnect, and when a delta was missed). */
  function reloadQueue(): void {
    void client.call('queue.list', {}).then((snapshot) => onQueueChanged(snapshot), () => undefined);
  }

  /** Folds a `queue.changed` delta into the queue store. */
  function onQueueDelta(delta: QueueDelta): void {
    const current = queueStore.get();
    const next = applyQueueDelta(current, delta);
    if (next === null) {
      // Deltas before the first snapshot are in it; a gap after it means one was missed.
      if (current.revision >= 0) reloadQueue();
      return;
    }
    if (next !== current) onQueueChanged(next, delta.changed);
  }

  /** Follows the queue: finished jobs of the current batch land in the staging area. */
  function onQueueChanged(snapshot: QueueSnapshot, changed: readonly JobSummary[] = []): void {
    queueStore.set(snapshot);
    const staging = stagingStore.get();
    // A job of the batch that finished in this change counts even when it is already off the recent list.
    const seen = [...snapshot.recent, ...changed.filter((j) => !snapshot.recent.some((r) => r.id === j.id))];
    for (const job of seen) {
      if (!staging.jobIds.includes(job.id)) continue;
      if (job.status === 'succeeded' && job.historyId !== null && !staging.items.some((it) => it.id === job.historyId)) {
        const historyId = job.historyId;
        void client
          .call('history.get', { id: historyId })
          .then((item) => {
            stagingStore.set((prev) => {
              if (!prev.jobIds.includes(job.id) || prev.items.some((it) => it.id === item.id)) return prev;
              const items = [...prev.items, item].sort((a, b) => prev.jobIds.indexOf(jobOf(a, snapshot)) - prev.jobIds.indexOf(jobOf(b, snapshot)));
              const warnings = job.warnings.length > 0 ? { ...prev.warnings, [item.id]: job.warnings } : prev.warnings;
              return { ...prev, items, index: items.indexOf(item), warnings };
            });
            if (item.params.seed !== null) lastSeedStore.set(item.params.seed);
          })
          .catch((err: unknown) => notify('error', describeError(err)));
      } else if (job.status === 'failed' && job.error && !failedShown.has(job.id)) {
        failedShown.add(job.id);
        notify('error', `Generation failed: ${job.error.message}`);
      }
    }
    // A batch that ended without a result (cancelled, failed) leaves nothing to wait for.
    const open = [snapshot.running, ...snapshot.queued].some((j) => j !== null && staging.jobIds.includes(j.id));
    const finished = staging.jobIds.every((id) => seen.some((j) => j.id === id));
    if (staging.jobIds.length > 0 && !open && finished && staging.items.length === 0 && seen.filter((j) => staging.jobIds.includes(j.id)).every((j) => j.status !== 'succeeded')) {
      stagingStore.set(EMPTY_STAGING);
    }
    const live = liveJobStore.get();
    if (live && snapshot.running?.id !== live.jobId) liveJobStore.set(null);
  }
  const failedShown = new Set<string>();
  /** Accept: the staged result becomes the base image (it is already a child of the image it came from). */
  function acceptStaged(): void {
    const { items, index } = stagingStore.get();
    const item = items[index];
    if (!item?.output) return;
    doc.setImage({ width: item.output.width, height: item.output.height, source: { kind: 'history', historyId: item.id, hash: item.output.hash } }, 'Accept result');
    stagingStore.set(EMPTY_STAGING);
    selectedHistoryStore.set(item.id);
  }

  function discardStaged(): void {
    stagingStore.set((prev) => {
      const items = prev.items.filter((_, i) => i !== prev.index);
      return { ...prev, jobIds: items.length > 0 ? prev.jobIds : [], items, index: Math.min(prev.index, Math.max(0, items.length - 1)) };
    });
  }

  function flipStaged(delta: 1 | -1): void {
    stagingStore.set((prev) => (prev.items.length === 0 ? prev : { ...prev, index: (prev.index + delta + prev.items.length) % prev.items.length }));
  }

  /**
   * Opening another picture resolves what is staged, explicitly: the staged results are set aside (not
   * accepted; every one stays in History, where Open in canvas brings it back) and a notice says so, and
   * the rest of the batch is no longer followed into staging. Without this the staged result would
   * keep covering the opened picture and the brush would paint nothing.
   */
  function setAsideStaged(): void {
    const { jobIds, items } = stagingStore.get();
    if (jobIds.length === 0 && items.length === 0) return;
    stagingStore.set(EMPTY_STAGING);
    const pending = jobIds.length - items.length;
    const ids = items.map((it) => `#${it.id}`).join(', ');
    const parts: string[] = [];
    if (items.length > 0) parts.push(`${items.length === 1 ? 'Result' : 'Results'} ${ids} set aside, not accepted: ${items.length === 1 ? 'it stays' : 'they stay'} in History.`);
    if (pending > 0) parts.push(`${pending === 1 ? 'The result still coming goes' : `The ${pending} results still coming go`} to History only.`);
    notify('info', parts.join(' '));
  }

  /** What painting says while a result is staged (the brush paints the base image, which is hidden). */
  function explainStagedPainting(): void {
    const text = 'A result is staged: Accept or Discard it (Enter / Delete) to paint again.';
    if (noticesStore.get().some((n) => n.text === text)) return;
    notify('info', text);
  }

  // ── images and reuse ───────────────────────────────────────────────────────────────────────────

  /** Opens a file (dialog, drop or paste) as the base image. */
  async function openImageFile(file: Blob, name: string): Promise<void> {
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const size = pngSize(bytes) ?? (await (async () => {
        const bitmap = await createImageBitmap(file);
        const out = { width: bitmap.width, height: bitmap.height };
        bitmap.close();
        return out;
      })());
      setAsideStaged();
      doc.setImage({ width: size.width, height: size.height, source: { kind: 'file', name, bytes, mime: file.type || 'image/png' } });
    } catch {
      notify('error', `Could not open ${name}: it is not an image this browser can read (PNG, JPEG or WebP).`);
    }
  }

  /** Continue editing a history item: it becomes the base image, and the next result is its child. */
  function openInCanvas(item: HistoryItem): void {
    if (!item.output) return;
    setAsideStaged();
    doc.setImage({ width: item.output.width, height: item.output.height, source: { kind: 'history', historyId: item.id, hash: item.output.hash } }, 'Open from history');
  }

  /** The base image's pixels, decoded once per image (the wand asks on every click). */
  let basePixels: { source: unknown; pixels: Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> } | null = null;
  function decodeBaseImage(): Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> | null {
    const image = doc.image;
    if (!image) return null;
    if (basePixels?.source !== image.source) {
      const src = image.source;
      const pixels = src.kind === 'history' ? decodeStoredImage(src.hash) : decodePixels(new Blob([src.bytes as Uint8Array<ArrayBuffer>], { type: src.mime }));
      basePixels = { source: src, pixels };
      pixels.catch(() => {
        if (basePixels?.pixels === pixels) basePixels = null;
      });
    }
    return basePixels.pixels;
  }

  /**
   * Magic wand: adds to the mask the base image's pixels within `tolerance` of the colour at (`x`, `y`),
   * only the connected region when `contiguous`. One undo step.
   */
  async function maskColourRange(x: number, y: number, tolerance: number, contiguous: boolean): Promise<void> {
    const pending = decodeBaseImage();
    if (!pending) {
      notify('error', 'Open or generate an image first: the wand picks colours of the image.');
      return;
    }
    try {
      const image = doc.image;
      const { rgba, width, height } = await pending;
      // The document may have moved on while decoding (another image opened): pick nothing then.
      if (doc.image !== image || width !== doc.width || height !== doc.height) return;
      if (!doc.selectColourRange(rgba, x, y, { tolerance, contiguous })) notify('info', 'The wand found nothing new to mask there.');
    } catch (err) {
      notify('error', `Could not read the image's colours: ${describeError(err)}`);
    }
  }

  /** Puts an item's parameters back into the prompt panel. */
  function reuseParameters(item: HistoryItem): void {
    const p = item.params;
    const recorded = p as RecordedParams & Partial<Pick<GenerationParams, 'inpaintArea' | 'maskPadding'>>;
    settingsStore.update({
      prompt: p.prompt,
      negativePrompt: p.negativePrompt,
      ...(p.steps !== null ? { steps: p.steps } : {}),
      ...(p.cfg !== null ? { cfg: p.cfg } : {}),
      ...(p.sampler !== null ? { sampler: p.sampler } : {}),
      ...(p.seed !== null ? { seed: p.seed, seedMode: 'fixed' as const } : {}),
      // A txt2img or layout item records strength 1 and no blur: they mean nothing for the next img2img/inpaint.
      ...(p.strength !== null && item.mode !== 'txt2img' && item.mode !== 'layout' ? { strength: p.strength } : {}),
      ...(p.maskBlur !== null && item.mode === 'inpaint' ? { maskBlur: p.maskBlur } : {}),
      // Older items (and hosts that record less) carry no inpaint area: leave the panel's choice then.
      ...(item.mode === 'inpaint' && recorded.inpaintArea !== undefined ? { inpaintArea: recorded.inpaintArea } : {}),
      ...(item.mode === 'inpaint' && recorded.maskPadding !== undefined ? { maskPadding: recorded.maskPadding } : {}),
      // A1111's Clip skip: an item without one ran (or was made in A1111) with 1.
      clipSkip: p.clipSkip ?? 1,
      // Hires fix: a txt2img item turns it on with its settings, or off (keeping the panel's last settings).
      ...(item.mode === 'inpaint' ? { softInpaint: p.softInpaint === true } : {}),
      ...(item.mode === 'txt2img' ? { hires: p.hires ? { enabled: true, ...p.hires } : { ...settingsStore.get().hires, enabled: false } } : {}),
      emphasis: p.emphasis ?? DEFAULT_EMPHASIS,
      padConds: p.padConds === true,
      width: p.width,
      height: p.height,
    });
    doc.resizeBlank(p.width, p.height);
    // The item's model: by id, else (an A1111 infotext names a model we may know by another name) by its hash.
    const models = modelsStore.get().models;
    const hash = item.model.hash?.toLowerCase();
    const model =
      models.find((m) => m.id === item.model.id) ??
      (hash && hash.length >= MIN_MODEL_HASH_DIGITS ? models.find((m) => m.contentHash?.toLowerCase().startsWith(hash)) : undefined);
    if (model && model.id !== modelsStore.get().selectedId) void selectModel(model.id, { width: p.width, height: p.height });
    if (item.labelMap) void restoreLayout(item, item.labelMap);
    if (item.regions && item.regions.length > 0) void restoreRegions(item, item.regions);
    notify('info', `Parameters of #${item.id} are back in the prompt panel.`);
    if (/<(?:lora|lyco):/.test(p.prompt)) void restoreLoras(item);
  }

  /**
   * Reuse, for a prompt with `<lora:…>` tags: the host renames each tag whose recorded hash is a library
   * LoRA of another name, and says which are missing (named in a notice; the tags stay in the prompt).
   */
  async function restoreLoras(item: HistoryItem): Promise<void> {
    const p = item.params;
    try {
      const { prompt, missing } = await client.call('loras.restore', { prompt: p.prompt, loras: p.loras ?? [] });
      // Only if the prompt is still the reused one (not edited or reused again since).
      if (prompt !== p.prompt && settingsStore.get().prompt === p.prompt) settingsStore.update({ prompt });
      if (missing.length > 0) {
        notify('error', `#${item.id} used ${missing.length === 1 ? 'a LoRA' : 'LoRAs'} not in the library: ${missing.join(', ')}. Import ${missing.length === 1 ? 'it' : 'them'} into the LoRA folder, or remove the tag${missing.length === 1 ? '' : 's'}.`);
      }
    } catch (err) {
      notify('error', `Could not look up the LoRAs of #${item.id}: ${describeError(err)}`);
    }
  }

  /**
   * Decodes a stored image to RGBA pixels, exactly (no colour management: a label map's colours are ids).
   * The bytes come through history.image, not fetch: the Electron window's CSP allows no data: fetches.
   */
  async function decodeStoredImage(hash: string): Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> {
    const { data, mime } = await client.call('history.image', { hash, thumbnail: false });
    return decodePixels(new Blob([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], { type: mime }));
  }
  /**
   * Opens a label map PNG (one exported by a generation, or drawn elsewhere in the model's label colours)
   * into the layout layer, each pixel the nearest label colour. One undo step.
   */
  async function openLayoutFile(file: Blob, name: string): Promise<void> {
    const labels = layoutPalette();
    if (labels.length === 0) {
      notify('error', 'Pick a layout model first: its labels say which colour is which label.');
      return;
    }
    let pixels: { rgba: Uint8ClampedArray; width: number; height: number };
    try {
      pixels = await decodePixels(file);
    } catch {
      notify('error', `Could not open ${name}: it is not an image this browser can read (PNG, JPEG or WebP).`);
      return;
    }
    doc.loadLayout(labelsFromPixels(pixels.rgba, pixels.width, pixels.height, 4, labels), pixels.width, pixels.height, 'Open layout');
    if (!doc.image) settingsStore.update({ width: pixels.width, height: pixels.height });
  }

  /** Reuse: the item's label map back into the layout layer (read with its model's labels), one undo step. */
  async function restoreLayout(item: HistoryItem, map: ImageRef): Promise<void> {
    const models = modelsStore.get();
    const labels = (item.model.id ? models.info[item.model.id]?.layout?.labels : undefined) ?? layoutPalette(models);
    if (labels.length === 0) {
      notify('error', `#${item.id} has a label map, but no layout model is installed to read its labels.`);
      return;
    }
    try {
      const { rgba, width, height } = await decodeStoredImage(map.hash);
      doc.loadLayout(labelsFromPixels(rgba, width, height, 4, labels), width, height);
      settingsStore.update({ width, height });
    } catch (err) {
      notify('error', `Could not restore the label map of #${item.id}: ${describeError(err)}`);
    }
  }

  /**
   * Reuse: the item's regions back into the region list with their masks painted on the canvas (one undo
   * step). The masks are at the item's picture size; on a canvas of another size they are stretched to it.
   */
  async function restoreRegions(item: HistoryItem, regions: NonNullable<HistoryItem['regions']>): Promise<void> {
    try {
      const masks = await Promise.all(regions.map((r) => decodeStoredImage(r.mask.hash)));
      const loaded = regions.map((r, i) => {
        const { rgba, width, height } = masks[i]!;
        // A grey PNG decodes to R = G = B: the red channel is the mask.
        let mask: Uint8Array = new Uint8Array(width * height);
        for (let p = 0, o = 0; p < mask.length; p++, o += 4) mask[p] = rgba[o]!;
        if (width !== doc.width || height !== doc.height) mask = resampleLabels(mask, width, height, doc.width, doc.height);
        return { prompt: r.prompt, weight: r.weight, mask };
      });
      const [first] = doc.loadRegions(loaded);
      paintRegionStore.set(first?.id ?? null);
    } catch (err) {
      notify('error', `Could not restore the regions of #${item.id}: ${describeError(err)}`);
    }
  }

  /** Applies the studio settings the canvas uses (the undo history's byte budget). */
  function applyStudioSettings(settings: Pick<StudioSettings, 'undoMemoryMb'>): void {
    if (Number.isFinite(settings.undoMemoryMb) && settings.undoMemoryMb > 0) doc.setUndoBudget(settings.undoMemoryMb * 2 ** 20);
  }

  /** Reads what the host has now: the queue, the engine state, the settings and the model library. */
  function sync(): void {
    reloadQueue();
    // Without the settings the canvas keeps its default undo budget; app.info below reports a lost host.
    void client.call('settings.get', {}).then(applyStudioSettings, () => undefined);
    void client.call('app.info', {}).then(
      (info) => connectionStore.update({ connected: true, engine: info.engine.state }),
      (err: unknown) => {
        connectionStore.update({ connected: false });
        notify('error', describeError(err));
      },
    );
    void loadModels();
  }

  /** Wires host events to the stores; returns the unsubscribe. */
  function connect(): () => void {
    const c = client;
    let dropped = false;
    const offs = [
      c.on('queue.changed', onQueueDelta),
      c.on('job.progress', (p) => {
        const prev = liveJobStore.get();
        liveJobStore.set({ jobId: p.jobId, step: p.step, total: p.total, etaMs: p.etaMs, elapsedMs: p.elapsedMs, preview: prev?.jobId === p.jobId ? prev.preview : null });
      }),
      c.on('job.preview', (p) => {
        const prev = liveJobStore.get();
        if (prev && prev.jobId !== p.jobId) return;
        liveJobStore.set({ ...(prev ?? { jobId: p.jobId, step: p.step, total: p.step, etaMs: 0, elapsedMs: 0 }), preview: `data:image/png;base64,${p.png}` });
      }),
      c.on('history.changed', () => historyRevisionStore.set((n) => n + 1)),
      c.on('engine.status', (s) => connectionStore.update({ engine: s.state })),
      // Another window, the app menu or a finished download changed the library: the picker follows.
      c.on('models.changed', () => void loadModels()),
      // The socket dropped (host restarted or stopped) and came back: events were missed, so read again.
      c.onConnection((connected) => {
        if (!connected) {
          dropped = true;
          connectionStore.update({ connected: false });
        } else if (dropped) {
          dropped = false;
          historyRevisionStore.set((n) => n + 1);
          sync();
        }
      }),
    ];
    sync();
    return () => offs.forEach((off) => off());
  }

  /** Live painting: frames over the canvas while painting (live-painting.ts). */
  const live = createLivePainting({
    client,
    doc,
    settingsStore,
    selectedModelId: () => modelsStore.get().selectedId,
    onModelChange: (listener) => {
      let previous = modelsStore.get().selectedId;
      return modelsStore.subscribe(() => {
        const id = modelsStore.get().selectedId;
        if (id === previous) return;
        previous = id;
        listener();
      });
    },
    compress: browserDeflate,
    toBase64,
    describeError,
    notify,
    onKept: (historyId) => selectedHistoryStore.set(historyId),
  });

  /** Stops the notices' timers (a test's session ends; the app's lives as long as the page). */
  function dispose(): void {
    live.dispose();
    for (const t of noticeTimers) clearTimeout(t);
    noticeTimers.clear();
  }


  /**
   * Outpainting: grows the canvas on one side by the model's size multiple (so the result stays a valid
   * size), fills the new strip by stretching the edge pixels (a neutral start for the inpaint), and masks it.
   */
  async function extendCanvas(side: ExtendSide): Promise<void> {
    const image = doc.image;
    if (!image) {
      notify('error', 'Open or generate an image first: outpainting extends an image.');
      return;
    }
    const info = modelsStore.get().selectedId ? modelsStore.get().info[modelsStore.get().selectedId!] : undefined;
    const amount = Math.max(info?.sizeMultiple ?? 64, 64);
    try {
      const url = image.source.kind === 'history' ? await client.imageUrl(image.source.hash) : URL.createObjectURL(new Blob([image.source.bytes as Uint8Array<ArrayBuffer>], { type: image.source.mime }));
      const img = new Image();
      img.src = url;
      await img.decode();
      const horizontal = side === 'left' || side === 'right';
      const width = image.width + (horizontal ? amount : 0);
      const height = image.height + (horizontal ? 0 : amount);
      const left = side === 'left' ? amount : 0;
      const top = side === 'top' ? amount : 0;
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext('2d')!;
      // Stretch the one-pixel edge across the new strip, then draw the image itself.
      if (side === 'left') ctx.drawImage(img, 0, 0, 1, image.height, 0, 0, amount, image.height);
      if (side === 'right') ctx.drawImage(img, image.width - 1, 0, 1, image.height, image.width, 0, amount, image.height);
      if (side === 'top') ctx.drawImage(img, 0, 0, image.width, 1, 0, 0, image.width, amount);
      if (side === 'bottom') ctx.drawImage(img, 0, image.height - 1, image.width, 1, 0, image.height, image.width, amount);
      ctx.drawImage(img, left, top);
      const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/png'));
      if (!blob) throw new Error('the browser could not encode the extended canvas');
      const name = image.source.kind === 'file' ? image.source.name : `#${image.source.historyId}`;
      // The extended picture is new bytes, but it is still that history item continued: keep the link.
      const parentId = image.source.kind === 'history' ? image.source.historyId : image.source.parentId;
      const bytes = new Uint8Array(await blob.arrayBuffer());
      doc.extendCanvas({ width, height, source: { kind: 'file', name: `${name} (extended)`, bytes, mime: 'image/png', ...(parentId !== undefined ? { parentId } : {}) } }, left, top);
    } catch (err) {
      notify('error', `Could not extend the canvas: ${describeError(err)}`);
    }
  }

  /** Adds a model folder (absolute path) to the library and selects it; returns an error to show, or null. */
  async function importModelFolder(path: string, copy = false): Promise<string | null> {
    const trimmed = path.trim();
    if (!trimmed) return 'Type the absolute path of a model folder (the one with model_index.json).';
    try {
      const model = await client.call('models.import', { path: trimmed, copy });
      await loadModels();
      await selectModel(model.id);
      notify('info', `Added ${model.name} (${model.kind}).`);
      return null;
    } catch (err) {
      return describeError(err);
    }
  }

  return {
    client,
    doc,
    applyStudioSettings,
    settingsStore,
    stagingStore,
    liveJobStore,
    lastSeedStore,
    noticesStore,
    selectedHistoryStore,
    paintRegionStore,
    addRegion,
    notify,
    modelsStore,
    queueStore,
    connectionStore,
    historyRevisionStore,
    loadModels,
    selectModel,
    selectedModelInfo,
    layoutPalette,
    effectiveMode,
    usesPanelSize,
    generateProblem,
    generate,
    cancelGeneration,
    onQueueChanged,
    onQueueDelta,
    acceptStaged,
    discardStaged,
    flipStaged,
    explainStagedPainting,
    maskColourRange,
    openImageFile,
    openInCanvas,
    reuseParameters,
    openLayoutFile,
    connect,
    dispose,
    extendCanvas,
    importModelFolder,
    live,
  };
}

/** One studio session: what createSession makes and the panels get from useSession(). */
export type StudioSession = ReturnType<typeof createSession>;
