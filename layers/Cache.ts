/**
 * The cache: the memory tier always, the Redis tier when Redis is configured, the PostgreSQL
 * tier when PostgreSQL is configured, composed by `TieredCache`, with the invalidation bus on
 * Redis pub/sub (or PostgreSQL LISTEN/NOTIFY without Redis), and the caller partitions.
 */
import { Duration, Effect, Layer, Option, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import * as AccessScope from "../src/access/AccessScope.js"
import { postgresBus, redisBus } from "../src/cache/CacheBus.js"
import { redisLease } from "../src/cache/CacheLease.js"
import { MemoryTierConfig, PostgresTierConfig, RedisTierConfig } from "../src/cache/CacheConfig.js"
import * as MemoryTier from "../src/cache/MemoryTier.js"
import * as PostgresTier from "../src/cache/PostgresTier.js"
import * as RedisTier from "../src/cache/RedisTier.js"
import * as TieredCache from "../src/cache/TieredCache.js"
import { CacheRuntimeConfig, PostgresConfig } from "../src/Config.js"
import { NAMESPACES } from "../src/content/CacheKeys.js"
import { Redis } from "../src/redis/Redis.js"
import * as Metrics from "../src/telemetry/Metrics.js"
import { SqlClient } from "@effect/sql"

const optional = <A, I>(tag: import("effect/Context").Tag<I, A>) => Effect.serviceOption(tag)

/** The tiered cache over whichever tiers are configured. Needs the optional Redis / PostgreSQL connections. */
export const TieredCacheLive = Layer.scoped(
  TieredCache.TieredCacheService,
  Effect.gen(function*() {
    const runtime = yield* CacheRuntimeConfig
    const memory = yield* MemoryTier.make({ ...(yield* MemoryTierConfig), onEvict: Metrics.cacheHooks.onEvict })
    const breakerMetric = { onStateChange: Metrics.breakerStateHook() }
    const redis = yield* optional(Redis)
    const sql = yield* optional(SqlClient.SqlClient)
    const redisTier = Option.isSome(redis)
      ? yield* RedisTier.make(yield* Effect.map(RedisTierConfig, (c) => ({ ...c, breaker: { ...c.breaker, ...breakerMetric } }))).pipe(Effect.provideService(Redis, redis.value))
      : undefined
    const postgresTier = Option.isSome(sql)
      ? yield* PostgresTier.make(yield* Effect.map(PostgresTierConfig, (c) => ({ ...c, breaker: { ...c.breaker, ...breakerMetric } }))).pipe(Effect.provideService(SqlClient.SqlClient, sql.value))
      : undefined

    // The bus needs the cache (to apply what it hears) and the cache the bus (to publish):
    // the cache publishes through this late-bound reference.
    let publish: TieredCache.CacheBus["publish"] = () => Effect.void
    const instanceId = randomUUID()
    const cache = yield* TieredCache.make({
      memory,
      redis: redisTier,
      postgres: postgresTier,
      bus: { publish: (message) => publish(message) },
      writeQueueCapacity: runtime.writeQueueCapacity,
      writeBatchSize: runtime.writeBatchSize,
      invalidationMemory: runtime.invalidationMemory,
      lease: Option.isSome(redis) && Duration.toMillis(runtime.leaseTtl) > 0
        ? redisLease(redis.value, {
          prefix: (yield* RedisTierConfig).prefix ?? "da:",
          instanceId,
          ttl: runtime.leaseTtl,
          wait: runtime.leaseWait
        })
        : undefined,
      hooks: {
        onLookup: Metrics.cacheHooks.onLookup,
        onOriginResult: Metrics.cacheHooks.onOriginLoad,
        onWriteFailed: Metrics.cacheHooks.onWriteFailed
      }
    })
    const handlers = { onMessage: cache.applyRemote, onReconnect: cache.dropMemory(NAMESPACES) }
    const pg = yield* PostgresConfig
    if (Option.isSome(redis)) {
      publish = (yield* redisBus(redis.value, runtime.busChannel, instanceId, handlers)).publish
    } else if (Option.isSome(pg.url)) {
      publish = (yield* postgresBus(Redacted.value(pg.url.value), runtime.busChannel, instanceId, handlers)).publish
    }
    yield* Effect.logInfo("cache ready").pipe(
      Effect.annotateLogs({
        tiers: ["memory", redisTier?.name, postgresTier?.name].filter(Boolean).join(","),
        bus: Option.isSome(redis) ? "redis" : Option.isSome(pg.url) ? "postgres" : "none"
      })
    )
    return cache
  })
)

/** Caller partitions, cached in the tiered cache. */
export const AccessScopeLive = AccessScope.layerConfig
