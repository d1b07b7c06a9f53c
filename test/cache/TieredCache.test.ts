/**
 * The tiered composition (memory → Redis → PostgreSQL) against the real shared servers: the tier
 * conformance suite, backfill, single-flight under 1000 concurrent callers, real expiry, loads
 * and writes overtaken by invalidations, and the bounded background writer (on a private
 * redis-server that is paused or killed).
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, FiberRef, HashSet, Layer, Logger, Option } from "effect"
import { inject } from "vitest"
import type { MemoryTierOptions } from "../../src/cache/MemoryTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import { redisServer } from "../support/services.js"
import { assertEntry, Harness, tierConformance } from "./conformance.js"
import {
  assertHit,
  ensure,
  eventually,
  freshNamespace,
  inTier,
  instance,
  isolation,
  itemAt,
  makeOrigin,
  policy,
  redisAdapter,
  sqlClient,
  text
} from "./tiered-fixtures.js"

const redisUrl = inject("redisUrl")
const databaseUrl = inject("databaseUrl")
const shared = { redisUrl, databaseUrl }
const COMPRESS_ABOVE = 16 * 1024

// ---- conformance ------------------------------------------------------------------------------

/**
 * The composition as a tier. Raw writes go to both remote tiers (what the composition reads
 * when memory misses); raw reads come from the top remote tier.
 */
const compositionHarness = (memory: MemoryTierOptions, tiers: { readonly redis: boolean }) =>
  Layer.scoped(
    Harness,
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const built = yield* instance({
        ...(tiers.redis ? { redisUrl } : {}),
        databaseUrl,
        ...iso,
        memory,
        redisTier: { compressAbove: COMPRESS_ABOVE },
        postgresTier: { compressAbove: COMPRESS_ABOVE }
      })
      const redis = tiers.redis ? yield* redisAdapter(redisUrl, "tiered-conformance") : undefined
      const sql = yield* sqlClient(databaseUrl)
      const table = built.postgres!.table
      const writePg = (key: string, value: Uint8Array, ttlMs: number) =>
        sql`INSERT INTO ${sql(table)} (key, namespace, value, tags, fresh_until, stale_until, created_at)
            VALUES (${key}, ${key.split(":")[0] ?? ""}, ${Buffer.from(value)}, '{}'::text[], now(),
                    now() + ${ttlMs} * interval '1 millisecond', now())
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, stale_until = EXCLUDED.stale_until`
      return {
        tier: TieredCache.asTier(built.cache),
        compressAbove: COMPRESS_ABOVE,
        writeRaw: (key: string, value: Uint8Array, ttlMs: number) =>
          Effect.all([
            redis === undefined
              ? Effect.void
              : redis.use("set", (c) => c.set(`${iso.prefix}e:${key}`, Buffer.from(value), "PX", ttlMs)),
            writePg(key, value, ttlMs)
          ], { discard: true }),
        readRaw: (key: string) =>
          redis !== undefined
            ? Effect.map(
              redis.use("get", (c) => c.getBuffer(`${iso.prefix}e:${key}`)),
              (found) => Option.map(Option.fromNullable(found), (b): Uint8Array => b)
            )
            : Effect.map(
              sql<{ value: Uint8Array }>`SELECT value FROM ${sql(table)} WHERE key = ${key}`,
              (rows) => Option.fromNullable(rows[0]?.value)
            )
      }
    })
  )

tierConformance("TieredCache conformance (memory + Redis + PostgreSQL)", compositionHarness({}, { redis: true }), {
  clock: "live",
  shortTtlMs: 400
})

// A memory tier that keeps no value (only empty ones): every read goes to the remote tiers.
tierConformance(
  "TieredCache conformance through the remote tiers (memory keeps nothing)",
  compositionHarness({ maxValueBytes: 0 }, { redis: true }),
  { clock: "live", shortTtlMs: 400 }
)

tierConformance(
  "TieredCache conformance, memory (keeping nothing) + PostgreSQL",
  compositionHarness({ maxValueBytes: 0 }, { redis: false }),
  { clock: "live", shortTtlMs: 400 }
)

// ---- read path ----------------------------------------------------------------------------------

