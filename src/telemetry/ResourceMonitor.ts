/**
 * Samples process and pool gauges on an interval: event loop delay (p50/p99/max over the last
 * interval, from `perf_hooks.monitorEventLoopDelay`, less its timer's interval), V8 heap in use, RSS, and whatever pool
 * readers the wiring passes in (upstream pool, PostgreSQL pool, Redis status, memory tier size,
 * requests in flight). GC pauses are recorded as they happen from a `PerformanceObserver` on
 * `gc` entries.
 *
 * Readers are plain synchronous functions: {@link make} and {@link layerConfig} depend on no
 * adapter (pass e.g. `() => drupalRpc.pool()`, `postgresPoolInfo`, `() => redis.status()`,
 * `() => memoryTier.stats()`, `listenerState.inFlight`); {@link layerFromContext} finds them in
 * the context (the Drupal client, the PostgreSQL pool, the Redis adapter, the listener's state),
 * so it depends on those adapters' tags. A reader that throws is skipped for that sample (the
 * others still run). Cost per sample: a handful of gauge sets; nothing runs on
 * the request path.
 *
 * @since 0.1.0
 */
import { type ConfigError, Duration, Effect, Layer, Option, Schedule, type Scope } from "effect"
import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { DrupalRpc, type PoolStats } from "../drupal/DrupalRpc.js"
import { ListenerState } from "../listener/Listener.js"
import { PostgresPool } from "../postgres/Postgres.js"
import { Redis } from "../redis/Redis.js"
import * as Metrics from "./Metrics.js"
import { ResourceMonitorConfig } from "./TelemetryConfig.js"

/** Sources of the pool gauges; each one absent leaves its gauge unset (and out of `/metrics`). */
export interface ResourceReaders {
  /** Requests in flight on the listener (`ListenerState.inFlight`). */
  readonly inFlight?: (() => number) | undefined
  /** Upstream undici pool counters (`DrupalRpc.pool`). */
  readonly upstreamPool?: (() => PoolStats) | undefined
  /** PostgreSQL pool counters (the `PostgresPool` service fits as is). */
  readonly postgresPool?: {
    readonly total: () => number
    readonly idle: () => number
    readonly waiting: () => number
  } | undefined
  /** ioredis status string (`Redis.status`); `"ready"` counts as connected. */
  readonly redisStatus?: (() => string) | undefined
  /** Memory tier size (`MemoryTier.stats` fits as is). */
  readonly memoryCache?: (() => { readonly bytes: number; readonly entries: number }) | undefined
}

/** Options of {@link make}. */
export interface ResourceMonitorOptions extends ResourceReaders {
  /** Time between samples (> 0). */
  readonly interval: Duration.DurationInput
}

const gcKindOf = (kind: unknown): Metrics.GcKind => {
  switch (kind) {
    case constants.NODE_PERFORMANCE_GC_MINOR:
      return "minor"
    case constants.NODE_PERFORMANCE_GC_MAJOR:
      return "major"
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL:
      return "incremental"
    case constants.NODE_PERFORMANCE_GC_WEAKCB:
      return "weakcb"
    default:
      return "other"
  }
}

const safely = (f: () => void): void => {
  try {
    f()
  } catch {
    // a broken reader must not stop the other gauges
  }
}

/** Timer interval of the event loop delay histogram, in milliseconds. */
export const EVENT_LOOP_RESOLUTION_MS = 10

/**
 * Takes one sample of every gauge now. Synchronous; used by the sampling fiber and handy in
 * tests. `eventLoop`, when given, is read and reset.
 *
 * `monitorEventLoopDelay` records the time between two runs of its timer, so an idle loop
 * records the timer's interval (`resolutionNs`, 10 ms) and a loop held for 30 ms records
 * 30–40 ms. The gauges report what the loop added to the interval: the recorded value less
 * `resolutionNs`, never below 0.
 */
