/**
 * One conformance suite for every {@link CacheTier}: the memory, Redis and PostgreSQL tiers run
 * it in their own spec files, and the tiered cache can run it too.
 *
 * A tier under test comes as a {@link Harness} layer: the tier plus a way to write raw envelope
 * bytes past the tier's encoder (for the format-version specs) and, for tiers that encode, a way
 * to read the stored bytes back (for the compression spec). `clock: "test"` runs the suite under
 * `TestClock` (time moves with `TestClock.adjust`, for the memory tier); `clock: "live"` runs it
 * on the real clock with real sleeps (for real Redis / PostgreSQL TTLs).
 *
 * The harness layer is built once per suite: every spec works in a namespace of its own, so
 * specs never see each other's keys.
 */
import { assert, layer } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Clock, Context, Effect, Layer, Option, TestClock } from "effect"
import * as BodyHash from "../../src/cache/BodyHash.js"
import type { CacheTier } from "../../src/cache/CacheTier.js"
import * as Envelope from "../../src/cache/Envelope.js"
import type { CacheEntry } from "../../src/cache/Envelope.js"

/** What the suite needs to drive one tier. */
export interface TierHarness {
  readonly tier: CacheTier
  /** Stores `bytes` as the tier's stored form of `key`, living `ttlMs`, bypassing its encoder. */
  readonly writeRaw: (key: string, bytes: Uint8Array, ttlMs: number) => Effect.Effect<void, unknown>
  /** The stored bytes of `key`, for tiers that store envelopes (omit for the memory tier). */
  readonly readRaw?: (key: string) => Effect.Effect<Option.Option<Uint8Array>, unknown>
  /** The compression threshold the tier was built with (only read when `readRaw` is given). */
  readonly compressAbove?: number
}

/** Tag of the harness a suite runs against. */
export class Harness extends Context.Tag("test/cache/Harness")<Harness, TierHarness>() {}

/** Options of {@link tierConformance}. */
export interface ConformanceOptions {
  /** `"test"`: TestClock, time moves by `TestClock.adjust`. `"live"`: real clock, real sleeps. */
  readonly clock: "test" | "live"
  /** Entry lifetime in the expiry specs on the live clock (default 300 ms). */
  readonly shortTtlMs?: number
}

let counter = 0
/** A namespace no other spec (in this or another file, run or process) uses. */
export const freshNamespace = (label: string): string =>
  `${label}${process.pid.toString(36)}${Date.now().toString(36)}${(counter++).toString(36)}`

/** An entry created at `now`, fresh for `freshMs`, usable for `ttlMs`. */
export const entryAt = (
  now: number,
  value: Uint8Array | string,
  options: {
    readonly ttlMs?: number
    readonly freshMs?: number
    readonly tags?: ReadonlyArray<string>
    readonly contentType?: string
  } = {}
): CacheEntry => {
  const ttlMs = options.ttlMs ?? 60_000
  return {
    value: typeof value === "string" ? new TextEncoder().encode(value) : value,
    contentType: options.contentType ?? "application/json",
    createdAt: now,
    freshUntil: now + (options.freshMs ?? Math.min(ttlMs, 30_000)),
    staleUntil: now + ttlMs,
    tags: options.tags ?? []
  }
}

/** Asserts `found` is `Some` with exactly `expected`'s fields and bytes. */
export const assertEntry = (found: Option.Option<CacheEntry>, expected: CacheEntry, label = "entry"): void => {
  assert.isTrue(Option.isSome(found), `${label}: expected a hit`)
  const entry = Option.getOrThrow(found)
  assert.strictEqual(entry.value.byteLength, expected.value.byteLength, `${label}: value length`)
  assert.isTrue(Buffer.from(entry.value).equals(Buffer.from(expected.value)), `${label}: value bytes`)
  assert.strictEqual(entry.contentType, expected.contentType, `${label}: content type`)
  assert.strictEqual(entry.createdAt, expected.createdAt, `${label}: createdAt`)
  assert.strictEqual(entry.freshUntil, expected.freshUntil, `${label}: freshUntil`)
  assert.strictEqual(entry.staleUntil, expected.staleUntil, `${label}: staleUntil`)
  assert.deepStrictEqual([...entry.tags], [...expected.tags], `${label}: tags`)
}

