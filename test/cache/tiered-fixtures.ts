/**
 * Fixtures for the TieredCache and CacheBus specs: instances of the composition over real
 * servers (each instance a separate build: its own memory tier, Redis connection, PostgreSQL pool,
 * tiers and bus subscriber), an origin that counts its calls, policies, and small waits.
 *
 * Isolation: every spec takes a Redis prefix and a PostgreSQL schema of its own
 * ({@link isolation}); both are removed when the spec's scope closes.
 */
import { SqlClient } from "@effect/sql"
import { assert } from "@effect/vitest"
import { Context, Deferred, Duration, Effect, FiberId, Layer, Option, Redacted, Schedule, type Scope } from "effect"
import type { CacheItem, TierName } from "../../src/cache/CacheTier.js"
import * as CacheStack from "../../src/cache/CacheStack.js"
import type { CacheEntry } from "../../src/cache/Envelope.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import * as PostgresTier from "../../src/cache/PostgresTier.js"
import * as RedisTier from "../../src/cache/RedisTier.js"
import * as TieredCache from "../../src/cache/TieredCache.js"
import * as Postgres from "../../src/postgres/Postgres.js"
import { Redis } from "../../src/redis/Redis.js"
import * as RedisAdapter from "../../src/redis/Redis.js"
import { freshNamespace } from "./conformance.js"

export { freshNamespace }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** UTF-8 bytes of `s`. */
export const bytes = (s: string): Uint8Array => encoder.encode(s)

/** The value of a hit or entry as text. */
export const text = (found: TieredCache.CacheHit | CacheEntry | Option.Option<TieredCache.CacheHit | CacheEntry>): string | undefined => {
  const value = Option.isOption(found) ? Option.getOrUndefined(found) : found
  if (value === undefined) return undefined
  return decoder.decode("entry" in value ? value.entry.value : value.value)
}

/** A policy: fresh 60 s, grace 60 s, no jitter, no negative caching, soft 1 s, hard 5 s, unless overridden. */
export const policy = (overrides: Partial<TieredCache.CachePolicy> = {}): TieredCache.CachePolicy => ({
  fresh: Duration.seconds(60),
  grace: Duration.seconds(60),
  jitter: 0,
  negative: Duration.zero,
  softTimeout: Duration.seconds(1),
  hardTimeout: Duration.seconds(5),
  ...overrides
})

/** The origin: lookups that count every call. */
export interface Origin {
  /** Calls so far (every lookup run, whatever its outcome). */
  readonly calls: () => number
  /** A lookup answering `value` with `tags`. */
  readonly value: (value: string, options?: { readonly tags?: ReadonlyArray<string>; readonly notFound?: boolean; readonly denied?: boolean }) => Effect.Effect<TieredCache.Loaded>
  /** A lookup that sleeps `delay` (on the fiber's clock), then answers `value`. */
  readonly slow: (value: string, delay: Duration.DurationInput, tags?: ReadonlyArray<string>) => Effect.Effect<TieredCache.Loaded>
  /** A lookup failing with `OriginDown`. */
  readonly failing: Effect.Effect<TieredCache.Loaded, OriginDown>
  /**
   * A lookup that signals `started` when it runs and answers `value` only once `release` is
   * completed.
   */
  readonly gated: (value: string, tags?: ReadonlyArray<string>) => Effect.Effect<{
    readonly lookup: Effect.Effect<TieredCache.Loaded>
    readonly started: Deferred.Deferred<void>
    readonly release: Effect.Effect<void>
  }>
}

/** What the failing origin fails with. */
export class OriginDown {
  readonly _tag = "OriginDown"
}

/** A fresh counting origin. */
export const makeOrigin = (): Origin => {
  let calls = 0
  const loaded = (value: string, tags: ReadonlyArray<string> = [], notFound = false, denied = false): TieredCache.Loaded => ({
    value: bytes(value),
    contentType: "application/json",
    tags,
    ...(notFound ? { notFound: true } : {}),
    ...(denied ? { denied: true } : {})
  })
  return {
    calls: () => calls,
    value: (value, options = {}) => Effect.sync(() => (calls++, loaded(value, options.tags, options.notFound ?? false, options.denied ?? false))),
    slow: (value, delay, tags = []) => Effect.zipRight(Effect.sync(() => calls++), Effect.as(Effect.sleep(delay), loaded(value, tags))),
    failing: Effect.suspend(() => (calls++, Effect.fail(new OriginDown()))),
    gated: (value, tags = []) =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const lookup = Effect.gen(function*() {
          calls++
          yield* Deferred.succeed(started, undefined)
          yield* Deferred.await(gate)
          return loaded(value, tags)
        })
        return { lookup, started, release: Deferred.succeed(gate, undefined).pipe(Effect.asVoid) }
      })
  }
}