describe("TieredCache backfill", () => {
  it.scopedLive("a value only in PostgreSQL is answered HIT-POSTGRES, then found in memory and in Redis", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const { key, entry } = itemAt(yield* Clock.currentTimeMillis, "pg:only", "from postgres", { tags: ["t-pg"] })
      yield* a.postgres!.set(key, entry)
      assert.isTrue(Option.isNone(yield* inTier(a.redis, key)))

      assertHit(yield* a.cache.getOrSet(key, origin.value("origin"), policy()), "HIT-POSTGRES", "from postgres", "first")
      assertEntry(yield* a.memory.get(key), entry, "memory, at once")
      assertHit(yield* a.cache.getOrSet(key, origin.value("origin"), policy()), "HIT-MEMORY", "from postgres", "second")
      // The Redis write is asynchronous: wait for the writer.
      yield* a.cache.flush
      assert.strictEqual(yield* a.cache.pendingWrites, 0)
      assertEntry(yield* inTier(a.redis, key), entry, "redis, after the writer")

      // A second instance, memory empty, finds it in Redis now.
      const b = yield* instance({ ...shared, ...iso })
      assertHit(Option.getOrThrow(yield* b.cache.get(key)), "HIT-REDIS", "from postgres", "second instance")
      assert.strictEqual(origin.calls(), 0)
    }))

  it.scopedLive("a value only in Redis is answered HIT-REDIS, then HIT-MEMORY; PostgreSQL below is left alone", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const { key, entry } = itemAt(yield* Clock.currentTimeMillis, "redis:only", "from redis", { tags: ["t-redis"] })
      yield* a.redis!.set(key, entry)

      assertHit(yield* a.cache.getOrSet(key, origin.value("origin"), policy()), "HIT-REDIS", "from redis", "first")
      assertHit(yield* a.cache.getOrSet(key, origin.value("origin"), policy()), "HIT-MEMORY", "from redis", "second")
      assertEntry(yield* a.memory.get(key), entry, "memory")
      yield* a.cache.flush
      assert.isTrue(Option.isNone(yield* inTier(a.postgres, key)), "a hit is not copied to the tiers below")
      assert.strictEqual(origin.calls(), 0)
      // Lookups: memory missed, Redis hit, PostgreSQL never asked; then memory hit.
      assert.deepStrictEqual(a.stats.lookups, [["memory", "miss"], ["redis", "hit"], ["memory", "hit"]])
    }))

  it.scopedLive("a miss everywhere loads once and stores on every tier", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const key = "miss:k"
      assertHit(yield* a.cache.getOrSet(key, origin.value("loaded", { tags: ["t"] }), policy()), "MISS", "loaded")
      yield* a.cache.flush
      assert.strictEqual(text(yield* inTier(a.redis, key)), "loaded")
      assert.strictEqual(text(yield* inTier(a.postgres, key)), "loaded")
      assertHit(yield* a.cache.getOrSet(key, origin.value("again"), policy()), "HIT-MEMORY", "loaded")
      assert.strictEqual(origin.calls(), 1)
    }))
})

describe("TieredCache single-flight", () => {
  it.scopedLive("1000 concurrent getOrSet of one cold key make exactly one origin call and one remote read", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const key = `${freshNamespace("sf")}:cold`
      const hits = yield* Effect.all(
        Array.from({ length: 1_000 }, () => a.cache.getOrSet(key, origin.slow("the value", "20 millis", ["t"]), policy())),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(origin.calls(), 1)
      assert.strictEqual(a.stats.originLoads, 1)
      assert.strictEqual(hits.length, 1_000)
      assert.isTrue(hits.every((hit) => text(hit) === "the value"), "every caller got the loaded value")
      assert.isTrue(hits.every((hit) => hit.entry === hits[0]!.entry), "the very same entry")
      const asked = (tier: string) => a.stats.lookups.filter(([t]) => t === tier).length
      assert.strictEqual(asked("memory"), 1_000)
      assert.strictEqual(asked("redis"), 1, "one shared Redis read")
      assert.strictEqual(asked("postgres"), 1, "one shared PostgreSQL read")
    }))

  it.scopedLive("getOrSetMany reads each remote tier in one batch and loads each missing key once", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const now = yield* Clock.currentTimeMillis
      yield* a.redis!.set("many:r", itemAt(now, "many:r", "in redis").entry)
      yield* a.postgres!.set("many:p", itemAt(now, "many:p", "in postgres").entry)
      yield* a.cache.set("many:m", { value: new TextEncoder().encode("in memory"), contentType: "text/plain", tags: [] }, policy())
      const keys = ["many:m", "many:r", "many:p", "many:x", "many:x"]
      const exits = yield* a.cache.getOrSetMany(keys.map((key) => ({ key, lookup: origin.value(`loaded ${key}`) })), policy())
      const hits = exits.map((exit) => (exit._tag === "Success" ? exit.value : undefined))
      assert.deepStrictEqual(hits.map((h) => h?.status), ["HIT-MEMORY", "HIT-REDIS", "HIT-POSTGRES", "MISS", "MISS"])
      assert.deepStrictEqual(hits.map((h) => h && text(h)), ["in memory", "in redis", "in postgres", "loaded many:x", "loaded many:x"])
      assert.strictEqual(origin.calls(), 1, "the duplicated missing key is loaded once")
      const batches = (tier: string) => a.stats.lookups.filter(([t]) => t === tier).length
      // One lookup is counted per key asked: Redis was asked for the 4 keys memory missed, PostgreSQL for the 3 Redis missed.
      assert.strictEqual(batches("redis"), 4)
      assert.strictEqual(batches("postgres"), 3)
    }))
})

