/**
 * HistoryStore: every generation kept in SQLite with its images on disk, searchable, never lost.
 *
 * Crash safety (see README.md): an entry becomes visible only when its row commits, and its row is
 * committed only after its files are durably in place. Files and row are written while holding the
 * database's write lock (BEGIN IMMEDIATE), so reconciliation, which takes the same lock, never mistakes
 * another writer's in-flight file for an orphan.
 */
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { lstat, open, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import type { Statement } from 'better-sqlite3';
import sharp from 'sharp';
import { formatA1111Parameters, LABEL_MAP_HASH_KEY, loraHashesSetting } from '../shared/a1111.js';
import { GENERATION_MODES } from '../shared/generation.js';
import {
  EMBEDDED_GENERATION_FORMAT,
  HISTORY_PAGE_DEFAULT,
  HISTORY_PAGE_MAX,
} from '../shared/history.js';
import type {
  EmbeddedGeneration,
  ExportReport,
  HistoryCounts,
  HistoryFilter,
  HistoryItem,
  HistoryLineage,
  HistoryPage,
  HistoryPageQuery,
  HistorySearchQuery,
  ImageInput,
  ImportOutcome,
  ImportReport,
  IntegrityReport,
  NewGeneration,
  ReconcileReport,
} from '../shared/history.js';
import { loadMigrations, openDatabase } from './database.js';
import type { Migration, SqliteDatabase } from './database.js';
import { HistoryError, toHistoryError } from './errors.js';
import { makeFolderSync } from './folders.js';
import { ImageFiles, makeThumbnail, sha256Hex } from './files.js';
import { decodeUserImageHere, generationParamsSchema, readImportablePng, type UserImageDecoder } from './import.js';
import { encodePng, isPng } from './png.js';
import { HistoryRepository } from './repository.js';
import type { GenerationRecord } from './repository.js';
import { toFtsQuery } from './search-query.js';

export const DATABASE_FILE = 'history.sqlite';
/** Tag limits: enough for any real tagging, small enough to keep rows and the FTS index lean. */
const MAX_TAG_LENGTH = 64;
const MAX_TAGS = 64;
/** How many descendants a lineage query returns at most. */
const MAX_DESCENDANTS = 10_000;

export interface HistoryStoreOptions {
  /** Reconcile files and rows at open (default true). */
  reconcile?: boolean;
  /** Milliseconds since the epoch; tests pass a fake clock. */
  clock?: () => number;
  /** Tests pass their own migration list. */
  migrations?: Migration[];
  /** Decodes (checks, may thumbnail) imported files: the host passes the engine process's (import.ts). */
  decodeUserImage?: UserImageDecoder;
  /**
   * false: reconcile at open lists the missing thumbnails instead of making them here (sharp in this
   * process), and the owner makes them with rebuildThumbnails. The host does, in the engine process
   * (it never decodes a user's image; the engine starts after the store opens). Default true.
   */
  thumbnailsAtOpen?: boolean;
}

/** Makes a thumbnail (WebP inside THUMBNAIL_SIZE²) of a stored image, given its file. */
export type ThumbnailMaker = (imagePath: string) => Promise<Uint8Array>;

const thumbnailHere: ThumbnailMaker = (imagePath) => makeThumbnail(readFileSync(imagePath));

/** An image ready to be stored: its file bytes and thumbnail, or a reference to one already stored. */
type StagedImage =
  | { kind: 'new'; hash: string; bytes: Uint8Array; thumb: Uint8Array; width: number; height: number }
  | { kind: 'stored'; hash: string };

export class HistoryStore {
  /** What reconciliation found when the store was opened (null when it was skipped). */
  lastReconcile: ReconcileReport | null = null;
  /** Images whose thumbnail the last reconcile found missing and that are not made yet. */
  private missingThumbnails: string[] = [];
  private closed = false;
  private readonly begin: Statement;
  private readonly commitTx: Statement;
  private readonly rollback: Statement;

  private constructor(
    readonly dataDir: string,
    private readonly db: SqliteDatabase,
    private readonly repo: HistoryRepository,
    private readonly files: ImageFiles,
    private readonly clock: () => number,
    private readonly decodeUserImage: UserImageDecoder,
  ) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commitTx = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
  }

  /**
   * Opens the store in `dataDir` (created if needed): the database `history.sqlite`, `images/`,
   * `thumbs/`, `tmp/`. Migrates the schema and reconciles files with rows.
   */
  static async open(dataDir: string, options: HistoryStoreOptions = {}): Promise<HistoryStore> {
    const dir = resolve(dataDir);
    const files = new ImageFiles(dir);
    try {
      files.ensureLayout();
      // As root, permissions don't stop writes, but a read-only mount does: access() reports both.
      accessSync(dir, constants.W_OK);
    } catch (err) {
      throw toHistoryError(err, `use ${dir} as the history folder`);
    }
    const db = openDatabase(join(dir, DATABASE_FILE), options.migrations ?? loadMigrations());
    const store = new HistoryStore(dir, db, new HistoryRepository(db), files, options.clock ?? Date.now, options.decodeUserImage ?? decodeUserImageHere);
    if (options.reconcile !== false) {
      try {
        store.lastReconcile = await store.reconcile(options.thumbnailsAtOpen !== false);
      } catch (err) {
        store.close();
        throw err;
      }
    }
    return store;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.pragma('optimize');
    } catch {
      // optimize is advice to the planner; a read-only or full disk must not stop the close
    }
    this.db.close();
  }

  imagePath(hash: string): string {
    return this.files.imagePath(hash);
  }

  /** A stored image's size, from its row (nothing is decoded); undefined when it is not in the store. */
  imageSize(hash: string): { width: number; height: number } | undefined {
    this.assertOpen();
    const image = this.repo.image(hash);
    return image && { width: image.width, height: image.height };
  }

  thumbnailPath(hash: string): string {
    return this.files.thumbPath(hash);
  }

  // ── writing ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Records a finished (or failed) generation: encodes the output as a PNG with its parameters
   * embedded, stores it and its inputs content-addressed with thumbnails, and inserts the row. On any
   * failure nothing is visible and no file is left behind.
   */
  async add(input: NewGeneration): Promise<HistoryItem> {
    this.assertOpen();
    const parsed = generationParamsSchema.safeParse(input.params);
    if (!parsed.success) throw new HistoryError('E_INVALID', `Invalid generation parameters: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}.`);
    const params = parsed.data;
    const status = input.status ?? 'succeeded';
    if (status === 'succeeded' && input.output === undefined) {
      throw new HistoryError('E_INVALID', 'A succeeded generation must come with its output image.');
    }
    const tags = normalizeTags(input.tags ?? []);
    const parentId = input.parentId ?? null;
    if (parentId !== null) this.assertExists(parentId, 'parent generation');

    const init = input.initImage === undefined ? null : await this.stageInput(input.initImage, 'init image');
    const mask = input.mask === undefined ? null : await this.stageInput(input.mask, 'mask');
    const labelMap = input.labelMap === undefined ? null : await this.stageInput(input.labelMap, 'label map');
    const regionMasks: StagedImage[] = [];
    for (const [i, m] of (input.regionMasks ?? []).entries()) regionMasks.push(await this.stageInput(m, `mask of region ${i + 1}`));
    if (regionMasks.length !== (params.regions?.length ?? 0)) {
      throw new HistoryError('E_INVALID', `The generation has ${params.regions?.length ?? 0} regions but ${regionMasks.length} region masks.`);
    }
    let output: StagedImage | null = null;
    if (input.output !== undefined) {
      const embedded: EmbeddedGeneration = { format: EMBEDDED_GENERATION_FORMAT, params, model: input.model };
      if (init) embedded.initImageHash = init.hash;
      if (mask) embedded.maskHash = mask.hash;
      if (labelMap) embedded.labelMapHash = labelMap.hash;
      if (regionMasks.length > 0) embedded.regionMaskHashes = regionMasks.map((m) => m.hash);
      if (input.loras && input.loras.length > 0) embedded.loras = input.loras;
      const extra = { ...(labelMap ? { [LABEL_MAP_HASH_KEY]: labelMap.hash } : {}), ...loraHashesSetting(input.loras ?? []) };
      const png = await encodePng(input.output, {
        parameters: formatA1111Parameters(params, { name: input.model.id, hash: input.model.hash }, extra),
        request: input.request ?? embedded,
      });
      output = await stage(png, input.output.width, input.output.height);
    }

    const record: GenerationRecord = {
      createdAt: this.clock(),
      source: 'generated',
      status,
      modelId: input.model.id,
      modelHash: input.model.hash,
      ...params,
      ...(input.loras && input.loras.length > 0 ? { loras: input.loras } : {}),
      initImageHash: init?.hash ?? null,
      maskHash: mask?.hash ?? null,
      labelMapHash: labelMap?.hash ?? null,
      regionMaskHashes: regionMasks.map((m) => m.hash),
      outputHash: output?.hash ?? null,
      parentId,
      executionProvider: input.executionProvider ?? null,
      timings: input.timings ?? null,
      error: input.error ?? null,
      favorite: input.favorite ?? false,
      tags,
      sourceFile: null,
      sourceParameters: null,
    };
    const id = this.commit([init, mask, labelMap, ...regionMasks, output], record, 'save the generation', () => {
      if (parentId !== null) this.assertExists(parentId, 'parent generation');
    });
    return this.get(id);
  }

  /**
   * Writes the staged files and inserts the row under the write lock. If anything fails, files this
   * call created are removed before the lock is released, and the transaction is rolled back.
   */
  private commit(images: Array<StagedImage | null>, record: GenerationRecord, doing: string, check?: () => void): number {
    this.assertOpen();
    const created: string[] = [];
    try {
      this.begin.run();
      check?.();
      const now = this.clock();
      for (const image of images) {
        if (image === null || image.kind === 'stored') continue;
        const file = this.files.imagePath(image.hash);
        if (!this.files.exists(file)) {
          this.files.writeAtomic(file, image.bytes);
          created.push(file);
        }
        const thumb = this.files.thumbPath(image.hash);
        if (!this.files.exists(thumb)) {
          this.files.writeAtomic(thumb, image.thumb);
          created.push(thumb);
        }
        this.repo.insertImage({ hash: image.hash, width: image.width, height: image.height, byteSize: image.bytes.length, createdAt: now });
      }
      const id = this.repo.insertGeneration(record);
      this.commitTx.run();
      return id;
    } catch (err) {
      for (const file of created) {
        try {
          this.files.remove(file);
        } catch {
          // left for reconciliation to collect
        }
      }
      if (this.db.inTransaction) this.rollback.run();
      throw toHistoryError(err, doing);
    }
  }

  /**
   * Stages an init image or mask: stored by hash, prepared by the engine process (kept as given), PNG
   * bytes validated, raw pixels encoded.
   */
  private async stageInput(input: ImageInput, what: string): Promise<StagedImage> {
    if ('hash' in input) {
      if (this.repo.image(input.hash) === undefined) throw new HistoryError('E_NOT_FOUND', `The ${what} ${input.hash} is not in the image store.`);
      return { kind: 'stored', hash: input.hash };
    }
    if ('prepared' in input) {
      const { png, thumbnail, width, height } = input.prepared;
      if (!isPng(png)) throw new HistoryError('E_NOT_PNG', `The ${what} is not a PNG.`);
      return { kind: 'new', hash: sha256Hex(png), bytes: png, thumb: thumbnail, width, height };
    }
    if ('png' in input) {
      if (!isPng(input.png)) throw new HistoryError('E_NOT_PNG', `The ${what} is not a PNG.`);
      let size: { width: number; height: number };
      try {
        ({ info: size } = await sharp(input.png, { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true }));
      } catch (err) {
        throw new HistoryError('E_CORRUPT_IMAGE', `The ${what} PNG can't be decoded (${(err as Error).message}).`, { cause: err });
      }
      return stage(input.png, size.width, size.height);
    }
    return stage(await encodePng(input), input.width, input.height);
  }

  setFavorite(ids: number | number[], favorite: boolean): void {
    const list = Array.isArray(ids) ? ids : [ids];
    this.write('change favorites', () => {
      for (const id of list) this.assertExists(id, 'item');
      for (const id of list) this.repo.setFavorite(id, favorite);
    });
  }

  /** Replaces an item's tags (trimmed, inner whitespace collapsed, duplicates dropped). */
  setTags(id: number, tags: string[]): HistoryItem {
    const clean = normalizeTags(tags);
    this.write('change tags', () => {
      this.assertExists(id, 'item');
      this.repo.setTags(id, clean);
    });
    return this.get(id);
  }

  /** Moves items to the trash (restorable). Returns how many moved (items already there don't count). */
  delete(ids: number[]): number {
    const at = this.clock();
    return this.write('move items to the trash', () => {
      for (const id of ids) this.assertExists(id, 'item');
      return ids.filter((id) => this.repo.trash(id, at)).length;
    });
  }

  /** Takes items out of the trash. Returns how many came back. */
  restore(ids: number[]): number {
    return this.write('restore items', () => {
      for (const id of ids) this.assertExists(id, 'item');
      return ids.filter((id) => this.repo.restore(id)).length;
    });
  }

  /**
   * Removes trashed items for good: their rows, then the files of images nothing else uses. With
   * `ids`, those items (each must be in the trash); with `deletedBefore`, items trashed before then;
   * with neither, the whole trash.
   */
  purge(select: { ids?: number[]; deletedBefore?: number } = {}): { purged: number[]; filesRemoved: number } {
    // 1. Rows go first, in one transaction: a crash after it leaves only unreferenced files.
    const { purged, freed } = this.write('purge the trash', () => {
      const ids = select.ids ?? this.repo.trashedBefore(select.deletedBefore ?? Number.MAX_SAFE_INTEGER);
      for (const id of ids) {
        const state = this.assertExists(id, 'item');
        if (!state.inTrash) throw new HistoryError('E_INVALID', `Item ${id} is not in the trash: move it there before purging it.`);
      }
      const hashes = ids.flatMap((id) => this.repo.purgeRow(id));
      return { purged: ids, freed: hashes };
    });
    // 2. Files go under the lock, and only if their image row is still gone (no writer re-added them).
    const filesRemoved = this.write('remove purged files', () => {
      let removed = 0;
      for (const hash of freed) {
        if (this.repo.hasImageRow(hash)) continue;
        if (this.files.remove(this.files.imagePath(hash))) removed++;
        this.files.remove(this.files.thumbPath(hash));
      }
      return removed;
    });
    return { purged, filesRemoved };
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE), mapping I/O failures to HistoryError. */
  private write<T>(doing: string, fn: () => T): T {
    this.assertOpen();
    try {
      this.begin.run();
      const result = fn();
      this.commitTx.run();
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.rollback.run();
      throw toHistoryError(err, doing);
    }
  }

  // ── reading ─────────────────────────────────────────────────────────────────────────────────────

  get(id: number): HistoryItem {
    this.assertOpen();
    const item = this.repo.get(id);
    if (item === undefined) throw new HistoryError('E_NOT_FOUND', `There is no history item ${id}.`);
    return item;
  }

  /** Newest first, keyset-paginated. */
  page(query: HistoryPageQuery = {}): HistoryPage {
    return this.pageMatching(query, null);
  }

  /** Full-text search (see HistorySearchQuery for the syntax); newest first. Empty text: same as page. */
  search(query: HistorySearchQuery): HistoryPage {
    const fts = toFtsQuery(query.text);
    return this.pageMatching(query, fts?.match ?? null);
  }

  private pageMatching(query: HistoryPageQuery, match: string | null): HistoryPage {
    this.assertOpen();
    const limit = query.limit ?? HISTORY_PAGE_DEFAULT;
    if (!Number.isInteger(limit) || limit < 1 || limit > HISTORY_PAGE_MAX) {
      throw new HistoryError('E_INVALID', `A page holds 1 to ${HISTORY_PAGE_MAX} items, not ${limit}.`);
    }
    const filter = validFilter(query.filter ?? {});
    const before = parseCursor(query.cursor);
    const items = this.repo.page(filter, before, limit + 1, match);
    const more = items.length > limit;
    if (more) items.pop();
    return { items, nextCursor: more ? String(items.at(-1)!.id) : null };
  }

  /** The item, its ancestors (parent first) and its descendants (breadth first). */
  lineage(id: number): HistoryLineage {
    const item = this.get(id);
    return { item, ancestors: this.repo.ancestors(id), descendants: this.repo.descendants(id, MAX_DESCENDANTS) };
  }

  counts(): HistoryCounts {
    this.assertOpen();
    return this.repo.counts();
  }

  // ── import and export ───────────────────────────────────────────────────────────────────────────

  /**
   * Imports PNG files, and folders of them (searched recursively), that carry A1111 `parameters` or
   * our own chunk. One file's failure doesn't stop the others: each gets an outcome.
   */
  async import(paths: string[]): Promise<ImportReport> {
    const results: ImportOutcome[] = [];
    for (const path of paths) {
      let files: string[];
      try {
        files = statSync(path).isDirectory() ? listPngs(path) : [path];
      } catch (err) {
        results.push({ path, status: 'failed', error: toHistoryError(err, `read ${path}`).toJSON() });
        continue;
      }
      for (const file of files) results.push(await this.importOne(file));
    }
    return {
      results,
      imported: results.filter((r) => r.status === 'imported').length,
      duplicates: results.filter((r) => r.status === 'duplicate').length,
      failed: results.filter((r) => r.status === 'failed').length,
    };
  }

  /** Imports one PNG file; throws HistoryError (E_DUPLICATE when its image is already in history). */
  async importFile(path: string): Promise<HistoryItem> {
    const outcome = await this.importOne(path);
    if (outcome.status === 'imported') return this.get(outcome.id);
    if (outcome.status === 'failed') throw new HistoryError(outcome.error.code, outcome.error.message);
    throw duplicateError(path, outcome.existingId, this.repo.state(outcome.existingId).inTrash);
  }

  private async importOne(path: string): Promise<ImportOutcome> {
    const fileName = basename(path);
    let duplicateOf: number | undefined;
    try {
      this.assertOpen();
      let bytes: Buffer;
      try {
        bytes = await readImportFile(path, fileName);
      } catch (err) {
        throw toHistoryError(err, `read ${path}`);
      }
      const record = await readImportablePng(bytes, fileName, this.decodeUserImage);
      const hash = sha256Hex(bytes);
      duplicateOf = this.repo.itemWithOutput(hash)?.id;
      if (duplicateOf !== undefined) return { path, status: 'duplicate', existingId: duplicateOf };
      const staged: StagedImage = { kind: 'new', hash, bytes, thumb: record.thumbnail ?? (await makeThumbnail(bytes)), width: record.width, height: record.height };
      const id = this.commit([staged], {
        createdAt: this.clock(),
        source: 'imported',
        status: 'succeeded',
        modelId: record.model.id,
        modelHash: record.model.hash,
        ...record.params,
        initImageHash: null,
        maskHash: null,
        labelMapHash: null,
        outputHash: hash,
        parentId: null,
        executionProvider: null,
        timings: null,
        error: null,
        favorite: false,
        tags: [],
        sourceFile: fileName,
        sourceParameters: record.parameters,
      }, `import ${fileName}`, () => {
        // Checked again under the lock: another import of the same file may have committed meanwhile.
        const raced = this.repo.itemWithOutput(hash);
        if (raced) {
          duplicateOf = raced.id;
          throw duplicateError(path, raced.id, raced.inTrash);
        }
      });
      return { path, status: 'imported', id };
    } catch (err) {
      if (duplicateOf !== undefined) return { path, status: 'duplicate', existingId: duplicateOf };
      if (err instanceof HistoryError) return { path, status: 'failed', error: err.toJSON() };
      throw err;
    }
  }

  /**
   * Copies the items' PNGs (metadata embedded) into `folder`, each written atomically, plus a JSON
   * manifest with every item's full record. Existing files are never overwritten.
   */
  export(ids: number[], folder: string): ExportReport {
    const items = ids.map((id) => this.get(id));
    for (const item of items) {
      if (item.output === null) throw new HistoryError('E_INVALID', `Item ${item.id} has no image to export (status ${item.status}).`);
      if (item.output.fileMissing || !this.files.exists(this.files.imagePath(item.output.hash))) {
        throw new HistoryError('E_NOT_FOUND', `Item ${item.id}'s image file is missing from the history folder.`);
      }
    }
    const target = resolve(folder);
    const doing = `export to ${target}`;
    try {
      makeFolderSync(target, 'export');
      const taken = new Set(readdirSync(target));
      const written: Array<{ id: number; file: string }> = [];
      for (const item of items) {
        const name = freeName(taken, `latent-studio-${item.id}`, '.png');
        this.files.writeAtomic(join(target, name), readFileSync(this.files.imagePath(item.output!.hash)), target);
        written.push({ id: item.id, file: join(target, name) });
      }
      const exportedAt = this.clock();
      const manifestName = freeName(taken, `latent-studio-export-${exportedAt}`, '.json');
      const manifest = {
        format: 'latent-studio/export@1',
        exportedAt,
        items: items.map((item, i) => ({ file: basename(written[i]!.file), item })),
      };
      this.files.writeAtomic(join(target, manifestName), Buffer.from(JSON.stringify(manifest, null, 2)), target);
      return { folder: target, files: written, manifest: join(target, manifestName) };
    } catch (err) {
      throw toHistoryError(err, doing);
    }
  }

  // ── maintenance ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Brings files and rows into agreement, as after a crash: temp files and image files no row refers
   * to are removed; images whose file is gone are marked missing (and reported, never dropped); marks
   * are cleared for files that came back; missing thumbnails are made again (with `thumbnails` false:
   * listed for rebuildThumbnails).
   */
  async reconcile(thumbnails = true): Promise<ReconcileReport> {
    const report: ReconcileReport = { orphanFilesRemoved: [], missingImages: [], affectedItems: [], restoredImages: [], thumbnailsRebuilt: 0 };
    const needThumbs: string[] = [];
    this.write('reconcile the history folder', () => {
      for (const temp of this.files.listTempFiles()) {
        if (this.files.remove(temp)) report.orphanFilesRemoved.push(temp);
      }
      const onDisk = this.files.listHashes('images');
      const thumbs = this.files.listHashes('thumbs');
      const known = new Set<string>();
      for (const { hash, fileMissing } of this.repo.allImages()) {
        known.add(hash);
        const present = onDisk.has(hash);
        if (!present && !fileMissing) this.repo.setImageMissing(hash, true);
        if (present && fileMissing) {
          this.repo.setImageMissing(hash, false);
          report.restoredImages.push(hash);
        }
        if (!present) {
          report.missingImages.push(hash);
          report.affectedItems.push(...this.repo.itemsWithOutput(hash));
        } else if (!thumbs.has(hash)) {
          needThumbs.push(hash);
        }
      }
      for (const [hash, file] of [...onDisk, ...thumbs]) {
        if (!known.has(hash) && this.files.remove(file)) report.orphanFilesRemoved.push(file);
      }
    });
    this.missingThumbnails = needThumbs;
    if (thumbnails) report.thumbnailsRebuilt = await this.rebuildThumbnails();
    report.affectedItems.sort((a, b) => a - b);
    return report;
  }

  /**
   * Makes the thumbnails the last reconcile found missing, with `make` (default: sharp in this
   * process). Returns how many were made.
   */
  async rebuildThumbnails(make: ThumbnailMaker = thumbnailHere): Promise<number> {
    const hashes = this.missingThumbnails;
    this.missingThumbnails = [];
    let made = 0;
    for (const hash of hashes) {
      if (this.closed) break;
      try {
        const thumb = await make(this.files.imagePath(hash));
        if (this.closed) break;
        this.files.writeAtomic(this.files.thumbPath(hash), thumb);
        made++;
      } catch {
        // an unreadable image keeps no thumbnail; the image itself is still listed and exportable
      }
    }
    return made;
  }

  /** `PRAGMA integrity_check`, `foreign_key_check` and the FTS5 index check, as a maintenance action. */
  integrityCheck(): IntegrityReport {
    this.assertOpen();
    const messages = (this.db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check);
    let ok = messages.length === 1 && messages[0] === 'ok';
    const fk = this.db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
    for (const v of fk) messages.push(`foreign key: ${v.table} row ${v.rowid} refers to a missing ${v.parent} row`);
    if (fk.length > 0) ok = false;
    try {
      this.db.prepare("INSERT INTO generations_fts (generations_fts) VALUES ('integrity-check')").run();
    } catch (err) {
      ok = false;
      messages.push(`full-text index: ${(err as Error).message}`);
    }
    return { ok, messages };
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('HistoryStore used after close()');
  }

  private assertExists(id: number, what: string): { exists: true; inTrash: boolean } {
    const state = this.repo.state(id);
    if (!state.exists) throw new HistoryError('E_NOT_FOUND', `The ${what} ${id} is not in history.`);
    return { exists: true, inTrash: state.inTrash };
  }
}

