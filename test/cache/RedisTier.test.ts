import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, Context, Effect, Either, Exit, Layer, Option, Redacted, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import { syncBuiltinESMExports } from "node:module"
import zlibModule from "node:zlib"
import { inject, vi } from "vitest"
import type { TierError } from "../../src/cache/CacheTier.js"
import * as Envelope from "../../src/cache/Envelope.js"
import * as RedisTier from "../../src/cache/RedisTier.js"
import { Redis } from "../../src/redis/Redis.js"
import * as RedisAdapter from "../../src/redis/Redis.js"
import { redisServer } from "../support/services.js"
import { entryAt, freshNamespace, Harness, tierConformance } from "./conformance.js"

const COMPRESS_ABOVE = 16 * 1024

const adapter = (url: string) =>
  RedisAdapter.layer({
    url: Redacted.make(url),
    connectTimeout: "1 second",
    commandTimeout: "250 millis",
    connectionName: "cache-spec"
  })

/** Waits until the adapter's connection is up (the adapter fails fast while it connects). */
const untilReady = Effect.flatMap(Redis, (redis) =>
  redis.use("ping", (c) => c.ping()).pipe(Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 })))

/** Every key under `prefix`, scanned (the spec's own view, independent of the tier). */
const keysUnder = (pattern: string) =>
  Effect.flatMap(Redis, (redis) =>
    Effect.gen(function*() {
      const found: Array<string> = []
      yield* RedisAdapter.scanEach(
        redis,
        "scan",
        (c, cursor) => c.scan(cursor, "MATCH", pattern, "COUNT", 1000),
        (keys) => Effect.sync(() => found.push(...keys))
      )
      return found
    }))

/** Removes every key under `prefix` when the scope closes. */
const cleanUp = (prefix: string) =>
  Effect.addFinalizer(() =>
    Effect.flatMap(keysUnder(`${RedisTier.escapeGlob(prefix)}*`), (keys) =>
      keys.length === 0 ? Effect.void : Effect.flatMap(Redis, (redis) => redis.use("unlink", (c) => c.unlink(...keys))))
      .pipe(Effect.ignore)
  )

const sharedRedis = adapter(inject("redisUrl"))
const prefix = `spec:${freshNamespace("redis")}:`

const harness = Layer.scoped(
  Harness,
  Effect.gen(function*() {
    yield* untilReady
    yield* cleanUp(prefix)
    const redis = yield* Redis
    const tier = yield* RedisTier.make({ prefix, compressAbove: COMPRESS_ABOVE })
    return {
      tier,
      compressAbove: COMPRESS_ABOVE,
      writeRaw: (key: string, bytes: Uint8Array, ttlMs: number) =>
        redis.use("set", (c) => c.set(RedisTier.entryKey(prefix, key), Buffer.from(bytes), "PX", ttlMs)),
      readRaw: (key: string) =>
        Effect.map(
          redis.use("get", (c) => c.getBuffer(RedisTier.entryKey(prefix, key))),
          (found) => Option.map(Option.fromNullable(found), (b): Uint8Array => b)
        )
    }
  })
).pipe(Layer.provide(sharedRedis))

tierConformance("RedisTier conformance", harness, { clock: "live", shortTtlMs: 300 })

/** A tier over the shared Redis under a prefix of its own, cleaned up with the scope. */
const scopedTier = (options: RedisTier.RedisTierOptions = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(sharedRedis)
    const own = options.prefix ?? `spec:${freshNamespace("redis")}:`
    yield* Effect.provide(untilReady, context)
    yield* Effect.provide(cleanUp(own), context)
    const tier = yield* Effect.provide(RedisTier.make({ ...options, prefix: own }), context)
    const run = <A, E>(effect: Effect.Effect<A, E, Redis>) => Effect.provide(effect, context)
    return { tier, prefix: own, redis: Context.get(context, Redis), run }
  })