// ---- expiry ---------------------------------------------------------------------------------------

describe("TieredCache real expiry", () => {
  it.scopedLive("entries go stale, then expire, on Redis and PostgreSQL (live clock)", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      // Readers with an empty memory: b reads Redis first, c only has PostgreSQL.
      const b = yield* instance({ ...shared, ...iso })
      const c = yield* instance({ databaseUrl, schema: iso.schema })
      const origin = makeOrigin()
      const short = policy({ fresh: "300 millis", grace: "300 millis" })
      const key = "exp:k"
      const first = yield* a.cache.getOrSet(key, origin.value("v1", { tags: ["t"] }), short)
      assertHit(first, "MISS", "v1")
      yield* a.cache.flush
      const created = first.entry.createdAt
      assert.strictEqual(first.entry.freshUntil, created + 300)
      assert.strictEqual(first.entry.staleUntil, created + 600)

      // Stale but within grace: answered from each remote tier as stale.
      yield* Effect.sleep(Math.max(0, created + 380 - (yield* Clock.currentTimeMillis)))
      const fromRedis = Option.getOrThrow(yield* b.cache.get(key))
      const fromPostgres = Option.getOrThrow(yield* c.cache.get(key))
      const now = yield* Clock.currentTimeMillis
      assert.isBelow(now, created + 600, "still within grace when read (the machine was not too slow)")
      assertHit(fromRedis, "HIT-REDIS", "v1", "redis, stale")
      assertHit(fromPostgres, "HIT-POSTGRES", "v1", "postgres, stale")
      assert.isAtLeast(now, fromRedis.entry.freshUntil)

      // Past staleUntil: gone from every tier, and the next getOrSet loads again.
      yield* Effect.sleep(Math.max(0, created + 750 - (yield* Clock.currentTimeMillis)))
      assert.isTrue(Option.isNone(yield* inTier(a.redis, key)), "redis expired it")
      assert.isTrue(Option.isNone(yield* inTier(a.postgres, key)), "postgres no longer serves it")
      for (const [name, inst] of [["a", a], ["b", b], ["c", c]] as const) {
        assert.isTrue(Option.isNone(yield* inst.cache.get(key)), `${name}: gone`)
      }
      assertHit(yield* a.cache.getOrSet(key, origin.value("v2"), short), "MISS", "v2")
      assert.strictEqual(origin.calls(), 2)
    }))
})

