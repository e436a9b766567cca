/**
 * History store benchmark: 100,000 synthetic generations, then the queries the history browser makes.
 * Prints one JSON object. Run: npm run bench:history
 *
 * Rows only: the 100k rows reference image rows whose files don't exist (writing 100k PNGs would
 * measure the disk, not the store), so the store is opened without reconciliation. The cost of a full
 * add() with a real PNG, thumbnail and fsyncs is measured separately on a small sample.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openDatabase } from '../electron/history/database.js';
import { HistoryRepository } from '../electron/history/repository.js';
import type { GenerationRecord } from '../electron/history/repository.js';
import { DATABASE_FILE, HistoryStore } from '../electron/history/store.js';
import { GENERATION_MODES, SAMPLERS } from '../electron/shared/generation.js';
import { generation, noiseImage, seededRandom } from '../test/support/history-fixtures.js';

const ROWS = Number(process.env['HISTORY_BENCH_ROWS'] ?? 100_000);
/** Set to keep the database for poking at afterwards. */
const KEEP_DIR = process.env['HISTORY_BENCH_KEEP'] === '1';
const BATCH = 1000;
const QUERY_RUNS = 300;
const SINGLE_COMMIT_ROWS = 300;
const FULL_ADD_ROWS = 50;
/** One long inpaint chain, for a worst-case lineage (a person repainting the same image over and over). */
const CHAIN_LENGTH = 500;
const random = seededRandom(20250101);