async function stage(png: Uint8Array, width: number | undefined, height: number | undefined): Promise<StagedImage> {
  if (!width || !height) throw new HistoryError('E_CORRUPT_IMAGE', 'The image has no size.');
  return { kind: 'new', hash: sha256Hex(png), bytes: png, thumb: await makeThumbnail(png), width, height };
}

function duplicateError(path: string, existingId: number, inTrash: boolean): HistoryError {
  return new HistoryError('E_DUPLICATE', `${basename(path)} is already in history as item ${existingId}${inTrash ? ' (in the trash)' : ''}.`);
}

function normalizeTags(tags: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of tags) {
    const tag = raw.replace(/\s+/g, ' ').trim();
    if (tag === '') continue;
    if (tag.length > MAX_TAG_LENGTH) throw new HistoryError('E_INVALID', `A tag is at most ${MAX_TAG_LENGTH} characters: "${tag.slice(0, 20)}…".`);
    const key = tag.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(tag);
  }
  if (out.length > MAX_TAGS) throw new HistoryError('E_INVALID', `An item has at most ${MAX_TAGS} tags, not ${out.length}.`);
  return out;
}

function validFilter(filter: HistoryFilter): HistoryFilter {
  if (filter.mode !== undefined && !(GENERATION_MODES as readonly string[]).includes(filter.mode)) {
    throw new HistoryError('E_INVALID', `Unknown mode "${String(filter.mode)}".`);
  }
  for (const key of ['createdFrom', 'createdTo'] as const) {
    const v = filter[key];
    if (v !== undefined && !Number.isFinite(v)) throw new HistoryError('E_INVALID', `${key} must be a time in milliseconds.`);
  }
  return filter;
}

