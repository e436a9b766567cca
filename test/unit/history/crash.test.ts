/**
 * Crash safety: a child process writes generations in a loop (test/support/history-crash-child.ts) and
 * is killed with SIGKILL at a random moment, 20 times over the same data directory. After each kill the
 * store is reopened (which reconciles) and must show: integrity_check ok, every visible row has its
 * file (with the right bytes), no committed row lost, and no stray file left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HistoryStore } from '../../../electron/history/store.js';
import type { HistoryItem } from '../../../electron/shared/history.js';
import { seededRandom, tempDir } from '../../support/history-fixtures.js';

const CHILD = join(import.meta.dirname, '..', '..', 'support', 'history-crash-child.ts');
const KILLS = 20;
/** Kill moments are drawn from [0, MAX_KILL_DELAY_MS) after the child says it is ready (~20 writes). */
const MAX_KILL_DELAY_MS = 500;
/** Printed on failure, so a failing run can be replayed. */
const SEED = Number(process.env['HISTORY_CRASH_SEED'] ?? Date.now() % 1_000_000);

interface ChildLog {
  committed: Map<number, string>;
  purging: Set<number>;
  purged: Set<number>;
}

async function runAndKill(dataDir: string, childSeed: number, delayMs: number): Promise<ChildLog> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, String(childSeed)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: ChildLog = { committed: new Map(), purging: new Set(), purged: new Set() };
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      const before = stdout;
      stdout += d.toString();
      if (!before.includes('ready\n') && stdout.includes('ready\n')) {
        setTimeout(() => child.kill('SIGKILL'), delayMs);
        resolve();
      }
    });
    child.on('exit', () => reject(new Error(`the child exited before it was killed:\n${stderr}`)));
  });
  const signal = await exited;
  assert.equal(signal, 'SIGKILL', `the child died of something else:\n${stderr}`);
  // Only complete lines count: a line cut by the kill was not yet written in full, so it promised nothing.
  for (const line of stdout.split('\n').slice(0, -1)) {
    const [word, id, hash] = line.split(' ');
    if (word === 'committed') log.committed.set(Number(id), hash!);
    if (word === 'purging') log.purging.add(Number(id));
    if (word === 'purged') log.purged.add(Number(id));
  }
  return log;
}

function allItems(store: HistoryStore): HistoryItem[] {
  const items: HistoryItem[] = [];
  for (const view of ['active', 'trash'] as const) {
    let cursor: string | null = null;
    do {
      const page = store.page({ filter: { view }, cursor, limit: 500 });
      items.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
  }
  return items;
}

test(`SIGKILL at ${KILLS} random moments loses no committed row and leaves no broken one (seed ${SEED})`, { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir('history-crash-');
  const random = seededRandom(SEED);
  /** Every id ever reported committed, with its image hash; ids reported as purging may be gone. */
  const committed = new Map<number, string>();
  const mayBeGone = new Set<number>();
  let totalCommits = 0;
  let roundsWithLeftovers = 0;
  try {
    for (let round = 1; round <= KILLS; round++) {
      const delay = Math.floor(random() * MAX_KILL_DELAY_MS);
      const log = await runAndKill(dir, SEED * 100 + round, delay);
      for (const [id, hash] of log.committed) committed.set(id, hash);
      for (const id of log.purging) mayBeGone.add(id);
      totalCommits += log.committed.size;
      const context = `round ${round}, kill after ${delay} ms, seed ${SEED}`;

      const store = await HistoryStore.open(dir);
      try {
        const integrity = store.integrityCheck();
        assert.ok(integrity.ok, `${context}: integrity_check: ${integrity.messages.join('; ')}`);

        for (const [id, hash] of committed) {
          if (mayBeGone.has(id)) continue;
          const item = store.get(id); // throws E_NOT_FOUND if a committed row was lost
          assert.equal(item.output?.hash, hash, `${context}: item ${id} kept its image`);
        }
        for (const id of log.purged) assert.throws(() => store.get(id), `${context}: purged item ${id} stays gone`);

        const items = allItems(store);
        for (const item of items) {
          assert.ok(!item.output!.fileMissing, `${context}: item ${item.id} is not marked missing`);
          const file = store.imagePath(item.output!.hash);
          assert.ok(existsSync(file), `${context}: item ${item.id} has its file`);
          assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), item.output!.hash, `${context}: item ${item.id}'s file is complete`);
          assert.ok(existsSync(store.thumbnailPath(item.output!.hash)), `${context}: item ${item.id} has its thumbnail`);
        }
        assert.deepEqual(store.lastReconcile!.missingImages, [], `${context}: no image went missing`);
        if (store.lastReconcile!.orphanFilesRemoved.length > 0) roundsWithLeftovers++;
        assert.deepEqual(readdirSync(join(dir, 'tmp')), [], `${context}: temp files collected`);
        const again = await store.reconcile();
        assert.deepEqual(again.orphanFilesRemoved, [], `${context}: nothing left to collect after reconciliation`);
      } finally {
        store.close();
      }
    }
    assert.ok(totalCommits >= KILLS, `the children committed ${totalCommits} rows in all: too few to test anything`);
    // How often a kill landed between a file write and its commit (informational: it is random).
    t.diagnostic(`${totalCommits} commits; ${roundsWithLeftovers} of ${KILLS} kills left files that reconciliation collected`);
  } finally {
    cleanup();
  }
});