describe("TieredCache stale-while-revalidate across instances", () => {
  it.scopedLive("a background refresh takes a fresher copy another instance wrote to Redis instead of calling the origin", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const b = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const shortFresh = policy({ fresh: "200 millis" })
      assertHit(yield* a.cache.getOrSet("swr:k", origin.value("v1"), shortFresh), "MISS", "v1")
      yield* a.cache.flush
      assertHit(yield* b.cache.getOrSet("swr:k", origin.value("unused"), shortFresh), "HIT-REDIS", "v1")
      yield* Effect.sleep("250 millis")
      // a refreshes first (awaiting its load) and writes the new value to Redis.
      assertHit(yield* a.cache.getOrSet("swr:k", origin.value("v2"), { ...shortFresh, staleWhileRevalidate: false }), "MISS", "v2")
      yield* a.cache.flush
      // b still has v1, stale: answered at once; its refresh finds v2 in Redis.
      assertHit(yield* b.cache.getOrSet("swr:k", origin.value("from the origin"), shortFresh), "STALE", "v1")
      yield* eventually(Effect.flatMap(b.memory.get("swr:k"), (found) => ensure(text(found) === "v2", "not refreshed yet")))
      assertHit(yield* b.cache.getOrSet("swr:k", origin.value("from the origin"), shortFresh), "HIT-MEMORY", "v2")
      assert.strictEqual(origin.calls(), 2, "b's refresh did not call the origin")
    }))
})

// ---- invalidation guard -----------------------------------------------------------------------

describe("TieredCache loads and writes overtaken by an invalidation", () => {
  for (const how of ["invalidateTags", "delete"] as const) {
    it.scopedLive(`a load that started before ${how} is answered but not stored`, () =>
      Effect.gen(function*() {
        const iso = yield* isolation(shared)
        const a = yield* instance({ ...shared, ...iso })
        const origin = makeOrigin()
        const key = "ovt:k"
        const gated = yield* origin.gated("old", ["t-ovt"])
        const caller = yield* Effect.fork(a.cache.getOrSet(key, gated.lookup, policy()))
        yield* gated.started
        if (how === "invalidateTags") yield* a.cache.invalidateTags(["t-ovt"])
        else yield* a.cache.delete([key])
        yield* gated.release
        assertHit(yield* Fiber.join(caller), "MISS", "old", "the caller still gets its value")
        yield* a.cache.flush
        assert.isTrue(Option.isNone(yield* a.memory.get(key)), "not in memory")
        assert.isTrue(Option.isNone(yield* inTier(a.redis, key)), "not in redis")
        assert.isTrue(Option.isNone(yield* inTier(a.postgres, key)), "not in postgres")
        assertHit(yield* a.cache.getOrSet(key, origin.value("new", { tags: ["t-ovt"] }), policy()), "MISS", "new", "next get reloads")
        assertHit(yield* a.cache.getOrSet(key, origin.value("newer"), policy()), "HIT-MEMORY", "new", "and stores")
        assert.strictEqual(origin.calls(), 2)
      }))
  }

  it.scopedLive("a write racing with an invalidation never survives in a remote tier", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const keys: Array<string> = []
      for (let round = 0; round < 20; round++) {
        const key = `race:${round}`
        keys.push(key)
        yield* a.cache.set(key, { value: new TextEncoder().encode("old"), contentType: "text/plain", tags: [`t${round}`] }, policy())
        // The write is queued for the remote tiers; the invalidation runs at once.
        if (round % 2 === 0) yield* a.cache.invalidateTags([`t${round}`])
        else yield* a.cache.delete([key])
      }
      yield* a.cache.flush
      for (const key of keys) {
        assert.isTrue(Option.isNone(yield* inTier(a.redis, key)), `${key} not in redis`)
        assert.isTrue(Option.isNone(yield* inTier(a.postgres, key)), `${key} not in postgres`)
        assert.isTrue(Option.isNone(yield* a.cache.get(key)), `${key} gone`)
      }
    }))

  it.scopedLive("clear(namespace) also rejects a load of that namespace in flight", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      const gated = yield* origin.gated("old")
      const caller = yield* Effect.fork(a.cache.getOrSet("clr:k", gated.lookup, policy()))
      yield* gated.started
      yield* a.cache.clear("clr")
      yield* gated.release
      assertHit(yield* Fiber.join(caller), "MISS", "old")
      yield* a.cache.flush
      assert.isTrue(Option.isNone(yield* a.cache.get("clr:k")))
    }))
})

// ---- writer ---------------------------------------------------------------------------------------

