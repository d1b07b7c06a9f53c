/**
 * The Redis adapter: one pooled-by-pipelining ioredis command connection, built the way
 * `@effect/sql-pg`'s `PgClient` is (tag, scoped `make`, `layer`); `configured` reads
 * `RedisConfig` and is `None` without `REDIS_URL`, so the wiring can leave Redis out. Also the
 * one SCAN loop of the code base ({@link scanEach}).
 *
 * Fail-fast by design: no offline queue and one retry per request, so a dead Redis turns into
 * an immediate, typed failure the cache can fall through on, never a stalled request. The
 * client keeps reconnecting in the background with a capped backoff.
 *
 * @since 0.1.0
 */
import * as Deadline from "../concurrency/Deadline.js"
import { Context, Data, Duration, Effect, Layer, Option, Redacted } from "effect"
import type { ConfigError } from "effect/ConfigError"
import { Redis as IORedis } from "ioredis"
import { RedisConfig } from "../Config.js"
import { settleWithin } from "../concurrency/Release.js"

/** A Redis command failed, timed out, or the connection is down. */
export class RedisError extends Data.TaggedError("RedisError")<{
  readonly op: string
  readonly cause: unknown
}> {
  override get message() {
    return `redis ${this.op} failed: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

/** Options of {@link make}. */
export interface RedisOptions {
  readonly url: Redacted.Redacted<string>
  readonly connectTimeout: Duration.DurationInput
  /** Bound on one command; a slower reply fails with `RedisError` (op = the command). */
  readonly commandTimeout: Duration.DurationInput
  /** Connection name shown by `CLIENT LIST`. */
  readonly connectionName?: string
}

/** The adapter's service. */
export interface Redis {
  /** The underlying client, for commands the adapter does not wrap. Auto-pipelining is on. */
  readonly client: IORedis
  /**
   * Run one command through `f`, bounded by the command timeout (or by `bound`; an infinite
   * bound leaves the bounding to the caller), failures typed.
   */
  readonly use: <A>(op: string, f: (client: IORedis) => Promise<A>, bound?: Duration.Duration) => Effect.Effect<A, RedisError>
  /**
   * Chunks of replies received so far on the command connection (a counter that only grows): a
   * caller whose command timed out while it grew was queued behind other replies (a large
   * value), not facing a dead server.
   */
  readonly received: () => number
  /**
   * Like {@link use}, on a second connection kept for bulk writes (the cache's write batches): a
   * pipeline of a hundred large values never queues ahead of the reads on the first one. Not
   * bounded here: the caller bounds it (and interrupting the wait does not cancel the commands).
   */
  readonly useForWrites: <A>(op: string, f: (client: IORedis) => Promise<A>) => Effect.Effect<A, RedisError>
  /** A fresh connection with the same options (e.g. a pub/sub subscriber), closed with the scope. */
  readonly duplicate: (name: string) => Effect.Effect<IORedis, RedisError, import("effect/Scope").Scope>
  /** `"ready"` when connected; ioredis's status string otherwise. */
  readonly status: () => string
}

/** Tag of the Redis adapter. */
export const Redis = Context.GenericTag<Redis>("accelerator/Redis")

/**
 * ioredis's own command timeout is a backstop (for the rate limiter, which drives the client
 * itself): a timer that fires after a busy stretch of the event loop fails a command whose
 * reply is already in the socket buffer. {@link Redis.use} bounds commands at `commandTimeout`
 * with a deadline that reads pending replies first (`concurrency/Deadline.ts`).
 */
const BACKSTOP_FACTOR = 4

const clientOptions = (options: RedisOptions, name: string, backstop: boolean) => ({
  connectTimeout: Duration.toMillis(options.connectTimeout),
  ...(backstop ? { commandTimeout: Duration.toMillis(options.commandTimeout) * BACKSTOP_FACTOR } : {}),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  enableAutoPipelining: true,
  // ioredis re-subscribes a reconnected subscriber with a SUBSCRIBE whose promise nobody holds:
  // when it times out (a Redis that restarts under load), the rejection is unhandled and ends the
  // process. Subscribers re-subscribe explicitly on "ready" instead (see CacheBus).
  autoResubscribe: false,
  lazyConnect: true,
  connectionName: name,
  retryStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, 2_000)
})

const quit = (client: IORedis) =>
  settleWithin(Duration.seconds(1), () => client.quit()).pipe(
    Effect.ensuring(Effect.sync(() => client.disconnect()))
  )

const acquire = (options: RedisOptions, name: string, backstop = true) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const client = new IORedis(Redacted.value(options.url), clientOptions(options, name, backstop))
      // Every emitter gets an `error` listener: connection errors are reported through the
      // commands that fail and through `status`, not as an unhandled `error` event.
      client.on("error", () => {})
      return client
    }),
    quit
  ).pipe(
    // Wait for the first connection, bounded: starting while Redis is down is allowed (commands
    // fail fast and the client keeps reconnecting in the background), but a reachable Redis
    // should be ready before the first request.
    Effect.tap((client) =>
      Effect.flatMap(settleWithin(options.connectTimeout, () => client.connect()), () =>
        client.status === "ready"
          ? Effect.void
          : Effect.logWarning("redis: not reachable at start; continuing without it until it is").pipe(
            Effect.annotateLogs({ connection: name })
          ))
    )
  )

/**
 * Creates the adapter in the current scope. It does not wait for Redis to be reachable:
 * commands fail fast until it is, so the gateway can start (and serve) with Redis down.
 */
export const make = (options: RedisOptions) =>
  Effect.gen(function*() {
    const name = options.connectionName ?? "accelerator"
    const client = yield* acquire(options, name)
    // Write batches are bounded by their caller (the cache's write bound): no per-command bound.
    const writes = yield* acquire(options, `${name}-writes`, false)
    let received = 0
    const count = () => {
      received++
    }
    // Each connection (a reconnect makes a new socket) counts the chunks it receives.
    const watch = () => client.stream?.on("data", count)
    client.on("connect", watch)
    if (client.status === "ready" || client.status === "connect") watch()
    const use = <A>(op: string, f: (client: IORedis) => Promise<A>, bound?: Duration.Duration) =>
      Deadline.promiseWithin(() => f(client), {
        duration: bound ?? options.commandTimeout,
        onTimeout: () => new RedisError({ op, cause: new Error("Command timed out") }),
        onError: (cause) => new RedisError({ op, cause })
      })
    return Redis.of({
      client,
      use,
      received: () => received,
      useForWrites: (op, f) => Effect.tryPromise({ try: () => f(writes), catch: (cause) => new RedisError({ op, cause }) }),
      duplicate: (suffix) => acquire(options, `${name}-${suffix}`),
      status: () => client.status
    })
  })

/**
 * The one SCAN loop (for `SCAN`, `SSCAN`, `HSCAN`, …): runs `page` from cursor `"0"` and hands
 * each page's items to `each` before asking for the next, until the server answers cursor `"0"`.
 * Never `KEYS`: memory and latency stay bounded by the page size (`COUNT`) whatever the keyspace.
 * Each page is one command through {@link Redis.use} (bounded by the command timeout).
 */
export const scanEach = <A, E, R>(
  redis: Redis,
  op: string,
  page: (client: IORedis, cursor: string) => Promise<readonly [cursor: string | Buffer, items: ReadonlyArray<A>]>,
  each: (items: ReadonlyArray<A>) => Effect.Effect<void, E, R>
): Effect.Effect<void, RedisError | E, R> =>
  Effect.gen(function*() {
    let cursor = "0"
    do {
      const [next, items] = yield* redis.use(op, (c) => page(c, cursor))
      cursor = next.toString()
      if (items.length > 0) yield* each(items)
    } while (cursor !== "0")
  })

/** The adapter as a layer over explicit options. */
export const layer = (options: RedisOptions): Layer.Layer<Redis> => Layer.scoped(Redis, make(options))

/**
 * The adapter from `REDIS_URL` and friends, or `None` when `REDIS_URL` is unset, so callers can
 * compose "Redis if configured".
 */
export const configured: Effect.Effect<Option.Option<RedisOptions>, ConfigError> = Effect.map(
  RedisConfig,
  (config) =>
    Option.map(config.url, (url) => ({
      url,
      connectTimeout: config.connectTimeout,
      commandTimeout: config.commandTimeout
    }))
)
