/**
 * Every metric of the gateway, as Effect `Metric` constants with one prefix (`accelerator_`),
 * the unit in the name, and labels from fixed sets only (the exported arrays below). A value
 * that is not in its set (an unknown route, an undiscovered method, a breaker name we do not
 * know) is counted under `other`: no key, id, token or free string ever becomes a label, so the
 * number of series is bounded by the product of the sets, whatever the traffic.
 *
 * Hot paths use the synchronous helpers (`recordHttp`, `recordCacheLookup`, …). They call the
 * metric's `unsafeUpdate(value, labels)` with a label array built once at module load, so an
 * update is a `Map` lookup for the label row, a `WeakMap` lookup inside Effect for the series
 * and an add: no fiber, no allocation. Counters and histograms with fixed label sets are
 * registered at module load with every combination at zero, so `rate()` works from the first
 * scrape and the series count is known in advance (see {@link fixedSeriesCount}).
 *
 * Wiring helpers: {@link drupalRpcHooks} (the Drupal client's hooks), {@link breakerStateHook}
 * (a circuit breaker's `onStateChange`), {@link cacheHooks} (the cache's lookups, loads,
 * evictions, failed writes) and {@link trackHttp} (the raw listener). Process and pool gauges
 * are sampled by `ResourceMonitor`.
 *
 * @since 0.1.0
 */
import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect"
import type * as Http from "node:http"
import type { DrupalRpcHooks, PoolStats } from "../drupal/DrupalRpc.js"
import { type RouteLabel, routeLabels, routeOf as routeOfUrl } from "../listener/Routes.js"
import type { State as BreakerState, StateChange } from "../resilience/CircuitBreaker.js"

// ---------------------------------------------------------------------------------------------
// Label sets
// ---------------------------------------------------------------------------------------------

/** Routes of the gateway, as `route` label values (from the route table); anything else is `other`. */
export const routes = routeLabels
/** A `route` label value. */
export type Route = RouteLabel

/** `status_class` label values; a status outside 100..599 is `other`. */
export const statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] as const
/** A `status_class` label value. */
export type StatusClass = typeof statusClasses[number]

/** Cache tiers, as `tier` label values. */
export const tiers = ["memory", "redis", "postgres"] as const
/** A `tier` label value. */
export type Tier = typeof tiers[number]

/** Outcomes of one cache lookup in one tier. */
export const lookupOutcomes = ["hit", "miss", "stale", "error"] as const
/** A lookup `outcome` label value. */
export type LookupOutcome = typeof lookupOutcomes[number]

/** `result` of an origin load (a cache miss in every tier, served from Drupal). */
export const originResults = ["ok", "error"] as const
/** An origin load `result` label value. */
export type OriginResult = typeof originResults[number]

/** `outcome` of one upstream HTTP request. */
export const upstreamOutcomes = ["ok", "error"] as const
/** An upstream `outcome` label value. */
export type UpstreamOutcome = typeof upstreamOutcomes[number]

/** Method labels that exist whatever discovery finds: `other` (not registered) and `batch` (a request carrying several methods). */
export const fixedMethodLabels = ["other", "batch"] as const

/** Circuit breakers, as `circuit` label values; a breaker with another name is `other`. */
export const circuits = ["drupal", "redis", "redis_writes", "postgres", "postgres_writes", "other"] as const
/** A `circuit` label value. */
export type Circuit = typeof circuits[number]

/** Value of `accelerator_circuit_state` per breaker state. */
export const circuitStateValue: Readonly<Record<BreakerState, number>> = { closed: 0, half_open: 1, open: 2 }

/** `state` of `accelerator_upstream_connections`. */
export const upstreamConnectionStates = ["open", "busy", "pending"] as const
/** `state` of `accelerator_pg_pool_connections`. */
export const pgPoolStates = ["total", "idle", "waiting"] as const

/** Kinds of garbage collection, as `kind` label values of the GC pause histogram. */
export const gcKinds = ["minor", "major", "incremental", "weakcb", "other"] as const
/** A GC `kind` label value. */
export type GcKind = typeof gcKinds[number]

/** Service level objectives, as `objective` label values. */
export const sloObjectives = ["latency_p95", "latency_p99", "error_rate"] as const
/** An `objective` label value. */
export type SloObjective = typeof sloObjectives[number]

