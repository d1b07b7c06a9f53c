/**
 * The PostgreSQL connection: `@effect/sql-pg`'s `PgClient` over a `pg` pool that this module
 * owns, so that the gateway can start while PostgreSQL is down (the stock `PgClient.make`
 * refuses to start without a first `SELECT 1`) and the pool's counters stay visible for
 * health and metrics.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Context, Duration, Effect, Layer, Option, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import Pg from "pg"
import { PostgresConfig } from "../Config.js"
import { settleWithin } from "../concurrency/Release.js"

/** Options of {@link layer}. */
export interface PostgresOptions {
  readonly url: Redacted.Redacted<string>
  readonly maxConnections: number
  readonly connectTimeout: Duration.DurationInput
  readonly idleTimeout: Duration.DurationInput
}

/** Live pool counters (for health and metrics). */
export interface PostgresPool {
  readonly total: () => number
  readonly idle: () => number
  readonly waiting: () => number
}

/** Tag of the pool counters. */
export const PostgresPool = Context.GenericTag<PostgresPool>("accelerator/PostgresPool")

const acquirePool = (options: PostgresOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new Pg.Pool({
        connectionString: Redacted.value(options.url),
        max: options.maxConnections,
        connectionTimeoutMillis: Duration.toMillis(options.connectTimeout),
        idleTimeoutMillis: Duration.toMillis(options.idleTimeout),
        application_name: "drupal-accelerator"
      })
      // Idle clients that lose their server emit `error` on the pool; without a listener that
      // would crash the process. The next query reconnects.
      pool.on("error", () => {})
      return pool
    }),
    (pool) => settleWithin(Duration.seconds(2), () => pool.end())
  )

/** `PgClient` / `SqlClient` plus pool counters, without a connection check at start. */
export const layer = (
  options: PostgresOptions
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient | PostgresPool> =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const pool = yield* acquirePool(options)
      const client = yield* PgClient.fromPool({ acquire: Effect.succeed(pool), applicationName: "drupal-accelerator" })
      return Context.make(PgClient.PgClient, client).pipe(
        Context.add(SqlClient.SqlClient, client),
        Context.add(PostgresPool, {
          total: () => pool.totalCount,
          idle: () => pool.idleCount,
          waiting: () => pool.waitingCount
        })
      )
    })
  ).pipe(
    // fromPool only fails when acquiring fails; ours cannot.
    Layer.orDie,
    Layer.provide(Reactivity.layer)
  )

/** The options from `DATABASE_URL` and friends, or `None` when `DATABASE_URL` is unset. */
export const configured: Effect.Effect<Option.Option<PostgresOptions>, ConfigError> = Effect.map(
  PostgresConfig,
  (config) =>
    Option.map(config.url, (url) => ({
      url,
      maxConnections: config.maxConnections,
      connectTimeout: config.connectTimeout,
      idleTimeout: config.idleTimeout
    }))
)
