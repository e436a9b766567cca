/**
 * Queue reordering as plain list maths (no React), shared by drag-and-drop and the Move up/down
 * buttons: the result is the whole queued order, which `queue.reorder` applies exactly.
 */

/** `ids` with `id` moved so that it lands at `index` of the result (clamped); unchanged when `id` is absent. */
export function moveJob(ids: readonly string[], id: string, index: number): string[] {
  const from = ids.indexOf(id);
  if (from < 0) return [...ids];
  const rest = ids.filter((x) => x !== id);
  const to = Math.max(0, Math.min(rest.length, index));
  return [...rest.slice(0, to), id, ...rest.slice(to)];
}

/** Where a dragged job lands when dropped on `target`: just before it, or just after it. */
export function dropJob(ids: readonly string[], dragged: string, target: string, after: boolean): string[] {
  if (dragged === target || !ids.includes(target)) return [...ids];
  const rest = ids.filter((x) => x !== dragged);
  return moveJob(ids, dragged, rest.indexOf(target) + (after ? 1 : 0));
}

/** True when two orders are the same (nothing to send). */
export function sameOrder(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