/** `result` of one alert delivery (all its attempts). */
export const alertResults = ["delivered", "failed"] as const

// ---------------------------------------------------------------------------------------------
// Bucket boundaries (the `+Inf` bucket is added by Effect)
// ---------------------------------------------------------------------------------------------

/** Upper bounds of the HTTP latency histogram, in seconds. */
export const httpDurationBuckets: ReadonlyArray<number> = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10
]
/** Upper bounds of the upstream latency histogram, in seconds. */
export const upstreamDurationBuckets: ReadonlyArray<number> = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
/** Upper bounds of the batch size histogram, in calls. */
export const batchSizeBuckets: ReadonlyArray<number> = [1, 2, 5, 10, 20, 50, 100]
/** Upper bounds of the GC pause histogram, in seconds. */
export const gcPauseBuckets: ReadonlyArray<number> = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/** Names of the metrics the status page reads back from the registry: one place for each name. */
export const metricNames = {
  httpRequestDuration: "accelerator_http_request_duration_seconds",
  httpRequestsInFlight: "accelerator_http_requests_in_flight",
  cacheLookups: "accelerator_cache_lookups_total",
  cacheOriginLoads: "accelerator_cache_origin_loads_total",
  cacheMemoryBytes: "accelerator_cache_memory_bytes",
  cacheMemoryEntries: "accelerator_cache_memory_entries",
  cacheEvictions: "accelerator_cache_evictions_total",
  upstreamConnections: "accelerator_upstream_connections",
  pgPoolConnections: "accelerator_pg_pool_connections",
  redisConnected: "accelerator_redis_connected",
  circuitState: "accelerator_circuit_state",
  eventLoopDelayP99: "accelerator_process_event_loop_delay_p99_seconds",
  eventLoopDelayMax: "accelerator_process_event_loop_delay_max_seconds",
  heapUsedBytes: "accelerator_process_heap_used_bytes",
  residentMemoryBytes: "accelerator_process_resident_memory_bytes"
} as const

/** Time from a request's arrival to the end of its response; labels `route`, `status_class`. */
export const httpRequestDuration = Metric.histogram(
  metricNames.httpRequestDuration,
  MetricBoundaries.fromIterable(httpDurationBuckets),
  "Time from receiving an HTTP request to finishing its response, by route and status class."
)
/** Requests being served right now (sampled from the listener). */
export const httpRequestsInFlight = Metric.gauge(metricNames.httpRequestsInFlight, {
  description: "HTTP requests received whose response has not finished yet."
})

/** Lookups per tier and outcome; labels `tier`, `outcome`. */
export const cacheLookups = Metric.counter(metricNames.cacheLookups, {
  description: "Cache lookups by tier and outcome (hit, miss, stale, error).",
  incremental: true
})
/** Values loaded from the origin after missing every tier; label `result`. */
export const cacheOriginLoads = Metric.counter(metricNames.cacheOriginLoads, {
  description: "Values loaded from the Drupal origin after a miss in every cache tier, by result.",
  incremental: true
})
/** Counted size of the memory tier. */
export const cacheMemoryBytes = Metric.gauge(metricNames.cacheMemoryBytes, {
  description: "Counted size of the entries held by the in-process memory tier, in bytes."
})
/** Entries in the memory tier. */
export const cacheMemoryEntries = Metric.gauge(metricNames.cacheMemoryEntries, {
  description: "Entries held by the in-process memory tier."
})
/** Entries evicted from the memory tier to respect its bounds. */
export const cacheEvictions = Metric.counter(metricNames.cacheEvictions, {
  description: "Entries evicted from the memory tier to respect its byte or entry bound.",
  incremental: true
})
/** Times the memory tier was emptied because it may have missed invalidations (the bus reconnected). */
export const cacheMemoryDrops = Metric.counter("accelerator_cache_memory_drops_total", {
  description: "Times the memory tier was emptied after the invalidation bus reconnected (it may have missed invalidations).",
  incremental: true
})
/** Writes to a tier that failed; label `tier`. */
export const cacheWritesFailed = Metric.counter("accelerator_cache_writes_failed_total", {
  description: "Cache writes that failed, by tier.",
  incremental: true
})

