/**
 * Seeded Gaussian random numbers for latents and ancestral samplers.
 *
 * Algorithm (documented so results can be reproduced anywhere):
 * - The seed is an integer in [0, 2^53). Its low and high 32-bit words are mixed by SplitMix32
 *   (Steele et al., "Fast splittable pseudorandom number generators", 2014; the 32-bit variant
 *   `mix32` of the MurmurHash3 finalizer) into the four 32-bit words of a xoshiro128** state
 *   (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2018).
 * - Uniforms are u = (next() + 1) / 2^32 in (0, 1], computed in float64; never 0, so log(u) is finite.
 * - Normals come from the Box-Muller transform, two per pair of uniforms:
 *   z0 = √(−2 ln u1)·cos(2π u2), z1 = √(−2 ln u1)·sin(2π u2).
 * The same seed gives the same sequence on every platform (only 32-bit integer ops and
 * IEEE float64 Math.log/cos/sin/sqrt, rounded to float32 when stored).
 */
import { MAX_SEED } from '../../shared/generation-limits.js';

/** A source of standard normal samples. Schedulers take one for ancestral noise. */
export interface GaussianSource {
  /** Fills `out` with independent N(0, 1) samples and returns it. */
  fill(out: Float32Array): Float32Array;
  /** A new array of n samples. */
  randn(n: number): Float32Array;
}

function splitMix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class SeededRng implements GaussianSource {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | undefined;

  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(`seed must be an integer in [0, ${MAX_SEED}], got ${seed}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    let st = lo ^ Math.imul(hi, 0x632be5ab);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [n, z] = splitMix32(st);
      st = n;
      words.push(z);
    }
    [this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // xoshiro's one forbidden state
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in (0, 1]. */
  uniform(): number {
    return (this.nextUint32() + 1) / 4294967296;
  }

  /** One standard normal sample (Box-Muller, caching the second of each pair). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u1 = this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  fill(out: Float32Array): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }

  randn(n: number): Float32Array {
    return this.fill(new Float32Array(n));
  }
}

/** Replays fixed arrays, one per call: used to feed reference noise to ancestral samplers in tests. */
export class ReplayRng implements GaussianSource {
  private index = 0;
  constructor(private readonly arrays: readonly Float32Array[]) {}
  fill(out: Float32Array): Float32Array {
    const src = this.arrays[this.index++];
    if (!src || src.length !== out.length) {
      throw new RangeError(`ReplayRng: no array of length ${out.length} at call ${this.index - 1}`);
    }
    out.set(src);
    return out;
  }
  randn(n: number): Float32Array {
    return this.fill(new Float32Array(n));
  }
}
