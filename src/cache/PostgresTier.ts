/**
 * The PostgreSQL tier: one table of envelopes, over `@effect/sql`'s `SqlClient` (in the gateway,
 * `@effect/sql-pg` over our own pool, see `postgres/Postgres.ts`).
 *
 * Table (schema and name configurable, default `public.accelerator_cache`):
 *
 * ```sql
 * CREATE UNLOGGED TABLE accelerator_cache (
 *   key text PRIMARY KEY, namespace text NOT NULL, value bytea NOT NULL,
 *   tags text[] NOT NULL DEFAULT '{}', fresh_until timestamptz NOT NULL,
 *   stale_until timestamptz NOT NULL, created_at timestamptz NOT NULL)
 * -- GIN (tags) for invalidation, btree (stale_until) for reads and the sweeper,
 * -- btree (namespace) for clear
 * ```
 *
 * `value` holds the whole {@link Envelope} (header + body, gzip above `compressAbove`); the
 * columns beside it exist for the queries. `UNLOGGED` by default (`unlogged: true`): a cache
 * needs no WAL, writes cost about half, and after a crash PostgreSQL truncates the table, which
 * for a cache is a cold start, not data loss. Unlogged tables are not replicated to standbys.
 * The choice is made when the table is created; a later change of the option is logged, not
 * applied (`ALTER TABLE … SET LOGGED` rewrites the table: run it by hand).
 *
 * Operations, one statement each: `getMany` = `SELECT … WHERE key = ANY($1) AND stale_until >
 * now()`; `setMany` = one `INSERT … ON CONFLICT (key) DO UPDATE` over all rows (split every 4,000
 * rows to stay under the bind-parameter limit), plus a `DELETE` for entries already expired;
 * `delete` = `DELETE … WHERE key = ANY($1)`; `invalidateTags` = `DELETE … WHERE tags && $1`;
 * `clear(ns)` = `DELETE … WHERE namespace = $1`.
 *
 * **Schema migrations** run with `@effect/sql`'s Migrator (`Migrator.fromRecord`), recorded in
 * `<table>_migrations` beside the table. The Migrator alone is not safe when several instances
 * start at once on an empty database: it creates its bookkeeping table outside its transaction
 * (`SELECT …::regclass`, then `CREATE TABLE`), so two instances can both try to create it and
 * one fails. {@link migrate} therefore runs the whole migration in one transaction that first
 * takes a transaction-level advisory lock (`pg_advisory_xact_lock`) keyed by the table name,
 * then creates the schema and bookkeeping table if missing; the Migrator's own transaction
 * becomes a savepoint and its `LOCK TABLE` is uncontended. Concurrent starts queue on the
 * lock; the first applies the migrations, the others find them applied.
 *
 * The tier starts even when PostgreSQL is down: a failed migration at start is logged and
 * retried before the next operation. A statement that finds the table missing (`42P01`; e.g.
 * its creation was lost in a crash with `synchronous_commit = off`) fails, and the next
 * operation migrates again. A table dropped by hand while `<table>_migrations` stays is created
 * again too: a migration that finds the table missing forgets the recorded migrations first.
 *
 * **Sweeper**: a fiber in the layer's scope deletes expired rows every `sweepInterval` in
 * batches of `sweepBatchSize` (`DELETE … WHERE ctid = ANY(ARRAY(SELECT ctid … LIMIT n FOR
 * UPDATE SKIP LOCKED))`, a TID scan; `SKIP LOCKED` lets the sweepers of several instances run
 * side by side), at most `sweepMaxBatches` batches per run, logging how many rows went.
 *
 * Bounds and failures: `getMany` / `delete` are bounded by `timeout` (default 1 s), `setMany`
 * by `writeTimeout` (default 5 s, its own breaker), `invalidateTags`, `clear`, a migration and
 * each sweep batch by `maintenanceTimeout` (default 30 s). A timed-out statement is abandoned at
 * once and cancelled in the background. A circuit breaker fails calls fast while PostgreSQL is
 * down; a timeout while other statements completed (a busy pool, large rows) does not count
 * against it. A fail-safe read skips the breaker, bounded by 4 × `timeout`. Every failure is a
 * {@link TierError} with `tier: "postgres"`.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import { SqlClient } from "@effect/sql"
import { Clock, Duration, Effect, Schedule, type Scope } from "effect"
import { TimeoutException } from "effect/Cause"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import * as CacheTier from "./CacheTier.js"
import { type TierBreakerOptions, type TierOp, TierError } from "./CacheTier.js"
import * as Envelope from "./Envelope.js"
import * as Traced from "../telemetry/Traced.js"

/** Default option values. */
export const defaults = {
  schema: "public",
  table: "accelerator_cache",
  unlogged: true,
  compressAbove: Envelope.DEFAULT_COMPRESS_ABOVE,
  timeout: Duration.seconds(1),
  writeTimeout: Duration.seconds(5),
  maintenanceTimeout: Duration.seconds(30),
  sweepInterval: Duration.minutes(1),
  sweepBatchSize: 1_000,
  sweepMaxBatches: 100
} as const

