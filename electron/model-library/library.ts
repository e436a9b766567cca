/**
 * The model library: the models the studio knows, kept in the `models` table of the history database
 * file under the library's own migrations (schema.ts), with imports, downloads, removal and the default model.
 *
 * Database handle: the library takes a better-sqlite3 `Database` (`ModelLibrary.open({ db })`), or opens
 * its own connection to `history.sqlite` (`ModelLibrary.openInDataDir`). HistoryStore keeps its handle
 * private, and a second WAL connection to the same file is safe: readers never block, the library's
 * writes are a few small transactions, and the 5 s busy timeout covers the store's short write locks.
 * Both connections apply the history's migrations, so whichever opens first brings them up to date; the
 * library then applies its own (schema.ts `migrateLibrary`) before it prepares a statement.
 *
 * Bundled models are kept by name, not by path: their row's `dir` and `source` are `bundled:<name>`, and
 * the folder is resolved from the running app at every open (`bundledDirs`). An app that moves (an
 * AppImage mounts at a new path on every launch; an update installs elsewhere) finds its models again, and
 * history rows made with them keep their model id. Rows written by older versions held the absolute path;
 * `open` rewrites them once (`migrateBundledRows`).
 *
 * Folder layout under `modelsDir` (copies and downloads; referenced and bundled folders stay where they are):
 * ```
 * <modelsDir>/<folder>/          an installed model
 * <modelsDir>/.downloads/<id>/   a download being assembled (resumable; see download.ts)
 * <modelsDir>/.staging/          copies being made, and folders being deleted; emptied at open
 * ```
 * Every install ends with one rename from `.downloads` or `.staging` into place, so a model folder in
 * `modelsDir` is either complete or absent.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Statement } from 'better-sqlite3';
import { CancelledError, ModelFolderError, StudioError, serializeError } from '../shared/errors.js';
import type { ExecutionProviderName } from '../shared/generation.js';
import type { ModelInfo } from '../shared/model.js';
import {
  ModelLibraryError,
  type LibraryModel,
  type ModelDownloadProgress,
  type ModelDownloadRequest,
  type ModelImportRequest,
  type ModelOrigin,
  type PendingDownload,
  type DownloadFileSpec,
} from '../shared/model-library.js';
import { openDatabase, type SqliteDatabase } from '../history/database.js';
import { migrateLibrary } from './schema.js';
import { fingerprintOf, hashModelFolder, listModelFiles, type FolderIdentity } from './content-hash.js';
import { checkDiskSpace, fetchFiles, InterruptedDownloadError, isDiskFull, PART_SUFFIX, type Validator } from './download.js';
import { normalizeDownloadRequest, type NormalizedDownload } from './download-request.js';
// Types only: the library must not load the engine (onnxruntime) into whatever process imports it —
// the Electron main process validates models through the engine's utility process.
import type { ModelInspection, ModelInspector } from './inspect.js';

/** The models that ship with the app (they may not be built yet; absent ones are left out). */
/** The bundled model folders' names in native-models/, the main (text-to-image) one first. */
export const BUNDLED_MODEL_NAMES = [
  'emoji-ldm',
  'emoji-ldm-inpaint',
  'emoji-ldm-layout',
  // Their latent consistency distillations (2–4 steps, guidance embedded; the engine's lcm sampler).
  'emoji-ldm-lcm',
  'emoji-ldm-inpaint-lcm',
] as const;
export const BUNDLED_MODEL_DIRS: readonly string[] = BUNDLED_MODEL_NAMES.map((name) =>
  fileURLToPath(new URL(`../../native-models/${name}/`, import.meta.url)),
);
/** A bundled model's stored `dir` and `source`: its name under this prefix (see the header). */
export const BUNDLED_PREFIX = 'bundled:';
/** The stored `dir` of the bundled model with this folder name. */
export function bundledKey(name: string): string {
  return `${BUNDLED_PREFIX}${name}`;
}
/** The history database file name (electron/history/store.ts DATABASE_FILE). */
const HISTORY_DATABASE_FILE = 'history.sqlite';
/** The contract's model id rule: letters, digits, ". _ -" and spaces, at most 128 characters. */
const MAX_ID_CHARS = 128;
const DOWNLOADS_FOLDER = '.downloads';
const STAGING_FOLDER = '.staging';