describe("RedisTier on a shared Redis", () => {
  it.scopedLive("entries carry their site: a gateway of another site on the same prefix reads them as misses", () =>
    Effect.gen(function*() {
      const { tier: siteA, prefix: shared } = yield* scopedTier({ site: "aaaaaaaaaaaa" })
      const { tier: siteB } = yield* scopedTier({ prefix: shared, site: "bbbbbbbbbbbb" })
      const { tier: sameSite } = yield* scopedTier({ prefix: shared, site: "aaaaaaaaaaaa" })
      const now = yield* Clock.currentTimeMillis
      yield* siteA.set("content:anon:1:0:html", entryAt(now, "site a's item", { ttlMs: 60_000 }))
      const other = yield* siteB.get("content:anon:1:0:html")
      assert.isTrue(Option.isNone(other), "another site's entry is a miss")
      const same = yield* sameSite.get("content:anon:1:0:html")
      assert.isTrue(Option.isSome(same), "the same site reads it")
    }))

  it.scopedLive("key layout: entries under <prefix>e:, tag sets under <prefix>t:", () =>
    Effect.gen(function*() {
      const { tier, prefix: own, redis } = yield* scopedTier()
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:k", entryAt(now, "v", { tags: ["t1"], ttlMs: 60_000 }))
      const ttl = yield* redis.use("pttl", (c) => c.pttl(`${own}e:ns:k`))
      assert.isAbove(ttl, 55_000)
      assert.isAtMost(ttl, 60_000)
      assert.deepStrictEqual(yield* redis.use("smembers", (c) => c.smembers(`${own}t:t1`)), [`${own}e:ns:k`])
    }))

  it.scopedLive("clear removes every key of a namespace with > 1,000 keys and nothing else", () =>
    Effect.gen(function*() {
      const { tier, prefix: own, run } = yield* scopedTier()
      // The same namespace under another prefix: another gateway sharing this Redis.
      const { tier: neighbour, prefix: neighbourPrefix } = yield* scopedTier()
      const now = yield* Clock.currentTimeMillis
      const many = Array.from({ length: 1_500 }, (_, i) => ({ key: `big:${i}`, entry: entryAt(now, `v${i}`) }))
      yield* tier.setMany(many)
      yield* tier.setMany(Array.from({ length: 10 }, (_, i) => ({ key: `keep:${i}`, entry: entryAt(now, "k") })))
      yield* tier.setMany(Array.from({ length: 10 }, (_, i) => ({ key: `bigger:${i}`, entry: entryAt(now, "k") })))
      yield* neighbour.setMany(Array.from({ length: 10 }, (_, i) => ({ key: `big:${i}`, entry: entryAt(now, "n") })))
      assert.strictEqual((yield* run(keysUnder(`${own}e:big:*`))).length, 1_500)

      yield* tier.clear("big")
      assert.strictEqual((yield* run(keysUnder(`${own}e:big:*`))).length, 0)
      assert.strictEqual((yield* run(keysUnder(`${own}e:keep:*`))).length, 10)
      assert.strictEqual((yield* run(keysUnder(`${own}e:bigger:*`))).length, 10)
      assert.strictEqual((yield* run(keysUnder(`${neighbourPrefix}e:big:*`))).length, 10)
      assert.isTrue(Option.isNone(yield* tier.get("big:0")))
      assert.isTrue(Option.isSome(yield* neighbour.get("big:0")))
    }))

  it.scopedLive("a tag set lives at least as long as its longest member", () =>
    Effect.gen(function*() {
      const { tier, prefix: own, redis } = yield* scopedTier()
      const now = yield* Clock.currentTimeMillis
      const set = `${own}t:shared`
      const pttl = redis.use("pttl", (c) => c.pttl(set))
      yield* tier.set("ns:a", entryAt(now, "a", { tags: ["shared"], ttlMs: 10_000 }))
      assert.isAbove(yield* pttl, 9_000)
      yield* tier.set("ns:b", entryAt(now, "b", { tags: ["shared"], ttlMs: 60_000 }))
      assert.isAbove(yield* pttl, 59_000, "extended to the longer member")
      yield* tier.set("ns:c", entryAt(now, "c", { tags: ["shared"], ttlMs: 5_000 }))
      assert.isAbove(yield* pttl, 59_000, "never shortened by a shorter member")
      assert.strictEqual(yield* redis.use("scard", (c) => c.scard(set)), 3)
    }))

  it.scopedLive("invalidateTags pages through a large tag set and keeps overwritten members", () =>
    Effect.gen(function*() {
      const { tier, prefix: own, redis, run } = yield* scopedTier({ pageSize: 100 })
      const now = yield* Clock.currentTimeMillis
      const items = Array.from({ length: 1_200 }, (_, i) => ({
        key: `inv:${i}`,
        entry: entryAt(now, `v${i}`, { tags: ["bulk", `own-${i % 3}`] })
      }))
      yield* tier.setMany(items)
      // Rewrite some members without the tag: they stay in the set but must survive.
      yield* tier.setMany(Array.from({ length: 5 }, (_, i) => ({ key: `inv:${i}`, entry: entryAt(now, "retagged") })))
      // A member whose entry has a long header (many tags) is read in a second step.
      const longTags = Array.from({ length: 400 }, (_, i) => `long-tag-${i}`)
      yield* tier.set("inv:long", entryAt(now, "long", { tags: ["bulk", ...longTags] }))
      yield* tier.invalidateTags(["bulk"])
      assert.deepStrictEqual((yield* run(keysUnder(`${own}e:inv:*`))).sort(), [0, 1, 2, 3, 4].map((i) => `${own}e:inv:${i}`))
      // What remains in the set are the non-carriers only.
      assert.strictEqual(yield* redis.use("scard", (c) => c.scard(`${own}t:bulk`)), 5)
    }))
})

