/**
 * Seeded pseudo-random numbers for the simulator: the corpus, the bodies and the fault
 * decisions all come from here so that the same seed always gives the same bytes.
 *
 * Plain synchronous functions (no Effect): they run on the hot path of every request.
 *
 * @since 0.1.0
 */

/** A source of uniform numbers in `[0, 1)`. Not cryptographic; fast and reproducible. */
export interface Rng {
  /** Next number in `[0, 1)`. */
  readonly next: () => number
}

/** Mixes two 32-bit values into one well-spread 32-bit seed (a splitmix-like finaliser). */
export const mixSeed = (a: number, b: number): number => {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** Hash of a string to 32 bits (FNV-1a), for deriving seeds from names. */
export const hashString = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * A small-state generator (sfc32) seeded from one number. Two generators built from the same
 * seed produce the same sequence.
 */
export const makeRng = (seed: number): Rng => {
  let a = mixSeed(seed, 1)
  let b = mixSeed(seed, 2)
  let c = mixSeed(seed, 3)
  let d = 1
  const next = (): number => {
    a >>>= 0
    b >>>= 0
    c >>>= 0
    d >>>= 0
    const t = (a + b + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  // Warm up: the first outputs of sfc32 are correlated with the seed words.
  for (let i = 0; i < 12; i++) next()
  return { next }
}

/** Integer in `[min, max]` (both inclusive). */
export const int = (rng: Rng, min: number, max: number): number => min + Math.floor(rng.next() * (max - min + 1))

/** One element of a non-empty array. */
export const pick = <A>(rng: Rng, items: ReadonlyArray<A>): A => items[Math.floor(rng.next() * items.length)] as A

/** `true` with probability `p`; exact for `p <= 0` (never) and `p >= 1` (always), and then draws nothing. */
export const chance = (rng: Rng, p: number): boolean => (p <= 0 ? false : p >= 1 ? true : rng.next() < p)

/** `count` distinct elements (or all of them when there are fewer), in draw order. */
export const sample = <A>(rng: Rng, items: ReadonlyArray<A>, count: number): Array<A> => {
  const pool = items.slice()
  const out: Array<A> = []
  const n = Math.min(count, pool.length)
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rng.next() * (pool.length - i))
    const tmp = pool[i] as A
    pool[i] = pool[j] as A
    pool[j] = tmp
    out.push(pool[i] as A)
  }
  return out
}

/** A standard normal variate (Box–Muller). */
export const normal = (rng: Rng): number => {
  const u = 1 - rng.next()
  const v = rng.next()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}