export interface ModelLibraryOptions {
  db: SqliteDatabase;
  /** Where copied and downloaded models go (created if needed). */
  modelsDir: string;
  /** Default: BUNDLED_MODEL_DIRS. */
  bundledDirs?: readonly string[];
  /**
   * Validates a folder and says what it is: the host passes one that asks the engine process;
   * `engineInspector()` (inspect.ts) opens it in-process on the CPU.
   */
  inspect: ModelInspector;
  clock?: () => number;
  /** Dropped-connection retries per file and the first retry delay (ms). */
  download?: { maxRetries?: number; retryDelayMs?: number };
}

export type ProgressListener = (progress: ModelDownloadProgress) => void;

export interface DownloadHandle {
  downloadId: string;
  /** Resolves with the installed model; rejects with the reason (CancelledError when cancelled). */
  done: Promise<LibraryModel>;
}

interface ModelRow {
  id: string;
  name: string;
  origin: ModelOrigin;
  source: string;
  dir: string;
  info_json: string;
  providers_json: string;
  size_bytes: number;
  content_hash: string;
  fingerprint: string;
  added_at: number;
  is_default: number;
}

interface DownloadRow {
  id: string;
  name: string;
  source: string;
  files_json: string;
  validators_json: string;
  created_at: number;
  updated_at: number;
}

interface ActiveDownload {
  controller: AbortController;
  done: Promise<LibraryModel>;
}

/** Why a download was stopped without being cancelled: it stays resumable. */
class ShutdownError extends StudioError {
  constructor() {
    super('E_CANCELLED', 'The download was paused because the model library closed; it resumes from where it stopped.');
  }
}

function slug(text: string): string {
  const cleaned = text
    .replace(/[^\p{L}\p{N}._ -]/gu, '-')
    .replace(/^[^\p{L}\p{N}_]+/u, '')
    .slice(0, MAX_ID_CHARS)
    // Also a folder name: Windows drops trailing dots and spaces.
    .replace(/[. ]+$/u, '');
  return cleaned === '' ? 'model' : cleaned;
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) && !rel.includes(`..${sep}`);
}

/**
 * A row's ModelInfo. Rows written before layout models existed name the exporter `layout` (a string)
 * and have no labels: read as `exporter`, with `layout` null.
 */
/** The columns a model's inspection and content identity fill: an insert and a bundled refresh write the same. */
function describedColumns(info: ModelInfo, identity: FolderIdentity) {
  return {
    info_json: JSON.stringify(info),
    kind: info.kind,
    family: info.family,
    prediction_type: info.predictionType,
    precision: info.precision,
    native_width: info.nativeResolution.width,
    native_height: info.nativeResolution.height,
    size_bytes: identity.sizeBytes,
    content_hash: identity.contentHash,
    fingerprint: identity.fingerprint,
  };
}

function storedInfo(json: string): ModelInfo {
  const info = JSON.parse(json) as ModelInfo & { layout?: unknown };
  if (typeof info.layout === 'string') return { ...info, exporter: info.layout as ModelInfo['exporter'], layout: null };
  return { ...info, layout: info.layout ?? null };
}

export class ModelLibrary {
  private readonly stmt: Record<
    | 'all' | 'byId' | 'byHash' | 'byDir' | 'insert' | 'remove' | 'clearDefault' | 'setDefault' | 'setProviders'
    | 'refreshBundled' | 'bundledRows' | 'downloads' | 'downloadById' | 'insertDownload' | 'deleteDownload' | 'saveValidators',
    Statement
  >;
  private readonly active = new Map<string, ActiveDownload>();
  private readonly inspect: ModelInspector;
  private readonly clock: () => number;
  readonly modelsDir: string;
  /** Bundled folders that were found but could not be used (a packaging problem), with the reason. */
  readonly bundledProblems: Array<{ dir: string; error: string }> = [];
  /** Bundled model name → its folder in the running app (filled by syncBundled). */
  private readonly bundledFolders = new Map<string, string>();
  private ownsDb = false;
  private closed = false;