/** Duration of one upstream HTTP request; labels `method` (bounded), `outcome`. */
export const upstreamRequestDuration = Metric.histogram(
  "accelerator_upstream_request_duration_seconds",
  MetricBoundaries.fromIterable(upstreamDurationBuckets),
  "Duration of one HTTP request to the Drupal upstream, by JSON-RPC method (discovered set, batch or other) and outcome."
)
/** Calls per JSON-RPC batch sent upstream. */
export const upstreamBatchSize = Metric.histogram(
  "accelerator_upstream_batch_size",
  MetricBoundaries.fromIterable(batchSizeBuckets),
  "Distinct calls carried by one JSON-RPC batch request to the Drupal upstream."
)
/** Calls that joined an identical call already in flight. */
export const upstreamDedupJoins = Metric.counter("accelerator_upstream_dedup_joins_total", {
  description: "Upstream calls that joined an identical read call already in flight instead of being sent.",
  incremental: true
})
/** Upstream calls retried; label `method` (bounded). */
export const upstreamRetries = Metric.counter("accelerator_upstream_retries_total", {
  description: "Upstream calls retried after a transient failure, by JSON-RPC method (discovered set or other).",
  incremental: true
})
/** Breaker state per circuit: 0 closed, 1 half-open, 2 open; label `circuit`. */
export const circuitState = Metric.gauge(metricNames.circuitState, {
  description: "Circuit breaker state by circuit: 0 closed, 1 half-open, 2 open."
})

/** Upstream connection pool; label `state` = open|busy|pending. */
export const upstreamConnections = Metric.gauge(metricNames.upstreamConnections, {
  description: "Drupal upstream connection pool: open connections, busy connections, and requests pending for one."
})
/** PostgreSQL pool; label `state` = total|idle|waiting. */
export const pgPoolConnections = Metric.gauge(metricNames.pgPoolConnections, {
  description: "PostgreSQL pool: total and idle clients, and queries waiting for a client."
})
/** 1 when the Redis client is ready, else 0. */
export const redisConnected = Metric.gauge(metricNames.redisConnected, {
  description: "1 when the Redis client is connected and ready, 0 otherwise."
})

/** Event loop delay, median over the last sampling interval. */
export const eventLoopDelayP50 = Metric.gauge("accelerator_process_event_loop_delay_p50_seconds", {
  description: "Median event loop delay over the last sampling interval, in seconds (beyond the 10 ms timer interval)."
})
/** Event loop delay, 99th percentile over the last sampling interval. */
export const eventLoopDelayP99 = Metric.gauge(metricNames.eventLoopDelayP99, {
  description: "99th percentile of the event loop delay over the last sampling interval, in seconds (beyond the 10 ms timer interval)."
})
/** Event loop delay, largest over the last sampling interval: the longest the loop was held at once. */
export const eventLoopDelayMax = Metric.gauge(metricNames.eventLoopDelayMax, {
  description: "Largest event loop delay over the last sampling interval, in seconds (beyond the 10 ms timer interval: about the longest the loop was held at once)."
})
/** V8 heap in use. */
export const heapUsedBytes = Metric.gauge(metricNames.heapUsedBytes, {
  description: "V8 heap in use, in bytes."
})
/** Resident set size of the process. */
export const residentMemoryBytes = Metric.gauge(metricNames.residentMemoryBytes, {
  description: "Resident set size of the process, in bytes."
})
/** Duration of garbage collection pauses; label `kind`. */
export const gcPause = Metric.histogram(
  "accelerator_process_gc_pause_seconds",
  MetricBoundaries.fromIterable(gcPauseBuckets),
  "Garbage collection pauses by kind, in seconds."
)

/** 1 while an objective is breached, else 0; label `objective`. */
export const sloBreached = Metric.gauge("accelerator_slo_breached", {
  description: "1 while a service level objective is breached over the rolling window, 0 otherwise."
})
/** Alerts handed to the webhook, by final result; label `result`. */
export const sloAlertDeliveries = Metric.counter("accelerator_slo_alert_deliveries_total", {
  description: "SLO alerts (breach or recovery) posted to the alert webhook, by final result after retries.",
  incremental: true
})

// ---------------------------------------------------------------------------------------------
// Label tables, built once: the hot path never allocates a label array.
// ---------------------------------------------------------------------------------------------