/** Options of {@link make}; every field defaults to {@link defaults}. */
export interface PostgresTierOptions {
  /** Schema of the table; created when missing. Lower-case identifier (`[a-z_][a-z0-9_]*`). */
  readonly schema?: string
  /** Table name; lower-case identifier of at most 48 characters. */
  readonly table?: string
  /** Create the table `UNLOGGED` (no WAL). Only applies when the table is created. */
  readonly unlogged?: boolean
  /** Bodies with more bytes than this are compressed. */
  readonly compressAbove?: number
  /** The site entries belong to: written into each envelope; an entry of another site reads as a miss. */
  readonly site?: string | undefined
  /** Bound on one `getMany` / `delete`. */
  readonly timeout?: Duration.DurationInput
  /** Bound on one `setMany` (a write batch, with a breaker of its own). */
  readonly writeTimeout?: Duration.DurationInput
  /** Bound on one `invalidateTags` / `clear` / migration / sweep batch. */
  readonly maintenanceTimeout?: Duration.DurationInput
  /** Pause between sweeps of expired rows; zero disables the sweeper fiber. */
  readonly sweepInterval?: Duration.DurationInput
  /** Rows deleted per sweep statement (integer >= 1). */
  readonly sweepBatchSize?: number
  /** Sweep statements per run at most (integer >= 1); the rest waits for the next run. */
  readonly sweepMaxBatches?: number
  /** Circuit breaker around every operation (CircuitBreaker defaults); `false` for none. */
  readonly breaker?: TierBreakerOptions | false
}

/** What one sweep did. */
export interface SweepResult {
  readonly deleted: number
  /** Statements run, including the last, short one. */
  readonly batches: number
}

