/**
 * Configuration keys of the cache tiers, with their defaults. Connection settings (`REDIS_URL`,
 * `DATABASE_URL`, pools, command timeouts) stay in `../Config.ts`; these are the tiers' own.
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `CACHE_MEMORY_MAX_BYTES` | 134217728 (128 MiB) | byte bound of the memory tier |
 * | `CACHE_MEMORY_MAX_ENTRIES` | 100000 | entry bound of the memory tier |
 * | `CACHE_MEMORY_MAX_VALUE_BYTES` | 1048576 (1 MiB) | larger values skip the memory tier's main LRU |
 * | `CACHE_MEMORY_LARGE_MAX_BYTES` | 134217728 (128 MiB) | byte bound of the segment of larger values (0: none kept) |
 * | `CACHE_MEMORY_LARGE_MAX_VALUE_BYTES` | 33554432 (32 MiB) | larger values skip the memory tier |
 * | `CACHE_COMPRESS_ABOVE_BYTES` | 16384 (16 KiB) | Redis/PostgreSQL gzip bodies larger than this |
 * | `CACHE_BREAKER_COOLDOWN_MS` | 5000 | how long an open Redis/PostgreSQL tier breaker fails fast |
 * | `CACHE_MAINTENANCE_TIMEOUT_MS` | 30000 | bound on invalidateTags / clear / migration / sweep batch |
 * | `CACHE_REDIS_PREFIX` | per site (`Config.ts` `RedisPrefix`) | prefix of every Redis key of the cache |
 * | `CACHE_REDIS_TIMEOUT_MS` | 500 | bound on one Redis getMany / delete |
 * | `CACHE_REDIS_WRITE_TIMEOUT_MS` | 2000 | bound on one Redis write batch (own connection and breaker) |
 * | `CACHE_REDIS_PAGE_SIZE` | 500 | SCAN / SSCAN `COUNT` and keys per UNLINK |
 * | `CACHE_REDIS_MAX_VALUE_BYTES` | 1048576 (1 MiB) | larger stored values (after compression) skip Redis |
 * | `CACHE_PG_SCHEMA` | `public` | schema of the cache table (created if missing) |
 * | `CACHE_PG_TABLE` | `accelerator_cache` | cache table name |
 * | `CACHE_PG_UNLOGGED` | true | create the table UNLOGGED: no WAL, emptied after a crash |
 * | `CACHE_PG_TIMEOUT_MS` | 1000 | bound on one PostgreSQL getMany / delete |
 * | `CACHE_PG_WRITE_TIMEOUT_MS` | 5000 | bound on one PostgreSQL write batch (own breaker) |
 * | `CACHE_PG_SWEEP_INTERVAL_MS` | 60000 | pause between sweeps of expired rows; 0 disables |
 * | `CACHE_PG_SWEEP_BATCH_SIZE` | 1000 | rows deleted per sweep statement |
 *
 * @since 0.1.0
 */
import { Config, Duration } from "effect"
import { RedisPrefix, SiteId } from "../Config.js"
import { millis, nonNegativeInt, positiveInt } from "../ConfigKeys.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import type { TierBreakerOptions } from "./CacheTier.js"
import * as Envelope from "./Envelope.js"
import type { MemoryTierOptions } from "./MemoryTier.js"
import * as MemoryTier from "./MemoryTier.js"
import type { PostgresTierOptions } from "./PostgresTier.js"
import * as PostgresTier from "./PostgresTier.js"
import type { RedisTierOptions } from "./RedisTier.js"
import * as RedisTier from "./RedisTier.js"

const identifier = (name: string, defaultValue: string): Config.Config<string> =>
  Config.string(name).pipe(
    Config.validate({
      message: `${name} must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)`,
      validation: (s) => /^[a-z_][a-z0-9_]*$/.test(s)
    }),
    Config.withDefault(defaultValue)
  )

/** `CACHE_COMPRESS_ABOVE_BYTES`: shared by the Redis and PostgreSQL tiers. */
export const CompressAbove: Config.Config<number> = nonNegativeInt(
  "CACHE_COMPRESS_ABOVE_BYTES",
  Envelope.DEFAULT_COMPRESS_ABOVE
)

/** `CACHE_BREAKER_COOLDOWN_MS`: the remote tiers' breaker settings. */
export const TierBreaker: Config.Config<TierBreakerOptions> = Config.map(
  millis("CACHE_BREAKER_COOLDOWN_MS", Duration.toMillis(CircuitBreaker.defaults.cooldown)),
  (cooldown) => ({ cooldown })
)

/** `CACHE_MAINTENANCE_TIMEOUT_MS` (the Redis and PostgreSQL tiers share the default). */
export const MaintenanceTimeout: Config.Config<Duration.Duration> = millis(
  "CACHE_MAINTENANCE_TIMEOUT_MS",
  Duration.toMillis(RedisTier.defaults.maintenanceTimeout)
)

/** Options of the memory tier (its keys live with the tier). */
export const MemoryTierConfig: Config.Config<MemoryTierOptions> = MemoryTier.MemoryTierConfig

/** Options of the Redis tier. */
export const RedisTierConfig: Config.Config<RedisTierOptions> = Config.all({
  prefix: RedisPrefix,
  site: SiteId,
  compressAbove: CompressAbove,
  timeout: millis("CACHE_REDIS_TIMEOUT_MS", Duration.toMillis(RedisTier.defaults.timeout)),
  writeTimeout: millis("CACHE_REDIS_WRITE_TIMEOUT_MS", Duration.toMillis(RedisTier.defaults.writeTimeout)),
  maintenanceTimeout: MaintenanceTimeout,
  pageSize: positiveInt("CACHE_REDIS_PAGE_SIZE", RedisTier.defaults.pageSize),
  maxValueBytes: positiveInt("CACHE_REDIS_MAX_VALUE_BYTES", RedisTier.defaults.maxValueBytes),
  breaker: TierBreaker
})

/** Options of the PostgreSQL tier. */
export const PostgresTierConfig: Config.Config<PostgresTierOptions> = Config.all({
  schema: identifier("CACHE_PG_SCHEMA", PostgresTier.defaults.schema),
  table: identifier("CACHE_PG_TABLE", PostgresTier.defaults.table),
  site: SiteId,
  unlogged: Config.boolean("CACHE_PG_UNLOGGED").pipe(Config.withDefault(PostgresTier.defaults.unlogged)),
  compressAbove: CompressAbove,
  timeout: millis("CACHE_PG_TIMEOUT_MS", Duration.toMillis(PostgresTier.defaults.timeout)),
  writeTimeout: millis("CACHE_PG_WRITE_TIMEOUT_MS", Duration.toMillis(PostgresTier.defaults.writeTimeout)),
  maintenanceTimeout: MaintenanceTimeout,
  sweepInterval: millis("CACHE_PG_SWEEP_INTERVAL_MS", Duration.toMillis(PostgresTier.defaults.sweepInterval)),
  sweepBatchSize: positiveInt("CACHE_PG_SWEEP_BATCH_SIZE", PostgresTier.defaults.sweepBatchSize),
  breaker: TierBreaker
})