export const sampleOnce = (
  readers: ResourceReaders,
  eventLoop?: { percentile: (p: number) => number; reset: () => void; count?: number; max?: number },
  resolutionNs = 0
): void => {
  if (eventLoop !== undefined) {
    safely(() => {
      // An interval with no observation yet reports 0 rather than the histogram's sentinel.
      const has = eventLoop.count === undefined || eventLoop.count > 0
      const seconds = (recorded: number) => (has ? Math.max(0, recorded - resolutionNs) / 1e9 : 0)
      Metrics.eventLoopDelayP50.unsafeUpdate(seconds(eventLoop.percentile(50)), [])
      Metrics.eventLoopDelayP99.unsafeUpdate(seconds(eventLoop.percentile(99)), [])
      if (eventLoop.max !== undefined) Metrics.eventLoopDelayMax.unsafeUpdate(seconds(eventLoop.max), [])
      eventLoop.reset()
    })
  }
  safely(() => {
    const memory = process.memoryUsage()
    Metrics.heapUsedBytes.unsafeUpdate(memory.heapUsed, [])
    Metrics.residentMemoryBytes.unsafeUpdate(memory.rss, [])
  })
  const { inFlight, memoryCache, postgresPool, redisStatus, upstreamPool } = readers
  if (inFlight !== undefined) safely(() => Metrics.setInFlight(inFlight()))
  if (upstreamPool !== undefined) safely(() => Metrics.setUpstreamPool(upstreamPool()))
  if (postgresPool !== undefined) {
    safely(() =>
      Metrics.setPgPool({ total: postgresPool.total(), idle: postgresPool.idle(), waiting: postgresPool.waiting() })
    )
  }
  if (redisStatus !== undefined) safely(() => Metrics.setRedisConnected(redisStatus() === "ready"))
  if (memoryCache !== undefined) {
    safely(() => {
      const stats = memoryCache()
      Metrics.setMemoryUsage(stats.bytes, stats.entries)
    })
  }
}

/**
 * Starts the monitor in the current scope: enables the event loop delay histogram and the GC
 * observer (both released with the scope) and forks the sampling fiber there (`forkScoped`),
 * which samples at once and then every `interval` of the Effect clock.
 */
export const make = (options: ResourceMonitorOptions): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const interval = Duration.decode(options.interval)
    const eventLoop = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const h = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS })
        h.enable()
        return h
      }),
      (h) => Effect.sync(() => h.disable())
    )
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) {
            const detail = (entry as { readonly detail?: { readonly kind?: unknown } | null }).detail
            Metrics.recordGcPause(gcKindOf(detail?.kind), entry.duration / 1000)
          }
        })
        observer.observe({ entryTypes: ["gc"] })
        return observer
      }),
      (observer) => Effect.sync(() => observer.disconnect())
    )
    yield* Effect.sync(() => sampleOnce(options, eventLoop, EVENT_LOOP_RESOLUTION_MS * 1e6)).pipe(
      Effect.repeat(Schedule.spaced(interval)),
      Effect.forkScoped
    )
  })

/** The monitor as a layer (it provides nothing; it runs while the layer is alive). */
export const layer = (options: ResourceMonitorOptions): Layer.Layer<never> => Layer.scopedDiscard(make(options))

/** The monitor with `METRICS_SAMPLE_INTERVAL_MS` from config and the given readers. */
export const layerConfig = (readers: ResourceReaders = {}): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.scopedDiscard(Effect.flatMap(ResourceMonitorConfig, (config) => make({ ...readers, interval: config.interval })))

/**
 * The monitor with `METRICS_SAMPLE_INTERVAL_MS` from config, reading every source it finds in
 * the context: `DrupalRpc` (upstream pool), `PostgresPool`, `Redis` (status) and
 * `ListenerState` (in flight), each optional. `extra` readers (e.g. `memoryCache`) are used
 * as given and win over the ones found.
 */
export const layerFromContext = (extra: ResourceReaders = {}): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const config = yield* ResourceMonitorConfig
      const rpc = yield* Effect.serviceOption(DrupalRpc)
      const postgres = yield* Effect.serviceOption(PostgresPool)
      const redis = yield* Effect.serviceOption(Redis)
      const server = yield* Effect.serviceOption(ListenerState)
      yield* make({
        interval: config.interval,
        upstreamPool: extra.upstreamPool ?? Option.getOrUndefined(Option.map(rpc, (r) => r.pool)),
        postgresPool: extra.postgresPool ?? Option.getOrUndefined(postgres),
        redisStatus: extra.redisStatus ?? Option.getOrUndefined(Option.map(redis, (r) => r.status)),
        inFlight: extra.inFlight ?? Option.getOrUndefined(Option.map(server, (s) => s.inFlight)),
        memoryCache: extra.memoryCache
      })
    })
  )