const text = (entry: Option.Option<CacheEntry>): string | undefined =>
  Option.match(entry, { onNone: () => undefined, onSome: (e) => new TextDecoder().decode(e.value) })

/** Every byte value 0..255, twice, plus a NUL at the end. */
const allBytes = (): Uint8Array => {
  const bytes = new Uint8Array(513)
  for (let i = 0; i < 512; i++) bytes[i] = i % 256
  return bytes
}

/** ~256 KiB of JSON-like text: well above any compression threshold, compresses well. */
const compressible = (): Uint8Array => {
  const items = Array.from({ length: 2_000 }, (_, i) => ({ id: i, title: `Tutorial number ${i}`, body: "lorem ipsum ".repeat(8) }))
  return new TextEncoder().encode(JSON.stringify(items))
}

type Body = (it: { readonly effect: Vitest.Tester<Harness> }) => void

const suite = (options: ConformanceOptions): Body => (it) => {
  const live = options.clock === "live"
  const shortTtl = live ? options.shortTtlMs ?? 300 : 1_000
  /** Lets `ms` pass for the tier. */
  const elapse = (ms: number) => (live ? Effect.sleep(ms) : TestClock.adjust(ms))

  it.effect("a key never written is a miss", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("miss")
      assert.isTrue(Option.isNone(yield* tier.get(`${ns}:absent`)))
      const many = yield* tier.getMany([`${ns}:a`, `${ns}:b`])
      assert.deepStrictEqual(many.map(Option.isNone), [true, true])
    }))

  it.effect("empty batches are no-ops", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      assert.deepStrictEqual(yield* tier.getMany([]), [])
      yield* tier.setMany([])
      yield* tier.delete([])
      yield* tier.invalidateTags([])
    }))

  it.effect("set then get round-trips binary values and every field", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("rt")
      const now = yield* Clock.currentTimeMillis
      const binary = entryAt(now, allBytes(), {
        contentType: "application/octet-stream",
        tags: ["node:1", "type:tutorial", "ünïcødé ✓"],
        freshMs: 10_000,
        ttlMs: 120_000
      })
      const empty = entryAt(now, new Uint8Array(0), { contentType: "text/plain" })
      const large = entryAt(now, compressible(), { tags: ["big"] })
      yield* tier.set(`${ns}:binary`, binary)
      yield* tier.setMany([{ key: `${ns}:empty`, entry: empty }, { key: `${ns}:large`, entry: large }])
      assertEntry(yield* tier.get(`${ns}:binary`), binary, "binary")
      assertEntry(yield* tier.get(`${ns}:empty`), empty, "empty")
      assertEntry(yield* tier.get(`${ns}:large`), large, "large")
    }))

  it.effect("a large compressible body is stored compressed and read back intact", () =>
    Effect.gen(function*() {
      const harness = yield* Harness
      const ns = freshNamespace("gz")
      const now = yield* Clock.currentTimeMillis
      const large = entryAt(now, compressible())
      const small = entryAt(now, "x".repeat(100))
      yield* harness.tier.setMany([{ key: `${ns}:large`, entry: large }, { key: `${ns}:small`, entry: small }])
      assertEntry(yield* harness.tier.get(`${ns}:large`), large, "large")
      assertEntry(yield* harness.tier.get(`${ns}:small`), small, "small")
      if (harness.readRaw === undefined) {
        // A tier that keeps objects (memory) must never compress: the bytes are the caller's.
        const found = Option.getOrThrow(yield* harness.tier.get(`${ns}:large`))
        assert.strictEqual(found.value.byteLength, large.value.byteLength)
        return
      }
      assert.isTrue((harness.compressAbove ?? Envelope.DEFAULT_COMPRESS_ABOVE) < large.value.byteLength)
      const storedLarge = Option.getOrThrow(yield* harness.readRaw(`${ns}:large`))
      const storedSmall = Option.getOrThrow(yield* harness.readRaw(`${ns}:small`))
      assert.strictEqual((storedLarge[2] ?? 0) & Envelope.FLAG_GZIP, Envelope.FLAG_GZIP, "large body flagged gzip")
      assert.isBelow(storedLarge.byteLength, large.value.byteLength / 4, "large body actually compressed")
      assert.strictEqual((storedSmall[2] ?? 0) & Envelope.FLAG_GZIP, 0, "small body not compressed")
    }))

  it.effect("a value read back carries its body hash (the ETag), plain or compressed, without hashing it again", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("hash")
      const now = yield* Clock.currentTimeMillis
      const small = entryAt(now, "y".repeat(300))
      const large = entryAt(now, compressible())
      const expected = [BodyHash.hashOf(small.value), BodyHash.hashOf(large.value)]
      yield* tier.setMany([{ key: `${ns}:small`, entry: small }, { key: `${ns}:large`, entry: large }])
      const found = yield* tier.getMany([`${ns}:small`, `${ns}:large`])
      // `known` never computes: a remote tier's copy has the hash its envelope carried.
      assert.deepStrictEqual(found.map((f) => BodyHash.known(Option.getOrThrow(f).value)), expected)
      const one = Option.getOrThrow(yield* tier.get(`${ns}:large`))
      assert.strictEqual(BodyHash.known(one.value), expected[1])
    }))

  it.effect("getMany answers in key order with hits and misses mixed, duplicates included", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("order")
      const now = yield* Clock.currentTimeMillis
      yield* tier.setMany(["a", "c", "e"].map((k) => ({ key: `${ns}:${k}`, entry: entryAt(now, `v-${k}`) })))
      const keys = ["e", "b", "a", "d", "c", "a"].map((k) => `${ns}:${k}`)
      const found = yield* tier.getMany(keys)
      assert.deepStrictEqual(found.map(text), ["v-e", undefined, "v-a", undefined, "v-c", "v-a"])
    }))

  it.effect("the last item wins when a batch writes a key twice", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("dup")
      const now = yield* Clock.currentTimeMillis
      yield* tier.setMany([
        { key: `${ns}:k`, entry: entryAt(now, "first", { tags: ["t-first"] }) },
        { key: `${ns}:other`, entry: entryAt(now, "other") },
        { key: `${ns}:k`, entry: entryAt(now, "second") }
      ])
      assert.strictEqual(text(yield* tier.get(`${ns}:k`)), "second")
      assert.strictEqual(text(yield* tier.get(`${ns}:other`)), "other")
    }))

  it.effect("overwrite replaces value and tags; the old tag no longer removes it", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("ow")
      const tagOld = `${ns}-old`
      const tagNew = `${ns}-new`
      const now = yield* Clock.currentTimeMillis
      yield* tier.set(`${ns}:k`, entryAt(now, "v1", { tags: [tagOld] }))
      const v2 = entryAt(now, "v2 is longer", { tags: [tagNew], contentType: "text/markdown" })
      yield* tier.set(`${ns}:k`, v2)
      assertEntry(yield* tier.get(`${ns}:k`), v2, "overwritten")
      yield* tier.invalidateTags([tagOld])
      assertEntry(yield* tier.get(`${ns}:k`), v2, "after invalidating the old tag")
      yield* tier.invalidateTags([tagNew])
      assert.isTrue(Option.isNone(yield* tier.get(`${ns}:k`)))
    }))

  it.effect("delete removes exactly the given keys", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("del")
      const now = yield* Clock.currentTimeMillis
      yield* tier.setMany(["a", "b", "c"].map((k) => ({ key: `${ns}:${k}`, entry: entryAt(now, k, { tags: ["shared"] }) })))
      yield* tier.delete([`${ns}:a`, `${ns}:c`, `${ns}:never-written`])
      const found = yield* tier.getMany([`${ns}:a`, `${ns}:b`, `${ns}:c`])
      assert.deepStrictEqual(found.map(text), [undefined, "b", undefined])
    }))

  it.effect("invalidateTags removes exactly the entries carrying any of the tags", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("tags")
      const [t1, t2, t3, t4] = [1, 2, 3, 4].map((i) => `${ns}-t${i}`) as [string, string, string, string]
      const now = yield* Clock.currentTimeMillis
      const tagged: Record<string, ReadonlyArray<string>> = {
        a: [t1],
        b: [t1, t2],
        c: [t2],
        d: [t3, t4],
        e: [],
        f: [t4]
      }
      yield* tier.setMany(
        Object.entries(tagged).map(([k, tags]) => ({ key: `${ns}:${k}`, entry: entryAt(now, k, { tags }) }))
      )
      const present = Effect.map(
        tier.getMany(Object.keys(tagged).map((k) => `${ns}:${k}`)),
        (found) => Object.keys(tagged).filter((_, i) => Option.isSome(found[i]!))
      )
      yield* tier.invalidateTags([`${ns}-unknown`])
      assert.deepStrictEqual(yield* present, ["a", "b", "c", "d", "e", "f"])
      yield* tier.invalidateTags([t1])
      assert.deepStrictEqual(yield* present, ["c", "d", "e", "f"])
      yield* tier.invalidateTags([t2, t3])
      assert.deepStrictEqual(yield* present, ["e", "f"])
      // A key written again after its tag was invalidated is indexed again.
      yield* tier.set(`${ns}:a`, entryAt(now, "a2", { tags: [t1, t4] }))
      yield* tier.invalidateTags([t4])
      assert.deepStrictEqual(yield* present, ["e"])
    }))

  it.effect("clear(namespace) removes only that namespace", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const base = freshNamespace("clr")
      const ns = base
      const lookalike = `${base}x`
      const other = `${base}y`
      const glob = `${base}*`
      const now = yield* Clock.currentTimeMillis
      const keys = [
        `${ns}:1`,
        `${ns}:2:deep:key`,
        `${ns}:`,
        `${lookalike}:1`,
        `${other}:1`,
        `${glob}:1`,
        `x${ns}:1`
      ]
      yield* tier.setMany(keys.map((key) => ({ key, entry: entryAt(now, key, { tags: [`${base}-tag`] }) })))
      const present = Effect.map(tier.getMany(keys), (found) => keys.filter((_, i) => Option.isSome(found[i]!)))
      yield* tier.clear(ns)
      assert.deepStrictEqual(yield* present, [`${lookalike}:1`, `${other}:1`, `${glob}:1`, `x${ns}:1`])
      // A namespace with glob characters is taken literally.
      yield* tier.clear(glob)
      assert.deepStrictEqual(yield* present, [`${lookalike}:1`, `${other}:1`, `x${ns}:1`])
    }))

  it.effect("clear dies on an empty namespace or one containing ':'", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      for (const bad of ["", "a:b"]) {
        const exit = yield* Effect.exit(tier.clear(bad))
        assert.isTrue(exit._tag === "Failure" && exit.cause._tag === "Die", `clear(${JSON.stringify(bad)}) dies`)
      }
    }))

  it.effect("an entry past staleUntil is a miss; a stale but usable one is a hit", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("ttl")
      const now = yield* Clock.currentTimeMillis
      const short = entryAt(now, "short", { ttlMs: shortTtl, freshMs: shortTtl / 3 })
      const long = entryAt(now, "long", { ttlMs: 60_000, freshMs: shortTtl / 3 })
      yield* tier.setMany([{ key: `${ns}:short`, entry: short }, { key: `${ns}:long`, entry: long }])
      assertEntry(yield* tier.get(`${ns}:short`), short, "before expiry")
      yield* elapse(shortTtl + (live ? 150 : 1))
      const after = yield* Clock.currentTimeMillis
      assert.isTrue(Option.isNone(yield* tier.get(`${ns}:short`)), "past staleUntil")
      const stale = yield* tier.get(`${ns}:long`)
      assertEntry(stale, long, "stale but usable")
      assert.isFalse(Envelope.isFresh(Option.getOrThrow(stale), after))
      assert.isTrue(Envelope.isUsable(Option.getOrThrow(stale), after))
    }))

  it.effect("writing an already expired entry deletes the key", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("dead")
      const now = yield* Clock.currentTimeMillis
      yield* tier.set(`${ns}:k`, entryAt(now, "alive"))
      yield* tier.set(`${ns}:k`, { ...entryAt(now - 10_000, "dead"), staleUntil: now - 1 })
      assert.isTrue(Option.isNone(yield* tier.get(`${ns}:k`)))
    }))

  it.effect("bytes of another format version, or corrupt bytes, read as a miss", () =>
    Effect.gen(function*() {
      const harness = yield* Harness
      const { tier } = harness
      const ns = freshNamespace("fmt")
      const now = yield* Clock.currentTimeMillis
      const entry = entryAt(now, "payload", { tags: ["fmt"] })
      const good = Envelope.encodeUncompressed(entry)
      // The raw path itself works: a valid envelope written raw reads back.
      yield* harness.writeRaw(`${ns}:good`, good, 60_000)
      assertEntry(yield* tier.get(`${ns}:good`), entry, "raw valid envelope")

      const otherVersion = good.slice()
      otherVersion[1] = Envelope.FORMAT_VERSION + 1
      const badMagic = good.slice()
      badMagic[0] = 0x7b
      const truncated = good.slice(0, good.byteLength - 3)
      const garbage = new TextEncoder().encode("{\"not\":\"an envelope\"}")
      const raws = { otherVersion, badMagic, truncated, garbage }
      for (const [name, bytes] of Object.entries(raws)) yield* harness.writeRaw(`${ns}:${name}`, bytes, 60_000)
      const found = yield* tier.getMany(Object.keys(raws).map((name) => `${ns}:${name}`))
      assert.deepStrictEqual(found.map(Option.isNone), [true, true, true, true])
      // The tier keeps working around them.
      yield* tier.set(`${ns}:otherVersion`, entry)
      assertEntry(yield* tier.get(`${ns}:otherVersion`), entry, "rewritten")
    }))

  it.effect("concurrent writers and readers on distinct keys", () =>
    Effect.gen(function*() {
      const { tier } = yield* Harness
      const ns = freshNamespace("conc")
      const now = yield* Clock.currentTimeMillis
      const keys = Array.from({ length: 40 }, (_, i) => `${ns}:${i}`)
      yield* Effect.forEach(keys, (key) => tier.set(key, entryAt(now, key)), { concurrency: 20, discard: true })
      const found = yield* Effect.forEach(keys, (key) => tier.get(key), { concurrency: 20 })
      assert.deepStrictEqual(found.map(text), keys)
    }))
}

/**
 * Registers the conformance specs for the tier built by `harness`, in a `describe` named `name`.
 * The harness layer is built once for the block and released after it.
 */
export const tierConformance = <E>(
  name: string,
  harness: Layer.Layer<Harness, E>,
  options: ConformanceOptions
): void => {
  const body = suite(options)
  if (options.clock === "live") {
    layer(harness, { excludeTestServices: true, timeout: "60 seconds" })(name, body)
  } else {
    layer(harness, { timeout: "60 seconds" })(name, body)
  }
}