/** The PostgreSQL tier: a {@link CacheTier.CacheTier} plus its table and an on-demand sweep. */
export interface PostgresCacheTier extends CacheTier.CacheTier {
  readonly name: "postgres"
  /** Qualified table name, e.g. `public.accelerator_cache`. */
  readonly table: string
  /**
   * Deletes expired rows now, in batches of `batchSize` (default: the option), until a batch comes
   * back short or `sweepMaxBatches` ran. Each batch is bounded by `maintenanceTimeout`.
   */
  readonly sweep: (batchSize?: number) => Effect.Effect<SweepResult, TierError>
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/

interface Names {
  readonly schema: string
  readonly table: string
  /** `schema.table` */
  readonly qualified: string
  /** `schema.table_migrations` */
  readonly migrations: string
}

const namesOf = (options: PostgresTierOptions): Names => {
  const schema = options.schema ?? defaults.schema
  const table = options.table ?? defaults.table
  if (!IDENTIFIER.test(schema) || schema.length > 63) {
    throw new RangeError(`PostgresTier schema must match ${IDENTIFIER} (at most 63 chars), got ${schema}`)
  }
  if (!IDENTIFIER.test(table) || table.length > 48) {
    throw new RangeError(`PostgresTier table must match ${IDENTIFIER} (at most 48 chars), got ${table}`)
  }
  return { schema, table, qualified: `${schema}.${table}`, migrations: `${schema}.${table}_migrations` }
}

/** 63-bit FNV-1a of the text, as a decimal string: the advisory lock key of a table. */
const lockKey = (text: string): string => {
  let hash = 0xcbf29ce484222325n
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= BigInt(byte)
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return (hash & 0x7fffffffffffffffn).toString()
}

const migrationsOf = (names: Names, unlogged: boolean) => {
  const create = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const t = sql(names.qualified)
    yield* sql`CREATE ${sql.literal(unlogged ? "UNLOGGED " : "")}TABLE ${t} (
      key text PRIMARY KEY,
      namespace text NOT NULL,
      value bytea NOT NULL,
      tags text[] NOT NULL DEFAULT '{}',
      fresh_until timestamptz NOT NULL,
      stale_until timestamptz NOT NULL,
      created_at timestamptz NOT NULL
    )`
    yield* sql`CREATE INDEX ${sql(`${names.table}_tags_idx`)} ON ${t} USING gin (tags)`
    yield* sql`CREATE INDEX ${sql(`${names.table}_stale_until_idx`)} ON ${t} (stale_until)`
    yield* sql`CREATE INDEX ${sql(`${names.table}_namespace_idx`)} ON ${t} (namespace)`
  })
  return { "1_create_cache": create }
}

/** `@effect/sql`'s Migrator without the pg_dump hook (so it needs no platform services). */
const runMigrator = Migrator.make({})

/**
 * Creates or upgrades the cache table of `options` (schema, table, unlogged) and returns the
 * migrations it applied (empty when another instance had applied them). Safe to run
 * concurrently from any number of processes (advisory lock, see the module documentation).
 * Fails with `TierError` (`op: "migrate"`); not bounded by a timeout here.
 */