/** Counters of one instance, filled by its hooks. */
export interface Stats {
  originLoads: number
  memoryDropped: number
  readonly writeFailed: Record<TierName, number>
  /** `[tier, outcome]` of every lookup, in order. */
  readonly lookups: Array<readonly [TierName, string]>
  /** Remote invalidations applied, with the `performance.now()` they were applied at. */
  readonly applied: Array<{ readonly message: TieredCache.InvalidationMessage; readonly at: number }>
}

/** A built instance of the composition. */
export interface Instance {
  readonly id: string
  readonly cache: TieredCache.TieredCache
  readonly memory: MemoryTier.MemoryTier
  readonly redis: RedisTier.RedisCacheTier | undefined
  readonly postgres: PostgresTier.PostgresCacheTier | undefined
  /** The Redis adapter of the tier (or of the bus), when there is one. */
  readonly redisAdapter: RedisAdapter.Redis | undefined
  readonly stats: Stats
  /** Calls `f` on each remote invalidation applied from now on; the returned function stops it. */
  readonly onApplied: (f: (message: TieredCache.InvalidationMessage, at: number) => void) => () => void
  /** Completes when the memory tier has been dropped (after a bus reconnection) `count` times in all. */
  readonly dropped: (count: number) => Effect.Effect<void>
}

/** How one instance is made. */
export interface InstanceOptions {
  /** Redis for the Redis tier (none when absent). */
  readonly redisUrl?: string | undefined
  /** PostgreSQL for the PostgreSQL tier (none when absent). */
  readonly databaseUrl?: string | undefined
  readonly prefix?: string
  readonly schema?: string
  readonly bus?:
    | { readonly kind: "redis"; readonly url: string; readonly channel: string }
    | { readonly kind: "postgres"; readonly url: string; readonly channel: string }
    | undefined
  readonly memory?: MemoryTier.MemoryTierOptions
  readonly redisTier?: Omit<RedisTier.RedisTierOptions, "prefix">
  readonly postgresTier?: Omit<PostgresTier.PostgresTierOptions, "schema">
  readonly writeQueueCapacity?: number
  readonly writeQueueMaxBytes?: number
  readonly writeBatchSize?: number
  readonly invalidationMemory?: number
  /** Heartbeat of the bus connection (the bus default when absent). */
  readonly busHeartbeat?: Duration.DurationInput
}

/** A Redis adapter for `url`, built in the current scope. */
export const redisAdapter = (url: string, name = "tiered-spec") =>
  Effect.map(
    Layer.build(RedisAdapter.layer({ url: Redacted.make(url), connectTimeout: "1 second", commandTimeout: "250 millis", connectionName: name })),
    (context) => Context.get(context, Redis)
  )

/** A PostgreSQL pool for `url` (`SqlClient`), built in the current scope. */
export const sqlClient = (url: string) =>
  Effect.map(
    Layer.build(Postgres.layer({ url: Redacted.make(url), maxConnections: 4, connectTimeout: "1 second", idleTimeout: "10 seconds" })),
    (context) => Context.get(context, SqlClient.SqlClient)
  )

/**
 * A Redis prefix and a PostgreSQL schema of the spec's own; every Redis key under the prefix
 * and the schema are removed when the scope closes (best effort: the server may be gone).
 */