/** Runs `effect`, returns its failure (asserting it failed) and the elapsed milliseconds. */
const timedFailure = <A>(effect: Effect.Effect<A, TierError>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const result = yield* Effect.either(effect)
    const elapsed = (yield* Clock.currentTimeMillis) - start
    assert.isTrue(Either.isLeft(result), "expected a failure")
    return { error: (result as Either.Left<TierError, A>).left, elapsed }
  })

describe("RedisTier against a private Redis that dies", () => {
  it.scopedLive("fails fast with TierError while Redis is down and works again after a restart", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const context = yield* Layer.build(adapter(server.url))
      const tier = yield* Effect.provide(
        RedisTier.make({ prefix: "da:", timeout: "500 millis", breaker: { cooldown: "300 millis", consecutiveFailures: 3 } }),
        context
      )
      const now = yield* Clock.currentTimeMillis
      const entry = entryAt(now, "survivor", { tags: ["t"] })
      yield* tier.set("ns:k", entry).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 40 }))
      assert.isTrue(Option.isSome(yield* tier.get("ns:k")))

      yield* Effect.promise(() => server.kill())
      const ops: ReadonlyArray<readonly [string, Effect.Effect<unknown, TierError>]> = [
        ["getMany", tier.getMany(["ns:k"])],
        ["setMany", tier.set("ns:k", entry)],
        ["delete", tier.delete(["ns:k"])],
        ["invalidateTags", tier.invalidateTags(["t"])],
        ["clear", tier.clear("ns")]
      ]
      for (const [op, effect] of ops) {
        const { error, elapsed } = yield* timedFailure(effect)
        assert.strictEqual(error._tag, "TierError")
        assert.strictEqual(error.tier, "redis")
        assert.strictEqual(error.op, op)
        assert.isBelow(elapsed, 1_000, `${op} failed within the bound`)
      }
      // After repeated failures the breaker answers without touching the connection.
      const { error } = yield* timedFailure(tier.get("ns:k"))
      assert.strictEqual((error.cause as { _tag?: string })._tag, "CircuitOpenError")

      yield* Effect.promise(() => server.restart())
      yield* tier.set("ns:k", entry).pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 }))
      // Reads have a breaker of their own: it lets a trial read through once its cooldown is over.
      const back = yield* tier.get("ns:k").pipe(Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 20 }))
      assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(back).value), "survivor")
    }), 30_000)

  it.scopedLive("a command that outlives the timeout fails with TierError at the bound", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const context = yield* Layer.build(adapter(server.url))
      const redis = Context.get(context, Redis)
      const tier = yield* Effect.provide(RedisTier.make({ timeout: "200 millis", breaker: false }), context)
      yield* Effect.provide(untilReady, context)
      // A stalled server: CLIENT PAUSE holds every client's commands for 1.5 s.
      yield* redis.use("pause", (c) => c.call("CLIENT", "PAUSE", "1500", "ALL"))
      const { error, elapsed } = yield* timedFailure(tier.get("ns:k"))
      assert.strictEqual(error.op, "getMany")
      assert.isBelow(elapsed, 600)
      assert.isTrue(
        Cause.isTimeoutException(error.cause) || String((error.cause as { cause?: unknown }).cause).includes("timed out"),
        `timed out, got ${String(error.cause)}`
      )
    }), 30_000)
})