export const migrate = (
  options: PostgresTierOptions = {}
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, TierError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const names = namesOf(options)
    const sql = yield* SqlClient.SqlClient
    const body = Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(${lockKey(`accelerator-cache:${names.qualified}`)}::bigint)`
      const schemas = yield* sql`SELECT 1 FROM pg_namespace WHERE nspname = ${names.schema}`
      // Not CREATE SCHEMA IF NOT EXISTS: that needs the CREATE privilege even when it exists.
      if (schemas.length === 0) yield* sql`CREATE SCHEMA ${sql(names.schema)}`
      yield* sql`CREATE TABLE IF NOT EXISTS ${sql(names.migrations)} (
        migration_id integer PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now(),
        name text NOT NULL
      )`
      // The table gone while its migrations stay recorded (dropped by hand, or lost): the
      // record is forgotten, so the migrations run again and create it.
      const present = yield* sql<{ present: boolean }>`SELECT to_regclass(${names.qualified}) IS NOT NULL AS present`
      if (present[0]?.present !== true) yield* sql`DELETE FROM ${sql(names.migrations)}`
      return yield* runMigrator({
        loader: Migrator.fromRecord(migrationsOf(names, options.unlogged ?? defaults.unlogged)),
        table: names.migrations
      })
    })
    return yield* sql.withTransaction(body)
  }).pipe(
    // The Migrator turns a failing migration into a defect; here it is a typed failure.
    Effect.catchAllDefect((defect) => Effect.fail(defect)),
    Effect.mapError((cause) => new TierError({ tier: "postgres", op: "migrate", cause }))
  )

/** `42P01 undefined_table` from PostgreSQL, under an `SqlError` (or a `TierError` around one). */
const isUndefinedTable = (error: unknown): boolean => {
  let current: unknown = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    if ((current as { code?: unknown }).code === "42P01") return true
    current = (current as { cause?: unknown }).cause
  }
  return false
}

interface Row {
  readonly key: string
  readonly value: Uint8Array
}

/** Rows per INSERT: 7 parameters each, under PostgreSQL's 65,535 bind parameters. */
const INSERT_CHUNK = 4_000

const positiveInteger = (name: string, value: number): number => {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`PostgresTier ${name} must be an integer >= 1, got ${value}`)
  }
  return value
}

/**
 * Builds the PostgreSQL tier over the `SqlClient` in context: migrates (see {@link migrate};
 * a failure is logged and retried before later operations), then forks the sweeper into the
 * scope. Dies with a `RangeError` on invalid options. Closing the scope stops the sweeper.
 */
export const make = (
  options: PostgresTierOptions = {}
): Effect.Effect<PostgresCacheTier, never, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const names = yield* Effect.try(() => namesOf(options)).pipe(Effect.orDie)
    const sweepBatchSize = yield* Effect.try(() =>
      positiveInteger("sweepBatchSize", options.sweepBatchSize ?? defaults.sweepBatchSize)
    ).pipe(Effect.orDie)
    const sweepMaxBatches = yield* Effect.try(() =>
      positiveInteger("sweepMaxBatches", options.sweepMaxBatches ?? defaults.sweepMaxBatches)
    ).pipe(Effect.orDie)
    const sql = yield* SqlClient.SqlClient
    const unlogged = options.unlogged ?? defaults.unlogged
    const compressAbove = options.compressAbove ?? defaults.compressAbove
    const site = options.site
    const timeout = Duration.decode(options.timeout ?? defaults.timeout)
    const maintenanceTimeout = Duration.decode(options.maintenanceTimeout ?? defaults.maintenanceTimeout)
    const sweepInterval = Duration.decode(options.sweepInterval ?? defaults.sweepInterval)
    const breaker = options.breaker === false
      ? undefined
      : yield* CircuitBreaker.make({ ...options.breaker, name: "postgres", isFailure: CacheTier.countsAgainstTier })
    // Write batches have a breaker of their own: a batch too slow for its bound (PostgreSQL busy,
    // a large batch) must not turn off the reads, which are small and answer requests.
    const writeBreaker = options.breaker === false
      ? undefined
      : yield* CircuitBreaker.make({ ...options.breaker, name: "postgres_writes", isFailure: CacheTier.countsAgainstTier })
    const writeTimeout = Duration.decode(options.writeTimeout ?? defaults.writeTimeout)
    const t = sql(names.qualified)

    const tierError = (op: TierOp) => CacheTier.tierError("postgres", op)

    /** Set once the schema is known to be in place; reset when a statement finds the table missing. */
    let migrated = false

    const failSafeTimeout = Duration.times(timeout, CacheTier.FAIL_SAFE_FACTOR)
    // Statements completed so far: a statement that timed out while others completed waited for
    // a connection of the pool or behind large rows (busy), it did not face a dead server.
    let completed = 0
    const progress = () => completed
    const guardedOp = CacheTier.guarded("postgres", breaker, { abandon: true, progress })
    const guardedWrite = CacheTier.guarded("postgres", writeBreaker, { abandon: true, progress })
    /** Types failures, bounds the operation (abandoning a slow statement), runs it through the breaker. */
    const guard = <A, E>(op: TierOp, bound: Duration.Duration, self: Effect.Effect<A, E>, call?: CacheTier.GuardCall): Effect.Effect<A, TierError> =>
      (op === "setMany" ? guardedWrite : guardedOp)(
        op,
        bound,
        // The table is gone (dropped by hand, or its creation lost in a crash with
        // synchronous_commit off): migrate again before the next operation.
        Effect.tapBoth(self, {
          onFailure: (error) => Effect.sync(() => isUndefinedTable(error) && (migrated = false)),
          onSuccess: () => Effect.sync(() => completed++)
        }),
        call
      )

    const migrationLock = yield* Effect.makeSemaphore(1)
    const migrateOnce = Effect.gen(function*() {
      const applied = yield* Effect.provideService(migrate(options), SqlClient.SqlClient, sql)
      migrated = true
      if (applied.length > 0) {
        yield* Effect.logInfo("cache table migrated").pipe(
          Effect.annotateLogs({ table: names.qualified, migrations: applied.map(([id, name]) => `${id}_${name}`) })
        )
      }
      const persistence = yield* sql<{ relpersistence: string }>`
        SELECT relpersistence FROM pg_class WHERE oid = ${names.qualified}::regclass`
      const isUnlogged = persistence[0]?.relpersistence === "u"
      if (isUnlogged !== unlogged) {
        yield* Effect.logWarning(
          `cache table is ${isUnlogged ? "UNLOGGED" : "logged"} but the option asks for the other; ` +
            `left as is (change it with ALTER TABLE … SET ${unlogged ? "UNLOGGED" : "LOGGED"})`
        ).pipe(Effect.annotateLogs({ table: names.qualified }))
      }
    }).pipe(Effect.mapError(tierError("migrate")))
    /** Migrates unless done; callers queue behind one attempt. */
    const ensureMigrated: Effect.Effect<void, TierError> = Effect.suspend(() =>
      migrated ? Effect.void : migrationLock.withPermits(1)(Effect.suspend(() => migrated ? Effect.void : migrateOnce))
    )

    const getMany = Traced.fn("PostgresTier.getMany")(function*(keys: ReadonlyArray<string>, read?: CacheTier.ReadOptions) {
      if (keys.length === 0) return []
      const failSafe = read?.failSafe === true
      // The bound and the breaker cover PostgreSQL, not the decoding: a large body waiting for
      // a thread of the libuv pool is the gateway's own queue, not a slow database.
      const rows = yield* guard(
        "getMany",
        failSafe ? failSafeTimeout : timeout,
        Effect.zipRight(
          ensureMigrated,
          sql<Row>`
            SELECT key, value FROM ${t} WHERE key = ANY(${keys}::text[]) AND stale_until > now()`
        ),
        { failSafe }
      )
      const now = yield* Clock.currentTimeMillis
      const byKey = new Map<string, Uint8Array>()
      for (const row of rows) byKey.set(row.key, row.value)
      return yield* Envelope.decodeAll(keys.map((key) => byKey.get(key)), now, site)
    })

    const setMany = Traced.fn("PostgresTier.setMany")(function*(items: ReadonlyArray<CacheTier.CacheItem>) {
      if (items.length === 0) return
      // Encoded before the bound: the bound and the breaker cover PostgreSQL.
      const now = yield* Clock.currentTimeMillis
      const batch = CacheTier.lastPerKey(items)
      const live = batch.filter((item) => Envelope.isUsable(item.entry, now))
      const dead = batch.filter((item) => !Envelope.isUsable(item.entry, now)).map((item) => item.key)
      const encoded = yield* Envelope.encodeAll(live.map((item) => item.entry), { compressAbove, site })
      yield* guard(
        "setMany",
        writeTimeout,
        Effect.gen(function*() {
          yield* ensureMigrated
          const rows = live.map((item, i) => ({
            key: item.key,
            namespace: CacheTier.namespaceOf(item.key) ?? "",
            value: Buffer.from(encoded[i]!.buffer, encoded[i]!.byteOffset, encoded[i]!.byteLength),
            tags: Array.from(new Set(item.entry.tags)),
            fresh_until: new Date(item.entry.freshUntil),
            stale_until: new Date(item.entry.staleUntil),
            created_at: new Date(item.entry.createdAt)
          }))
          for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
            yield* sql`
              INSERT INTO ${t} ${sql.insert(rows.slice(start, start + INSERT_CHUNK))}
              ON CONFLICT (key) DO UPDATE SET
                namespace = EXCLUDED.namespace, value = EXCLUDED.value, tags = EXCLUDED.tags,
                fresh_until = EXCLUDED.fresh_until, stale_until = EXCLUDED.stale_until,
                created_at = EXCLUDED.created_at`
          }
          if (dead.length > 0) yield* sql`DELETE FROM ${t} WHERE key = ANY(${dead}::text[])`
        })
      )
    })

    const deleteKeys = Traced.fn("PostgresTier.delete")(function*(keys: ReadonlyArray<string>) {
      if (keys.length === 0) return
      yield* guard(
        "delete",
        timeout,
        Effect.zipRight(ensureMigrated, sql`DELETE FROM ${t} WHERE key = ANY(${keys}::text[])`)
      )
    })

    const invalidateTags = Traced.fn("PostgresTier.invalidateTags")(function*(tags: ReadonlyArray<string>) {
      if (tags.length === 0) return
      yield* guard(
        "invalidateTags",
        maintenanceTimeout,
        Effect.zipRight(ensureMigrated, sql`DELETE FROM ${t} WHERE tags && ${tags}::text[]`)
      )
    })

    const clear = Traced.fn("PostgresTier.clear")(function*(namespace: string) {
      yield* CacheTier.checkNamespace(namespace)
      yield* guard(
        "clear",
        maintenanceTimeout,
        Effect.zipRight(ensureMigrated, sql`DELETE FROM ${t} WHERE namespace = ${namespace}`)
      )
    })

    const sweepBatch = (size: number) =>
      guard(
        "sweep",
        maintenanceTimeout,
        Effect.zipRight(
          ensureMigrated,
          sql<{ n: number }>`
            WITH deleted AS (
              DELETE FROM ${t} WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM ${t} WHERE stale_until <= now() LIMIT ${size} FOR UPDATE SKIP LOCKED
              ))
              RETURNING 1
            )
            SELECT count(*)::int AS n FROM deleted`
        )
      ).pipe(Effect.map((rows) => rows[0]?.n ?? 0))

    const sweep = (batchSize: number = sweepBatchSize): Effect.Effect<SweepResult, TierError> =>
      Effect.gen(function*() {
        const size = yield* Effect.try(() => positiveInteger("batchSize", batchSize)).pipe(Effect.orDie)
        let deleted = 0
        let batches = 0
        while (batches < sweepMaxBatches) {
          const n = yield* sweepBatch(size)
          deleted += n
          batches++
          if (n < size) break
        }
        return { deleted, batches }
      }).pipe(Traced.withSpan("PostgresTier.sweep"))

    // Start even when PostgreSQL is down: operations retry the migration.
    yield* ensureMigrated.pipe(
      Effect.timeoutFail({
        duration: maintenanceTimeout,
        onTimeout: () => tierError("migrate")(new TimeoutException("migration timed out"))
      }),
      Effect.catchAll((error) =>
        Effect.logWarning("cache table migration failed; retried on first use", error).pipe(
          Effect.annotateLogs({ table: names.qualified })
        )
      )
    )

    if (Duration.greaterThan(sweepInterval, Duration.zero)) {
      const sweepAndLog = sweep().pipe(
        Effect.tap(({ deleted, batches }) =>
          deleted > 0
            ? Effect.logInfo("cache sweep").pipe(
              Effect.annotateLogs({ table: names.qualified, deleted, batches })
            )
            : Effect.void
        ),
        Effect.catchAll((error) => Effect.logWarning("cache sweep failed", error))
      )
      yield* Effect.sleep(sweepInterval).pipe(
        Effect.zipRight(sweepAndLog),
        Effect.repeat(Schedule.forever),
        Effect.forkScoped
      )
    }

    return CacheTier.make({
      name: "postgres" as const,
      table: names.qualified,
      getMany,
      setMany,
      delete: deleteKeys,
      invalidateTags,
      clear,
      sweep
    })
  })
