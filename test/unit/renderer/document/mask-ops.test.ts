/**
 * The mask tools as pure functions (grow, shrink, feather, colour range), each checked against a plain
 * brute-force version of its definition on small random masks, and as EditorDocument edits that take
 * exactly one undo step each.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EditorDocument } from '../../../../renderer/src/document/document.js';
import { colourRangeMask, featherMask, growMask, MAX_MASK_OP_RADIUS, maskUnion, shrinkMask } from '../../../../renderer/src/document/mask-ops.js';

/** Deterministic pseudo-random bytes (mulberry32). */
function randomBytes(n: number, seed: number, sparse = false): Uint8Array {
  let t = seed;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    t = (t + 0x6d2b79f5) | 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    const v = ((r ^ (r >>> 14)) >>> 0) % 256;
    out[i] = sparse ? (v > 240 ? 255 : 0) : v;
  }
  return out;
}

/** The definition: each pixel the max (min) over the (2r+1)² square around it, clipped to the image. */
function bruteMorph(d: Uint8Array, w: number, h: number, r: number, max: boolean): Uint8Array {
  const out = new Uint8Array(d.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let v = max ? 0 : 255;
      for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++) {
        for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) v = max ? Math.max(v, d[yy * w + xx]!) : Math.min(v, d[yy * w + xx]!);
      }
      out[y * w + x] = v;
    }
  }
  return out;
}

describe('mask tools: pure functions', () => {
  it('grow and shrink equal the max / min over the square of side 2N+1, for grey masks and several N', () => {
    for (const [w, h, seed] of [[17, 11, 1], [5, 23, 2], [1, 9, 3]] as const) {
      for (const sparse of [true, false]) {
        const d = randomBytes(w * h, seed, sparse);
        for (const r of [0, 1, 2, 4, 30]) {
          assert.deepEqual(growMask(d, w, h, r), bruteMorph(d, w, h, r, true), `grow ${w}×${h} r=${r}`);
          assert.deepEqual(shrinkMask(d, w, h, r), bruteMorph(d, w, h, r, false), `shrink ${w}×${h} r=${r}`);
        }
      }
    }
  });

  it('a single marked pixel grows to a (2N+1)² square and shrinks back to itself; inputs are not changed', () => {
    const d = new Uint8Array(15 * 15);
    d[7 * 15 + 7] = 255;
    const copy = d.slice();
    const grown = growMask(d, 15, 15, 3);
    assert.equal(grown.filter((v) => v === 255).length, 49);
    assert.deepEqual(shrinkMask(grown, 15, 15, 3), d);
    assert.deepEqual(d, copy);
  });

  it('feather keeps a flat mask flat, blurs an edge monotonically across about the radius, and keeps the mass', () => {
    const w = 40;
    const h = 6;
    assert.deepEqual(featherMask(new Uint8Array(w * h).fill(255), w, h, 5), new Uint8Array(w * h).fill(255));
    const edge = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) for (let x = 20; x < w; x++) edge[y * w + x] = 255;
    const soft = featherMask(edge, w, h, 3);
    const row = Array.from(soft.subarray(2 * w, 3 * w));
    for (let x = 1; x < w; x++) assert.ok(row[x]! >= row[x - 1]!, `monotonic at ${x}: ${row.join(',')}`);
    assert.equal(row[0], 0);
    assert.equal(row[w - 1], 255);
    assert.ok(row[19]! > 64 && row[19]! < 192 && row[20]! > 64 && row[20]! < 192, `the edge is half way: ${row[19]}, ${row[20]}`);
    assert.ok(row[12]! < 5 && row[27]! > 250, 'the ramp is about ±3·√3 px wide');
    // Per row the box blur keeps the sum, away from the frame's repeated borders (rounding aside).
    const sum = (a: ArrayLike<number>): number => Array.from(a).reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum(row) - sum(edge.subarray(2 * w, 3 * w))) <= w, 'mass kept within rounding');
    assert.deepEqual(featherMask(edge, w, h, 0), edge);
  });

  it('radii outside 0..MAX and masks of the wrong size are refused with a clear error', () => {
    const d = new Uint8Array(4);
    assert.throws(() => growMask(d, 2, 2, -1), /whole number of pixels from 0 to 256/);
    assert.throws(() => featherMask(d, 2, 2, 1.5), RangeError);
    assert.throws(() => shrinkMask(d, 2, 2, MAX_MASK_OP_RADIUS + 1), RangeError);
    assert.throws(() => growMask(d, 3, 2, 1), /3×2 mask has 6 bytes, got 4/);
  });

  it('colour range: contiguous takes the connected region within tolerance; global takes every such pixel', () => {
    // 6×3 blue, with a red blob top left, a near-red pixel bottom right and a too-red one at (1,2).
    const w = 6;
    const h = 3;
    const rgba = new Uint8Array(w * h * 4);
    const put = (x: number, y: number, r: number, g: number, b: number): void => rgba.set([r, g, b, 255], (y * w + x) * 4);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) put(x, y, 0, 0, 200);
    put(0, 0, 200, 10, 10);
    put(1, 0, 210, 12, 5);
    put(0, 1, 190, 0, 20);
    put(5, 2, 205, 10, 10);
    put(1, 2, 240, 10, 10); // red but past the tolerance
    const picked = (m: Uint8Array): string[] => [...m.keys()].filter((i) => m[i] === 255).map((i) => `${i % w},${Math.floor(i / w)}`);
    assert.deepEqual(picked(colourRangeMask(rgba, w, h, 0, 0, { tolerance: 20, contiguous: true })), ['0,0', '1,0', '0,1']);
    assert.deepEqual(picked(colourRangeMask(rgba, w, h, 0, 0, { tolerance: 20, contiguous: false })), ['0,0', '1,0', '0,1', '5,2']);
    assert.deepEqual(picked(colourRangeMask(rgba, w, h, 0, 0, { tolerance: 40, contiguous: false })), ['0,0', '1,0', '0,1', '1,2', '5,2']);
    assert.deepEqual(picked(colourRangeMask(rgba, w, h, 0, 0, { tolerance: 0, contiguous: true })), ['0,0']);
    // The blue pixel at (0,2) is cut off by red on both sides: contiguous leaves it out.
    assert.equal(picked(colourRangeMask(rgba, w, h, 3, 1, { tolerance: 0, contiguous: true })).length, w * h - 6, 'the connected blue area');
    assert.equal(picked(colourRangeMask(rgba, w, h, 3, 1, { tolerance: 0, contiguous: false })).length, w * h - 5, 'all the blue');
    assert.equal(colourRangeMask(rgba, w, h, -1, 0, { tolerance: 10, contiguous: true }).some((v) => v !== 0), false, 'outside the image picks nothing');
    assert.throws(() => colourRangeMask(rgba, w, h, 0, 0, { tolerance: 300, contiguous: true }), /tolerance is from 0 to 255/);
    assert.deepEqual(maskUnion(new Uint8Array([0, 100, 255]), new Uint8Array([50, 20, 0])), new Uint8Array([50, 100, 255]));
  });
});

