import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Layer, Option, TestClock } from "effect"
import * as Envelope from "../../src/cache/Envelope.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import { entryAt, Harness, tierConformance } from "./conformance.js"

const harness = Layer.effect(
  Harness,
  Effect.map(MemoryTier.make(), (tier) => ({
    tier,
    // The memory tier holds objects, never bytes: a raw write is what a backfill from a remote
    // tier would do, decode then store, so an undecodable envelope never gets in.
    writeRaw: (key: string, bytes: Uint8Array) =>
      Effect.flatMap(
        Envelope.decode(bytes),
        Option.match({ onNone: () => tier.delete([key]), onSome: (entry) => tier.set(key, entry) })
      )
  }))
)

tierConformance("MemoryTier conformance", harness, { clock: "test" })

const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill)

describe("MemoryTier bounds", () => {
  it.effect("stays within maxBytes, counts evictions, and the tag index forgets evicted keys", () =>
    Effect.gen(function*() {
      const evicted: Array<string> = []
      const maxBytes = 64 * 1024
      const tier = yield* MemoryTier.make({ maxBytes, onEvict: (key) => evicted.push(key) })
      const now = yield* Clock.currentTimeMillis
      const keys = Array.from({ length: 100 }, (_, i) => `ns:${i}`)
      for (const [i, key] of keys.entries()) {
        yield* tier.set(key, entryAt(now, bytes(4 * 1024), { tags: ["all", `own:${i}`] }))
        assert.isAtMost(tier.stats().bytes, maxBytes)
      }
      const stats = tier.stats()
      assert.isAtMost(stats.bytes, maxBytes)
      assert.isAbove(stats.entries, 0)
      assert.strictEqual(stats.entries + stats.evictions, 100)
      assert.strictEqual(stats.evictions, evicted.length)
      // Least recently used went first: the evicted keys are exactly the oldest ones.
      assert.deepStrictEqual(evicted, keys.slice(0, stats.evictions))
      // Two links per surviving entry ("all" + its own tag), none for evicted ones.
      assert.strictEqual(stats.tagLinks, 2 * stats.entries)
      assert.strictEqual(stats.tags, 1 + stats.entries)
      yield* tier.invalidateTags(["all"])
      assert.deepStrictEqual(tier.stats(), { bytes: 0, entries: 0, evictions: stats.evictions, tags: 0, largeBytes: 0, tagLinks: 0 })
    }))

  it.effect("stays within maxEntries, evicting the least recently used", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.make({ maxEntries: 10 })
      const now = yield* Clock.currentTimeMillis
      for (let i = 0; i < 10; i++) yield* tier.set(`ns:${i}`, entryAt(now, `v${i}`, { tags: ["t"] }))
      // Touch ns:0 so that ns:1 is now the least recently used.
      assert.isTrue(Option.isSome(yield* tier.get("ns:0")))
      for (let i = 10; i < 15; i++) yield* tier.set(`ns:${i}`, entryAt(now, `v${i}`, { tags: ["t"] }))
      const stats = tier.stats()
      assert.strictEqual(stats.entries, 10)
      assert.strictEqual(stats.evictions, 5)
      assert.strictEqual(stats.tagLinks, 10)
      const found = yield* tier.getMany(["ns:0", "ns:1", "ns:5", "ns:6", "ns:14"])
      assert.deepStrictEqual(found.map(Option.isSome), [true, false, false, true, true])
    }))

  it.effect("a value above maxValueBytes is not stored and drops the older value of its key (large segment off)", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.make({ maxValueBytes: 1024, largeMaxBytes: 0 })
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:k", entryAt(now, bytes(1024), { tags: ["t"] }))
      assert.isTrue(Option.isSome(yield* tier.get("ns:k")), "at the threshold: stored")
      yield* tier.set("ns:k", entryAt(now, bytes(1025), { tags: ["t"] }))
      assert.isTrue(Option.isNone(yield* tier.get("ns:k")), "above: not stored, old value gone")
      assert.deepStrictEqual(tier.stats(), { bytes: 0, entries: 0, evictions: 0, tags: 0, largeBytes: 0, tagLinks: 0 })
    }))

  it.effect("values above maxValueBytes live in their own segment: they evict each other only, and one key is in one segment", () =>
    Effect.gen(function*() {
      const evicted: Array<string> = []
      const tier = yield* MemoryTier.make({
        maxBytes: 64 * 1024,
        maxValueBytes: 1024,
        largeMaxBytes: 11 * 1024,
        largeMaxValueBytes: 4096,
        onEvict: (key) => evicted.push(key)
      })
      const now = yield* Clock.currentTimeMillis
      for (let i = 0; i < 20; i++) yield* tier.set(`ns:small:${i}`, entryAt(now, bytes(512), { tags: ["small"] }))
      // Three of 3,000 bytes (plus overhead, ~3,440 counted) fit in 11 KiB. The fourth, asked as
      // often as the residents, is refused; asked once more, it evicts the oldest large one.
      for (let i = 0; i < 4; i++) yield* tier.set(`ns:large:${i}`, entryAt(now, bytes(3000), { tags: ["large", `node:${i}`] }))
      assert.deepStrictEqual(evicted, [])
      assert.isTrue(Option.isNone(yield* tier.get("ns:large:3")))
      yield* tier.set("ns:large:3", entryAt(now, bytes(3000), { tags: ["large", "node:3"] }))
      assert.deepStrictEqual(evicted, ["ns:large:0"])
      const small = yield* tier.getMany(Array.from({ length: 20 }, (_, i) => `ns:small:${i}`))
      assert.isTrue(small.every(Option.isSome), "no small entry was evicted by the large ones")
      const large = yield* tier.getMany([0, 1, 2, 3].map((i) => `ns:large:${i}`))
      assert.deepStrictEqual(large.map(Option.isSome), [false, true, true, true])
      assert.strictEqual(Option.getOrThrow(large[3]!).value.byteLength, 3000)
      const stats = tier.stats()
      assert.strictEqual(stats.entries, 23)
      assert.isAtMost(stats.largeBytes, 11 * 1024)
      assert.isAbove(stats.largeBytes, 9000)
      // Above largeMaxValueBytes: not stored, and the older value of its key is gone.
      yield* tier.set("ns:large:1", entryAt(now, bytes(4097)))
      assert.isTrue(Option.isNone(yield* tier.get("ns:large:1")))
      // A key moving between the segments has one value: the last one.
      yield* tier.set("ns:small:0", entryAt(now, bytes(2000), { tags: ["moved"] }))
      assert.strictEqual(Option.getOrThrow(yield* tier.get("ns:small:0")).value.byteLength, 2000)
      yield* tier.set("ns:small:0", entryAt(now, bytes(100), { tags: ["moved"] }))
      assert.strictEqual(Option.getOrThrow(yield* tier.get("ns:small:0")).value.byteLength, 100)
      assert.strictEqual(tier.stats().largeBytes, stats.largeBytes - (stats.largeBytes / 3), "ns:large:1 gone, ns:small:0 back in the main LRU")
      // Tags, deletes and clears reach both segments.
      yield* tier.invalidateTags(["node:2"])
      assert.isTrue(Option.isNone(yield* tier.get("ns:large:2")))
      yield* tier.delete(["ns:large:3", "ns:small:1"])
      assert.isTrue(Option.isNone(yield* tier.get("ns:large:3")))
      yield* tier.set("other:large", entryAt(now, bytes(3000)))
      yield* tier.clear("ns")
      assert.deepStrictEqual(tier.stats().entries, 1)
      assert.isTrue(Option.isSome(yield* tier.get("other:large")))
      assert.strictEqual(tier.lookupSync("other:large", now)?.value.byteLength, 3000)
      assert.strictEqual(tier.stats().tagLinks, 0)
    }))

  it.effect("a cycle over more large values than fit leaves the residents in place: hits, not a new copy per ask", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.make({ maxValueBytes: 1024, largeMaxBytes: 11 * 1024, largeMaxValueBytes: 4096 })
      const now = yield* Clock.currentTimeMillis
      // Six values of ~3,440 counted bytes, three fit; each round asks all six in turn, and a miss
      // stores the copy it read (as a remote hit does).
      let hits = 0
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 6; i++) {
          const key = `ns:large:${i}`
          if (Option.isSome(yield* tier.get(key))) hits++
          else yield* tier.set(key, entryAt(now, bytes(3000)))
        }
      }
      // An LRU would hit nothing (each value evicted three stores before it is asked again).
      assert.strictEqual(hits, 4 * 3, "the three first values hit in every round after the first")
      // A value asked more often than the residents takes the least recently used one's place.
      for (let i = 0; i < 12; i++) yield* tier.set("ns:hot", entryAt(now, bytes(3000)))
      assert.isTrue(Option.isSome(yield* tier.get("ns:hot")))
      assert.strictEqual(tier.stats().entries, 3)
    }))

  it.effect("an entry larger than maxBytes is refused without evicting the others", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.make({ maxBytes: 8 * 1024, maxValueBytes: 1024 * 1024 })
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:small", entryAt(now, bytes(100)))
      yield* tier.set("ns:huge", entryAt(now, bytes(16 * 1024), { tags: ["t"] }))
      const found = yield* tier.getMany(["ns:small", "ns:huge"])
      assert.deepStrictEqual(found.map(Option.isSome), [true, false])
      assert.strictEqual(tier.stats().tagLinks, 0)
    }))

  it.effect("expiry follows the Effect Clock, and expired entries are dropped when read", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.make()
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:k", entryAt(now, "v", { ttlMs: 5_000, freshMs: 1_000, tags: ["t"] }))
      yield* TestClock.adjust(4_999)
      const stale = yield* tier.get("ns:k")
      assert.isTrue(Option.isSome(stale), "usable until staleUntil")
      assert.isFalse(Envelope.isFresh(Option.getOrThrow(stale), yield* Clock.currentTimeMillis))
      yield* TestClock.adjust(1)
      assert.isTrue(Option.isNone(yield* tier.get("ns:k")), "gone at staleUntil")
      assert.deepStrictEqual(tier.stats(), { bytes: 0, entries: 0, evictions: 0, tags: 0, largeBytes: 0, tagLinks: 0 })
    }))

  it.effect("a throwing onEvict hook does not break the tier", () =>
    Effect.gen(function*() {
      const tier = yield* MemoryTier.make({
        maxEntries: 1,
        onEvict: () => {
          throw new Error("metric exploded")
        }
      })
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:a", entryAt(now, "a"))
      yield* tier.set("ns:b", entryAt(now, "b"))
      assert.strictEqual(tier.stats().evictions, 1)
      assert.isTrue(Option.isSome(yield* tier.get("ns:b")))
    }))

  it.effect("out-of-range options die at construction", () =>
    Effect.gen(function*() {
      for (const options of [{ maxBytes: 0 }, { maxEntries: 1.5 }, { maxBytes: -1 }]) {
        const exit = yield* Effect.exit(MemoryTier.make(options))
        assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die", JSON.stringify(options))
      }
    }))
})
