/**
 * The tiered cache while one remote tier's server dies and comes back: a private redis-server
 * (with the shared PostgreSQL, in a schema of its own), then a private PostgreSQL (with the
 * shared Redis, under a prefix of its own). Reads keep succeeding from the other tiers or the
 * origin, each within a bound; writes to the dead tier are skipped and counted; after the restart
 * the tier is written and read again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Effect, Either, Option } from "effect"
import { inject } from "vitest"
import type { TierName } from "../../src/cache/CacheTier.js"
import { postgresServer, redisServer } from "../support/services.js"
import {
  assertHit,
  ensure,
  eventually,
  inTier,
  instance,
  type Instance,
  isolation,
  itemAt,
  makeOrigin,
  policy,
  sqlClient,
  text
} from "./tiered-fixtures.js"

const redisUrl = inject("redisUrl")
const databaseUrl = inject("databaseUrl")

/** Bound on one read while a tier is down: the tier's timeout (500 ms) plus slack for a busy machine. */
const READ_BOUND_MS = 1_500

/**
 * Reads 20 cold keys while `dead` is down: the 10 the surviving tier holds are answered from it,
 * the 10 nobody holds from the origin; none fails, each within the bound.
 */
const readsWhileDown = (a: Instance, dead: TierName, surviving: "HIT-REDIS" | "HIT-POSTGRES") =>
  Effect.gen(function*() {
    const origin = makeOrigin()
    for (let i = 0; i < 20; i++) {
      const key = `down:${i}`
      const start = yield* Clock.currentTimeMillis
      const hit = yield* a.cache.getOrSet(key, origin.value(`origin ${i}`), policy())
      const elapsed = (yield* Clock.currentTimeMillis) - start
      assert.isBelow(elapsed, READ_BOUND_MS, `${key} answered within the bound`)
      if (i % 2 === 0) assertHit(hit, surviving, `held ${i}`, key)
      else assertHit(hit, "MISS", `origin ${i}`, key)
    }
    assert.strictEqual(origin.calls(), 10)
    assert.isTrue(a.stats.lookups.some(([tier, outcome]) => tier === dead && outcome === "error"), `${dead} failed reads were seen`)
    // The loaded values were queued for both remote tiers: the dead one's writes failed and were counted.
    yield* a.cache.flush
    assert.isAtLeast(a.stats.writeFailed[dead], 10)
    // They are served from memory meanwhile.
    for (let i = 1; i < 20; i += 2) assertHit(yield* a.cache.getOrSet(`down:${i}`, origin.value("x"), policy()), "HIT-MEMORY", `origin ${i}`)
  })