type Labels = ReadonlyArray<MetricLabel.MetricLabel>

const labels = (...pairs: ReadonlyArray<readonly [string, string]>): Labels =>
  Object.freeze(pairs.map(([k, v]) => MetricLabel.make(k, v)))

const table1 = <K extends string>(name: string, values: ReadonlyArray<K>): ReadonlyMap<string, Labels> =>
  new Map(values.map((v) => [v, labels([name, v])]))

const table2 = <A extends string, B extends string>(
  nameA: string,
  valuesA: ReadonlyArray<A>,
  nameB: string,
  valuesB: ReadonlyArray<B>
): ReadonlyMap<string, ReadonlyMap<string, Labels>> =>
  new Map(valuesA.map((a) => [a, new Map(valuesB.map((b) => [b, labels([nameA, a], [nameB, b])]))]))

const routeSet: ReadonlySet<string> = new Set(routes)
const httpLabels = table2("route", routes, "status_class", statusClasses)
const httpOtherRow = httpLabels.get("other")!
const statusClassByHundred: ReadonlyArray<StatusClass> = ["1xx", "2xx", "3xx", "4xx", "5xx"]

const lookupLabels = table2("tier", tiers, "outcome", lookupOutcomes)
const originLabels = table1("result", originResults)
const writeFailedLabels = table1("tier", tiers)
const circuitLabels = table1("circuit", circuits)
const upstreamConnectionLabels = table1("state", upstreamConnectionStates)
const pgPoolLabels = table1("state", pgPoolStates)
const gcLabels = table1("kind", gcKinds)
const sloLabels = table1("objective", sloObjectives)
const alertLabels = table1("result", alertResults)

/**
 * Rows for values outside a typed set (only reachable from untyped callers): built here, but
 * not registered, so their series appear only if such a value ever comes.
 */
const otherTier = labels(["tier", "other"])
const otherLookupRow = new Map(lookupOutcomes.map((o) => [o, labels(["tier", "other"], ["outcome", o])]))

// ---------------------------------------------------------------------------------------------
// Bounded method labels
// ---------------------------------------------------------------------------------------------

/** The label arrays of one `method` value: duration (ok, error) and retries. */
export interface MethodRow {
  readonly ok: ReadonlyArray<MetricLabel.MetricLabel>
  readonly error: ReadonlyArray<MetricLabel.MetricLabel>
  readonly retry: ReadonlyArray<MetricLabel.MetricLabel>
}

const methodRow = (method: string): MethodRow => ({
  ok: labels(["method", method], ["outcome", "ok"]),
  error: labels(["method", method], ["outcome", "error"]),
  retry: labels(["method", method])
})

const METHOD_LABEL = /^[A-Za-z0-9_.:-]{1,80}$/

/**
 * A set of label values that only grows up to `max` names, then refuses more. Lookups are one
 * `Map.get`. Used for the upstream `method` label: discovery registers the methods it finds;
 * anything else is labelled `other`. Because Effect never forgets a series, the cap bounds the
 * series for the life of the process. Not concurrency-sensitive (JavaScript is single-threaded;
 * all operations are synchronous).
 */
export class BoundedLabelSet {
  private readonly rows = new Map<string, MethodRow>()
  constructor(
    /** Most names accepted, ever. */
    readonly max: number,
    /** Values that always resolve to themselves and never count against `max`. */
    private readonly fixed: ReadonlyMap<string, MethodRow>,
    private readonly onAdd: (row: MethodRow) => void
  ) {}

  /**
   * Registers names (e.g. the method ids discovery found). Names that are already present,
   * reserved (`other`, `batch`), not of the form `[A-Za-z0-9_.:-]{1,80}`, or past the cap are
   * ignored. Returns the number of names newly accepted. O(names).
   */
  add(names: Iterable<string>): number {
    let added = 0
    for (const name of names) {
      if (this.rows.size >= this.max) break
      if (this.rows.has(name) || this.fixed.has(name) || !METHOD_LABEL.test(name)) continue
      const row = methodRow(name)
      this.rows.set(name, row)
      this.onAdd(row)
      added++
    }
    return added
  }

  /** Label row for `name`: its own when registered, else `other`. O(1), no allocation. */
  row(name: string): MethodRow {
    return this.rows.get(name) ?? this.fixed.get("other")!
  }

