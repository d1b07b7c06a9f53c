/**
 * The cross-instance load lease against a real Redis: two instances with their own memory tiers
 * missing the same key at the same time make one origin call.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option } from "effect"
import { inject } from "vitest"
import { type CacheLease, redisLease } from "../../src/cache/CacheLease.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as PostgresTier from "../../src/cache/PostgresTier.js"
import * as RedisTier from "../../src/cache/RedisTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import { SqlClient } from "@effect/sql"
import { Redis } from "../../src/redis/Redis.js"
import { assertHit, bytes, ensure, eventually, freshNamespace, inTier, isolation, makeOrigin, policy, redisAdapter, sqlClient, text } from "./tiered-fixtures.js"

const instance = (prefix: string, name: string, withLease: boolean, lease?: CacheLease, reads?: { n: number }, inReads = false) =>
  Effect.gen(function*() {
    const redis = yield* redisAdapter(inject("redisUrl"), name)
    const made = yield* Effect.provideService(RedisTier.make({ prefix }), Redis, redis)
    // Counts the batched reads of the Redis tier when asked to.
    const tier: RedisTier.RedisCacheTier = reads === undefined ? made : {
      ...made,
      getMany: (keys, read) => Effect.suspend(() => {
        reads.n++
        return made.getMany(keys, read)
      })
    }
    return yield* TieredCache.make({
      memory: yield* MemoryTier.make(),
      redis: tier,
      writeQueueCapacity: 100,
      writeBatchSize: 10,
      invalidationMemory: 100,
      ...(lease !== undefined ? { lease } : withLease ? { lease: redisLease(redis, { prefix, instanceId: name, ttl: "5 seconds", wait: "2 seconds", inReads }) } : {})
    })
  })

/**
 * An instance whose Redis tier takes the lease in its read (`inReads`, as `CacheStack` wires
 * it), counting the tier's reads (`reads`, and those with a lease in `leasedReads`) and the
 * lease's separate acquires; `afterFirstRead` runs once, after the instance's first read.
 */
const inReadsInstance = (prefix: string, name: string, afterFirstRead: Effect.Effect<void> = Effect.void, redisUrl = inject("redisUrl")) =>
  Effect.gen(function*() {
    const redis = yield* redisAdapter(redisUrl, name)
    const made = yield* Effect.provideService(RedisTier.make({ prefix }), Redis, redis)
    const counts = { reads: 0, leasedReads: 0, acquires: 0 }
    const tier: RedisTier.RedisCacheTier = {
      ...made,
      getMany: (keys, read) =>
        Effect.suspend(() => {
          counts.reads++
          if (read?.lease !== undefined) counts.leasedReads++
          return counts.reads === 1 ? Effect.tap(made.getMany(keys, read), () => afterFirstRead) : made.getMany(keys, read)
        })
    }
    const lease = redisLease(redis, { prefix, instanceId: name, ttl: "5 seconds", wait: "2 seconds", inReads: true })
    const cache = yield* TieredCache.make({
      memory: yield* MemoryTier.make(),
      redis: tier,
      writeQueueCapacity: 100,
      writeBatchSize: 10,
      invalidationMemory: 100,
      lease: { ...lease, acquire: (key) => Effect.suspend(() => (counts.acquires++, lease.acquire(key))) }
    })
    return { cache, counts, redis }
  })