describe("TieredCache with a remote tier that dies", () => {
  it.scopedLive("Redis killed: reads keep succeeding from PostgreSQL or the origin; after a restart Redis is hit again", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const iso = yield* isolation({ databaseUrl })
      const options = {
        redisUrl: server.url,
        databaseUrl,
        prefix: "da:",
        schema: iso.schema,
        redisTier: { breaker: { cooldown: "300 millis", consecutiveFailures: 3 } }
      } as const
      const a = yield* instance(options)
      const now = yield* Clock.currentTimeMillis
      // Half of the keys exist in PostgreSQL only.
      for (let i = 0; i < 20; i += 2) yield* a.postgres!.set(`down:${i}`, itemAt(now, `down:${i}`, `held ${i}`).entry)

      yield* Effect.promise(() => server.kill())
      yield* readsWhileDown(a, "redis", "HIT-POSTGRES")

      yield* Effect.promise(() => server.restart())
      // Once Redis is reachable again (reconnection, breaker cooldown), writes reach it.
      const loaded = { value: new TextEncoder().encode("after restart"), contentType: "text/plain", tags: [] }
      yield* eventually(Effect.gen(function*() {
        yield* a.cache.set("back:k", loaded, policy())
        yield* a.cache.flush
        yield* ensure(text(yield* inTier(a.redis, "back:k")) === "after restart", "not in Redis yet")
      }))
      // A second instance with an empty memory finds it in Redis.
      const b = yield* instance(options)
      assertHit(Option.getOrThrow(yield* b.cache.get("back:k")), "HIT-REDIS", "after restart")
    }), 60_000)

  it.scopedLive("PostgreSQL killed: reads keep succeeding from Redis or the origin; after a restart PostgreSQL is hit again", () =>
    Effect.gen(function*() {
      const server = yield* postgresServer()
      const iso = yield* isolation({ redisUrl })
      const options = {
        redisUrl,
        databaseUrl: server.url,
        prefix: iso.prefix,
        postgresTier: { timeout: "500 millis", breaker: { cooldown: "300 millis", consecutiveFailures: 3 } }
      } as const
      const a = yield* instance(options)
      const now = yield* Clock.currentTimeMillis
      // Half of the keys exist in Redis only.
      for (let i = 0; i < 20; i += 2) yield* a.redis!.set(`down:${i}`, itemAt(now, `down:${i}`, `held ${i}`).entry)

      yield* Effect.promise(() => server.kill())
      yield* readsWhileDown(a, "postgres", "HIT-REDIS")

      yield* Effect.promise(() => server.restart())
      const loaded = { value: new TextEncoder().encode("after restart"), contentType: "text/plain", tags: [] }
      yield* eventually(Effect.gen(function*() {
        yield* a.cache.set("back:k", loaded, policy())
        yield* a.cache.flush
        yield* ensure(text(yield* inTier(a.postgres, "back:k")) === "after restart", "not in PostgreSQL yet")
      }), "20 seconds")
      // A second instance with an empty memory and no Redis finds it in PostgreSQL.
      const b = yield* instance({ databaseUrl: server.url })
      assertHit(Option.getOrThrow(yield* b.cache.get("back:k")), "HIT-POSTGRES", "after restart")
    }), 60_000)
})

describe("TieredCache fail-safe read", () => {
  it.scopedLive("a stalled PostgreSQL opens its read breaker; when the origin then fails, the copy PostgreSQL holds is answered, a refusal is not", () =>
    Effect.gen(function*() {
      const iso = yield* isolation({ databaseUrl })
      const a = yield* instance({
        databaseUrl,
        schema: iso.schema,
        postgresTier: { timeout: "200 millis", breaker: { consecutiveFailures: 2, cooldown: "1 minute" } }
      })
      const now = yield* Clock.currentTimeMillis
      // Held only by PostgreSQL: fresh for a moment, then stale within a long grace.
      yield* a.postgres!.set("fs:held", itemAt(now, "fs:held", "held", { freshMs: 1, ttlMs: 60_000 }).entry)
      yield* a.postgres!.set("fs:refused", itemAt(now, "fs:refused", "old", { freshMs: 1, ttlMs: 60_000 }).entry)

      // Another session locks the table: reads wait, no statement completes, the reads' breaker opens.
      const sql = yield* sqlClient(databaseUrl)
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      yield* Effect.forkScoped(sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`LOCK TABLE ${a.postgres!.table} IN ACCESS EXCLUSIVE MODE`)
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(release)
      })))
      yield* Deferred.await(locked)
      for (let i = 0; i < 2; i++) {
        const stalled = yield* Effect.either(a.postgres!.get("fs:held"))
        assert.isTrue(Either.isLeft(stalled) && stalled.left.busy !== true, "a stalled read times out and counts")
      }
      yield* Deferred.succeed(release, undefined)
      const open = yield* Effect.either(a.postgres!.get("fs:held"))
      assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError", "the reads' breaker is open")

      // The origin is down: the read path found nothing (open breaker), the fail-safe read does.
      const origin = makeOrigin()
      const hit = yield* a.cache.getOrSet("fs:held", origin.failing, policy())
      assert.strictEqual(text(hit), "held")
      assert.strictEqual(hit.status, "STALE")
      assert.strictEqual(origin.calls(), 1)

      // A refusal is the answer: no copy stands in for it.
      const refusal = yield* Effect.either(
        a.cache.getOrSet("fs:refused", origin.failing, policy({ isRefusal: (error) => (error as { _tag?: string })._tag === "OriginDown" }))
      )
      assert.isTrue(Either.isLeft(refusal) && refusal.left._tag === "OriginDown")
    }), 30_000)
})