  /** The label value `name` is counted under. */
  resolve(name: string): string {
    return this.rows.has(name) ? name : "other"
  }

  /** Names registered so far (at most `max`). */
  get size(): number {
    return this.rows.size
  }

  /** The registered names. */
  values(): ReadonlyArray<string> {
    return [...this.rows.keys()]
  }
}

/** Most distinct upstream method names used as labels; the rest are `other`. */
export const MAX_METHOD_LABELS = 64

const fixedMethodRows: ReadonlyMap<string, MethodRow> = new Map(fixedMethodLabels.map((m) => [m, methodRow(m)]))

const registerMethodRow = (row: MethodRow): void => {
  upstreamRequestDuration.unsafeValue(row.ok)
  upstreamRequestDuration.unsafeValue(row.error)
  upstreamRetries.unsafeValue(row.retry)
}

/**
 * The upstream `method` label set: at most {@link MAX_METHOD_LABELS} names, registered by
 * discovery through {@link registerUpstreamMethods}. Process-wide, like Effect's metric registry.
 */
export const upstreamMethods = new BoundedLabelSet(MAX_METHOD_LABELS, fixedMethodRows, registerMethodRow)

/**
 * Lets these method ids be used as `method` label values (call it with the method ids discovery
 * found). Their series are created at zero. Bounded: past {@link MAX_METHOD_LABELS} names in
 * total, further names stay `other`. Returns how many names were newly accepted.
 */
export const registerUpstreamMethods = (names: Iterable<string>): number => upstreamMethods.add(names)

// ---------------------------------------------------------------------------------------------
// Hot-path helpers
// ---------------------------------------------------------------------------------------------

/** The `route` label of a route name; not one of {@link routes} → `other`. O(1). */
export const routeLabel = (route: string): Route => (routeSet.has(route) ? route as Route : "other")

/** The `status_class` of an HTTP status; outside 100..599 → `other`. O(1). */
export const statusClassOf = (status: number): StatusClass =>
  status >= 100 && status < 600 ? statusClassByHundred[Math.floor(status / 100) - 1]! : "other"

/** The route of a request target (`req.url`): see `listener/Routes.ts`. */
export const routeOf: (url: string | undefined) => Route = routeOfUrl

/**
 * Records one finished HTTP request: `route` (a {@link Route}; any other string counts as
 * `other`), the final status and the duration in seconds. Synchronous, no allocation, no fiber:
 * safe on the fast path. A negative or non-finite duration is ignored.
 */
export const recordHttp = (route: string, status: number, seconds: number): void => {
  if (!(seconds >= 0 && seconds < Infinity)) return
  const row = httpLabels.get(route) ?? httpOtherRow
  httpRequestDuration.unsafeUpdate(seconds, row.get(statusClassOf(status))!)
}

/**
 * Times the response of one request on the raw `node:http` listener and records it with
 * {@link recordHttp} (route from {@link routeOf}) when the response closes, then calls `also`
 * (e.g. `SloMonitor.record`) with the same figures. Costs one closure and one `close` listener
 * per request. A response closed before it finished (client gone) is recorded with the status
 * it had, which is what the gateway had decided to answer.
 */
export const trackHttp = (
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  also?: (seconds: number, status: number) => void
): void => {
  const started = performance.now()
  res.once("close", () => {
    const seconds = (performance.now() - started) / 1000
    const status = res.statusCode
    recordHttp(routeOf(req.url), status, seconds)
    if (also !== undefined) also(seconds, status)
  })
}

/** Sets the in-flight requests gauge. */
export const setInFlight = (n: number): void => httpRequestsInFlight.unsafeUpdate(n, [])

const lookupRow = (tier: string) => lookupLabels.get(tier) ?? otherLookupRow

/** Counts `count` (default 1) cache lookups in `tier` with `outcome`. O(1), synchronous. */
export const recordCacheLookup = (tier: Tier, outcome: LookupOutcome, count = 1): void => {
  const row = lookupRow(tier).get(outcome)
  if (row !== undefined && count > 0) cacheLookups.unsafeUpdate(count, row)
}

