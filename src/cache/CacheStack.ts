/**
 * The cache as an instance runs it: the memory tier always, the Redis tier when Redis is there,
 * the PostgreSQL tier when PostgreSQL is there, composed by `TieredCache`, with the
 * cross-instance invalidation bus (Redis pub/sub; PostgreSQL `LISTEN/NOTIFY` without Redis), the
 * cross-instance load lease (Redis) and this instance's id on both.
 *
 * The bus needs the cache (to apply what it hears) and the cache needs the bus (to publish): the
 * cache is built over a late-bound publisher, and the bus is started once the cache exists.
 * Until then (and without a bus) publishing does nothing.
 *
 * Both the gateway ({@link layerConfig}) and the specs ({@link make}) build the cache this way.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql"
import { type ConfigError, Duration, Effect, Layer, Option, Redacted, Ref, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { CacheRuntimeConfig, PostgresConfig } from "../Config.js"
import { Redis, type RedisError } from "../redis/Redis.js"
import type { StateChange } from "../resilience/CircuitBreaker.js"
import { type PostgresBusOptions, postgresBus, type RedisBusOptions, redisBus } from "./CacheBus.js"
import { MemoryTierConfig, PostgresTierConfig, RedisTierConfig } from "./CacheConfig.js"
import { redisLease } from "./CacheLease.js"
import * as MemoryTier from "./MemoryTier.js"
import * as PostgresTier from "./PostgresTier.js"
import * as RedisTier from "./RedisTier.js"
import * as TieredCache from "./TieredCache.js"

/** Where the invalidation bus runs. */
export type BusOptions =
  | { readonly kind: "redis"; readonly redis: Redis; readonly channel: string; readonly options?: RedisBusOptions }
  | { readonly kind: "postgres"; readonly url: string; readonly channel: string; readonly options?: PostgresBusOptions }

/** The cross-instance load lease (Redis): one instance loads a cold key, the others wait briefly. */
export interface LeaseOptions {
  readonly redis: Redis
  /** Prefix of the lease keys (the Redis tier's prefix). */
  readonly prefix: string
  readonly ttl: Duration.DurationInput
  readonly wait: Duration.DurationInput
  /**
   * `redis` is the server the Redis tier reads, with the same prefix: the tier's read of a
   * missing key takes the lease in the same round trip (`CacheLease.inRead`).
   */
  readonly inReads?: boolean
}

/** Options of {@link make}. */
export interface CacheStackOptions {
  readonly memory: MemoryTier.MemoryTier
  readonly redis?: RedisTier.RedisCacheTier | undefined
  readonly postgres?: PostgresTier.PostgresCacheTier | undefined
  /** The bus to other instances; none: invalidations stay on this instance (and the shared tiers). */
  readonly bus?: BusOptions | undefined
  readonly lease?: LeaseOptions | undefined
  /** This instance's id on the bus and on leases (default: a random UUID). */
  readonly instanceId?: string | undefined
  readonly writeQueueCapacity: number
  readonly writeQueueMaxBytes?: number | undefined
  readonly writeBatchSize: number
  readonly invalidationMemory: number
  readonly hooks?: TieredCache.TieredCacheHooks | undefined
  /** Namespaces dropped from memory when the bus comes back after an outage, besides those the cache stored. */
  readonly reconnectNamespaces?: ReadonlyArray<string> | undefined
}

/** A cache with its bus running; the bus and the cache's fibers live in the current scope. */
export const make = (options: CacheStackOptions): Effect.Effect<TieredCache.TieredCache, RedisError, Scope.Scope> =>
  Effect.gen(function*() {
    const instanceId = options.instanceId ?? randomUUID()
    const bus = yield* Ref.make<TieredCache.CacheBus>({ publish: () => Effect.void })
    const lease = options.lease
    const cache = yield* TieredCache.make({
      memory: options.memory,
      redis: options.redis,
      postgres: options.postgres,
      bus: { publish: (message) => Effect.flatMap(Ref.get(bus), (current) => current.publish(message)) },
      writeQueueCapacity: options.writeQueueCapacity,
      writeQueueMaxBytes: options.writeQueueMaxBytes,
      writeBatchSize: options.writeBatchSize,
      invalidationMemory: options.invalidationMemory,
      ...(options.hooks === undefined ? {} : { hooks: options.hooks }),
      lease: lease === undefined
        ? undefined
        : redisLease(lease.redis, { prefix: lease.prefix, instanceId, ttl: lease.ttl, wait: lease.wait, inReads: lease.inReads === true && options.redis !== undefined })
    })
    const handlers = { onMessage: cache.applyRemote, onReconnect: cache.dropMemory(options.reconnectNamespaces ?? []) }
    const spec = options.bus
    if (spec?.kind === "redis") {
      yield* Ref.set(bus, yield* redisBus(spec.redis, spec.channel, instanceId, handlers, spec.options))
    } else if (spec?.kind === "postgres") {
      yield* Ref.set(bus, yield* postgresBus(spec.url, spec.channel, instanceId, handlers, spec.options))
    }
    return cache
  })