describe('mask tools: document edits, one undo step each', () => {
  it('grow, shrink, feather and colour range each take one undo step, undo restores the bytes, redo reapplies', () => {
    const doc = new EditorDocument(32, 24);
    doc.beginStroke('brush', { size: 6, hardness: 1, opacity: 1 }, { x: 16, y: 12, pressure: 1 });
    doc.endStroke();
    const rgba = new Uint8Array(32 * 24 * 4);
    for (let i = 0; i < 32 * 24; i++) rgba.set(i % 32 < 4 ? [250, 0, 0, 255] : [0, 0, 250, 255], i * 4);
    const steps: Array<[string, () => void]> = [
      ['Grow mask 3 px', () => doc.growMask(3)],
      ['Shrink mask 2 px', () => doc.shrinkMask(2)],
      ['Feather mask 4 px', () => doc.featherMask(4)],
      ['Mask colour range', () => assert.equal(doc.selectColourRange(rgba, 1, 1, { tolerance: 10, contiguous: true }), true)],
    ];
    const states: Uint8Array[] = [doc.mask.data.slice()];
    for (const [label, run] of steps) {
      const depth = doc.undoDepth;
      run();
      assert.equal(doc.undoDepth, depth + 1, label);
      assert.equal(doc.undoLabel, label);
      assert.notDeepEqual(doc.mask.data, states.at(-1), `${label} changed the mask`);
      states.push(doc.mask.data.slice());
    }
    assert.equal(doc.mask.at(0, 23), 255, 'the wand took the red strip');
    for (let i = states.length - 2; i >= 0; i--) {
      doc.undo();
      assert.deepEqual(doc.mask.data, states[i], `undo back to state ${i}`);
    }
    for (let i = 1; i < states.length; i++) {
      doc.redo();
      assert.deepEqual(doc.mask.data, states[i], `redo to state ${i}`);
    }
    // An edit that changes nothing takes no step.
    const depth = doc.undoDepth;
    doc.growMask(0);
    assert.equal(doc.selectColourRange(rgba, 1, 1, { tolerance: 10, contiguous: true }), false);
    assert.equal(doc.undoDepth, depth);
  });
});
