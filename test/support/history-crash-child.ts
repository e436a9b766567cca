/**
 * The child of the history crash test: writes generations (and now and then trashes and purges one) in
 * a loop as fast as it can, until the parent kills it with SIGKILL.
 *
 * Usage: node --import tsx history-crash-child.ts <dataDir> <seed>
 * Protocol on stdout, one line each, written synchronously right after the store call returned:
 *   ready                      the store is open
 *   committed <id> <hash>      add() returned: the row is committed
 *   purging <id>               about to trash and purge <id> (it may or may not be gone after a kill)
 *   purged <id>                purge() returned
 */
import { writeSync } from 'node:fs';
import { HistoryStore } from '../../electron/history/store.js';
import type { ImageInput } from '../../electron/shared/history.js';
import { generation, noiseImage, seededRandom } from './history-fixtures.js';

const [dataDir, seedArg] = process.argv.slice(2);
if (dataDir === undefined || seedArg === undefined) throw new Error('usage: history-crash-child.ts <dataDir> <seed>');
const seed = Number(seedArg);
const random = seededRandom(seed);
/** Fraction of iterations that trash and purge an item instead of adding one. */
const PURGE_SHARE = 0.1;

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

const store = await HistoryStore.open(dataDir);
const live = store.page({ limit: 500 }).items.map((i) => ({ id: i.id, hash: i.output!.hash }));
say('ready');

for (let i = 0; ; i++) {
  if (random() < PURGE_SHARE && live.length > 3) {
    const [victim] = live.splice(Math.floor(random() * live.length), 1);
    say(`purging ${victim!.id}`);
    store.delete([victim!.id]);
    store.purge({ ids: [victim!.id] });
    say(`purged ${victim!.id}`);
    continue;
  }
  const parent = live.length > 0 && random() < 0.5 ? live[Math.floor(random() * live.length)] : undefined;
  const initImage: ImageInput | undefined = parent ? { hash: parent.hash } : undefined;
  const item = await store.add(generation(seed * 1_000_000 + i, {
    output: noiseImage(seed * 1_000_000 + i, 32, 32),
    parentId: parent?.id ?? null,
    ...(initImage ? { initImage, params: { mode: 'img2img', strength: 0.6, prompt: `crash test ${seed} ${i}` } } : { params: { prompt: `crash test ${seed} ${i}` } }),
  }));
  live.push({ id: item.id, hash: item.output!.hash });
  say(`committed ${item.id} ${item.output!.hash}`);
}
