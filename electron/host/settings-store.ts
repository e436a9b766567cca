/** The studio's settings, kept in the host database as JSON values by key. */
import type { Statement } from 'better-sqlite3';
import type { StudioSettings } from '../shared/contract.js';
import type { ExecutionProviderName } from '../shared/generation.js';
import type { SqliteDatabase } from '../history/database.js';

/**
 * What is stored; providers and threads left unset mean "the engine's defaults". The selected model is
 * not a setting any more: it is the model library's default (`settings.get` reports it).
 */
export interface StoredSettings {
  providers: ExecutionProviderName[] | null;
  threads: number | null;
  releaseTextEncoders: boolean | null;
  outputFolder: string | null;
  maxInputPixels: number | null;
  maxSizeFactor: number | null;
  maxJobMemoryMb: number | null;
  undoMemoryMb: number | null;
}

const KEYS = ['providers', 'threads', 'releaseTextEncoders', 'outputFolder', 'maxInputPixels', 'maxSizeFactor', 'maxJobMemoryMb', 'undoMemoryMb'] as const satisfies ReadonlyArray<keyof StudioSettings>;
/** Where the pre-library host kept the selected model; moved to the library's default once (host.ts). */
const LEGACY_SELECTED_MODEL_KEY = 'selectedModelId';

export class SettingsStore {
  private readonly stmt: { all: Statement; put: Statement; get: Statement; remove: Statement };

  constructor(db: SqliteDatabase) {
    this.stmt = {
      all: db.prepare('SELECT key, value FROM settings'),
      put: db.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)'),
      get: db.prepare('SELECT value FROM settings WHERE key = ?'),
      remove: db.prepare('DELETE FROM settings WHERE key = ?'),
    };
  }

  /** The selected model id an older version stored, if any, removed from the settings as it is read. */
  takeLegacySelectedModelId(): string | null {
    const row = this.stmt.get.get(LEGACY_SELECTED_MODEL_KEY) as { value: string } | undefined;
    if (!row) return null;
    this.stmt.remove.run(LEGACY_SELECTED_MODEL_KEY);
    const value = JSON.parse(row.value) as unknown;
    return typeof value === 'string' ? value : null;
  }

  read(): StoredSettings {
    const stored: StoredSettings = { providers: null, threads: null, releaseTextEncoders: null, outputFolder: null, maxInputPixels: null, maxSizeFactor: null, maxJobMemoryMb: null, undoMemoryMb: null };
    for (const row of this.stmt.all.all() as Array<{ key: string; value: string }>) {
      if ((KEYS as readonly string[]).includes(row.key)) {
        (stored as unknown as Record<string, unknown>)[row.key] = JSON.parse(row.value) as unknown;
      }
    }
    return stored;
  }

  write(patch: Partial<StoredSettings>): StoredSettings {
    for (const key of KEYS) {
      if (patch[key] !== undefined) this.stmt.put.run(key, JSON.stringify(patch[key]));
    }
    return this.read();
  }
}
