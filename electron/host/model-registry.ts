/**
 * The models the studio knows: the bundled one (if it ships) and the folders a person imported, kept
 * in the host database. A model's id is its registry key (the folder name, made unique); ids are
 * looked up here and never joined onto a path.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import type { Statement } from 'better-sqlite3';
import type { ModelEntry } from '../shared/contract.js';
import { StudioError } from '../shared/errors.js';
import type { SqliteDatabase } from '../history/database.js';

/** Same rule as the contract's model id: letters, digits, ". _ -" and spaces, at most 128. */
const MAX_ID_CHARS = 128;

export function modelIdFromFolder(dir: string): string {
  const cleaned = basename(dir)
    .replace(/[^\p{L}\p{N}._ -]/gu, '-')
    .replace(/^[^\p{L}\p{N}_]+/u, '')
    .slice(0, MAX_ID_CHARS);
  return cleaned === '' ? 'model' : cleaned;
}

export class ModelRegistry {
  private readonly bundled: ModelEntry | null;
  private readonly stmt: { all: Statement; byId: Statement; byDir: Statement; insert: Statement };

  constructor(
    db: SqliteDatabase,
    bundledDir: string | null,
    private readonly clock: () => number = Date.now,
  ) {
    this.bundled = bundledDir ? { id: modelIdFromFolder(bundledDir), dir: resolve(bundledDir), bundled: true, addedAt: 0 } : null;
    this.stmt = {
      all: db.prepare('SELECT id, dir, added_at FROM models ORDER BY added_at, id'),
      byId: db.prepare('SELECT id, dir, added_at FROM models WHERE id = ?'),
      byDir: db.prepare('SELECT id, dir, added_at FROM models WHERE dir = ?'),
      insert: db.prepare('INSERT INTO models (id, dir, added_at) VALUES (?, ?, ?)'),
    };
  }

  list(): ModelEntry[] {
    const rows = this.stmt.all.all() as Array<{ id: string; dir: string; added_at: number }>;
    const imported = rows.map((r) => ({ id: r.id, dir: r.dir, bundled: false, addedAt: r.added_at }));
    return this.bundled ? [this.bundled, ...imported] : imported;
  }

  find(id: string): ModelEntry | null {
    if (this.bundled?.id === id) return this.bundled;
    const row = this.stmt.byId.get(id) as { id: string; dir: string; added_at: number } | undefined;
    return row ? { id: row.id, dir: row.dir, bundled: false, addedAt: row.added_at } : null;
  }

  get(id: string): ModelEntry {
    const entry = this.find(id);
    if (!entry) throw new StudioError('E_NOT_FOUND', `No model "${id}"; import its folder first (models.import).`);
    return entry;
  }

  /** Registers a folder (already validated by the engine). A folder registered before keeps its entry. */
  add(dirIn: string): ModelEntry {
    const dir = resolve(dirIn);
    if (this.bundled?.dir === dir) return this.bundled;
    const existing = this.stmt.byDir.get(dir) as { id: string; dir: string; added_at: number } | undefined;
    if (existing) return { id: existing.id, dir: existing.dir, bundled: false, addedAt: existing.added_at };
    const base = modelIdFromFolder(dir);
    let id = base;
    for (let n = 2; this.find(id); n++) id = `${base.slice(0, MAX_ID_CHARS - String(n).length - 1)}-${n}`;
    const addedAt = this.clock();
    this.stmt.insert.run(id, dir, addedAt);
    return { id, dir, bundled: false, addedAt };
  }
}

/** Files whose bytes decide what a model computes: weights, external data, configs, tokenizer. */
function modelFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * The content hash of a model folder (sha256 over each file's relative path and bytes), cached in the
 * host database by a fingerprint of names, sizes and mtimes so a multi-GB model is read once.
 */
export class ModelHashes {
  private readonly stmt: { get: Statement; put: Statement };
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(db: SqliteDatabase) {
    this.stmt = {
      get: db.prepare('SELECT fingerprint, hash FROM model_hashes WHERE dir = ?'),
      put: db.prepare('INSERT OR REPLACE INTO model_hashes (dir, fingerprint, hash) VALUES (?, ?, ?)'),
    };
  }

  hashOf(dirIn: string): Promise<string> {
    const dir = resolve(dirIn);
    let p = this.inFlight.get(dir);
    if (!p) {
      p = this.compute(dir).finally(() => this.inFlight.delete(dir));
      this.inFlight.set(dir, p);
    }
    return p;
  }

  private async compute(dir: string): Promise<string> {
    const files = modelFiles(dir);
    const fingerprint = JSON.stringify(files.map((f) => {
      const st = statSync(f);
      return [relative(dir, f), st.size, st.mtimeMs];
    }));
    const cached = this.stmt.get.get(dir) as { fingerprint: string; hash: string } | undefined;
    if (cached?.fingerprint === fingerprint) return cached.hash;
    const sha = createHash('sha256');
    for (const f of files) {
      sha.update(relative(dir, f).split('\\').join('/'));
      sha.update('\0');
      for await (const chunk of createReadStream(f)) sha.update(chunk as Buffer);
    }
    const hash = sha.digest('hex');
    this.stmt.put.run(dir, fingerprint, hash);
    return hash;
  }
}
