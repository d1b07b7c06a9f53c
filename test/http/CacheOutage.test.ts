/**
 * The whole gateway with real Redis and PostgreSQL and the simulator as origin: a cold key under
 * 1000 concurrent requests, and a Redis that dies and comes back during a run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect } from "effect"
import { inject } from "vitest"
import { redisServer } from "../support/services.js"
import { sqlClient } from "../cache/tiered-fixtures.js"
import { startGateway } from "./fixtures.js"

let run = 0
const unique = () => `o${process.pid}_${Date.now().toString(36)}_${run++}`

describe("cache tiers under load and outage, through the gateway", () => {
  it.scopedLive("1000 concurrent requests for one cold item cost one origin call", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({
        REDIS_URL: inject("redisUrl"),
        CACHE_REDIS_PREFIX: `${unique()}:`,
        DATABASE_URL: inject("databaseUrl"),
        CACHE_PG_TABLE: unique()
      })
      const free = sim.corpus.items.find((i) => i.access === "free")!
      yield* sim.setFaults({ latency: { kind: "fixed", ms: 200 } })
      yield* sim.reset
      const answers = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 1000 }, () => request(`/content/${free.id}?include_content=false`)))
      )
      assert.isTrue(answers.every((a) => a.status === 200 && a.body.id === free.id))
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1)
    }), 60_000)

  it.scopedLive("Redis killed mid-run: requests keep succeeding from PostgreSQL and the origin; after a restart Redis hits resume", () =>
    Effect.gen(function*() {
      const redis = yield* redisServer()
      const config = {
        REDIS_URL: redis.url,
        CACHE_REDIS_PREFIX: `${unique()}:`,
        DATABASE_URL: inject("databaseUrl"),
        CACHE_PG_TABLE: unique(),
        CACHE_REDIS_TIMEOUT_MS: "200"
      }
      const { request, sim } = yield* startGateway(config)
      const free = sim.corpus.items.filter((i) => i.access === "free").slice(0, 6).map((i) => i.id)
      const [a, b, c, d] = free
      const warm = yield* Effect.promise(() => request(`/content/${a}?include_content=false`))
      assert.strictEqual(warm.headers.get("x-cache"), "MISS")

      yield* Effect.promise(() => redis.kill())
      // With Redis dead: new keys load from the origin, known ones answer from memory; nothing fails.
      for (const id of [a, b, c]) {
        const res = yield* Effect.promise(() => request(`/content/${id}?include_content=false`))
        assert.strictEqual(res.status, 200, `item ${id} with Redis down`)
        assert.strictEqual(res.body.id, id)
      }
      const health = yield* Effect.promise(() => request("/health"))
      assert.strictEqual(health.status, 503, "readiness reports the dead Redis")

      yield* Effect.promise(() => redis.restart())
      // A value loaded once Redis is back reaches Redis: a second instance with an empty memory
      // tier and no PostgreSQL answers it from Redis.
      const fresh = yield* Effect.promise(() => request(`/content/${d}?include_content=false`))
      assert.strictEqual(fresh.status, 200)
      let answered = ""
      for (let attempt = 0; attempt < 50 && answered !== "HIT-REDIS"; attempt++) {
        yield* Effect.sleep("100 millis")
        answered = yield* Effect.scoped(Effect.gen(function*() {
          const { request: second } = yield* startGateway({ REDIS_URL: config.REDIS_URL, CACHE_REDIS_PREFIX: config.CACHE_REDIS_PREFIX })
          const res = yield* Effect.promise(() => second(`/content/${d}?include_content=false`))
          return res.headers.get("x-cache") ?? ""
        }))
      }
      assert.strictEqual(answered, "HIT-REDIS")
    }), 60_000)
})

describe("fail-safe reads through the gateway", () => {
  it.scopedLive("the origin fails while PostgreSQL's read breaker is open: a Markdown document and an item PostgreSQL holds are answered stale, not 5xx", () =>
    Effect.gen(function*() {
      const table = unique()
      const config = {
        DATABASE_URL: inject("databaseUrl"),
        CACHE_PG_TABLE: table,
        CACHE_PG_TIMEOUT_MS: "200",
        CACHE_BREAKER_COOLDOWN_MS: "60000",
        CACHE_MARKDOWN_FRESH_MS: "1",
        CACHE_CONTENT_FRESH_MS: "1"
      }
      // Anonymous callers: their access level needs no upstream call (a token's would).
      // A first instance loads two answers; PostgreSQL keeps them.
      const first = yield* startGateway(config)
      const free = first.sim.corpus.items.filter((i) => i.access === "free").map((i) => i.id)
      const [doc, item] = free
      assert.strictEqual((yield* Effect.promise(() => first.request(`/content/${doc}/markdown`))).status, 200)
      assert.strictEqual((yield* Effect.promise(() => first.request(`/content/${item}`))).status, 200)
      const sql = yield* sqlClient(inject("databaseUrl"))
      for (let i = 0; i < 100; i++) {
        const rows = yield* sql<{ key: string }>`SELECT key FROM ${sql(table)}`
        if (rows.length >= 3) break
        yield* Effect.sleep("50 millis")
      }

      // A second instance (empty memory) whose origin fails every call, transiently (HTTP 503).
      const second = yield* startGateway(config)
      yield* second.sim.setFaults({ errorRates: { "*": 1 }, errorKind: "http503" })
      // Its reads of PostgreSQL stall (the table is locked) until the read breaker opens.
      const locked = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      yield* Effect.forkScoped(sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`)
        yield* Deferred.succeed(locked, undefined)
        yield* Deferred.await(release)
      })))
      yield* Deferred.await(locked)
      for (const id of free.slice(2, 8)) {
        const res = yield* Effect.promise(() => second.request(`/content/${id}`))
        assert.strictEqual(res.status, 503, "nothing to answer: the origin's error")
      }
      yield* Deferred.succeed(release, undefined)

      const markdown = yield* Effect.promise(() => second.request(`/content/${doc}/markdown`))
      assert.strictEqual(markdown.status, 200, markdown.text)
      assert.strictEqual(markdown.headers.get("x-cache"), "STALE")
      assert.isTrue(markdown.text.startsWith("---\ntitle: "))
      const answer = yield* Effect.promise(() => second.request(`/content/${item}`))
      assert.strictEqual(answer.status, 200, answer.text)
      assert.strictEqual(answer.headers.get("x-cache"), "STALE")
      assert.strictEqual(answer.body.id, item)
    }), 60_000)
})
