/**
 * The handler table: one async handler per channel of the contract. `satisfies Handlers` makes a
 * missing or extra channel a compile error. Requests arrive already parsed by the contract's schemas.
 */
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { constants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { imageHeaderFromBase64 } from '../shared/image-header.js';
import type { Handlers, Requests, StudioSettings } from '../shared/contract.js';
import { DEFAULT_UNDO_MEMORY_MB } from '../shared/resource-limits.js';
import { checkRequestForModel } from '../shared/model-checks.js';
import { loraFamilyProblem } from '../shared/loras.js';
import { serializeError, StudioError, type SerializedError } from '../shared/errors.js';
import { convertCommand } from '../model-library/convert-command.js';
import { embeddingFolder, embeddingNames } from '../model-library/embeddings.js';
import { checkPromptLoras, listLoras, loraFolder, restoreLoraTags } from '../model-library/loras.js';
import { HistoryError } from '../history/errors.js';
import { makeFolder } from '../history/folders.js';
import type { Host } from './host.js';
import type { StoredSettings } from './settings-store.js';
import { describePrompt, EmbeddingVocabulary } from '../engine/prompt/chunker.js';
import { loadEmbeddingFolder, modelTextEncoderWidths } from '../engine/prompt/embeddings.js';
import { stripLoraTags } from '../engine/lora/prompt-tags.js';
import { checkGenerateLimits, checkInputImages, generationLimits } from './request-limits.js';

/** A seed drawn for a request without one: 32 bits, like A1111's random seeds. */
const RANDOM_SEED_LIMIT = 2 ** 32;

/**
 * An output folder is created if needed and must be writable, checked when it is set rather than at the
 * first result (makeFolder: a real folder on a writable disk, not under /proc, /sys or /dev, in bounded time).
 */
async function assertWritableFolder(folder: string): Promise<void> {
  try {
    await makeFolder(folder, 'outputFolder');
    await access(folder, constants.W_OK);
  } catch (err) {
    const reason = err instanceof HistoryError ? err.message.replace(/^outputFolder: /, '') : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new StudioError(err instanceof HistoryError ? err.code : 'E_IO', `outputFolder: can't write to ${folder} (${reason}).`);
  }
}

/**
 * The engine stretches a mask to the picture (the editor always sends them at the same size). One of
 * another size was made for another picture, or cut wrongly: it still runs, and the job says so.
 */
function maskWarnings(req: Requests['generate'], history: Host['history']): string[] {
  if (req.mask === undefined) return [];
  // Sizes from the headers (shared/image-header.ts) and the stored row: the host never decodes a user's image.
  const picture = req.initImage !== undefined
    ? imageHeaderFromBase64(req.initImage)
    : req.initImageHash !== undefined ? (history.imageSize(req.initImageHash) ?? null) : null;
  const mask = imageHeaderFromBase64(req.mask);
  if (!picture || !mask || (picture.width === mask.width && picture.height === mask.height)) return [];
  return [`The mask is ${mask.width}×${mask.height} but the picture is ${picture.width}×${picture.height}; it was resized to fit.`];
}

/** Engine errors that mean there is no engine process to hold sessions (nothing to unload). */
const ENGINE_GONE = new Set(['E_ENGINE_CRASHED', 'E_ENGINE_CLOSED']);

/** A checkpoint file, not a model folder: it has to be converted before it can be imported. */
const CHECKPOINT_FILE = /\.safetensors$/i;

export function createHandlers(host: Host) {
  const { history, queue, library, settings, engine } = host;
  /** Tells every window that the library changed, with the default it has now. */
  const modelsChanged = (kind: 'imported' | 'removed' | 'default', modelId: string): void =>
    host.emit('models.changed', { kind, modelId, defaultId: library.defaultModel()?.id ?? null });

  /** What settings.get and settings.set answer: the engine's effective settings, the stored ones, and defaults for those left unset. */
  const settingsReply = (stored: StoredSettings, effective: Awaited<ReturnType<typeof engine.effectiveSettings>>): StudioSettings => ({
    ...effective,
    releaseTextEncoders: stored.releaseTextEncoders ?? false,
    outputFolder: stored.outputFolder,
    selectedModelId: library.defaultModel()?.id ?? null,
    ...generationLimits(stored),
    undoMemoryMb: stored.undoMemoryMb ?? DEFAULT_UNDO_MEMORY_MB,
  });
  /** A library model whose folder is there (a removed or moved folder is named, not failed on later). */
  const availableModel = (modelId: string) => {
    const model = library.get(modelId);
    if (!model.available) throw new StudioError('E_NOT_FOUND', `The folder of the model "${model.name}" is missing (${model.dir}); import it again or pick another model.`);
    return model;
  };
  /** The model and prompt whose <lora:…> tags the last live frame checked. */
  let lastLiveLoraCheck: string | null = null;
  const handlers = {
    async generate(req) {
      const modelId = req.modelId ?? host.defaultModelId();
      const model = availableModel(modelId);
      if (req.parentId !== undefined) history.get(req.parentId);
      if (req.initImageHash !== undefined && !existsSync(history.imagePath(req.initImageHash))) {
        throw new StudioError('E_NOT_FOUND', `initImageHash: no image ${req.initImageHash} in history.`);
      }
      // Sizes first, from the images' headers: nothing below may decode an image bomb.
      checkGenerateLimits(req, model, generationLimits(settings.read()));
      // What the model can never run is answered now, not by a job that fails a moment later.
      checkRequestForModel(library.info(modelId).info, req);
      // <lora:…> tags: each names a library LoRA of the model's family (from the records made at import).
      await checkPromptLoras(loraFolder(host.dataDir), req.prompt, library.info(modelId).info);
      const warnings = maskWarnings(req, history);
      const seed = req.seed ?? randomInt(0, RANDOM_SEED_LIMIT);
      const job = await queue.enqueue(modelId, { ...req, seed }, warnings);
      return { jobId: job.id, seed, position: queue.positionOf(job.id), warnings };
    },
    async cancel({ jobId }) {
      return { jobId, status: await queue.cancel(jobId) };
    },
    async 'queue.list'() {
      return queue.snapshot();
    },
    async 'queue.reorder'({ jobIds }) {
      return queue.reorder(jobIds);
    },
    async 'queue.clear'({ includeRunning }) {
      return { cancelled: await queue.clear(includeRunning ?? false) };
    },

    async 'history.page'(query) {
      return history.page(query);
    },
    async 'history.search'(query) {
      return history.search(query);
    },
    async 'history.get'({ id }) {
      return history.get(id);
    },
    async 'history.lineage'({ id }) {
      return history.lineage(id);
    },
    async 'history.counts'() {
      return history.counts();
    },
    async 'history.setFavorite'({ ids, favorite }) {
      history.setFavorite(ids, favorite);
      host.emit('history.changed', { kind: 'updated', ids });
      return { updated: ids.length };
    },
    async 'history.setTags'({ id, tags }) {
      const item = history.setTags(id, tags);
      host.emit('history.changed', { kind: 'updated', ids: [id] });
      return item;
    },
    async 'history.delete'({ ids }) {
      const deleted = history.delete(ids);
      host.emit('history.changed', { kind: 'deleted', ids });
      return { deleted };
    },
    async 'history.restore'({ ids }) {
      const restored = history.restore(ids);
      host.emit('history.changed', { kind: 'restored', ids });
      return { restored };
    },
    async 'history.purge'(select) {
      const result = history.purge(select);
      if (result.purged.length > 0) host.emit('history.changed', { kind: 'purged', ids: result.purged });
      return result;
    },
    async 'history.import'({ paths }) {
      const report = await history.import(paths);
      const ids = report.results.flatMap((r) => (r.status === 'imported' ? [r.id] : []));
      if (ids.length > 0) host.emit('history.changed', { kind: 'imported', ids });
      return report;
    },
    async 'history.export'({ ids, folder }) {
      // Checked and created here, off the event loop and in bounded time; the store then finds it made.
      await makeFolder(folder, 'history.export');
      return history.export(ids, folder);
    },
    async 'history.image'({ hash, thumbnail }) {
      const path = thumbnail ? history.thumbnailPath(hash) : history.imagePath(hash);
      let bytes: Buffer;
      try {
        bytes = await readFile(path);
      } catch {
        throw new StudioError('E_NOT_FOUND', `No ${thumbnail ? 'thumbnail' : 'image'} ${hash} in history.`);
      }
      return { hash, mime: thumbnail ? 'image/webp' : 'image/png', data: bytes.toString('base64') } as const;
    },
    async 'history.reveal'({ id }) {
      const item = history.get(id);
      if (!item.output) throw new StudioError('E_NOT_FOUND', `#${id} has no image file (the generation did not produce one).`);
      const path = history.imagePath(item.output.hash);
      if (!existsSync(path)) throw new StudioError('E_NOT_FOUND', `The image file of #${id} is missing from the history folder (${path}).`);
      if (!host.platform.revealFile) return { path, revealed: false };
      await host.platform.revealFile(path);
      return { path, revealed: true };
    },

    async 'models.list'() {
      const models = library.list();
      const defaultId = models.find((m) => m.isDefault)?.id ?? null;
      return { models, defaultId, selectedId: defaultId, downloads: await host.downloads() };
    },
    async 'models.info'({ modelId }) {
      return library.info(modelId);
    },
    async 'models.import'(request) {
      if (CHECKPOINT_FILE.test(request.path)) {
        const { display, out } = convertCommand({ source: request.path, ...(host.nativeModelsDir ? { nativeModelsDir: host.nativeModelsDir } : {}) });
        throw new StudioError(
          'E_NEEDS_CONVERSION',
          `${request.path} is a single-file checkpoint, not an ONNX model folder. Convert it first with the native-models tooling (the app bundles no Python): ${display} — then import ${out}.`,
        );
      }
      // The engine opens the folder first (the library's validator): a folder it can't run is never added.
      const model = await library.importFolder(request);
      // A copy runs from the models folder: the sessions opened on the original are not needed.
      if (model.dir !== model.source) host.releaseModel(model.source);
      modelsChanged('imported', model.id);
      return model;
    },
    async 'models.download'(request) {
      const { name, files, urls } = request;
      return { downloadId: host.startDownload(files ? { name, files } : { name, urls: urls! }) };
    },
    async 'models.cancelDownload'({ downloadId }) {
      if (!(await library.cancelDownload(downloadId))) throw new StudioError('E_NOT_FOUND', `No download ${downloadId} (it may have finished already).`);
      return { downloadId, cancelled: true } as const;
    },
    async 'models.remove'({ modelId }) {
      const model = library.get(modelId);
      // Queued jobs for it could never run: they fail now, in plain words, rather than when their turn
      // comes (a bundled model is refused below and keeps them). The running job finishes first.
      const removedError: SerializedError = {
        name: 'ModelRemovedError',
        code: 'E_MODEL_REMOVED',
        message: `The model "${model.name}" was removed before this job started; pick another model and generate again.`,
      };
      const failedJobs = model.readOnly ? [] : queue.failQueuedForModel(model.id, removedError);
      // Its sessions go first (after a job that is using them), so no file is deleted under the engine.
      // A bundled model is refused by the library (E_READ_ONLY) and keeps its sessions.
      if (!model.readOnly) {
        try {
          await engine.unload(model.dir);
        } catch (err) {
          if (!ENGINE_GONE.has(serializeError(err).code)) throw err;
        }
        host.releaseModel(model.dir);
      }
      await library.remove(modelId);
      modelsChanged('removed', modelId);
      return { removed: modelId, defaultId: library.defaultModel()?.id ?? null, failedJobs };
    },
    async 'models.setDefault'({ modelId }) {
      const defaultId = library.setDefault(modelId).id;
      modelsChanged('default', defaultId);
      return { defaultId };
    },
    async 'models.select'({ modelId }) {
      const selectedId = library.setDefault(modelId).id;
      modelsChanged('default', selectedId);
      return { selectedId };
    },
    async 'models.convertCommand'({ path, fp16 }) {
      const { display, argv, out } = convertCommand({
        source: path,
        ...(fp16 !== undefined ? { fp16 } : {}),
        ...(host.nativeModelsDir ? { nativeModelsDir: host.nativeModelsDir } : {}),
      });
      return { command: display, argv, out };
    },

    async 'settings.get'() {
      const stored = settings.read();
      const effective = await engine.effectiveSettings();
      return settingsReply(stored, effective);
    },
    async 'settings.set'(patch) {
      if (patch.outputFolder) await assertWritableFolder(patch.outputFolder);
      const stored = settings.write({
        ...(patch.providers !== undefined ? { providers: patch.providers } : {}),
        ...(patch.threads !== undefined ? { threads: patch.threads } : {}),
        ...(patch.releaseTextEncoders !== undefined ? { releaseTextEncoders: patch.releaseTextEncoders } : {}),
        ...(patch.outputFolder !== undefined ? { outputFolder: patch.outputFolder } : {}),
        ...(patch.maxInputPixels !== undefined ? { maxInputPixels: patch.maxInputPixels } : {}),
        ...(patch.maxSizeFactor !== undefined ? { maxSizeFactor: patch.maxSizeFactor } : {}),
        ...(patch.maxJobMemoryMb !== undefined ? { maxJobMemoryMb: patch.maxJobMemoryMb } : {}),
        ...(patch.undoMemoryMb !== undefined ? { undoMemoryMb: patch.undoMemoryMb } : {}),
      });
      if (patch.providers !== undefined || patch.threads !== undefined || patch.releaseTextEncoders !== undefined) {
        await engine.configure({
          ...(patch.providers !== undefined ? { providers: patch.providers } : {}),
          ...(patch.threads !== undefined ? { threads: patch.threads } : {}),
          ...(patch.releaseTextEncoders !== undefined ? { releaseTextEncoders: patch.releaseTextEncoders } : {}),
        });
      }
      const effective = await engine.effectiveSettings();
      return settingsReply(stored, effective);
    },

    async 'loras.list'({ modelId }) {
      const { loras, broken } = await listLoras(loraFolder(host.dataDir));
      const model = modelId !== undefined ? library.info(modelId).info : null;
      return {
        loras: loras.map(({ path: _path, ...info }) => ({ ...info, problem: model ? loraFamilyProblem(info, model) : null })),
        broken: broken.map(({ path, error }) => ({ name: basename(path, extname(path)), error })),
      };
    },
    async 'loras.restore'({ prompt, loras }) {
      return restoreLoraTags(prompt, loras, loraFolder(host.dataDir));
    },

    async 'app.info'() {
      return { ...host.appInfo, engine: engine.status };
    },
    async tokenize({ text, modelId }) {
      const { model, info } = library.info(modelId ?? host.defaultModelId());
      const tokenizer = await host.tokenizer(model.dir);
      // A1111's counter: its token count over 75 × the chunks it needs (82/150); long prompts are chunked,
      // not cut, so nothing is truncated. <lora:…> tags are not encoded, so they don't count.
      // An embedding's name counts as its vectors, as in A1111 (a 3-vector embedding is 3 tokens); one made
      // for another model family is skipped by the engine (and A1111), so its name counts as text.
      const widths = modelTextEncoderWidths(info);
      const installed = await loadEmbeddingFolder([embeddingFolder(host.dataDir)], widths.every((w) => Number.isFinite(w)) ? widths : null);
      const { tokenCount, limit } = describePrompt(
        stripLoraTags(text),
        tokenizer,
        installed.usable.length > 0 ? { embeddings: new EmbeddingVocabulary(tokenizer, installed.usable) } : {},
      );
      return { count: tokenCount, maxTokens: limit, truncated: false };
    },

    async 'embeddings.list'() {
      return { names: await embeddingNames(embeddingFolder(host.dataDir)) };
    },

    async 'live.frame'(req) {
      const arrivedAt = performance.now();
      const { modelId, initImage, initImageHash, samePicture, mask, maskRect, parentId, ...params } = req;
      const model = availableModel(modelId ?? host.defaultModelId());
      if (parentId !== undefined) history.get(parentId);
      if (initImageHash !== undefined && !existsSync(history.imagePath(initImageHash))) {
        throw new StudioError('E_NOT_FOUND', `initImageHash: no image ${initImageHash} in history.`);
      }
      // As generate: images by their headers before anything decodes them, <lora:…> tags against the
      // library (once per prompt and model: a stroke's frames share them).
      checkInputImages([['initImage', initImage], ['mask', mask]], generationLimits(settings.read()));
      // A frame is an inpaint at the model's native size (its defaults), whatever the Size setting says.
      const { info } = library.info(model.id);
      checkRequestForModel(info, { mode: 'inpaint', sampler: params.sampler, steps: params.steps, strength: params.strength });
      const loraCheck = `${model.id}\n${req.prompt}`;
      if (loraCheck !== lastLiveLoraCheck) {
        await checkPromptLoras(loraFolder(host.dataDir), req.prompt, info);
        lastLiveLoraCheck = loraCheck;
      }
      // The picture travels once per live session (samePicture afterwards); the host keeps its bytes.
      const picture =
        samePicture !== undefined
          ? host.live.pictureFor(samePicture)
          : host.live.rememberPicture(initImageHash !== undefined ? await readFile(history.imagePath(initImageHash)) : Buffer.from(initImage!, 'base64'));
      const answer = await host.live.frame(
        model.id,
        model.dir,
        {
          ...params,
          mode: 'inpaint',
          // The library's LoRAs and embeddings, as a queued job gets them (host.ts runJob).
          loraDirs: [loraFolder(host.dataDir)],
          embeddingDirs: [embeddingFolder(host.dataDir)],
          initImage: picture.bytes,
          ...(maskRect ? { maskRect: { ...maskRect, data: Buffer.from(maskRect.data, 'base64') } } : { mask: Buffer.from(mask!, 'base64') }),
        },
        parentId ?? null,
      );
      if (answer.status === 'done') {
        answer.pictureId = picture.id;
        if (answer.hostTimings) answer.hostTimings.hostMs = performance.now() - arrivedAt;
      }
      return answer;
    },

    async 'live.keep'({ frameId }) {
      return host.keepLiveFrame(frameId);
    },

    async 'live.stop'() {
      return { stopped: await host.live.stop() };
    },
  } satisfies Handlers;

  return handlers;
}
