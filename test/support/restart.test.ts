import { assert, describe, it } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Either, Layer, Redacted, Schedule } from "effect"
import * as fs from "node:fs"
import { Redis } from "ioredis"
import { postgresServer, redisServer } from "./services.js"

const untilItAnswers = { schedule: Schedule.spaced("100 millis"), times: 150 } as const

const infoField = (info: string, field: string) => new RegExp(`^${field}:(.*)$`, "m").exec(info)?.[1]?.trim()

describe("private servers survive kill() + restart()", () => {
  it.scopedLive("redis-server: same port and dir, new process, clients reconnect", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const c = new Redis(server.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
          c.on("error", () => {})
          await c.connect()
          return c
        }),
        (c) => Effect.sync(() => c.disconnect())
      )
      yield* Effect.tryPromise(() => client.set("k", "before crash"))
      const before = yield* Effect.tryPromise(() => client.info("server"))
      const pidBefore = server.pid

      yield* Effect.promise(() => server.kill())
      assert.isUndefined(server.pid)
      const during = yield* Effect.either(Effect.tryPromise(() => client.ping()))
      assert.isTrue(Either.isLeft(during), "the data path is down while the server is killed")

      yield* Effect.promise(() => server.restart())
      assert.isDefined(server.pid)
      assert.notStrictEqual(server.pid, pidBefore)
      assert.isTrue(fs.existsSync(server.dir))

      // ioredis reconnects on its own; the data path resumes on the same URL.
      yield* Effect.tryPromise(() => client.ping()).pipe(Effect.retry(untilItAnswers))
      const after = yield* Effect.tryPromise(() => client.info("server"))
      assert.notStrictEqual(infoField(after, "run_id"), infoField(before, "run_id"))
      assert.strictEqual(infoField(after, "process_id"), String(server.pid))
      assert.strictEqual(infoField(after, "tcp_port"), String(server.port))
      // Nothing is persisted, so the key died with the killed process.
      assert.isNull(yield* Effect.tryPromise(() => client.get("k")))
      yield* Effect.tryPromise(() => client.set("k", "after restart"))
      assert.strictEqual(yield* Effect.tryPromise(() => client.get("k")), "after restart")
    }))

  it.scopedLive("PostgreSQL: same port and dir, crash recovery keeps committed data, pool reconnects", () =>
    Effect.gen(function*() {
      const server = yield* postgresServer()
      const context = yield* Layer.build(PgClient.layer({ url: Redacted.make(server.url), maxConnections: 2 }))
      const sql = Context.get(context, PgClient.PgClient)
      yield* sql`CREATE TABLE survivors (id int PRIMARY KEY, note text NOT NULL)`
      yield* sql`INSERT INTO survivors VALUES (1, 'before crash')`
      // synchronous_commit=off may hold the last commit in WAL buffers for ~0.6 s; a checkpoint
      // writes it out so the assertion below does not depend on timing.
      yield* sql`CHECKPOINT`
      const pidBefore = server.pid

      yield* Effect.promise(() => server.kill())
      assert.isUndefined(server.pid)
      const during = yield* Effect.either(sql`SELECT 1`)
      assert.isTrue(Either.isLeft(during), "the data path is down while the server is killed")

      yield* Effect.promise(() => server.restart())
      assert.isDefined(server.pid)
      assert.notStrictEqual(server.pid, pidBefore)

      const rows = yield* sql<{ note: string }>`SELECT note FROM survivors WHERE id = 1`.pipe(
        Effect.retry(untilItAnswers)
      )
      assert.strictEqual(rows[0]?.note, "before crash")
      yield* sql`INSERT INTO survivors VALUES (2, 'after restart')`
      const count = yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM survivors`
      assert.strictEqual(count[0]?.n, 2)
      const started = yield* sql<{ recent: boolean }>`
        SELECT pg_postmaster_start_time() > now() - interval '1 minute' AS recent`
      assert.isTrue(started[0]?.recent)
    }))

  it.scopedLive("stop() removes the directory and refuses a later restart()", () =>
    Effect.gen(function*() {
      const server = yield* redisServer()
      yield* Effect.promise(() => server.stop())
      assert.isFalse(fs.existsSync(server.dir))
      assert.isUndefined(server.pid)
      const restarted = yield* Effect.either(Effect.tryPromise(() => server.restart()))
      assert.isTrue(Either.isLeft(restarted))
    }))
})