/** A tier over a redis-server of its own (a spec may pause or kill it), connected. */
const privateTier = (options: RedisTier.RedisTierOptions) =>
  Effect.gen(function*() {
    const server = yield* redisServer()
    const context = yield* Layer.build(adapter(server.url))
    yield* Effect.provide(untilReady, context)
    const tier = yield* Effect.provide(RedisTier.make({ prefix: "da:", ...options }), context)
    return { server, tier, redis: Context.get(context, Redis) }
  })

describe("RedisTier reads and the breaker", () => {
  it.scopedLive("a stalled server's timeouts count and open the breaker; the fail-safe read passes it; replies are counted as progress", () =>
    Effect.gen(function*() {
      const { redis, tier } = yield* privateTier({ timeout: "50 millis", breaker: { consecutiveFailures: 3, cooldown: "1 minute" } })
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:small", entryAt(now, "small"))
      // The progress a timed-out read is judged by: chunks received on the read connection.
      const before = redis.received()
      assert.isTrue(Option.isSome(yield* tier.get("ns:small")))
      assert.isAbove(redis.received(), before, "a reply is progress")

      // A stalled server (CLIENT PAUSE): no reply arrives, the timeouts count and open the breaker.
      yield* redis.use("pause", (c) => c.call("CLIENT", "PAUSE", "500", "ALL"))
      for (let i = 0; i < 3; i++) {
        const stalled = yield* Effect.either(tier.get("ns:small"))
        assert.isTrue(Either.isLeft(stalled) && Cause.isTimeoutException(stalled.left.cause), "a stalled read fails at its bound")
        assert.isTrue(Either.isLeft(stalled) && stalled.left.busy === false, "with no reply meanwhile: not busy")
      }
      yield* Effect.sleep("700 millis")
      const open = yield* Effect.either(tier.get("ns:small"))
      assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError", "the breaker is open")
      // The fail-safe read skips the open breaker (the server answers again).
      const failSafe = yield* tier.getMany(["ns:small"], { failSafe: true })
      assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(failSafe[0]!).value), "small")
    }), 60_000)
})

describe("RedisTier value bound", () => {
  it.scopedLive("an entry larger than maxValueBytes is not written and removes the older copy of its key", () =>
    Effect.gen(function*() {
      const { tier, prefix: own, redis } = yield* scopedTier({ maxValueBytes: 4096, compressAbove: Number.MAX_SAFE_INTEGER })
      const now = yield* Clock.currentTimeMillis
      yield* tier.setMany([{ key: "ns:a", entry: entryAt(now, "small") }, { key: "ns:b", entry: entryAt(now, "kept") }])
      yield* tier.setMany([{ key: "ns:a", entry: entryAt(now, "y".repeat(8192)) }, { key: "ns:c", entry: entryAt(now, "z".repeat(8192)) }])
      const [a, b, c] = yield* tier.getMany(["ns:a", "ns:b", "ns:c"])
      assert.isTrue(Option.isNone(a!), "the older copy of a is gone")
      assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(b!).value), "kept")
      assert.isTrue(Option.isNone(c!))
      const raw = yield* redis.use("exists", (c) => c.exists(RedisTier.entryKey(own, "ns:a"), RedisTier.entryKey(own, "ns:c")))
      assert.strictEqual(raw, 0)
    }))
})

