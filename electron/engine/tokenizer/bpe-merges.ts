/**
 * The BPE merge table and the merge loop of HF tokenizers' `Word::merge_all`
 * (tokenizers/src/models/bpe/word.rs), which diffusers' CLIPTokenizer runs.
 *
 * A word starts as one symbol per byte. Candidate merges of adjacent symbols wait in a min-heap ordered
 * by (merge rank, position); the lowest is applied, and the pairs it forms with its new neighbours are
 * queued. For merge tables learned by BPE training (a merge's parts always have lower ranks than the
 * merge) this gives the same result as openai's "merge every occurrence of the lowest-ranked pair,
 * left to right" loop; for any table it is what HF computes. It takes O(n log n) instead of O(n²), so a
 * pasted run of thousands of characters without spaces stays fast.
 *
 * Pairs are keyed by merges.txt's own line text ("left right"), so loading costs one Map insert per
 * merge and no vocabulary lookups; ids are looked up once per final symbol (and cached per word).
 */
export class BpeMerges {
  /** "left right" → rank (the merge's index among merges.txt's merges). */
  private readonly rankByPair = new Map<string, number>();
  /** rank → "left right". */
  private readonly pairByRank: string[] = [];

  get size(): number {
    return this.pairByRank.length;
  }

  /**
   * Appends the next merge, given as "left right" (one space). A later merge of the same pair
   * replaces an earlier one, as in HF.
   */
  addPair(pair: string): void {
    this.rankByPair.set(pair, this.pairByRank.length);
    this.pairByRank.push(pair);
  }

  /** The merge of rank `rank` as "left right". */
  pairAt(rank: number): string {
    const pair = this.pairByRank[rank];
    if (pair === undefined) throw new RangeError(`no merge of rank ${rank}`);
    return pair;
  }

  /** Merges a word given as its initial symbols; returns the final symbols. */
  mergeWord(initial: readonly string[]): string[] {
    const n = initial.length;
    if (n < 2) return initial.slice();
    const symbol = initial.slice();
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const removed = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    // A queued merge is packed as rank * n + position: the heap then orders by rank, then position,
    // like tokenizers' `Merge` ordering. rank * n stays far below 2^53 for any real word.
    const queue = new MinHeap();
    for (let i = 0; i + 1 < n; i++) {
      const rank = this.rankOf(symbol[i] as string, symbol[i + 1] as string);
      if (rank !== undefined) queue.push(rank * n + i);
    }

    while (queue.size > 0) {
      const packed = queue.pop();
      const rank = Math.floor(packed / n);
      const pos = packed - rank * n;
      if (removed[pos] === 1) continue;
      const right = next[pos] as number;
      if (right < 0) continue;
      const left = symbol[pos] as string;
      const rightSymbol = symbol[right] as string;
      // Entries go stale when a neighbour was merged first: apply one only if the pair there now
      // still yields the same symbol (tokenizers compares the merged id the same way).
      const currentRank = this.rankOf(left, rightSymbol);
      if (currentRank === undefined) continue;
      const merged = left + rightSymbol;
      if (currentRank !== rank && merged !== (this.pairByRank[rank] as string).replace(' ', '')) continue;

      symbol[pos] = merged;
      removed[right] = 1;
      const afterRight = next[right] as number;
      next[pos] = afterRight;
      if (afterRight >= 0) prev[afterRight] = pos;

      const before = prev[pos] as number;
      if (before >= 0) {
        const leftRank = this.rankOf(symbol[before] as string, merged);
        if (leftRank !== undefined) queue.push(leftRank * n + before);
      }
      if (afterRight >= 0) {
        const rightRank = this.rankOf(merged, symbol[afterRight] as string);
        if (rightRank !== undefined) queue.push(rightRank * n + pos);
      }
    }

    // Merges keep the left symbol, so position 0 is never removed.
    const merged: string[] = [];
    for (let i = 0; i >= 0; i = next[i] as number) merged.push(symbol[i] as string);
    return merged;
  }

  private rankOf(left: string, right: string): number | undefined {
    return this.rankByPair.get(left + ' ' + right);
  }
}

/** A binary min-heap of numbers. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  push(value: number): void {
    const items = this.items;
    let i = items.length;
    items.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const parentValue = items[parent] as number;
      if (parentValue <= value) break;
      items[i] = parentValue;
      i = parent;
    }
    items[i] = value;
  }

  /** Removes and returns the smallest value; the heap must not be empty. */
  pop(): number {
    const items = this.items;
    const top = items[0] as number;
    const last = items.pop() as number;
    const n = items.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && (items[right] as number) < (items[left] as number)) child = right;
      const childValue = items[child] as number;
      if (childValue >= last) break;
      items[i] = childValue;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
