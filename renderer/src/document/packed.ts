/**
 * Compact byte planes for the undo history. Masks and layouts are mostly long runs of one value (0, 255,
 * a label), and the difference between two versions of a plane (XOR) is mostly zero, so a run-length
 * code keeps a 2048² whole-layer change in kilobytes instead of 4 MiB. A plane whose runs don't pay
 * (noise, a dense gradient) is kept as it is: packing never costs more than the raw bytes plus a header.
 *
 * Format of the run-length code: pairs of (value byte, run length as LEB128 varint), runs ≥ 1.
 */

/** A packed plane of `length` bytes. `bytes` is what it holds in memory (for the undo budget). */
export interface PackedPlane {
  readonly length: number;
  readonly bytes: number;
  /** The run-length code, or the raw bytes when that is smaller. */
  readonly data: Uint8Array;
  readonly raw: boolean;
}

/** Bookkeeping per packed plane (object, typed array headers), counted into `bytes`. */
export const PLANE_OVERHEAD_BYTES = 96;

/** Packs `plane` (copied: the caller may keep changing its array). */
export function packPlane(plane: Uint8Array): PackedPlane {
  const n = plane.length;
  // Worst case for the code: one pair per byte, each run length 1 (2 bytes). Stop as soon as the code
  // reaches the raw size and keep the raw copy instead.
  const limit = n;
  let out = new Uint8Array(Math.min(limit, 4096) + 8);
  let o = 0;
  let i = 0;
  while (i < n) {
    const v = plane[i]!;
    let j = i + 1;
    while (j < n && plane[j] === v) j++;
    let run = j - i;
    // Room for the value and a 5-byte varint.
    if (o + 6 > out.length) {
      if (out.length >= limit) return rawPlane(plane);
      const grown = new Uint8Array(Math.min(limit + 8, out.length * 2));
      grown.set(out.subarray(0, o));
      out = grown;
    }
    out[o++] = v;
    while (run >= 0x80) {
      out[o++] = (run & 0x7f) | 0x80;
      run >>>= 7;
    }
    out[o++] = run;
    if (o >= limit) return rawPlane(plane);
    i = j;
  }
  const data = out.slice(0, o);
  return { length: n, bytes: data.byteLength + PLANE_OVERHEAD_BYTES, data, raw: false };
}

function rawPlane(plane: Uint8Array): PackedPlane {
  const data = plane.slice();
  return { length: plane.length, bytes: data.byteLength + PLANE_OVERHEAD_BYTES, data, raw: true };
}

/** Calls `run(value, start, length)` for each run of a run-length code, in order; returns the bytes covered. */
function forEachRun(code: Uint8Array, run: (value: number, start: number, length: number) => void): number {
  let o = 0;
  let i = 0;
  while (i < code.length) {
    const v = code[i++]!;
    let length = 0;
    let shift = 0;
    let b: number;
    do {
      b = code[i++]!;
      length |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    run(v, o, length);
    o += length;
  }
  return o;
}

/** Unpacks into `target` (which must have the plane's length), or into a new array. */
export function unpackPlane(packed: PackedPlane, target?: Uint8Array): Uint8Array {
  const out = target ?? new Uint8Array(packed.length);
  if (out.length !== packed.length) throw new RangeError(`a packed plane of ${packed.length} bytes does not fit ${out.length}`);
  if (packed.raw) {
    out.set(packed.data);
    return out;
  }
  const covered = forEachRun(packed.data, (v, start, length) => out.fill(v, start, start + length));
  if (covered !== packed.length) throw new RangeError(`a packed plane decoded to ${covered} bytes, expected ${packed.length}`);
  return out;
}

/** before XOR after, packed: applying it to either side gives the other. */
export function packDelta(before: Uint8Array, after: Uint8Array): PackedPlane {
  if (before.length !== after.length) throw new RangeError(`a delta needs planes of one size, got ${before.length} and ${after.length}`);
  const x = new Uint8Array(before.length);
  for (let i = 0; i < x.length; i++) x[i] = before[i]! ^ after[i]!;
  return packPlane(x);
}

/** XORs a packed delta into `data` in place (runs of zero are skipped without touching the bytes). */
export function applyDelta(data: Uint8Array, delta: PackedPlane): void {
  if (data.length !== delta.length) throw new RangeError(`a delta of ${delta.length} bytes does not fit ${data.length}`);
  if (delta.raw) {
    const d = delta.data;
    for (let i = 0; i < d.length; i++) data[i]! ^= d[i]!;
    return;
  }
  forEachRun(delta.data, (v, start, length) => {
    if (v !== 0) for (let k = start; k < start + length; k++) data[k]! ^= v;
  });
}

/** True when the delta changes nothing. */
export function isEmptyDelta(delta: PackedPlane): boolean {
  if (delta.raw) return delta.data.every((b) => b === 0);
  const code = delta.data;
  let i = 0;
  while (i < code.length) {
    if (code[i++] !== 0) return false;
    while (code[i++]! & 0x80);
  }
  return true;
}
