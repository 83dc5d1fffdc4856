/**
 * The seeded random source every data generator uses, so that the same seed always gives the
 * same bytes (tests compare against them; benchmarks cache them by seed).
 *
 * @module
 */

/** mulberry32: small, fast and good enough to make the same data for the same seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random helpers over one seeded source.
 *
 * @example
 * ```ts
 * const r = new Rand(1);
 * const id = r.uuid(); // the same for every run with seed 1
 * ```
 */
export class Rand {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** A float in [0, 1). */
  f(): number {
    return this.#next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** One of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  /** Picks by weight: `[weight, value]` pairs. */
  weighted<T>(xs: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of xs) total += w;
    let x = this.f() * total;
    for (const [w, v] of xs) {
      if ((x -= w) < 0) return v;
    }
    return xs[xs.length - 1][1];
  }
  /** `n` lowercase hex digits. */
  hex(n: number): string {
    let s = "";
    for (let i = 0; i < n; i++) s += "0123456789abcdef"[this.int(16)];
    return s;
  }
  /** A version-4 UUID, as kube-apiserver's auditIDs are. */
  uuid(): string {
    return `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-${"89ab"[this.int(4)]}${this.hex(3)}-${
      this.hex(12)
    }`;
  }
  /** A pod-template-hash / replicaset suffix like `7d9f8b6c5d-x2x7k`. */
  suffix(): string {
    const a = "bcdfghjklmnpqrstvwxz2456789";
    let s = "";
    for (let i = 0; i < 10; i++) s += a[this.int(a.length)];
    s += "-";
    for (let i = 0; i < 5; i++) s += a[this.int(a.length)];
    return s;
  }
}