export const isolation = (options: { readonly redisUrl?: string; readonly databaseUrl?: string }) =>
  Effect.gen(function*() {
    const prefix = `spec:${freshNamespace("tc")}:`
    const schema = `spec_${freshNamespace("tc")}`
    if (options.redisUrl !== undefined) {
      const redis = yield* redisAdapter(options.redisUrl, "tiered-spec-cleanup")
      yield* Effect.addFinalizer(() =>
        RedisAdapter.scanEach(
          redis,
          "scan",
          (c, cursor) => c.scan(cursor, "MATCH", `${RedisTier.escapeGlob(prefix)}*`, "COUNT", 1000),
          (keys) => redis.use("unlink", (c) => c.unlink(...keys))
        ).pipe(Effect.ignore)
      )
    }
    if (options.databaseUrl !== undefined) {
      const sql = yield* sqlClient(options.databaseUrl)
      yield* Effect.addFinalizer(() => Effect.ignore(sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`))
    }
    return { prefix, schema }
  })

/** Builds one instance of the composition in the current scope. */
export const instance = (options: InstanceOptions): Effect.Effect<Instance, never, Scope.Scope> =>
  Effect.gen(function*() {
    const id = `instance-${freshNamespace("i")}`
    const stats: Stats = {
      originLoads: 0,
      memoryDropped: 0,
      writeFailed: { memory: 0, redis: 0, postgres: 0 },
      lookups: [],
      applied: []
    }
    const listeners = new Set<(message: TieredCache.InvalidationMessage, at: number) => void>()
    const dropWaiters: Array<{ readonly count: number; readonly done: Deferred.Deferred<void> }> = []
    const memory = yield* MemoryTier.make(options.memory)
    const adapters = new Map<string, RedisAdapter.Redis>()
    const adapterFor = (url: string) =>
      Effect.gen(function*() {
        const known = adapters.get(url)
        if (known !== undefined) return known
        const made = yield* redisAdapter(url, id)
        adapters.set(url, made)
        return made
      })
    const redis = options.redisUrl === undefined
      ? undefined
      : yield* Effect.provideService(
        RedisTier.make({ ...options.redisTier, prefix: options.prefix ?? "da:" }),
        Redis,
        yield* adapterFor(options.redisUrl)
      )
    const postgres = options.databaseUrl === undefined
      ? undefined
      : yield* Effect.provideService(
        PostgresTier.make({ sweepInterval: 0, ...options.postgresTier, ...(options.schema === undefined ? {} : { schema: options.schema }) }),
        SqlClient.SqlClient,
        yield* sqlClient(options.databaseUrl)
      )
    const heartbeat = options.busHeartbeat === undefined ? {} : { heartbeat: options.busHeartbeat }
    // Built as the gateway builds it (`CacheStack`), over this instance's own tiers and bus.
    const cache = yield* CacheStack.make({
      memory,
      redis,
      postgres,
      bus: options.bus?.kind === "redis"
        ? { kind: "redis", redis: yield* adapterFor(options.bus.url), channel: options.bus.channel, options: heartbeat }
        : options.bus?.kind === "postgres"
        ? { kind: "postgres", url: options.bus.url, channel: options.bus.channel, options: { maxBackoff: "500 millis", ...heartbeat } }
        : undefined,
      instanceId: id,
      writeQueueCapacity: options.writeQueueCapacity ?? 1_000,
      writeQueueMaxBytes: options.writeQueueMaxBytes,
      writeBatchSize: options.writeBatchSize ?? 100,
      invalidationMemory: options.invalidationMemory ?? 10_000,
      hooks: {
        onLookup: (tier, outcome) => stats.lookups.push([tier, outcome]),
        onOriginLoad: () => stats.originLoads++,
        onWriteFailed: (tier, count = 1) => (stats.writeFailed[tier] += count),
        onRemoteApplied: (message) => {
          const at = performance.now()
          stats.applied.push({ message, at })
          for (const f of listeners) f(message, at)
        },
        onMemoryDropped: () => {
          stats.memoryDropped++
          for (const waiter of dropWaiters) {
            if (stats.memoryDropped >= waiter.count) Deferred.unsafeDone(waiter.done, Effect.void)
          }
        }
      }
    }).pipe(Effect.orDie)
    const firstAdapter = adapters.values().next()
    return {
      id,
      cache,
      memory,
      redis,
      postgres,
      redisAdapter: firstAdapter.done === true ? undefined : firstAdapter.value,
      stats,
      onApplied: (f) => {
        listeners.add(f)
        return () => listeners.delete(f)
      },
      dropped: (count) =>
        Effect.suspend(() => {
          if (stats.memoryDropped >= count) return Effect.void
          const done = Deferred.unsafeMake<void>(FiberId.none)
          dropWaiters.push({ count, done })
          return Deferred.await(done)
        })
    } satisfies Instance
  })

/** Retries `check` (every 50 ms, for at most `within`) until it succeeds; fails with its last error. */
export const eventually = <A, E, R>(check: Effect.Effect<A, E, R>, within: Duration.DurationInput = "10 seconds") =>
  check.pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo(within)))
  )

/** Fails unless `condition` holds. */
export const ensure = (condition: boolean, message: string) =>
  condition ? Effect.void : Effect.fail(new Error(message))

/** The entry as the remote `tier` has it now (read directly, past the composition). */
export const inTier = (tier: { readonly get: (key: string) => Effect.Effect<Option.Option<CacheEntry>, unknown> } | undefined, key: string) =>
  tier === undefined ? Effect.dieMessage("tier not configured") : tier.get(key)

/** An item for `setEntries`, created now, fresh `freshMs`, usable `ttlMs`. */
export const itemAt = (now: number, key: string, value: string, options: { readonly ttlMs?: number; readonly freshMs?: number; readonly tags?: ReadonlyArray<string> } = {}): CacheItem => {
  const ttlMs = options.ttlMs ?? 60_000
  return {
    key,
    entry: {
      value: bytes(value),
      contentType: "application/json",
      createdAt: now,
      freshUntil: now + (options.freshMs ?? Math.min(ttlMs, 30_000)),
      staleUntil: now + ttlMs,
      tags: options.tags ?? []
    }
  }
}

/** Asserts `hit` has `status` and value `value`. */
export const assertHit = (hit: TieredCache.CacheHit, status: TieredCache.CacheStatus, value: string, label = "hit") => {
  assert.strictEqual(hit.status, status, `${label}: status`)
  assert.strictEqual(text(hit), value, `${label}: value`)
}