describe("TieredCache background writer", () => {
  it.scopedLive("the queue is bounded by bytes too: a stuck tier holds at most writeQueueMaxBytes of values", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const a = yield* instance({
        redisUrl: server.url,
        prefix: "da:",
        writeQueueCapacity: 1_000,
        writeQueueMaxBytes: 10_000,
        writeBatchSize: 1,
        redisTier: { timeout: "300 millis", breaker: false, compressAbove: Infinity }
      })
      const control = yield* redisAdapter(server.url, "control")
      const loaded = (v: string) => ({ value: new TextEncoder().encode(v), contentType: "text/plain", tags: [] })
      yield* control.use("pause", (c) => c.call("CLIENT", "PAUSE", "10000", "WRITE"))
      // 12,000 bytes alone: taken, the lane being empty (a value larger than the bound is not refused for its size).
      yield* a.cache.set("b:0", loaded("x".repeat(12_000)), policy())
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* a.cache.pendingWrites, 1, "the large write is in flight")
      assert.strictEqual(a.stats.writeFailed.redis, 0)
      // The lane holds 12,000 bytes, past its bound: nothing more is taken until it is written.
      yield* a.cache.set("b:1", loaded("y".repeat(100)), policy())
      assert.strictEqual(a.stats.writeFailed.redis, 1, "dropped for the bytes held, with 999 places free")
      // Once the stuck write is done (it times out), the lane takes writes up to the bound again.
      yield* a.cache.flush
      yield* control.use("unpause", (c) => c.call("CLIENT", "UNPAUSE"))
      assert.strictEqual(yield* a.cache.pendingWrites, 0)
      yield* control.use("pause", (c) => c.call("CLIENT", "PAUSE", "10000", "WRITE"))
      // b:1 dropped, b:0 timed out.
      assert.strictEqual(a.stats.writeFailed.redis, 2)
      for (let i = 2; i <= 6; i++) yield* a.cache.set(`b:${i}`, loaded(String(i).repeat(3_000)), policy())
      // 3 × 3,000 bytes fit in 10,000; the 4th and 5th do not.
      assert.strictEqual(yield* a.cache.pendingWrites, 3)
      assert.strictEqual(a.stats.writeFailed.redis, 2 + 2)
      yield* control.use("unpause", (c) => c.call("CLIENT", "UNPAUSE"))
      yield* a.cache.flush
      for (const i of [2, 3, 4]) assert.strictEqual(text(yield* inTier(a.redis, `b:${i}`)), String(i).repeat(3_000))
      for (const i of [5, 6]) assert.isTrue(Option.isNone(yield* inTier(a.redis, `b:${i}`)), `b:${i} dropped`)
      // Every value is still answered from memory.
      for (let i = 0; i <= 6; i++) assert.isTrue(Option.isSome(yield* a.cache.get(`b:${i}`)), `b:${i} in memory`)
    }), 30_000)

  it.scopedLive("the queue is bounded: overflow drops and counts writes, readers never wait for the writer", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const a = yield* instance({
        redisUrl: server.url,
        prefix: "da:",
        writeQueueCapacity: 4,
        writeBatchSize: 2,
        redisTier: { timeout: "300 millis", breaker: false }
      })
      const control = yield* redisAdapter(server.url, "control")
      const loaded = (v: string) => ({ value: new TextEncoder().encode(v), contentType: "text/plain", tags: [] })
      // Redis holds every write until UNPAUSE: the writer's first write is stuck in flight.
      yield* control.use("pause", (c) => c.call("CLIENT", "PAUSE", "10000", "WRITE"))
      yield* a.cache.set("w:0", loaded("v0"), policy())
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* a.cache.pendingWrites, 1, "the first write is in flight")
      for (let i = 1; i <= 20; i++) yield* a.cache.set(`w:${i}`, loaded(`v${i}`), policy())
      // 4 fit in the queue behind the stuck write; the other 16 were dropped and counted.
      assert.strictEqual(a.stats.writeFailed.redis, 16)
      assert.strictEqual(yield* a.cache.pendingWrites, 5, "the writer is still stuck: nobody waited for it")
      for (let i = 0; i <= 20; i++) {
        assertHit(Option.getOrThrow(yield* a.cache.get(`w:${i}`)), "HIT-MEMORY", `v${i}`, `w:${i}`)
      }
      // The stuck writes time out and are counted too.
      yield* a.cache.flush
      assert.strictEqual(a.stats.writeFailed.redis, 21)
      yield* control.use("unpause", (c) => c.call("CLIENT", "UNPAUSE"))
      yield* a.cache.set("w:after", loaded("after"), policy())
      yield* a.cache.flush
      assert.strictEqual(a.stats.writeFailed.redis, 21, "the writer works again")
      assert.strictEqual(text(yield* inTier(a.redis, "w:after")), "after")
      // The dropped writes never reached Redis.
      for (let i = 5; i <= 20; i++) assert.isTrue(Option.isNone(yield* inTier(a.redis, `w:${i}`)), `w:${i} dropped`)
    }))

  it.scopedLive("each tier has its own queue: with Redis stuck, PostgreSQL still gets every write", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const iso = yield* isolation(shared)
      const a = yield* instance({
        redisUrl: server.url,
        databaseUrl,
        schema: iso.schema,
        prefix: "da:",
        writeQueueCapacity: 4,
        writeBatchSize: 2,
        redisTier: { timeout: "2 seconds", breaker: false }
      })
      const control = yield* redisAdapter(server.url, "control")
      const loaded = (v: string) => ({ value: new TextEncoder().encode(v), contentType: "text/plain", tags: [] })
      // Redis holds every write until UNPAUSE: the Redis lane is stuck for 2 s per batch.
      yield* control.use("pause", (c) => c.call("CLIENT", "PAUSE", "10000", "WRITE"))
      for (let i = 0; i < 20; i++) {
        yield* a.cache.set(`p:${i}`, loaded(`v${i}`), policy())
        yield* Effect.sleep("20 millis")
      }
      // The PostgreSQL lane kept pace while Redis' queue overflowed.
      assert.strictEqual(a.stats.writeFailed.postgres, 0, "no PostgreSQL write dropped")
      assert.isAbove(a.stats.writeFailed.redis, 0, "Redis' own queue overflowed")
      yield* eventually(Effect.gen(function*() {
        for (let i = 0; i < 20; i++) yield* ensure(text(yield* inTier(a.postgres!, `p:${i}`)) === `v${i}`, `p:${i} in PostgreSQL`)
      }), "3 seconds")
      yield* control.use("unpause", (c) => c.call("CLIENT", "UNPAUSE"))
      yield* a.cache.flush
    }))

  it.scopedLive("a failing remote write is counted and logged; the value is still served from memory", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const logs: Array<string> = []
      const capture = Logger.make(({ message }) => {
        logs.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
      })
      const a = yield* instance({ redisUrl: server.url, prefix: "da:", redisTier: { breaker: false } }).pipe(
        Effect.locallyWith(FiberRef.currentLoggers, HashSet.add(capture))
      )
      const loaded = { value: new TextEncoder().encode("kept"), contentType: "text/plain", tags: [] }
      yield* a.cache.set("f:ok", loaded, policy())
      yield* a.cache.flush
      assert.strictEqual(a.stats.writeFailed.redis, 0)
      assert.strictEqual(text(yield* inTier(a.redis, "f:ok")), "kept")

      yield* Effect.promise(() => server.kill())
      yield* a.cache.set("f:k", loaded, policy())
      yield* a.cache.flush
      assert.strictEqual(a.stats.writeFailed.redis, 1)
      assert.isTrue(logs.some((line) => line.includes("remote write failed")), `logged: ${logs.join(" | ")}`)
      assertHit(Option.getOrThrow(yield* a.cache.get("f:k")), "HIT-MEMORY", "kept")
      assertHit(yield* a.cache.getOrSet("f:k", Effect.die("not called"), policy()), "HIT-MEMORY", "kept")
    }))
})

describe("TieredCache namespaces", () => {
  it.scopedLive("dropMemory drops every namespace this cache stored in memory, and only memory", () =>
    Effect.gen(function*() {
      const iso = yield* isolation(shared)
      const a = yield* instance({ ...shared, ...iso })
      const origin = makeOrigin()
      for (const key of ["n1:a", "n2:b", "n3:c"]) yield* a.cache.getOrSet(key, origin.value(key), policy())
      yield* a.cache.flush
      yield* a.cache.dropMemory([])
      assert.strictEqual(a.memory.stats().entries, 0)
      assert.strictEqual(a.stats.memoryDropped, 1)
      // The remote tiers still have them.
      assertHit(Option.getOrThrow(yield* a.cache.get("n2:b")), "HIT-REDIS", "n2:b")
      const sql = yield* sqlClient(databaseUrl)
      const rows = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(a.postgres!.table)}`
      assert.strictEqual(rows[0]?.n, 3)
    }))
})
