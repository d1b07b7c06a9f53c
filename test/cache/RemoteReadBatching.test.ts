/**
 * Concurrent single-key reads that miss memory are served by one batched remote read per tier
 * (one Redis MGET for all of them), and concurrent reads of one key share one remote read,
 * against a real Redis.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Fiber, Option } from "effect"
import { inject } from "vitest"
import type { CacheTier } from "../../src/cache/CacheTier.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as RedisTier from "../../src/cache/RedisTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import { Redis } from "../../src/redis/Redis.js"
import { freshNamespace, itemAt, redisAdapter, text } from "./tiered-fixtures.js"

/**
 * A cache over a Redis tier (fresh prefix) whose reads are counted (keys per read) and pass
 * through `around` (e.g. a gate); `tier` is the tier itself, to write behind the cache's back.
 */
const cacheOverRedis = (name: string, around: <A, E>(read: Effect.Effect<A, E>) => Effect.Effect<A, E> = (read) => read) =>
  Effect.gen(function*() {
    const redis = yield* redisAdapter(inject("redisUrl"), "batching")
    const tier = yield* Effect.provideService(RedisTier.make({ prefix: `${freshNamespace(name)}:` }), Redis, redis)
    const reads: Array<number> = []
    const counted: CacheTier = { ...tier, getMany: (keys) => Effect.zipRight(Effect.sync(() => reads.push(keys.length)), around(tier.getMany(keys))) }
    const cache = yield* TieredCache.make({
      memory: yield* MemoryTier.make(),
      redis: counted,
      writeQueueCapacity: 100,
      writeBatchSize: 10,
      invalidationMemory: 100
    })
    return { tier, reads, cache }
  })

describe("remote read batching", () => {
  it.scopedLive("50 concurrent gets of 50 keys held only in Redis cost one MGET", () =>
    Effect.gen(function*() {
      const { cache, reads, tier } = yield* cacheOverRedis("batch")
      const now = yield* Clock.currentTimeMillis
      const keys = Array.from({ length: 50 }, (_, i) => `ns:k${i}`)
      yield* tier.setMany(keys.map((key) => itemAt(now, key, `v-${key}`, { ttlMs: 60_000 })))

      const hits = yield* Effect.forEach(keys, (key) => cache.get(key), { concurrency: "unbounded" })
      assert.deepStrictEqual(hits.map((h) => text(h)), keys.map((key) => `v-${key}`))
      assert.isTrue(hits.every((h) => h._tag === "Some" && h.value.status === "HIT-REDIS"))
      assert.deepStrictEqual(reads, [50], "one MGET of 50 keys")
    }))

  it.scopedLive("gets of one key share its remote read, except a get that joined after an invalidation overtook it", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      // Each read takes what Redis holds, then waits at the gate before answering.
      const { cache, reads, tier } = yield* cacheOverRedis("share", (read) => Effect.zipLeft(read, Deferred.await(gate)))
      const now = yield* Clock.currentTimeMillis
      yield* tier.setMany([itemAt(now, "ns:k", "old")])

      const first = yield* Effect.fork(cache.get("ns:k"))
      while (reads.length === 0) yield* Effect.sleep("1 millis")
      const before = yield* Effect.fork(cache.get("ns:k"))
      yield* Effect.sleep("20 millis")
      yield* cache.delete(["ns:k"])
      yield* tier.setMany([itemAt(now, "ns:k", "new")])
      const after = yield* Effect.fork(cache.get("ns:k"))
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(reads, [1], "one read in flight, shared")
      yield* Deferred.succeed(gate, undefined)

      assert.strictEqual(text(yield* Fiber.join(first)), "old")
      assert.strictEqual(text(yield* Fiber.join(before)), "old", "joined before the invalidation: the shared answer")
      assert.strictEqual(text(yield* Fiber.join(after)), "new", "joined after it: a read of its own")
      assert.deepStrictEqual(reads, [1, 1])
      // The overtaken "old" was not backfilled; the second read's "new" was.
      assert.strictEqual(text(Option.fromNullable(cache.memory.lookupSync("ns:k", yield* Clock.currentTimeMillis))), "new")
    }))
})
