import { assert, describe, it, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { Redis } from "ioredis"
import { inject } from "vitest"

/** A connected ioredis client for the scope, failing fast while the server is away. */
const redisClient = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const client = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

describe("shared redis-server (global setup)", () => {
  it("is provided with its version", () => {
    assert.match(inject("redisUrl"), /^redis:\/\/127\.0\.0\.1:\d+$/)
    assert.match(inject("redisVersion"), /^\d+\.\d+\.\d+$/)
  })

  it.scoped("INFO server reports redis_version", () =>
    Effect.gen(function*() {
      const client = yield* redisClient(inject("redisUrl"))
      const info = yield* Effect.tryPromise(() => client.info("server"))
      assert.include(info, `redis_version:${inject("redisVersion")}`)
    }))

  it.scoped("SET / GET round trip", () =>
    Effect.gen(function*() {
      const client = yield* redisClient(inject("redisUrl"))
      const key = `harness:roundtrip:${process.pid}:${Math.random().toString(36).slice(2)}`
      yield* Effect.tryPromise(() => client.set(key, "héllo wörld", "EX", 60))
      const value = yield* Effect.tryPromise(() => client.get(key))
      yield* Effect.tryPromise(() => client.unlink(key))
      assert.strictEqual(value, "héllo wörld")
    }))
})

layer(PgClient.layer({ url: Redacted.make(inject("databaseUrl")), maxConnections: 2 }))(
  "shared PostgreSQL (global setup)",
  (it) => {
    it.effect("SELECT version() is PostgreSQL 15", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const rows = yield* sql<{ version: string }>`SELECT version() AS version`
        assert.include(rows[0]?.version ?? "", "PostgreSQL 15")
        assert.include(rows[0]?.version ?? "", `PostgreSQL ${inject("postgresVersion")}`)
      }))

    it.effect("connected to the accelerator database over loopback", () =>
      Effect.gen(function*() {
        const sql = yield* PgClient.PgClient
        const rows = yield* sql<{ db: string; addr: string }>`
          SELECT current_database() AS db, host(inet_server_addr()) AS addr`
        assert.deepStrictEqual(rows[0], { db: "accelerator", addr: "127.0.0.1" })
        assert.match(inject("databaseUrl"), /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/accelerator$/)
      }))
  }
)