describe("RedisTier value bound, backfill", () => {
  it.scopedLive("a value read from another tier whose envelope there passed the bound is turned down without compressing it again", () =>
    Effect.gen(function*() {
      const { tier, prefix: own, redis } = yield* scopedTier({ maxValueBytes: 4096, compressAbove: 1024 })
      const now = yield* Clock.currentTimeMillis
      // Text that gzip cannot shrink under the bound: 64 KiB of hex.
      const body = randomBytes(32 * 1024).toString("hex")
      const stored = yield* Envelope.encode(entryAt(now, body), { compressAbove: 1024 })
      assert.isAbove(stored.byteLength, 4096)
      // As PostgreSQL's read gives it: decoded from its envelope.
      const read = Option.getOrThrow(yield* Envelope.decode(stored))
      assert.strictEqual(Envelope.storedLengthOf(read.value), stored.byteLength)
      yield* tier.setMany([{ key: "ns:big", entry: entryAt(now, "older") }])
      const spy = vi.spyOn(zlibModule, "gzip")
      syncBuiltinESMExports()
      try {
        yield* tier.setMany([{ key: "ns:big", entry: read }, { key: "ns:fits", entry: entryAt(now, "z".repeat(8192)) }])
        // Only the value that fits was compressed (8 KiB of one letter: a few dozen bytes).
        assert.strictEqual(spy.mock.calls.length, 1)
      } finally {
        spy.mockRestore()
        syncBuiltinESMExports()
      }
      const [big, fits] = yield* tier.getMany(["ns:big", "ns:fits"])
      assert.isTrue(Option.isNone(big!), "the older copy is removed, as for any value over the bound")
      assert.strictEqual(Option.getOrThrow(fits!).value.byteLength, 8192)
      const raw = yield* redis.use("exists", (c) => c.exists(RedisTier.entryKey(own, "ns:big")))
      assert.strictEqual(raw, 0)
    }))
})

describe("RedisTier write batches", () => {
  it.scopedLive("write batches that outlive their bound open the writes' breaker only: reads go on", () =>
    Effect.gen(function*() {
      const { redis, tier } = yield* privateTier({ writeTimeout: "200 millis", breaker: { consecutiveFailures: 3, cooldown: "1 minute" } })
      const now = yield* Clock.currentTimeMillis
      yield* tier.set("ns:kept", entryAt(now, "kept"))
      // Writes stall (CLIENT PAUSE WRITE holds every write command; reads go on).
      yield* redis.use("pause", (c) => c.call("CLIENT", "PAUSE", "3000", "WRITE"))
      for (let i = 0; i < 3; i++) {
        const failed = yield* Effect.either(tier.set(`ns:new:${i}`, entryAt(now, "new")))
        assert.isTrue(Either.isLeft(failed) && failed.left.op === "setMany", "a write batch over its bound fails")
      }
      const open = yield* Effect.either(tier.set("ns:new:3", entryAt(now, "new")))
      assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError", "the writes' breaker is open")
      // The reads' breaker saw none of it, and reads are not queued behind the stalled writes.
      const read = yield* tier.get("ns:kept")
      assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(read).value), "kept")
    }), 30_000)
})

describe("RedisTier options", () => {
  it.effect("an out-of-range page size dies at construction", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(RedisTier.make({ pageSize: 0 }).pipe(Effect.provide(sharedRedis)))
      assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die")
    }))
})