/** An instance with the lease over real Redis and PostgreSQL tiers, counting each tier's reads. */
const instanceWithPostgres = (name: string, reads: { redis: number; postgres: number }, inReads = false) =>
  Effect.gen(function*() {
    const { prefix, schema } = yield* isolation({ redisUrl: inject("redisUrl"), databaseUrl: inject("databaseUrl") })
    const redis = yield* redisAdapter(inject("redisUrl"), name)
    const redisTier = yield* Effect.provideService(RedisTier.make({ prefix }), Redis, redis)
    const postgresTier = yield* Effect.provideService(
      PostgresTier.make({ schema, sweepInterval: 0 }),
      SqlClient.SqlClient,
      yield* sqlClient(inject("databaseUrl"))
    )
    const cache = yield* TieredCache.make({
      memory: yield* MemoryTier.make(),
      redis: {
        ...redisTier,
        getMany: (keys, read) => Effect.suspend(() => (reads.redis++, redisTier.getMany(keys, read)))
      },
      postgres: {
        ...postgresTier,
        getMany: (keys, read) => Effect.suspend(() => (reads.postgres++, postgresTier.getMany(keys, read)))
      },
      writeQueueCapacity: 100,
      writeBatchSize: 10,
      invalidationMemory: 100,
      lease: redisLease(redis, { prefix, instanceId: name, ttl: "5 seconds", wait: "2 seconds", inReads })
    })
    return { cache, redisTier, postgresTier }
  })

const slowOrigin = (calls: { n: number }, gate: Deferred.Deferred<void>, value: string) =>
  Effect.gen(function*() {
    calls.n++
    yield* Deferred.await(gate)
    return { value: bytes(value), contentType: "text/plain", tags: [] as ReadonlyArray<string> }
  })

/** What the lease holder on instance `a` does as it lets the lease go: its value stored, Redis written. */
const holderStores = (a: TieredCache.TieredCache, key: string) =>
  Effect.zipRight(
    a.setEntries([{ key, entry: { value: bytes("stored by the holder"), contentType: "text/plain", createdAt: Date.now(), freshUntil: Date.now() + 60_000, staleUntil: Date.now() + 120_000, tags: [] } }]),
    a.flush
  )

/** Fresh for 200 ms: the refresh specs let it go stale. */
const shortFresh = policy({ fresh: "200 millis" })

/**
 * Asks the stale `swr:k` of `cache` (answered `stale` at once), waits until its background
 * refresh has put `refreshed` in memory, and returns the reads of Redis that took.
 */
const staleThenRefreshed = (
  cache: TieredCache.TieredCache,
  reads: { n: number },
  lookup: Effect.Effect<TieredCache.Loaded>,
  stale: string,
  refreshed: string
) =>
  Effect.gen(function*() {
    const before = reads.n
    assertHit(yield* cache.getOrSet("swr:k", lookup, shortFresh), "STALE", stale)
    yield* eventually(Effect.flatMap(cache.memory.get("swr:k"), (found) => ensure(text(found) === refreshed, "not refreshed yet")))
    return reads.n - before
  })

/**
 * A cache over a fresh Redis prefix whose Redis tier's writes wait for a gate (`writes`): a value
 * is not in Redis until it opens. `leaseOf` may wrap the instance's real lease.
 */
const gatedCache = (name: string, leaseOf: (real: CacheLease) => CacheLease) =>
  Effect.gen(function*() {
    const prefix = `${freshNamespace(name)}:`
    const redis = yield* redisAdapter(inject("redisUrl"), `${name}-a`)
    const made = yield* Effect.provideService(RedisTier.make({ prefix }), Redis, redis)
    const writes = yield* Deferred.make<void>()
    const cache = yield* TieredCache.make({
      memory: yield* MemoryTier.make(),
      redis: { ...made, setMany: (items) => Effect.zipRight(Deferred.await(writes), made.setMany(items)) },
      writeQueueCapacity: 100,
      writeBatchSize: 10,
      invalidationMemory: 100,
      lease: leaseOf(redisLease(redis, { prefix, instanceId: `${name}-a`, ttl: "5 seconds", wait: "2 seconds" }))
    })
    return { prefix, made, writes, cache }
  })