/** What the gateway's wiring tells the cache of its telemetry. */
export interface CacheStackTelemetry {
  readonly hooks?: TieredCache.TieredCacheHooks
  /** The memory tier evicted an entry. */
  readonly onEvict?: (key: string, bytes: number) => void
  /** A remote tier's circuit breaker changed state. */
  readonly onBreakerChange?: (change: StateChange) => Effect.Effect<void>
}

/**
 * The cache from configuration (`CacheRuntimeConfig` and `CacheConfig`'s tier keys) over the
 * connections in the context: the Redis tier, bus and lease when a `Redis` adapter is there, the
 * PostgreSQL tier when a `SqlClient` is, the PostgreSQL bus when there is no Redis but a
 * `DATABASE_URL`. The lease is off when `CACHE_LEASE_MS` is 0.
 */
export const layerConfig = (
  telemetry: CacheStackTelemetry = {},
  reconnectNamespaces: ReadonlyArray<string> = []
): Layer.Layer<TieredCache.TieredCache, ConfigError.ConfigError | RedisError> =>
  Layer.scoped(
    TieredCache.TieredCache,
    Effect.gen(function*() {
      const runtime = yield* CacheRuntimeConfig
      const pg = yield* PostgresConfig
      const redis = yield* Effect.serviceOption(Redis)
      const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
      const breaker = telemetry.onBreakerChange === undefined ? {} : { onStateChange: telemetry.onBreakerChange }

      const memory = yield* MemoryTier.make({
        ...(yield* MemoryTierConfig),
        ...(telemetry.onEvict === undefined ? {} : { onEvict: telemetry.onEvict })
      })
      const redisOptions = yield* RedisTierConfig
      const redisTier = Option.isSome(redis)
        ? yield* RedisTier.make({ ...redisOptions, breaker: { ...redisOptions.breaker, ...breaker } }).pipe(
          Effect.provideService(Redis, redis.value)
        )
        : undefined
      const postgresOptions = yield* PostgresTierConfig
      const postgresTier = Option.isSome(sql)
        ? yield* PostgresTier.make({ ...postgresOptions, breaker: { ...postgresOptions.breaker, ...breaker } }).pipe(
          Effect.provideService(SqlClient.SqlClient, sql.value)
        )
        : undefined
      const bus: BusOptions | undefined = Option.isSome(redis)
        ? { kind: "redis", redis: redis.value, channel: runtime.busChannel }
        : Option.isSome(pg.url)
        ? { kind: "postgres", url: Redacted.value(pg.url.value), channel: runtime.busChannel }
        : undefined

      const cache = yield* make({
        memory,
        redis: redisTier,
        postgres: postgresTier,
        bus,
        lease: Option.isSome(redis) && Duration.toMillis(runtime.leaseTtl) > 0
          ? { redis: redis.value, prefix: redisTier?.prefix ?? RedisTier.defaults.prefix, ttl: runtime.leaseTtl, wait: runtime.leaseWait, inReads: true }
          : undefined,
        writeQueueCapacity: runtime.writeQueueCapacity,
        writeQueueMaxBytes: runtime.writeQueueMaxBytes,
        writeBatchSize: runtime.writeBatchSize,
        invalidationMemory: runtime.invalidationMemory,
        hooks: telemetry.hooks,
        reconnectNamespaces
      })
      yield* Effect.logInfo("cache ready").pipe(
        Effect.annotateLogs({
          tiers: ["memory", redisTier?.name, postgresTier?.name].filter(Boolean).join(","),
          bus: bus?.kind ?? "none"
        })
      )
      return cache
    })
  )
