/** The studio's settings, kept in the host database as JSON values by key. */
import type { Statement } from 'better-sqlite3';
import type { StudioSettings } from '../shared/contract.js';
import type { ExecutionProviderName } from '../shared/generation.js';
import type { SqliteDatabase } from '../history/database.js';

/** What is stored; providers and threads left unset mean "the engine's defaults". */
export interface StoredSettings {
  providers: ExecutionProviderName[] | null;
  threads: number | null;
  outputFolder: string | null;
  selectedModelId: string | null;
}

const KEYS = ['providers', 'threads', 'outputFolder', 'selectedModelId'] as const satisfies ReadonlyArray<keyof StudioSettings>;

export class SettingsStore {
  private readonly stmt: { all: Statement; put: Statement };

  constructor(db: SqliteDatabase) {
    this.stmt = {
      all: db.prepare('SELECT key, value FROM settings'),
      put: db.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)'),
    };
  }

  read(): StoredSettings {
    const stored: StoredSettings = { providers: null, threads: null, outputFolder: null, selectedModelId: null };
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