  private constructor(
    private readonly db: SqliteDatabase,
    private readonly options: ModelLibraryOptions,
  ) {
    this.modelsDir = resolve(options.modelsDir);
    this.inspect = options.inspect;
    this.clock = options.clock ?? Date.now;
    const cols = 'id, name, origin, source, dir, info_json, providers_json, size_bytes, content_hash, fingerprint, added_at, is_default';
    this.stmt = {
      all: db.prepare(`SELECT ${cols} FROM models ORDER BY origin <> 'bundled', added_at, id`),
      byId: db.prepare(`SELECT ${cols} FROM models WHERE id = ?`),
      byHash: db.prepare(`SELECT ${cols} FROM models WHERE content_hash = ?`),
      byDir: db.prepare(`SELECT ${cols} FROM models WHERE dir = ?`),
      insert: db.prepare(
        `INSERT INTO models (id, name, origin, source, dir, info_json, kind, family, prediction_type, precision, native_width,
           native_height, providers_json, size_bytes, content_hash, fingerprint, added_at)
         VALUES (@id, @name, @origin, @source, @dir, @info_json, @kind, @family, @prediction_type, @precision, @native_width,
           @native_height, @providers_json, @size_bytes, @content_hash, @fingerprint, @added_at)`,
      ),
      remove: db.prepare('DELETE FROM models WHERE id = ?'),
      clearDefault: db.prepare('UPDATE models SET is_default = 0 WHERE is_default = 1'),
      setDefault: db.prepare('UPDATE models SET is_default = 1 WHERE id = ?'),
      setProviders: db.prepare('UPDATE models SET providers_json = ? WHERE id = ?'),
      refreshBundled: db.prepare(
        `UPDATE models SET info_json = @info_json, kind = @kind, family = @family, prediction_type = @prediction_type,
           precision = @precision, native_width = @native_width, native_height = @native_height, size_bytes = @size_bytes,
           content_hash = @content_hash, fingerprint = @fingerprint WHERE id = @id`,
      ),
      bundledRows: db.prepare(`SELECT ${cols} FROM models WHERE origin = 'bundled' ORDER BY added_at, id`),
      downloads: db.prepare('SELECT * FROM model_downloads ORDER BY created_at, id'),
      downloadById: db.prepare('SELECT * FROM model_downloads WHERE id = ?'),
      insertDownload: db.prepare(
        `INSERT INTO model_downloads (id, name, source, files_json, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      ),
      deleteDownload: db.prepare('DELETE FROM model_downloads WHERE id = ?'),
      saveValidators: db.prepare('UPDATE model_downloads SET validators_json = ?, updated_at = ? WHERE id = ?'),
    };
  }

  /**
   * Opens the library over a history database handle (e.g. one from `openDatabase(file)`): applies the
   * library's migrations, empties the staging folder and registers the bundled models that exist.
   */
  static async open(options: ModelLibraryOptions): Promise<ModelLibrary> {
    migrateLibrary(options.db);
    const library = new ModelLibrary(options.db, options);
    await mkdir(join(library.modelsDir, STAGING_FOLDER), { recursive: true });
    await mkdir(join(library.modelsDir, DOWNLOADS_FOLDER), { recursive: true });
    // Leftovers of a copy or a removal that a crash interrupted.
    for (const name of await readdir(join(library.modelsDir, STAGING_FOLDER))) {
      await rm(join(library.modelsDir, STAGING_FOLDER, name), { recursive: true, force: true });
    }
    // Partial downloads whose row is gone (cancelled or failed while the app was being killed).
    const known = new Set((library.stmt.downloads.all() as DownloadRow[]).map((r) => r.id));
    for (const name of await readdir(join(library.modelsDir, DOWNLOADS_FOLDER))) {
      if (!known.has(name)) await rm(join(library.modelsDir, DOWNLOADS_FOLDER, name), { recursive: true, force: true });
    }
    library.migrateBundledRows();
    await library.syncBundled(options.bundledDirs ?? BUNDLED_MODEL_DIRS);
    return library;
  }

  /** Opens its own connection to `<historyDir>/history.sqlite` (created and migrated if needed); closed by close(). */
  static async openInDataDir(historyDir: string, options: Omit<ModelLibraryOptions, 'db'>): Promise<ModelLibrary> {
    await mkdir(historyDir, { recursive: true });
    const db = openDatabase(join(historyDir, HISTORY_DATABASE_FILE));
    try {
      const library = await ModelLibrary.open({ ...options, db });
      library.ownsDb = true;
      return library;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Stops running downloads (they stay resumable) and closes the database if the library opened it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const running = [...this.active.values()];
    for (const d of running) d.controller.abort(new ShutdownError());
    await Promise.allSettled(running.map((d) => d.done));
    if (this.ownsDb) this.db.close();
  }

  // --- registry -----------------------------------------------------------------------------------

  list(): LibraryModel[] {
    const rows = this.stmt.all.all() as ModelRow[];
    const fallback = rows.some((r) => r.is_default === 1) ? null : this.fallbackDefault(rows);
    return rows.map((r) => this.toModel(r, fallback));
  }

  find(id: string): LibraryModel | null {
    const row = this.stmt.byId.get(id) as ModelRow | undefined;
    if (!row) return null;
    return this.list().find((m) => m.id === row.id) ?? null;
  }

  /** A model by id; E_NOT_FOUND when it isn't (or no longer is) in the library, e.g. for a history row's model. */
  get(id: string): LibraryModel {
    const model = this.find(id);
    if (!model) throw new ModelLibraryError('E_NOT_FOUND', `No model "${id}" in the library; it may have been removed.`);
    return model;
  }

  /** What the engine detected when the model was added (its `dir` is where the model is now). */
  info(id: string): { model: LibraryModel; info: ModelInfo } {
    const model = this.get(id);
    const row = this.stmt.byId.get(id) as ModelRow;
    const info = storedInfo(row.info_json);
    return { model, info: { ...info, dir: model.dir } };
  }

  /** The default model: the one set with setDefault, else the first bundled one, else the oldest; null if none. */
  defaultModel(): LibraryModel | null {
    return this.list().find((m) => m.isDefault) ?? null;
  }

  setDefault(id: string): LibraryModel {
    this.get(id);
    this.db.transaction(() => {
      this.stmt.clearDefault.run();
      this.stmt.setDefault.run(id);
    }).immediate();
    return this.get(id);
  }

  /** Adds the providers a model's sessions ran on (the host calls this after each generation). */
  recordProviders(id: string, providers: readonly ExecutionProviderName[]): void {
    this.db.transaction(() => {
      const row = this.stmt.byId.get(id) as ModelRow | undefined;
      if (!row) return;
      const known = JSON.parse(row.providers_json) as ExecutionProviderName[];
      const merged = [...new Set([...known, ...providers])];
      if (merged.length !== known.length) this.stmt.setProviders.run(JSON.stringify(merged), id);
    }).immediate();
  }

  /** Where a row's model is now: a bundled one in the running app (see the header), any other where it was put. */
  private folderOf(r: ModelRow): string {
    if (r.origin !== 'bundled' || !r.dir.startsWith(BUNDLED_PREFIX)) return r.dir;
    return this.bundledFolders.get(r.dir.slice(BUNDLED_PREFIX.length)) ?? r.dir;
  }

  private fallbackDefault(rows: ModelRow[]): string | null {
    const usable = rows.filter((r) => existsSync(this.folderOf(r)));
    return (usable.find((r) => r.origin === 'bundled') ?? usable[0])?.id ?? null;
  }

  private toModel(r: ModelRow, fallbackDefaultId: string | null): LibraryModel {
    const info = storedInfo(r.info_json);
    const dir = this.folderOf(r);
    return {
      id: r.id,
      name: r.name,
      origin: r.origin,
      source: r.origin === 'bundled' ? dir : r.source,
      dir,
      readOnly: r.origin === 'bundled',
      available: existsSync(dir),
      isDefault: r.is_default === 1 || r.id === fallbackDefaultId,
      kind: info.kind,
      family: info.family,
      predictionType: info.predictionType,
      precision: info.precision,
      exporter: info.exporter,
      nativeResolution: info.nativeResolution,
      supports: info.supports,
      providers: JSON.parse(r.providers_json) as ExecutionProviderName[],
      sizeBytes: r.size_bytes,
      contentHash: r.content_hash,
      addedAt: r.added_at,
    };
  }

  private uniqueId(name: string): string {
    const base = slug(name);
    let id = base;
    for (let n = 2; this.stmt.byId.get(id); n++) id = `${base.slice(0, MAX_ID_CHARS - String(n).length - 1)}-${n}`;
    return id;
  }

  /** A folder name in modelsDir that is free (ids and folder names are chosen the same way). */
  private uniqueFolder(name: string): string {
    const base = slug(name);
    let folder = base;
    for (let n = 2; existsSync(join(this.modelsDir, folder)); n++) folder = `${base}-${n}`;
    return join(this.modelsDir, folder);
  }

  private throwIfDuplicate(contentHash: string): void {
    const existing = this.stmt.byHash.get(contentHash) as ModelRow | undefined;
    if (existing) {
      throw new ModelLibraryError('E_DUPLICATE', `This model is already in the library as "${existing.name}" (same content hash ${contentHash.slice(0, 12)}…).`, {
        existingId: existing.id,
      });
    }
  }

  /** Inserts a model row; a race with another import of the same content is still a clean E_DUPLICATE. */
  private insert(row: {
    name: string;
    origin: ModelOrigin;
    source: string;
    dir: string;
    inspection: ModelInspection;
    identity: FolderIdentity;
  }, also?: () => void): LibraryModel {
    const { info, sessions } = row.inspection;
    let id = '';
    // Checked in the write transaction (BEGIN IMMEDIATE: writers are serialized), so two imports of the
    // same model can't both pass, with a clear E_DUPLICATE; the schema's UNIQUE constraints (schema.ts)
    // back this up.
    this.db.transaction(() => {
      this.throwIfDuplicate(row.identity.contentHash);
      const sameDir = this.stmt.byDir.get(row.dir) as ModelRow | undefined;
      if (sameDir) {
        throw new ModelLibraryError('E_DUPLICATE', `The folder ${row.dir} is already in the library as "${sameDir.name}".`, { existingId: sameDir.id });
      }
      id = this.uniqueId(row.name);
      this.stmt.insert.run({
        id,
        name: row.name,
        origin: row.origin,
        source: row.source,
        dir: row.dir,
        ...describedColumns(info, row.identity),
        providers_json: JSON.stringify([...new Set(Object.values(sessions.providers))]),
        added_at: this.clock(),
      });
      also?.();
    }).immediate();
    return this.get(id);
  }

  // --- bundled ------------------------------------------------------------------------------------

  /**
   * Rows written before bundled models were kept by name hold the folder's absolute path (from wherever
   * that version of the app ran). Each becomes `bundled:<folder name>`, keeping its id, default flag and
   * providers, so the history rows made with it stay linked; a second row for the same name (none should
   * exist) is dropped. Runs at every open and does nothing once the rows are rewritten.
   */
  private migrateBundledRows(): void {
    const old = (this.stmt.bundledRows.all() as ModelRow[]).filter((r) => !r.dir.startsWith(BUNDLED_PREFIX));
    if (old.length === 0) return;
    const setKey = this.db.prepare('UPDATE models SET dir = ?, source = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const r of old) {
        const key = bundledKey(basename(resolve(r.dir)));
        if (this.stmt.byDir.get(key)) this.stmt.remove.run(r.id);
        else setKey.run(key, key, r.id);
      }
    }).immediate();
  }

  /**
   * Resolves the bundled models from the folders the running app ships (by folder name), adds the new
   * ones, refreshes the changed ones and forgets the ones this app doesn't ship (their history rows then
   * show the model as missing, as after a removal).
   */
  private async syncBundled(dirs: readonly string[]): Promise<void> {
    const shipped = new Map<string, string>();
    for (const dirIn of dirs) {
      const dir = resolve(dirIn);
      // Not shipped (or not built yet): not listed.
      if (existsSync(join(dir, 'model_index.json')) && !shipped.has(basename(dir))) shipped.set(basename(dir), dir);
    }
    for (const r of this.stmt.bundledRows.all() as ModelRow[]) {
      if (!shipped.has(r.dir.slice(BUNDLED_PREFIX.length))) this.stmt.remove.run(r.id);
    }
    for (const [name, dir] of shipped) {
      const key = bundledKey(name);
      const existing = this.stmt.byDir.get(key) as ModelRow | undefined;
      if (existing && existing.fingerprint === fingerprintOf(await listModelFiles(dir))) {
        this.bundledFolders.set(name, dir);
        continue;
      }
      try {
        const inspection = await this.inspect(dir);
        const identity = await hashModelFolder(dir);
        if (existing) {
          this.stmt.refreshBundled.run({ id: existing.id, ...describedColumns(inspection.info, identity) });
          this.bundledFolders.set(name, dir);
        } else {
          this.bundledFolders.set(name, dir);
          try {
            this.insert({ name, origin: 'bundled', source: key, dir: key, inspection, identity });
          } catch (err) {
            this.bundledFolders.delete(name);
            throw err;
          }
        }
      } catch (err) {
        this.bundledProblems.push({ dir, error: serializeError(err).message });
      }
    }
  }

  // --- import -------------------------------------------------------------------------------------

  /**
   * Imports a model folder: the engine validates it first (a broken folder is a ModelFolderError naming
   * the problem), then its content hash is compared with the library's (E_DUPLICATE names the model
   * already there). With `copy`, the folder is copied to a staging folder, checked to hash the same,
   * and renamed into modelsDir; otherwise it is referenced where it is.
   */
  async importFolder(request: ModelImportRequest): Promise<LibraryModel> {
    const source = resolve(request.path);
    if (!existsSync(source)) throw new ModelFolderError(`model folder not found: ${source}`);
    if (!(await stat(source)).isDirectory()) throw new ModelFolderError(`not a folder: ${source}`);
    if (!request.copy && this.stmt.byDir.get(source)) {
      const existing = this.stmt.byDir.get(source) as ModelRow;
      throw new ModelLibraryError('E_DUPLICATE', `The folder ${source} is already in the library as "${existing.name}".`, { existingId: existing.id });
    }
    const inspection = await this.inspect(source);
    const identity = await hashModelFolder(source);
    this.throwIfDuplicate(identity.contentHash);
    const name = request.name?.trim() || basename(source);
    if (!request.copy) return this.insert({ name, origin: 'referenced', source, dir: source, inspection, identity });

    const staging = join(this.modelsDir, STAGING_FOLDER, randomUUID());
    try {
      await checkDiskSpace(this.modelsDir, identity.sizeBytes);
      await cp(source, staging, { recursive: true, filter: (src) => !basename(src).startsWith('.') || src === source });
      const copied = await hashModelFolder(staging);
      if (copied.contentHash !== identity.contentHash) {
        throw new ModelLibraryError('E_IO', `The copy of ${source} differs from the original (was the folder changing while it was copied?).`);
      }
      const target = this.uniqueFolder(name);
      await rename(staging, target);
      try {
        // A rename keeps names, sizes and mtimes: the copy's identity is the installed folder's.
        return this.insert({ name, origin: 'copied', source, dir: target, inspection, identity: copied });
      } catch (err) {
        await rm(target, { recursive: true, force: true });
        throw err;
      }
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      if (isDiskFull(err)) throw new ModelLibraryError('E_DISK_FULL', `The disk of ${this.modelsDir} filled up while copying ${source}.`, { cause: err });
      throw err;
    }
  }

  // --- removal ------------------------------------------------------------------------------------

  /**
   * Removes a model from the library. History rows that used it are kept (they refer to it by id, so
   * they show it as missing). A copied or downloaded folder is deleted; a referenced folder is only
   * forgotten. Bundled models are read-only (E_READ_ONLY). The host should unload the model from the
   * engine first.
   */
  async remove(id: string): Promise<void> {
    const model = this.get(id);
    if (model.readOnly) throw new ModelLibraryError('E_READ_ONLY', `"${model.name}" ships with the app and can't be removed.`);
    this.stmt.remove.run(id);
    const owned = (model.origin === 'copied' || model.origin === 'downloaded') && isInside(this.modelsDir, model.dir);
    if (owned && existsSync(model.dir)) {
      // Renamed away first so the folder disappears at once; a crash mid-delete leaves it in staging.
      const doomed = join(this.modelsDir, STAGING_FOLDER, `removed-${randomUUID()}`);
      await rename(model.dir, doomed);
      await rm(doomed, { recursive: true, force: true });
    }
  }

  // --- download -----------------------------------------------------------------------------------

  /**
   * Starts (or continues, if the same request was interrupted before) a download. Progress goes to
   * `onProgress`; the handle's `done` resolves with the installed model. Asking for a download that is
   * already running returns the running one.
   */
  startDownload(request: ModelDownloadRequest, onProgress: ProgressListener = () => undefined): DownloadHandle {
    if (this.closed) throw new ModelLibraryError('E_INVALID_REQUEST', 'The model library is closed.');
    const normalized = normalizeDownloadRequest(request);
    const running = this.active.get(normalized.id);
    if (running) return { downloadId: normalized.id, done: running.done };
    const now = this.clock();
    this.stmt.insertDownload.run(normalized.id, normalized.name, normalized.source, JSON.stringify(normalized.files), now, now);
    return this.run(normalized, onProgress);
  }

  /** Downloads that were interrupted (app restart, network failure) and can be resumed. */
  async pendingDownloads(): Promise<PendingDownload[]> {
    const rows = (this.stmt.downloads.all() as DownloadRow[]).filter((r) => !this.active.has(r.id));
    const out: PendingDownload[] = [];
    for (const r of rows) {
      const files = JSON.parse(r.files_json) as DownloadFileSpec[];
      let receivedBytes = 0;
      for (const f of files) {
        const base = join(this.downloadDir(r.id), f.path);
        for (const p of [base, base + PART_SUFFIX]) {
          if (existsSync(p)) receivedBytes += (await stat(p)).size;
        }
      }
      const totalBytes = files.every((f) => f.size !== undefined) ? files.reduce((s, f) => s + f.size!, 0) : null;
      out.push({ downloadId: r.id, name: r.name, source: r.source, receivedBytes, totalBytes, createdAt: r.created_at });
    }
    return out;
  }

  /** Continues an interrupted download from the bytes already on disk. */
  resumeDownload(downloadId: string, onProgress: ProgressListener = () => undefined): DownloadHandle {
    const running = this.active.get(downloadId);
    if (running) return { downloadId, done: running.done };
    const row = this.stmt.downloadById.get(downloadId) as DownloadRow | undefined;
    if (!row) throw new ModelLibraryError('E_NOT_FOUND', `No unfinished download "${downloadId}".`);
    const files = JSON.parse(row.files_json) as DownloadFileSpec[];
    return this.run({ id: row.id, name: row.name, source: row.source, files }, onProgress);
  }

  /** Cancels a download and deletes what it fetched. False if there was no such download. */
  async cancelDownload(downloadId: string): Promise<boolean> {
    const running = this.active.get(downloadId);
    if (running) {
      running.controller.abort(new CancelledError('The download was cancelled.'));
      await running.done.catch(() => undefined);
      return true;
    }
    const row = this.stmt.downloadById.get(downloadId);
    if (!row) return false;
    await this.discardDownload(downloadId);
    return true;
  }

  private downloadDir(id: string): string {
    return join(this.modelsDir, DOWNLOADS_FOLDER, id);
  }

  private async discardDownload(id: string): Promise<void> {
    this.stmt.deleteDownload.run(id);
    await rm(this.downloadDir(id), { recursive: true, force: true });
  }

  private run(download: NormalizedDownload, onProgress: ProgressListener): DownloadHandle {
    if (this.closed) throw new ModelLibraryError('E_INVALID_REQUEST', 'The model library is closed.');
    const controller = new AbortController();
    const dir = this.downloadDir(download.id);
    let last: Omit<ModelDownloadProgress, 'phase'> = {
      downloadId: download.id,
      name: download.name,
      receivedBytes: 0,
      totalBytes: null,
      percent: null,
      bytesPerSecond: 0,
      etaSeconds: null,
      file: null,
    };
    const report = (p: Partial<ModelDownloadProgress> & Pick<ModelDownloadProgress, 'phase'>): void => {
      const { phase, ...rest } = p;
      last = { ...last, ...rest };
      try {
        onProgress({ ...last, phase });
      } catch {
        // A listener's failure must not break the download.
      }
    };
    const row = this.stmt.downloadById.get(download.id) as DownloadRow;
    const validators = JSON.parse(row.validators_json) as Record<string, Validator>;

    const done = (async (): Promise<LibraryModel> => {
      try {
        await fetchFiles({
          files: download.files,
          dir,
          validators,
          saveValidators: (v) => this.stmt.saveValidators.run(JSON.stringify(v), this.clock(), download.id),
          signal: controller.signal,
          onProgress: (p) => report(p),
          maxRetries: this.options.download?.maxRetries,
          retryDelayMs: this.options.download?.retryDelayMs,
          clock: this.clock,
        });
        report({ phase: 'verifying', file: null });
        if (controller.signal.aborted) throw controller.signal.reason;
        const inspection = await this.inspect(dir);
        const identity = await hashModelFolder(dir);
        this.throwIfDuplicate(identity.contentHash);
        report({ phase: 'installing' });
        const target = this.uniqueFolder(download.name);
        await rename(dir, target);
        let model: LibraryModel;
        try {
          model = this.insert(
            { name: download.name, origin: 'downloaded', source: download.source, dir: target, inspection, identity },
            () => this.stmt.deleteDownload.run(download.id),
          );
        } catch (err) {
          await rm(target, { recursive: true, force: true });
          throw err;
        }
        report({ phase: 'done', modelId: model.id, percent: 100, etaSeconds: 0 });
        return model;
      } catch (err) {
        const reason = controller.signal.aborted ? controller.signal.reason : err;
        if (reason instanceof ShutdownError) throw reason; // paused: state and bytes stay for a resume
        const resumable = reason instanceof InterruptedDownloadError;
        if (!resumable) await this.discardDownload(download.id);
        const mapped = isDiskFull(reason)
          ? new ModelLibraryError('E_DISK_FULL', `The disk of ${this.modelsDir} filled up during the download.`, { cause: reason })
          : reason;
        if (mapped instanceof CancelledError) report({ phase: 'cancelled' });
        else report({ phase: 'failed', error: serializeError(mapped) });
        throw mapped;
      } finally {
        this.active.delete(download.id);
      }
    })();
    done.catch(() => undefined); // the caller may only listen to events
    this.active.set(download.id, { controller, done });
    return { downloadId: download.id, done };
  }
}
