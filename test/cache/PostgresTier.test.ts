import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Either, Exit, Layer, Option, Redacted, Schedule, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import { inject } from "vitest"
import type { TierError } from "../../src/cache/CacheTier.js"
import * as PostgresTier from "../../src/cache/PostgresTier.js"
import * as Postgres from "../../src/postgres/Postgres.js"
import { postgresServer } from "../support/services.js"
import { entryAt, freshNamespace, Harness, tierConformance } from "./conformance.js"

const COMPRESS_ABOVE = 16 * 1024

const pool = (url: string) =>
  Postgres.layer({
    url: Redacted.make(url),
    maxConnections: 4,
    connectTimeout: "1 second",
    idleTimeout: "10 seconds"
  })

const sharedPg = pool(inject("databaseUrl"))

/** A schema no other spec uses, dropped with everything in it when the scope closes. */
const ownSchema = Effect.gen(function*() {
  const schema = `spec_${freshNamespace("pg")}`
  const sql = yield* SqlClient.SqlClient
  yield* Effect.addFinalizer(() => Effect.ignore(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
  return schema
})

/** Writes a row the way the tier would, with `value` as given (raw envelope bytes). */
const insertRaw = (
  table: string,
  key: string,
  value: Uint8Array,
  staleInMs: number,
  tags: ReadonlyArray<string> = []
) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO ${sql(table)} (key, namespace, value, tags, fresh_until, stale_until, created_at)
        VALUES (${key}, ${key.split(":")[0] ?? ""}, ${Buffer.from(value)}, ${tags}::text[], now(),
                now() + ${staleInMs} * interval '1 millisecond', now())
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, stale_until = EXCLUDED.stale_until`)

const countRows = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(sql<{ n: number }>`SELECT count(*)::int AS n FROM ${sql(table)}`, (rows) => rows[0]?.n ?? -1))

const harness = Layer.scoped(
  Harness,
  Effect.gen(function*() {
    const schema = yield* ownSchema
    const sql = yield* SqlClient.SqlClient
    const tier = yield* PostgresTier.make({ schema, compressAbove: COMPRESS_ABOVE, sweepInterval: 0 })
    return {
      tier,
      compressAbove: COMPRESS_ABOVE,
      writeRaw: (key: string, bytes: Uint8Array, ttlMs: number) =>
        Effect.provideService(insertRaw(tier.table, key, bytes, ttlMs), SqlClient.SqlClient, sql),
      readRaw: (key: string) =>
        Effect.map(
          sql<{ value: Uint8Array }>`SELECT value FROM ${sql(tier.table)} WHERE key = ${key}`,
          (rows) => Option.fromNullable(rows[0]?.value)
        )
    }
  })
).pipe(Layer.provide(sharedPg))

tierConformance("PostgresTier conformance", harness, { clock: "live", shortTtlMs: 300 })

/** Runs `body` with the shared pool and a schema of its own. */
const withSchema = <A, E>(
  body: (schema: string) => Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>
) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(sharedPg)
    return yield* Effect.provide(Effect.flatMap(ownSchema, body), context)
  })

describe("PostgresTier on the shared PostgreSQL", () => {
  it.scopedLive("entries carry their site: a gateway of another site on the same table reads them as misses", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const siteA = yield* PostgresTier.make({ schema, sweepInterval: 0, site: "aaaaaaaaaaaa" })
        const siteB = yield* PostgresTier.make({ schema, sweepInterval: 0, site: "bbbbbbbbbbbb" })
        const now = yield* Clock.currentTimeMillis
        yield* siteA.set("content:anon:1:0:html", entryAt(now, "site a's item"))
        assert.isTrue(Option.isNone(yield* siteB.get("content:anon:1:0:html")), "another site's entry is a miss")
        assert.isTrue(Option.isSome(yield* siteA.get("content:anon:1:0:html")), "its own site reads it")
      })))

  it.scopedLive("two instances starting at once migrate once, without error", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [a, b] = yield* Effect.all(
          [PostgresTier.make({ schema, sweepInterval: 0 }), PostgresTier.make({ schema, sweepInterval: 0 })],
          { concurrency: 2 }
        )
        const migrations = yield* sql<{ migration_id: number; name: string }>`
          SELECT migration_id, name FROM ${sql(`${schema}.accelerator_cache_migrations`)}`
        assert.deepStrictEqual(migrations.map((m) => [m.migration_id, m.name]), [[1, "create_cache"]])
        const now = yield* Clock.currentTimeMillis
        yield* a.set("ns:k", entryAt(now, "from a"))
        assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(yield* b.get("ns:k")).value), "from a")

        // Four concurrent migrations of a fresh table, five times over: exactly one applies it
        // each time. (The stock Migrator alone fails most such rounds: both instances create
        // its bookkeeping table, "duplicate key value violates pg_type_typname_nsp_index".)
        for (let round = 0; round < 5; round++) {
          const results = yield* Effect.all(
            Array.from({ length: 4 }, () => PostgresTier.migrate({ schema, table: `raced_${round}` })),
            { concurrency: 4 }
          )
          assert.deepStrictEqual(results.map((r) => r.length).sort(), [0, 0, 0, 1])
          assert.deepStrictEqual(results.find((r) => r.length === 1), [[1, "create_cache"]])
        }
      })))

  it.scopedLive("the table is UNLOGGED by default and logged on request", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* PostgresTier.make({ schema, sweepInterval: 0 })
        yield* PostgresTier.make({ schema, table: "logged_cache", unlogged: false, sweepInterval: 0 })
        const rows = yield* sql<{ relname: string; relpersistence: string }>`
          SELECT c.relname, c.relpersistence FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ${schema} AND c.relkind = 'r' ORDER BY c.relname`
        assert.deepStrictEqual(rows.map((r) => [r.relname, r.relpersistence]), [
          ["accelerator_cache", "u"],
          ["accelerator_cache_migrations", "p"],
          ["logged_cache", "p"],
          ["logged_cache_migrations", "p"]
        ])
      })))

  it.scopedLive("sweep deletes expired rows in bounded batches and keeps live ones", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const tier = yield* PostgresTier.make({ schema, sweepInterval: 0, sweepMaxBatches: 2 })
        const sql = yield* SqlClient.SqlClient
        const expired = (n: number, label: string) =>
          sql`INSERT INTO ${sql(tier.table)} (key, namespace, value, tags, fresh_until, stale_until, created_at)
              SELECT ${label} || ':' || i, ${label}, '\\x00'::bytea, '{}', now() - interval '1 hour',
                     now() - interval '1 minute', now() - interval '1 hour'
              FROM generate_series(1, ${n}) AS i`
        yield* expired(250, "old")
        const now = yield* Clock.currentTimeMillis
        yield* tier.setMany(Array.from({ length: 5 }, (_, i) => ({ key: `live:${i}`, entry: entryAt(now, "v") })))

        // 250 expired rows, batches of 100, at most 2 batches per run: 200 now, 50 next time.
        assert.deepStrictEqual(yield* tier.sweep(100), { deleted: 200, batches: 2 })
        assert.strictEqual(yield* countRows(tier.table), 55)
        assert.deepStrictEqual(yield* tier.sweep(100), { deleted: 50, batches: 1 })
        assert.deepStrictEqual(yield* tier.sweep(100), { deleted: 0, batches: 1 })
        assert.strictEqual(yield* countRows(tier.table), 5)
      })))

  it.scopedLive("the scoped sweeper runs on its interval", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const tier = yield* PostgresTier.make({ schema, sweepInterval: "100 millis", sweepBatchSize: 10 })
        for (let i = 0; i < 35; i++) yield* insertRaw(tier.table, `gone:${i}`, new Uint8Array([0]), -1_000)
        yield* insertRaw(tier.table, "kept:1", new Uint8Array([0]), 60_000)
        yield* countRows(tier.table).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (n) => n === 1 }),
          Effect.timeout("5 seconds")
        )
        assert.strictEqual(yield* countRows(tier.table), 1)
      })))

  it.scopedLive("a table that disappears is created again by the next operation, with or without its migrations' record", () =>
    Effect.forEach([
      // What a crash with synchronous_commit=off can do to a fresh database: both tables gone.
      { name: "both tables gone", dropRecord: true },
      // Dropped by hand (e.g. to empty the cache): `<table>_migrations` still says it was created.
      { name: "the table alone dropped", dropRecord: false }
    ], ({ dropRecord, name }) =>
      withSchema((schema) =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const tier = yield* PostgresTier.make({ schema, sweepInterval: 0, breaker: false })
          const now = yield* Clock.currentTimeMillis
          yield* tier.set("ns:k", entryAt(now, "v"))
          if (dropRecord) yield* sql`DROP TABLE ${sql(tier.table)}, ${sql(`${tier.table}_migrations`)}`
          else yield* sql`DROP TABLE ${sql(tier.table)}`
          const failed = yield* Effect.either(tier.get("ns:k"))
          assert.isTrue(Either.isLeft(failed), `${name}: the first operation meets the missing table`)
          assert.isTrue(Option.isNone(yield* tier.get("ns:k")), `${name}: the next one migrates and answers`)
          yield* tier.set("ns:k", entryAt(now, "again"))
          assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(yield* tier.get("ns:k")).value), "again", name)
          const migrations = yield* sql<{ migration_id: number }>`SELECT migration_id FROM ${sql(`${tier.table}_migrations`)}`
          assert.deepStrictEqual(migrations.map((m) => m.migration_id), [1], `${name}: recorded once again`)
          // A second instance starting now finds the table and the record: nothing to do.
          assert.deepStrictEqual(yield* PostgresTier.migrate({ schema }), [], name)
        }))))

  it.scopedLive("write batches that outlive their bound open the writes' breaker only: reads go on", () =>
    withSchema((schema) =>
      Effect.gen(function*() {
        const tier = yield* PostgresTier.make({ schema, sweepInterval: 0, writeTimeout: "1 millis", breaker: { consecutiveFailures: 3, cooldown: "1 minute" } })
        const now = yield* Clock.currentTimeMillis
        // One entry stored by another instance, whose writes meet their bound.
        const other = yield* PostgresTier.make({ schema, sweepInterval: 0, breaker: false })
        yield* other.set("ns:kept", entryAt(now, "kept"))
        // 2.6 MB of incompressible values per batch: never written within 1 ms.
        const batch = Array.from({ length: 40 }, (_, i) => ({ key: `ns:big:${i}`, entry: entryAt(now, randomBytes(64 * 1024)) }))
        for (let i = 0; i < 3; i++) {
          const failed = yield* Effect.either(tier.setMany(batch))
          assert.isTrue(Either.isLeft(failed) && failed.left.op === "setMany")
          assert.isFalse(Either.isLeft(failed) && failed.left.busy === true, "counted against the breaker")
          // The statement given up on goes on in PostgreSQL; were it to finish inside the next
          // attempt's 1 ms, that attempt would read as a busy tier (not counted). Let it finish.
          yield* Effect.sleep("500 millis")
        }
        const open = yield* Effect.either(tier.setMany(batch))
        assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError", "the writes' breaker is open")
        // The reads' breaker saw none of it.
        const read = yield* tier.get("ns:kept")
        assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(read).value), "kept")
      })))

  it.effect("invalid names and sizes die at construction", () =>
    Effect.gen(function*() {
      for (const options of [{ schema: "Bad-Name" }, { table: "x; DROP TABLE y" }, { sweepBatchSize: 0 }]) {
        const exit = yield* Effect.exit(Effect.scoped(PostgresTier.make(options)).pipe(Effect.provide(sharedPg)))
        assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die", JSON.stringify(options))
      }
    }))
})

const timedFailure = <A>(effect: Effect.Effect<A, TierError>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const result = yield* Effect.either(effect)
    const elapsed = (yield* Clock.currentTimeMillis) - start
    assert.isTrue(Either.isLeft(result), "expected a failure")
    return { error: (result as Either.Left<TierError, A>).left, elapsed }
  })

describe("PostgresTier against a private PostgreSQL that dies", () => {
  it.scopedLive("fails fast with TierError while down, starts while down, and recovers after a restart", () =>
    Effect.gen(function*() {
      const server = yield* postgresServer()
      const context = yield* Layer.build(pool(server.url))
      const options = { timeout: "500 millis", sweepInterval: 0, breaker: { cooldown: "300 millis", consecutiveFailures: 3 } } as const
      const tier = yield* Effect.provide(PostgresTier.make(options), context)
      const now = yield* Clock.currentTimeMillis
      const entry = entryAt(now, "survivor", { tags: ["t"] })
      yield* tier.set("ns:k", entry)
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
        assert.strictEqual(error.tier, "postgres")
        assert.strictEqual(error.op, op)
        assert.isBelow(elapsed, 1_000, `${op} failed within the bound`)
      }
      const { error } = yield* timedFailure(tier.get("ns:k"))
      assert.strictEqual((error.cause as { _tag?: string })._tag, "CircuitOpenError")

      // A second instance starts while the server is down (its migration waits for first use).
      const start = yield* Clock.currentTimeMillis
      const late = yield* Effect.provide(
        PostgresTier.make({ ...options, table: "late_cache", breaker: false }),
        context
      )
      assert.isBelow((yield* Clock.currentTimeMillis) - start, 2_000)

      yield* Effect.promise(() => server.restart())
      const retry = { schedule: Schedule.spaced("100 millis"), times: 100 } as const
      yield* tier.set("ns:k", entry).pipe(Effect.retry(retry))
      // Writes have a breaker of their own: the reads' breaker may still be open for the rest of
      // its cooldown when a write already succeeds.
      const read = yield* tier.get("ns:k").pipe(Effect.retry(retry))
      assert.strictEqual(new TextDecoder().decode(Option.getOrThrow(read).value), "survivor")
      yield* late.set("ns:k", entry).pipe(Effect.retry(retry))
      assert.isTrue(Option.isSome(yield* late.get("ns:k")))
      const sql = Context.get(context, SqlClient.SqlClient)
      const tables = yield* sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_class WHERE relname = 'late_cache' AND relkind = 'r'`
      assert.strictEqual(tables[0]?.n, 1, "the late instance created its table on first use")
    }), 60_000)
})