/** Counts one origin load (`ok` = the origin answered with a value to cache). O(1), synchronous. */
export const recordOriginLoad = (ok: boolean): void => cacheOriginLoads.unsafeUpdate(1, originLabels.get(ok ? "ok" : "error")!)

/** Counts `count` (default 1) failed writes to `tier`. O(1), synchronous. */
export const recordCacheWriteFailed = (tier: Tier, count = 1): void => {
  if (count > 0) cacheWritesFailed.unsafeUpdate(count, writeFailedLabels.get(tier) ?? otherTier)
}

/** Counts one memory-tier eviction. O(1), synchronous. */
export const recordEviction = (): void => cacheEvictions.unsafeUpdate(1, [])

/** Records that the memory tier was emptied after a bus reconnection. */
export const recordMemoryDrop = (): void => cacheMemoryDrops.unsafeUpdate(1, [])

/** Sets the memory tier's size gauges. */
export const setMemoryUsage = (bytes: number, entries: number): void => {
  cacheMemoryBytes.unsafeUpdate(bytes, [])
  cacheMemoryEntries.unsafeUpdate(entries, [])
}

/**
 * Records one upstream HTTP request: a single method → its label (registered set, else
 * `other`); several → `batch`. O(1), synchronous.
 */
export const recordUpstream = (methods: ReadonlyArray<string>, seconds: number, ok: boolean): void => {
  if (!(seconds >= 0 && seconds < Infinity)) return
  const row = methods.length === 1 ? upstreamMethods.row(methods[0]!) : fixedMethodRows.get("batch")!
  upstreamRequestDuration.unsafeUpdate(seconds, ok ? row.ok : row.error)
}

/** The `circuit` label of a breaker name; unknown → `other`. */
export const circuitLabel = (name: string): Circuit => (circuitLabels.has(name) ? name as Circuit : "other")

/** Sets `accelerator_circuit_state` for the breaker called `name` (see {@link circuitStateValue}). */
export const setCircuitState = (name: string, state: BreakerState): void =>
  circuitState.unsafeUpdate(circuitStateValue[state], circuitLabels.get(circuitLabel(name))!)

/** Sets the upstream pool gauges from undici's pool counters (busy = connected − free). */
export const setUpstreamPool = (stats: PoolStats): void => {
  upstreamConnections.unsafeUpdate(stats.connected, upstreamConnectionLabels.get("open")!)
  upstreamConnections.unsafeUpdate(Math.max(0, stats.connected - stats.free), upstreamConnectionLabels.get("busy")!)
  upstreamConnections.unsafeUpdate(stats.pending, upstreamConnectionLabels.get("pending")!)
}

/** Sets the PostgreSQL pool gauges. */
export const setPgPool = (pool: { readonly total: number; readonly idle: number; readonly waiting: number }): void => {
  pgPoolConnections.unsafeUpdate(pool.total, pgPoolLabels.get("total")!)
  pgPoolConnections.unsafeUpdate(pool.idle, pgPoolLabels.get("idle")!)
  pgPoolConnections.unsafeUpdate(pool.waiting, pgPoolLabels.get("waiting")!)
}

/** Sets `accelerator_redis_connected`. */
export const setRedisConnected = (connected: boolean): void => redisConnected.unsafeUpdate(connected ? 1 : 0, [])

/** Records one GC pause of `seconds`, of `kind`. */
export const recordGcPause = (kind: GcKind, seconds: number): void => {
  if (seconds >= 0 && seconds < Infinity) gcPause.unsafeUpdate(seconds, gcLabels.get(kind) ?? gcLabels.get("other")!)
}

/** Sets `accelerator_slo_breached` for `objective`. */
export const setSloBreached = (objective: SloObjective, breached: boolean): void =>
  sloBreached.unsafeUpdate(breached ? 1 : 0, sloLabels.get(objective)!)

/** Counts one alert's final delivery result. */
export const recordAlertDelivery = (delivered: boolean): void =>
  sloAlertDeliveries.unsafeUpdate(1, alertLabels.get(delivered ? "delivered" : "failed")!)

// ---------------------------------------------------------------------------------------------
// Hooks for other modules
// ---------------------------------------------------------------------------------------------

/**
 * The Drupal client's hooks feeding the upstream metrics (pass as `DrupalRpcOptions.hooks`).
 * Each hook is synchronous, O(1), never throws. `extra` hooks, when given, run after ours.
 */