function parseCursor(cursor: string | null | undefined): number | null {
  if (cursor === undefined || cursor === null) return null;
  const id = /^\d+$/.test(cursor) ? Number(cursor) : NaN;
  if (!Number.isSafeInteger(id)) throw new HistoryError('E_INVALID', `Not a history page cursor: "${cursor}".`);
  return id;
}

/** Largest file history.import reads: a 4096² PNG with its metadata is far smaller. */
export const MAX_IMPORT_FILE_BYTES = 128 * 1024 * 1024;

function fileKind(st: { isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean; isDirectory(): boolean }): string {
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a folder';
  return 'not a regular file';
}

/**
 * Reads a file to import without blocking the event loop: only a regular file (a link only when it
 * leads to one), at most MAX_IMPORT_FILE_BYTES. A FIFO blocked the whole server until someone wrote to
 * it, and /dev/zero filled memory. Opened non-blocking and checked again on the open handle, so a file
 * swapped for a FIFO between the check and the open can't block either.
 */
async function readImportFile(path: string, fileName: string): Promise<Buffer> {
  const link = await lstat(path);
  const st = link.isSymbolicLink() ? await stat(path) : link;
  const refuse = (kind: string) => new HistoryError('E_INVALID', `${fileName} is ${kind}, not an image file: only regular files can be imported.`);
  if (!st.isFile()) throw refuse(fileKind(st));
  const tooBig = (size: number) =>
    new HistoryError('E_INVALID', `${fileName} is ${Math.round(size / 1024 / 1024)} MB, larger than the ${MAX_IMPORT_FILE_BYTES / 1024 / 1024} MB an imported image may have.`);
  if (st.size > MAX_IMPORT_FILE_BYTES) throw tooBig(st.size);
  const handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const opened = await handle.stat();
    if (!opened.isFile()) throw refuse(fileKind(opened));
    if (opened.size > MAX_IMPORT_FILE_BYTES) throw tooBig(opened.size);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function listPngs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listPngs(path));
    else if (entry.isFile() && extname(entry.name).toLowerCase() === '.png') out.push(path);
  }
  return out;
}

/** `base.ext`, or `base-2.ext`, `base-3.ext`… whichever isn't taken yet (and marks it taken). */
function freeName(taken: Set<string>, base: string, ext: string): string {
  let name = `${base}${ext}`;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}${ext}`;
  taken.add(name);
  return name;
}