describe("cross-instance load lease", () => {
  for (const inReads of [false, true]) {
    it.scopedLive(`two instances missing one key at once make one origin call; the other answers from Redis${inReads ? " (lease taken in the read)" : ""}`, () =>
      Effect.gen(function*() {
        const prefix = `${freshNamespace("lease")}:`
        const a = yield* instance(prefix, "lease-a", true, undefined, undefined, inReads)
        const b = yield* instance(prefix, "lease-b", true, undefined, undefined, inReads)
        const calls = { n: 0 }
        const gate = yield* Deferred.make<void>()
        const p = policy({ fresh: "1 minute", grace: "1 minute" })
        const first = yield* Effect.fork(a.getOrSet("ns:cold", slowOrigin(calls, gate, "from-a"), p))
        yield* Effect.sleep("50 millis")
        const second = yield* Effect.fork(b.getOrSet("ns:cold", slowOrigin(calls, gate, "from-b"), p))
        yield* Effect.sleep("100 millis")
        yield* Deferred.succeed(gate, undefined)
        const [hitA, hitB] = [yield* Fiber.join(first), yield* Fiber.join(second)]
        assert.strictEqual(calls.n, 1, "one origin call for both instances")
        assert.strictEqual(text(hitA), "from-a")
        assert.strictEqual(text(hitB), "from-a")
        assert.strictEqual(hitB.status, "HIT-REDIS")
      }))
  }

  it.scopedLive("with the lease taken in the read, a miss reads Redis twice and takes no separate lease; the lease is the instance's while it loads and goes after", () =>
    Effect.gen(function*() {
      const prefix = `${freshNamespace("leaseread")}:`
      const { cache, counts, redis } = yield* inReadsInstance(prefix, "leaseread-a")
      const calls = { n: 0 }
      const gate = yield* Deferred.make<void>()
      const load = yield* Effect.fork(cache.getOrSet("ns:cold", slowOrigin(calls, gate, "v1"), policy({ fresh: "1 minute", grace: "1 minute" })))
      yield* eventually(Effect.sync(() => calls.n).pipe(Effect.flatMap((n) => ensure(n === 1, "not loading yet"))))
      const holder = yield* Effect.promise(() => redis.client.get(`${prefix}lease:ns:cold`))
      assert.strictEqual(holder, "leaseread-a", "the lease is held while the origin loads")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(text(yield* Fiber.join(load)), "v1")
      assert.deepStrictEqual(counts, { reads: 2, leasedReads: 1, acquires: 0 }, "the read path's read, then the lease and the look in one")
      yield* eventually(Effect.flatMap(Effect.promise(() => redis.client.exists(`${prefix}lease:ns:cold`)), (n) => ensure(n === 0, "lease still held")))
      assert.strictEqual(text(yield* inTier(yield* Effect.provideService(RedisTier.make({ prefix }), Redis, redis), "ns:cold")), "v1")
    }))

  it.scopedLive("with the lease taken in the read, a value another instance stored and let go of since the read path's read is found by that read: no origin call, the lease given back", () =>
    Effect.gen(function*() {
      const prefix = `${freshNamespace("leaseread2")}:`
      const a = yield* instance(prefix, "leaseread2-a", false)
      const { cache, counts, redis } = yield* inReadsInstance(prefix, "leaseread2-b", holderStores(a, "race:k"))
      const calls = { n: 0 }
      const gate = yield* Deferred.make<void>()
      yield* Deferred.succeed(gate, undefined)
      const hit = yield* cache.getOrSet("race:k", slowOrigin(calls, gate, "loaded again"), policy())
      assert.strictEqual(text(hit), "stored by the holder")
      assert.strictEqual(calls.n, 0, "the origin was not asked")
      assert.deepStrictEqual(counts, { reads: 2, leasedReads: 1, acquires: 0 })
      assert.strictEqual(yield* Effect.promise(() => redis.client.exists(`${prefix}lease:race:k`)), 0, "the lease taken for nothing is given back")
    }))

  it.scopedLive("a leased miss is answered before its value reaches Redis; the lease goes once it has", () =>
    Effect.gen(function*() {
      const { made, prefix, writes, cache } = yield* gatedCache("leaseearly", (lease) => lease)
      const other = redisLease(yield* redisAdapter(inject("redisUrl"), "leaseearly-b"), {
        prefix,
        instanceId: "leaseearly-b",
        ttl: "5 seconds",
        wait: "2 seconds"
      })
      const calls = { n: 0 }
      const opened = yield* Deferred.make<void>()
      yield* Deferred.succeed(opened, undefined)
      const hit = yield* cache.getOrSet("ns:early", slowOrigin(calls, opened, "loaded"), policy()).pipe(
        Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("the miss waited for its remote write") })
      )
      assert.strictEqual(text(hit), "loaded")
      assert.strictEqual(hit.status, "MISS")
      assert.isTrue(Option.isNone(yield* made.get("ns:early")), "not in Redis yet")
      assert.isFalse(yield* other.acquire("ns:early"), "the lease is held while the value is on its way")
      yield* Deferred.succeed(writes, undefined)
      yield* eventually(Effect.flatMap(made.get("ns:early"), (found) => ensure(Option.isSome(found) && text(found.value) === "loaded", "in Redis")))
      yield* eventually(Effect.flatMap(other.acquire("ns:early"), (took) => ensure(took, "the lease went once the value was in Redis")))
    }))

  it.scopedLive("the leases of several misses written together go back in one round trip", () =>
    Effect.gen(function*() {
      const rounds: Array<number> = []
      const { prefix, writes, cache } = yield* gatedCache("leasemany", (real): CacheLease => ({
        ...real,
        release: (key) => Effect.zipRight(Effect.sync(() => void rounds.push(1)), real.release(key)),
        releaseMany: (keys) => Effect.zipRight(Effect.sync(() => void rounds.push(keys.length)), real.releaseMany(keys))
      }))
      const keys = Array.from({ length: 8 }, (_, i) => `ns:many${i}`)
      yield* Effect.forEach(keys, (key) => cache.getOrSet(key, Effect.succeed({ value: bytes(key), contentType: "text/plain", tags: [] }), policy()), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(rounds, [], "no lease goes before its value is written")
      yield* Deferred.succeed(writes, undefined)
      yield* eventually(Effect.sync(() => rounds.reduce((a, b) => a + b, 0)).pipe(Effect.flatMap((n) => ensure(n === 8, "every lease given back"))))
      assert.isBelow(rounds.length, 8, "released together, not one round trip each")
      const other = redisLease(yield* redisAdapter(inject("redisUrl"), "leasemany-b"), { prefix, instanceId: "leasemany-b", ttl: "5 seconds", wait: "2 seconds" })
      for (const key of keys) assert.isTrue(yield* other.acquire(key), `the lease of ${key} is free`)
    }))

  it.scopedLive("without the lease both instances load", () =>
    Effect.gen(function*() {
      const prefix = `${freshNamespace("nolease")}:`
      const a = yield* instance(prefix, "nolease-a", false)
      const b = yield* instance(prefix, "nolease-b", false)
      const calls = { n: 0 }
      const gate = yield* Deferred.make<void>()
      const p = policy({ fresh: "1 minute", grace: "1 minute" })
      const both = yield* Effect.fork(Effect.all([
        a.getOrSet("ns:cold", slowOrigin(calls, gate, "a"), p),
        b.getOrSet("ns:cold", slowOrigin(calls, gate, "b"), p)
      ], { concurrency: 2 }))
      yield* Effect.sleep("100 millis")
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(both)
      assert.strictEqual(calls.n, 2)
    }))

  it.scopedLive("with the lease taken in the read and Redis unreachable, a miss falls back to the separate acquire and loads without the lease", () =>
    Effect.gen(function*() {
      // Nothing listens on port 1: every command fails at once (no offline queue).
      const { cache, counts } = yield* inReadsInstance(`${freshNamespace("leasedown")}:`, "leasedown", Effect.void, "redis://127.0.0.1:1")
      const origin = makeOrigin()
      const hit = yield* cache.getOrSet("ns:k", origin.value("v1"), policy())
      assert.strictEqual(text(hit), "v1")
      assert.strictEqual(hit.status, "MISS")
      assert.strictEqual(origin.calls(), 1)
      assert.deepStrictEqual(counts, { reads: 3, leasedReads: 1, acquires: 1 }, "the read path's read, the leased read, then the acquire and the read after it")
    }))

  it.scopedLive("a failed load gives the lease back: the waiting instance loads without waiting out the lease", () =>
    Effect.gen(function*() {
      const prefix = `${freshNamespace("leasefail")}:`
      const a = yield* instance(prefix, "leasefail-a", true, undefined, undefined, true)
      const b = yield* instance(prefix, "leasefail-b", true)
      const p = policy({ fresh: "1 minute", grace: "1 minute" })
      const failing = Effect.zipRight(Effect.sleep("100 millis"), Effect.fail("origin down" as const))
      const first = yield* Effect.fork(Effect.either(a.getOrSet("ns:cold", failing, p)))
      yield* Effect.sleep("30 millis")
      const started = Date.now()
      const second = yield* b.getOrSet("ns:cold", Effect.succeed({ value: bytes("b"), contentType: "text/plain", tags: [] }), p)
      const waited = Date.now() - started
      assert.strictEqual((yield* Fiber.join(first))._tag, "Left")
      assert.strictEqual(text(second), "b")
      assert.isBelow(waited, Duration.toMillis("2 seconds"), "did not wait out the whole lease wait")
    }))

  it.scopedLive("a waiter that gets the lease just after the holder stored its value and let it go reads it instead of loading again", () =>
    Effect.gen(function*() {
      const prefix = `${freshNamespace("leaserace")}:`
      const a = yield* instance(prefix, "leaserace-a", false)
      // b's lease: taken by "another instance" at first; the moment b gets it, that instance has
      // just stored its value in Redis and let the lease go (after b's last poll read).
      let acquires = 0
      const lease: CacheLease = {
        wait: Duration.seconds(2),
        release: () => Effect.void,
        releaseMany: () => Effect.void,
        acquire: () =>
          Effect.suspend(() => {
            acquires++
            if (acquires === 1) return Effect.succeed(false)
            return Effect.as(holderStores(a, "race:k"), true)
          })
      }
      const b = yield* instance(prefix, "leaserace-b", false, lease)
      const calls = { n: 0 }
      const gate = yield* Deferred.make<void>()
      yield* Deferred.succeed(gate, undefined)
      const hit = yield* b.getOrSet("race:k", slowOrigin(calls, gate, "loaded again"), policy())
      assert.strictEqual(text(hit), "stored by the holder")
      assert.strictEqual(calls.n, 0, "the origin was not asked a second time")
      assert.strictEqual(acquires, 2)
    }))

  it.scopedLive("a load whose first acquire finds the lease free reads the shared tiers once more: the holder may have just stored its value and let it go", () =>
    Effect.gen(function*() {
      const prefix = `${freshNamespace("leasefree")}:`
      const a = yield* instance(prefix, "leasefree-a", false)
      // b's get read Redis (a miss) just before "another instance" stored its value and let the
      // lease go: b's first acquire succeeds.
      let acquires = 0
      let released = 0
      const lease: CacheLease = {
        wait: Duration.seconds(2),
        release: () => Effect.sync(() => void released++),
        releaseMany: (keys) => Effect.sync(() => void (released += keys.length)),
        acquire: () =>
          Effect.suspend(() => {
            acquires++
            return Effect.as(holderStores(a, "free:k"), true)
          })
      }
      const b = yield* instance(prefix, "leasefree-b", false, lease)
      const calls = { n: 0 }
      const gate = yield* Deferred.make<void>()
      yield* Deferred.succeed(gate, undefined)
      const hit = yield* b.getOrSet("free:k", slowOrigin(calls, gate, "loaded again"), policy())
      assert.strictEqual(text(hit), "stored by the holder")
      assert.strictEqual(calls.n, 0, "the origin was not asked a second time")
      assert.deepStrictEqual([acquires, released], [1, 1], "the lease taken for nothing is given back")
    }))

  for (const inReads of [false, true]) {
    it.scopedLive(`with the lease, the refresh of a stale entry takes the fresher copy another instance stored, reading Redis once (after the lease is taken)${inReads ? ", in the read" : ""}`, () =>
      Effect.gen(function*() {
        const prefix = `${freshNamespace("leaserefresh")}:`
        const a = yield* instance(prefix, "leaserefresh-a", true, undefined, undefined, inReads)
        const reads = { n: 0 }
        const b = yield* instance(prefix, "leaserefresh-b", true, undefined, reads, inReads)
        const origin = makeOrigin()
        assertHit(yield* a.getOrSet("swr:k", origin.value("v1"), shortFresh), "MISS", "v1")
        yield* a.flush
        assertHit(yield* b.getOrSet("swr:k", origin.value("unused"), shortFresh), "HIT-REDIS", "v1")
        yield* Effect.sleep("250 millis")
        // a refreshes first (awaiting its load) and stores the new value in Redis.
        assertHit(yield* a.getOrSet("swr:k", origin.value("v2"), { ...shortFresh, staleWhileRevalidate: false }), "MISS", "v2")
        yield* a.flush
        // b still has v1, stale: answered at once; its refresh takes the lease, then finds v2.
        const refreshReads = yield* staleThenRefreshed(b, reads, origin.value("from the origin"), "v1", "v2")
        assert.strictEqual(origin.calls(), 2, "b's refresh did not call the origin")
        assert.strictEqual(refreshReads, 1, "one read of Redis for the refresh")
      }))

    it.scopedLive(`with the lease, the refresh of a stale entry nobody refreshed reads Redis once, then calls the origin${inReads ? " (lease taken in the read)" : ""}`, () =>
      Effect.gen(function*() {
        const prefix = `${freshNamespace("leaserefresh1")}:`
        const reads = { n: 0 }
        const b = yield* instance(prefix, "leaserefresh1-b", true, undefined, reads, inReads)
        const origin = makeOrigin()
        assertHit(yield* b.getOrSet("swr:k", origin.value("v1"), shortFresh), "MISS", "v1")
        yield* b.flush
        yield* Effect.sleep("250 millis")
        const refreshReads = yield* staleThenRefreshed(b, reads, origin.value("v2"), "v1", "v2")
        assert.strictEqual(origin.calls(), 2, "the refresh called the origin")
        assert.strictEqual(refreshReads, 1, "one read of Redis for the refresh")
      }))
  }

  for (const inReads of [false, true]) {
    it.scopedLive(`with Redis and PostgreSQL, a leased miss reads PostgreSQL once (the read path) and only Redis after taking the lease; the value reaches both${inReads ? " (lease taken in the read)" : ""}`, () =>
      Effect.gen(function*() {
        const reads = { redis: 0, postgres: 0 }
        const { cache, postgresTier, redisTier } = yield* instanceWithPostgres(inReads ? "leasepg-inread" : "leasepg", reads, inReads)
        const origin = makeOrigin()
        assertHit(yield* cache.getOrSet("ns:cold", origin.value("v1"), policy({ fresh: "1 minute", grace: "1 minute" })), "MISS", "v1")
        assert.strictEqual(origin.calls(), 1)
        assert.deepStrictEqual(reads, { redis: 2, postgres: 1 }, "the read path asked both tiers, the look after the lease Redis alone")
        yield* cache.flush
        const [inRedis, inPostgres] = yield* Effect.all([inTier(redisTier, "ns:cold"), inTier(postgresTier, "ns:cold")])
        assert.strictEqual(text(inRedis), "v1")
        assert.strictEqual(text(inPostgres), "v1")
      }))
  }
})