// Words people put in prompts, most common first; a long tail of made-up words follows, and words
// are drawn with a Zipf-like law (rank^-1.1) so a few are everywhere and most are rare, as in real use.
const COMMON = (
  'masterpiece best quality detailed portrait photo of a woman man cat dog fox owl dragon castle forest city ' +
  'night sunset sunrise mountain lake ocean river snow rain fog cinematic lighting dramatic soft volumetric ' +
  'highly intricate sharp focus 8k 4k hdr illustration painting oil watercolor digital art concept trending ' +
  'artstation octane render unreal engine studio ghibli anime style realistic hyperrealistic beautiful ' +
  'futuristic cyberpunk steampunk fantasy medieval ancient temple ruins garden flowers roses tree autumn ' +
  'winter summer spring red blue green golden silver purple black white bokeh depth field wide angle closeup'
).split(' ');
const SYLLABLES = ['ka', 'lo', 'mi', 'ren', 'sa', 'tor', 'vel', 'qua', 'zi', 'ben', 'dra', 'ful', 'gor', 'hin', 'jax', 'nor'];
const VOCAB = [...COMMON];
while (VOCAB.length < 5000) {
  const n = 2 + Math.floor(random() * 3);
  VOCAB.push(Array.from({ length: n }, () => SYLLABLES[Math.floor(random() * SYLLABLES.length)]).join(''));
}
const ZIPF_CDF = (() => {
  const weights = VOCAB.map((_, rank) => 1 / Math.pow(rank + 1, 1.1));
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  return weights.map((w) => (acc += w / total));
})();
function word(): string {
  const u = random();
  let lo = 0;
  let hi = ZIPF_CDF.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ZIPF_CDF[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return VOCAB[lo]!;
}
function words(min: number, max: number): string {
  const n = min + Math.floor(random() * (max - min + 1));
  return Array.from({ length: n }, word).join(', ');
}
const NEGATIVES = ['blurry, lowres, bad anatomy', 'watermark, text, signature', 'deformed, extra fingers', '', 'worst quality, low quality'];
const MODELS = ['sd15', 'sd15-inpainting', 'lcm-dreamshaper', 'sd21-base', 'tiny-sd'];

function pick<T>(list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

function percentiles(samples: number[]): { p50: number; p95: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => Number(s[Math.min(s.length - 1, Math.floor(q * s.length))]!.toFixed(3));
  return { p50: at(0.5), p95: at(0.95), max: Number(s.at(-1)!.toFixed(3)) };
}

function time<T>(fn: () => T): [number, T] {
  const t0 = performance.now();
  const result = fn();
  return [performance.now() - t0, result];
}

function syntheticRecord(id: number, createdAt: number): GenerationRecord {
  const mode = pick(GENERATION_MODES);
  // Inpaint chains: a third of the items continue a recent one.
  const parentId = id > 1 && random() < 0.33 ? Math.max(1, id - 1 - Math.floor(random() * 50)) : null;
  return {
    createdAt,
    source: 'generated',
    status: 'succeeded',
    mode,
    modelId: pick(MODELS),
    modelHash: 'ab'.repeat(32),
    prompt: words(8, 30),
    negativePrompt: pick(NEGATIVES),
    seed: Math.floor(random() * 2 ** 32),
    steps: 20 + Math.floor(random() * 30),
    cfg: 7,
    sampler: pick(SAMPLERS),
    width: 512,
    height: 512,
    strength: mode === 'txt2img' ? 1 : 0.75,
    maskBlur: 4,
    initImageHash: null,
    maskHash: null,
    labelMapHash: null,
    outputHash: fakeHash(id),
    parentId,
    executionProvider: 'cuda',
    timings: { totalMs: 2100, textEncodeMs: 20, vaeEncodeMs: 0, denoiseMs: 1900, vaeDecodeMs: 180, stepsRun: 25 },
    error: null,
    favorite: random() < 0.05,
    tags: random() < 0.1 ? Array.from({ length: 1 + Math.floor(random() * 3) }, word) : [],
    sourceFile: null,
    sourceParameters: null,
  };
}

function fakeHash(n: number): string {
  return n.toString(16).padStart(64, '0');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'history-bench-'));
  try {
    // Schema via the store itself, then bulk rows through the store's own prepared statements.
    (await HistoryStore.open(dir)).close();
    const db = openDatabase(join(dir, DATABASE_FILE));
    const repo = new HistoryRepository(db);
    const start = Date.UTC(2024, 0, 1);
    const insertBatch = db.transaction((from: number, to: number) => {
      for (let id = from; id < to; id++) {
        const createdAt = start + id * 1000;
        repo.insertImage({ hash: fakeHash(id), width: 512, height: 512, byteSize: 400_000, createdAt });
        repo.insertGeneration(syntheticRecord(id, createdAt));
      }
    });
    const [batchedMs] = time(() => {
      for (let from = 1; from <= ROWS; from += BATCH) insertBatch(from, Math.min(ROWS + 1, from + BATCH));
    });
    // One transaction (and one fsync, synchronous = FULL) per row, as the queue commits them.
    const insertChain = db.transaction((from: number, to: number) => {
      for (let id = from; id < to; id++) {
        const createdAt = start + id * 1000;
        repo.insertImage({ hash: fakeHash(id), width: 512, height: 512, byteSize: 400_000, createdAt });
        repo.insertGeneration({ ...syntheticRecord(id, createdAt), parentId: id === from ? null : id - 1 });
      }
    });
    const [singleMs] = time(() => {
      for (let id = ROWS + 1; id <= ROWS + SINGLE_COMMIT_ROWS; id++) insertBatch(id, id + 1);
    });
    const chainStart = ROWS + SINGLE_COMMIT_ROWS + 1;
    insertChain(chainStart, chainStart + CHAIN_LENGTH);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    const rows = ROWS + SINGLE_COMMIT_ROWS + CHAIN_LENGTH;
    const dbBytes = statSync(join(dir, DATABASE_FILE)).size;

    const store = await HistoryStore.open(dir, { reconcile: false });
    const randomId = (): number => 1 + Math.floor(random() * rows);

    // Newest-first page of 100: the first page and pages deep in the history (cursor at a random id).
    store.page();
    const pageMs: number[] = [];
    for (let i = 0; i < QUERY_RUNS; i++) {
      const [ms, page] = time(() => store.page({ limit: 100, cursor: i % 4 === 0 ? null : String(randomId()) }));
      if (page.items.length === 0) throw new Error('empty page');
      pageMs.push(ms);
    }
    const favoriteMs: number[] = [];
    for (let i = 0; i < QUERY_RUNS; i++) {
      favoriteMs.push(time(() => store.page({ limit: 100, filter: { favorite: true, modelId: pick(MODELS) } }))[0]);
    }

    // Full-text search, page of 100: a common word, a rarer word, a prefix, two words.
    const queries = [
      (): string => pick(COMMON.slice(0, 20)),
      (): string => pick(VOCAB.slice(200, 2000)),
      (): string => `${pick(VOCAB.slice(0, 500)).slice(0, 3)}*`,
      (): string => `${pick(COMMON)} ${pick(COMMON)}`,
    ];
    const searchMs: number[] = [];
    let hits = 0;
    store.search({ text: 'portrait' });
    for (let i = 0; i < QUERY_RUNS; i++) {
      const text = queries[i % queries.length]!();
      const [ms, page] = time(() => store.search({ text, limit: 100 }));
      searchMs.push(ms);
      hits += page.items.length;
    }

    const lineageMs: number[] = [];
    let lineageSize = 0;
    for (let i = 0; i < QUERY_RUNS; i++) {
      const [ms, lineage] = time(() => store.lineage(randomId()));
      lineageMs.push(ms);
      lineageSize += lineage.ancestors.length + lineage.descendants.length;
    }
    const chainMs: number[] = [];
    for (let i = 0; i < QUERY_RUNS; i++) {
      const middle = chainStart + Math.floor(CHAIN_LENGTH / 2);
      const [ms, lineage] = time(() => store.lineage(middle));
      if (lineage.ancestors.length + lineage.descendants.length !== CHAIN_LENGTH - 1) throw new Error('chain lineage is wrong');
      chainMs.push(ms);
    }
    const [countsMs] = time(() => store.counts());
    store.close();

    // The whole add(): encode a 512x512 PNG with metadata, thumbnail, fsync file + folder, commit.
    const fullDir = mkdtempSync(join(tmpdir(), 'history-bench-full-'));
    let fullAddMs = 0;
    try {
      const full = await HistoryStore.open(fullDir);
      const t0 = performance.now();
      for (let i = 0; i < FULL_ADD_ROWS; i++) await full.add(generation(i, { output: noiseImage(i, 512, 512), params: { width: 512, height: 512 } }));
      fullAddMs = performance.now() - t0;
      full.close();
    } finally {
      rmSync(fullDir, { recursive: true, force: true });
    }

    console.log(JSON.stringify({
      benchmark: 'history',
      note: 'rows only: the 100k rows have no image files; full add() (PNG + thumbnail + fsyncs) measured separately',
      rows,
      insert: {
        batchedRowsPerSec: Math.round(ROWS / (batchedMs / 1000)),
        batchSize: BATCH,
        oneCommitPerRowRowsPerSec: Math.round(SINGLE_COMMIT_ROWS / (singleMs / 1000)),
        fullAdd512pxPerSec: Number((FULL_ADD_ROWS / (fullAddMs / 1000)).toFixed(1)),
      },
      pageNewest100Ms: { ...percentiles(pageMs), target: 'p95 <= 5' },
      pageFavoritesOfModel100Ms: percentiles(favoriteMs),
      searchMs: { ...percentiles(searchMs), target: 'p95 <= 20', meanHits: Math.round(hits / QUERY_RUNS) },
      lineageMs: { ...percentiles(lineageMs), meanItems: Number((lineageSize / QUERY_RUNS).toFixed(1)) },
      lineageMiddleOfChainMs: { ...percentiles(chainMs), items: CHAIN_LENGTH - 1 },
      countsMs: Number(countsMs.toFixed(3)),
      database: { bytes: dbBytes, bytesPerRow: Math.round(dbBytes / rows), includes: 'rows, image rows, indexes, FTS5 index' },
      queryRuns: QUERY_RUNS,
      node: process.version,
      // Timings on a shared machine: a load average above the core count means other work competed.
      loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
      cpuCores: cpus().length,
    }, null, 2));
  } finally {
    if (KEEP_DIR) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