export const drupalRpcHooks = (extra: DrupalRpcHooks = {}): DrupalRpcHooks => ({
  onUpstreamRequest: (info) => {
    recordUpstream(info.methods, info.seconds, info.ok)
    extra.onUpstreamRequest?.(info)
  },
  onBatch: (size) => {
    if (size > 0) upstreamBatchSize.unsafeUpdate(size, [])
    extra.onBatch?.(size)
  },
  onDedupJoin: () => {
    upstreamDedupJoins.unsafeUpdate(1, [])
    extra.onDedupJoin?.()
  },
  onRetry: (method) => {
    upstreamRetries.unsafeUpdate(1, upstreamMethods.row(method).retry)
    extra.onRetry?.(method)
  }
})

/**
 * A circuit breaker's `onStateChange` that sets `accelerator_circuit_state` for the breaker's
 * name (drupal, redis, postgres; anything else is `other`), then runs `extra` if given.
 * Short and lock-safe as the breaker requires: it only sets a gauge.
 */
export const breakerStateHook = (
  extra?: (change: StateChange) => Effect.Effect<void>
): (change: StateChange) => Effect.Effect<void> =>
(change) => {
  const set = Effect.sync(() => setCircuitState(change.name, change.to))
  return extra === undefined ? set : Effect.zipRight(set, extra(change))
}

/** Callbacks the cache layer calls; all synchronous, O(1), never throw. */
export interface CacheHooks {
  /** `count` lookups (default 1) in `tier` ended with `outcome`. */
  readonly onLookup: (tier: Tier, outcome: LookupOutcome, count?: number) => void
  /** A value was loaded from the origin (`ok` false when the load failed). */
  readonly onOriginLoad: (ok: boolean) => void
  /** `count` writes (default 1) to `tier` failed. */
  readonly onWriteFailed: (tier: Tier, count?: number) => void
  /** The memory tier evicted an entry (signature of `MemoryTierOptions.onEvict`; the key is not used). */
  readonly onEvict: (key: string, bytes: number) => void
  /** The memory tier was emptied after the invalidation bus reconnected. */
  readonly onMemoryDropped: () => void
}

/** The cache hooks feeding the cache metrics. */
export const cacheHooks: CacheHooks = {
  onLookup: recordCacheLookup,
  onOriginLoad: recordOriginLoad,
  onWriteFailed: recordCacheWriteFailed,
  onEvict: () => recordEviction(),
  onMemoryDropped: recordMemoryDrop
}

// ---------------------------------------------------------------------------------------------
// Registration of the fixed series
// ---------------------------------------------------------------------------------------------

/**
 * Series that exist from module load on, whatever the traffic: every combination of the fixed
 * label sets of the counters and histograms, plus the unlabelled metrics, the in-flight gauge
 * and the SLO gauges. Upstream `method` series add two histogram series and one counter series
 * per registered method (at most {@link MAX_METHOD_LABELS}); pool, circuit and process gauges
 * appear once something sets them.
 */
export const fixedSeriesCount: number = (() => {
  let n = 0
  const touch = (metric: { unsafeValue: (labels: Labels) => unknown }, l: Labels) => {
    metric.unsafeValue(l)
    n++
  }
  for (const row of httpLabels.values()) for (const l of row.values()) touch(httpRequestDuration, l)
  for (const row of lookupLabels.values()) for (const l of row.values()) touch(cacheLookups, l)
  for (const l of originLabels.values()) touch(cacheOriginLoads, l)
  for (const l of writeFailedLabels.values()) touch(cacheWritesFailed, l)
  touch(cacheEvictions, [])
  touch(cacheMemoryDrops, [])
  for (const row of fixedMethodRows.values()) {
    touch(upstreamRequestDuration, row.ok)
    touch(upstreamRequestDuration, row.error)
  }
  touch(upstreamRetries, fixedMethodRows.get("other")!.retry)
  touch(upstreamBatchSize, [])
  touch(upstreamDedupJoins, [])
  for (const l of gcLabels.values()) touch(gcPause, l)
  for (const l of sloLabels.values()) touch(sloBreached, l)
  for (const l of alertLabels.values()) touch(sloAlertDeliveries, l)
  touch(httpRequestsInFlight, [])
  return n
})()
