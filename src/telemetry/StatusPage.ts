/**
 * `GET /status`: a small self-refreshing page for people, and `GET /status.json`, the summary it
 * polls every 2 s. No build step: the page is one static HTML string with inline CSS and JS;
 * sparklines are inline SVG drawn from the summary's history.
 *
 * **One source.** Every number about traffic, cache, pools and circuits is read from Effect's
 * metric registry (`Metric.unsafeSnapshot()`), the same registry `/metrics` renders, so the page
 * and a Prometheus scrape agree. Cumulative figures (request and lookup counts) are read at the
 * time of the request; rates and latency quantiles are computed the way Prometheus would
 * (`rate` and `histogram_quantile` over the HTTP histogram's buckets) between samples kept by a
 * sampler fiber: a ring of `samples` entries taken every `interval` (bounded memory: each sample
 * is ~20 numbers). The SLO section shows the `SloMonitor`'s own window when one is passed in.
 *
 * @since 0.1.0
 */
import {
  type ConfigError,
  Context,
  Duration,
  Effect,
  Layer,
  Metric,
  type MetricPair,
  MetricState,
  Option,
  type Scope
} from "effect"
import type * as Http from "node:http"
import { withRequestId } from "../listener/Listener.js"
import type { State as BreakerState } from "../resilience/CircuitBreaker.js"
import * as Metrics from "./Metrics.js"
import { SloMonitor, type SloStatus } from "./SloMonitor.js"
import { StatusPageConfig } from "./TelemetryConfig.js"

/** Lookups of one tier since start. */
export interface TierSummary {
  readonly tier: Metrics.Tier
  readonly hit: number
  readonly miss: number
  readonly stale: number
  readonly error: number
  /** hit / all lookups of the tier; `null` before the first lookup. */
  readonly hitRatio: number | null
}

/** One point of the sparklines. */
export interface HistoryPoint {
  /** Epoch ms of the sample that ends the interval. */
  readonly at: number
  readonly requestsPerSecond: number
  readonly p99Seconds: number | null
}

/** The JSON body of `/status.json`. */
export interface StatusSummary {
  /** Epoch ms (Effect clock) when the summary was made. */
  readonly generatedAt: number
  /** Span (seconds) that rates and quantiles cover; `null` until two samples exist. */
  readonly rateWindowSeconds: number | null
  readonly http: {
    readonly requestsTotal: number
    readonly errorsTotal: number
    readonly inFlight: number
    readonly requestsPerSecond: number | null
    readonly p50Seconds: number | null
    readonly p99Seconds: number | null
    readonly errorRate: number | null
  }
  readonly cache: {
    readonly tiers: ReadonlyArray<TierSummary>
    readonly originLoadsTotal: number
    readonly originLoadsPerSecond: number | null
    readonly memoryBytes: number | null
    readonly memoryEntries: number | null
    readonly evictionsTotal: number
  }
  readonly pools: {
    readonly upstream: { readonly open: number; readonly busy: number; readonly pending: number } | null
    readonly postgres: { readonly total: number; readonly idle: number; readonly waiting: number } | null
    readonly redisConnected: boolean | null
  }
  readonly circuits: ReadonlyArray<{ readonly circuit: Metrics.Circuit; readonly state: BreakerState }>
  readonly process: {
    readonly eventLoopDelayP99Seconds: number | null
    /** Largest event loop delay of the last sampling interval. */
    readonly eventLoopDelayMaxSeconds: number | null
    readonly heapUsedBytes: number | null
    readonly residentMemoryBytes: number | null
  }
  readonly slo: SloStatus | null
  readonly history: ReadonlyArray<HistoryPoint>
}

// ---------------------------------------------------------------------------------------------
// Reading the registry
// ---------------------------------------------------------------------------------------------

/** The figures the page needs, read from one registry snapshot. */
export interface MetricsView {
  readonly requests: number
  readonly errors: number
  /** Cumulative HTTP latency bucket counts summed over routes and statuses, aligned with `httpDurationBuckets` then `+Inf`. */
  readonly buckets: ReadonlyArray<number>
  readonly lookups: ReadonlyMap<string, Record<Metrics.LookupOutcome, number>>
  readonly originLoads: number
  readonly evictions: number
  readonly inFlight: number
  readonly memoryBytes: number | null
  readonly memoryEntries: number | null
  readonly upstream: Map<string, number>
  readonly postgres: Map<string, number>
  readonly redisConnected: boolean | null
  readonly circuits: Map<string, number>
  readonly eventLoopP99: number | null
  readonly eventLoopMax: number | null
  readonly heapUsed: number | null
  readonly rss: number | null
}

const tagOf = (pair: MetricPair.MetricPair.Untyped, key: string): string | undefined => {
  for (const tag of pair.metricKey.tags) if (tag.key === key) return tag.value
  return undefined
}

const num = (v: number | bigint): number => (typeof v === "bigint" ? Number(v) : v)

/** Reads the page's figures from a registry snapshot. Pure; O(series). */
export const readView = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): MetricsView => {
  const bucketCount = Metrics.httpDurationBuckets.length + 1
  const buckets = new Array<number>(bucketCount).fill(0)
  const lookups = new Map<string, Record<Metrics.LookupOutcome, number>>(
    Metrics.tiers.map((t) => [t, { hit: 0, miss: 0, stale: 0, error: 0 }])
  )
  const view = {
    requests: 0,
    errors: 0,
    buckets,
    lookups,
    originLoads: 0,
    evictions: 0,
    inFlight: 0,
    memoryBytes: null as number | null,
    memoryEntries: null as number | null,
    upstream: new Map<string, number>(),
    postgres: new Map<string, number>(),
    redisConnected: null as boolean | null,
    circuits: new Map<string, number>(),
    eventLoopP99: null as number | null,
    eventLoopMax: null as number | null,
    heapUsed: null as number | null,
    rss: null as number | null
  }
  for (const pair of pairs) {
    const state: unknown = pair.metricState
    const gauge = MetricState.isGaugeState(state) ? num(state.value) : undefined
    const counter = MetricState.isCounterState(state) ? num(state.count) : undefined
    switch (pair.metricKey.name) {
      case Metrics.metricNames.httpRequestDuration: {
        if (!MetricState.isHistogramState(state)) break
        view.requests += state.count
        if (tagOf(pair, "status_class") === "5xx") view.errors += state.count
        state.buckets.forEach(([, cumulative], i) => {
          if (i < bucketCount) buckets[i] = buckets[i]! + cumulative
        })
        break
      }
      case Metrics.metricNames.cacheLookups: {
        const row = lookups.get(tagOf(pair, "tier") ?? "")
        const outcome = tagOf(pair, "outcome") as Metrics.LookupOutcome | undefined
        if (row !== undefined && counter !== undefined && outcome !== undefined && outcome in row) row[outcome] += counter
        break
      }
      case Metrics.metricNames.cacheOriginLoads:
        view.originLoads += counter ?? 0
        break
      case Metrics.metricNames.cacheEvictions:
        view.evictions += counter ?? 0
        break
      case Metrics.metricNames.httpRequestsInFlight:
        view.inFlight = gauge ?? 0
        break
      case Metrics.metricNames.cacheMemoryBytes:
        view.memoryBytes = gauge ?? null
        break
      case Metrics.metricNames.cacheMemoryEntries:
        view.memoryEntries = gauge ?? null
        break
      case Metrics.metricNames.upstreamConnections:
        if (gauge !== undefined) view.upstream.set(tagOf(pair, "state") ?? "", gauge)
        break
      case Metrics.metricNames.pgPoolConnections:
        if (gauge !== undefined) view.postgres.set(tagOf(pair, "state") ?? "", gauge)
        break
      case Metrics.metricNames.redisConnected:
        view.redisConnected = gauge === undefined ? null : gauge === 1
        break
      case Metrics.metricNames.circuitState:
        if (gauge !== undefined) view.circuits.set(tagOf(pair, "circuit") ?? "other", gauge)
        break
      case Metrics.metricNames.eventLoopDelayP99:
        view.eventLoopP99 = gauge ?? null
        break
      case Metrics.metricNames.eventLoopDelayMax:
        view.eventLoopMax = gauge ?? null
        break
      case Metrics.metricNames.heapUsedBytes:
        view.heapUsed = gauge ?? null
        break
      case Metrics.metricNames.residentMemoryBytes:
        view.rss = gauge ?? null
        break
    }
  }
  return view
}

/**
 * A latency quantile from the difference of two cumulative bucket arrays, interpolated inside
 * the bucket that holds it, as Prometheus' `histogram_quantile` does. `null` without requests.
 */
export const histogramQuantile = (
  q: number,
  bounds: ReadonlyArray<number>,
  newer: ReadonlyArray<number>,
  older: ReadonlyArray<number> | undefined
): number | null => {
  const at = (i: number) => (newer[i] ?? 0) - (older?.[i] ?? 0)
  const total = at(bounds.length)
  if (!(total > 0)) return null
  const rank = q * total
  let below = 0
  for (let i = 0; i <= bounds.length; i++) {
    const cumulative = at(i)
    if (cumulative >= rank) {
      if (i === bounds.length) return bounds[bounds.length - 1] ?? null
      const lower = i === 0 ? 0 : bounds[i - 1]!
      const upper = bounds[i]!
      const inBucket = cumulative - below
      return inBucket > 0 ? lower + (upper - lower) * ((rank - below) / inBucket) : upper
    }
    below = cumulative
  }
  return null
}

// ---------------------------------------------------------------------------------------------
// The sampler and the summary
// ---------------------------------------------------------------------------------------------

interface Sample {
  readonly at: number
  readonly requests: number
  readonly errors: number
  readonly buckets: ReadonlyArray<number>
  readonly originLoads: number
}

/** Options of {@link make}; `StatusPageConfig` holds the defaults. */
export interface StatusPageOptions {
  /** Time between samples (> 0). */
  readonly interval: Duration.DurationInput
  /** Samples kept (>= 2); older ones are overwritten. */
  readonly samples: number
  /** Trailing span for rates and quantiles. */
  readonly window: Duration.DurationInput
  /** The SLO monitor whose state the page shows, if any. */
  readonly slo?: SloMonitor | undefined
}

/** The status page service. */
export interface StatusPage {
  /** The summary as of now (registry read now, rates from the sampler's ring). Never fails. */
  readonly summary: Effect.Effect<StatusSummary>
  /**
   * Raw `node:http` handler: answers `GET`/`HEAD` `/status` (HTML) and `/status.json` and returns
   * `true`; returns `false` for any other path without touching the response (so it can sit in
   * front of the Effect app, like a `FastPath`). Synchronous; never throws.
   */
  readonly handle: (req: Http.IncomingMessage, res: Http.ServerResponse) => boolean
}

/** Tag of the status page. */
/** Tag of the status page (tag name = interface name). */
export const StatusPage = Context.GenericTag<StatusPage>("accelerator/StatusPage")

const circuitStateName = (value: number): BreakerState => (value >= 2 ? "open" : value >= 1 ? "half_open" : "closed")

const rate = (newer: number, older: number, seconds: number): number => (seconds > 0 ? Math.max(0, newer - older) / seconds : 0)

/**
 * Builds the status page in the current scope and forks its sampler there (one sample at once,
 * then every `interval` of the Effect clock). Memory: `samples` samples of ~20 numbers.
 * Dies with a `RangeError` when `samples < 2`.
 */
export const make = (options: StatusPageOptions): Effect.Effect<StatusPage, never, Scope.Scope> =>
  Effect.gen(function*() {
    const capacity = options.samples
    if (!Number.isSafeInteger(capacity) || capacity < 2) {
      throw new RangeError(`StatusPage samples must be an integer >= 2, got ${capacity}`)
    }
    const windowMs = Duration.toMillis(options.window)
    const ring: Array<Sample | undefined> = new Array(capacity).fill(undefined)
    let next = 0
    let size = 0

    const takeSample = (at: number) => {
      const view = readView(Metric.unsafeSnapshot())
      ring[next] = { at, requests: view.requests, errors: view.errors, buckets: view.buckets, originLoads: view.originLoads }
      next = (next + 1) % capacity
      if (size < capacity) size++
    }

    /** Samples oldest first. */
    const ordered = (): ReadonlyArray<Sample> => {
      const out: Array<Sample> = []
      for (let i = 0; i < size; i++) out.push(ring[(next - size + i + capacity) % capacity]!)
      return out
    }

    const bounds = Metrics.httpDurationBuckets

    const build = (now: number): StatusSummary => {
      const view = readView(Metric.unsafeSnapshot())
      const samples = ordered()
      const latest = samples[samples.length - 1]
      const reference = latest === undefined ? undefined : samples.find((s) => s.at >= latest.at - windowMs)
      const span = latest !== undefined && reference !== undefined && latest !== reference
        ? (latest.at - reference.at) / 1000
        : null
      const windowed = span !== null && latest !== undefined && reference !== undefined
      const requestsInWindow = windowed ? latest.requests - reference.requests : 0

      const history: Array<HistoryPoint> = []
      for (let i = 1; i < samples.length; i++) {
        const a = samples[i - 1]!
        const b = samples[i]!
        history.push({
          at: b.at,
          requestsPerSecond: rate(b.requests, a.requests, (b.at - a.at) / 1000),
          p99Seconds: histogramQuantile(0.99, bounds, b.buckets, a.buckets)
        })
      }

      const tiers = Metrics.tiers.map((tier): TierSummary => {
        const row = view.lookups.get(tier)!
        const all = row.hit + row.miss + row.stale + row.error
        return { tier, ...row, hitRatio: all === 0 ? null : row.hit / all }
      })

      return {
        generatedAt: now,
        rateWindowSeconds: span,
        http: {
          requestsTotal: view.requests,
          errorsTotal: view.errors,
          inFlight: view.inFlight,
          requestsPerSecond: windowed ? rate(latest.requests, reference.requests, span) : null,
          p50Seconds: windowed ? histogramQuantile(0.5, bounds, latest.buckets, reference.buckets) : null,
          p99Seconds: windowed ? histogramQuantile(0.99, bounds, latest.buckets, reference.buckets) : null,
          errorRate: windowed && requestsInWindow > 0 ? (latest.errors - reference.errors) / requestsInWindow : null
        },
        cache: {
          tiers,
          originLoadsTotal: view.originLoads,
          originLoadsPerSecond: windowed ? rate(latest.originLoads, reference.originLoads, span) : null,
          memoryBytes: view.memoryBytes,
          memoryEntries: view.memoryEntries,
          evictionsTotal: view.evictions
        },
        pools: {
          upstream: view.upstream.size === 0
            ? null
            : {
              open: view.upstream.get("open") ?? 0,
              busy: view.upstream.get("busy") ?? 0,
              pending: view.upstream.get("pending") ?? 0
            },
          postgres: view.postgres.size === 0
            ? null
            : {
              total: view.postgres.get("total") ?? 0,
              idle: view.postgres.get("idle") ?? 0,
              waiting: view.postgres.get("waiting") ?? 0
            },
          redisConnected: view.redisConnected
        },
        circuits: Metrics.circuits.flatMap((circuit) => {
          const value = view.circuits.get(circuit)
          return value === undefined ? [] : [{ circuit, state: circuitStateName(value) }]
        }),
        process: {
          eventLoopDelayP99Seconds: view.eventLoopP99,
          eventLoopDelayMaxSeconds: view.eventLoopMax,
          heapUsedBytes: view.heapUsed,
          residentMemoryBytes: view.rss
        },
        slo: options.slo === undefined ? null : options.slo.status(),
        history
      }
    }

    const now = Effect.clockWith((clock) => clock.currentTimeMillis)
    const summary = Effect.map(now, build)

    yield* now.pipe(
      Effect.map(takeSample),
      Effect.zipRight(Effect.sleep(options.interval)),
      Effect.forever,
      Effect.forkScoped
    )

    const handle = (req: Http.IncomingMessage, res: Http.ServerResponse): boolean => {
      const url = req.url ?? ""
      const q = url.indexOf("?")
      const path = q === -1 ? url : url.slice(0, q)
      if (path !== "/status" && path !== "/status.json") return false
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, withRequestId(req, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }))
        res.end("method not allowed\n")
        return true
      }
      try {
        const json = path === "/status.json"
        const body = json ? JSON.stringify(build(Date.now())) : statusHtml
        res.writeHead(
          200,
          withRequestId(req, {
            "content-type": json ? jsonContentType : htmlContentType,
            "cache-control": "no-store",
            "x-content-type-options": "nosniff"
          })
        )
        res.end(req.method === "HEAD" ? undefined : body)
      } catch {
        if (!res.headersSent) res.writeHead(500, withRequestId(req, { "content-type": "text/plain; charset=utf-8" }))
        res.end("status failed\n")
      }
      return true
    }

    return { summary, handle }
  })

/** The status page as a layer over explicit options. */
export const layer = (options: StatusPageOptions): Layer.Layer<StatusPage> =>
  Layer.scoped(StatusPage, make(options))

/**
 * The status page from `StatusPageConfig`, showing the `SloMonitor` of the context when
 * there is one.
 */
export const layerConfig: Layer.Layer<StatusPage, ConfigError.ConfigError> = Layer.scoped(
  StatusPage,
  Effect.gen(function*() {
    const config = yield* StatusPageConfig
    const slo = yield* Effect.serviceOption(SloMonitor)
    return yield* make({ ...config, slo: Option.getOrUndefined(slo) })
  })
)

/** `Content-Type` of the page. */
export const htmlContentType = "text/html; charset=utf-8"
/** `Content-Type` of the summary. */
export const jsonContentType = "application/json; charset=utf-8"

/**
 * The page: static HTML with inline CSS and JS. It fetches `status.json` (relative to itself)
 * every 2 s and fills the elements marked `data-key` (a dotted path into {@link StatusSummary})
 * using `data-format` (`int`, `rate`, `ms`, `pct`, `bytes`, `text`); `null` shows as `—`. After
 * each update it keeps the summary it showed in `window.__statusSummary` and bumps
 * `document.body.dataset.updates` (tests read both).
 */
export const statusHtml: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>drupal-accelerator · status</title>
<style>
  :root { color-scheme: light dark; --fg:#1d232a; --muted:#5c6773; --bg:#f6f7f9; --card:#fff; --line:#d9dee4; --ok:#1a7f37; --warn:#b35900; --bad:#c62828; --accent:#2f6fde; }
  @media (prefers-color-scheme: dark) { :root { --fg:#e6e9ed; --muted:#9aa5b1; --bg:#14181d; --card:#1c2229; --line:#2c343d; --accent:#6ea2ff; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 1rem 1.5rem; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.1rem; margin: 0; }
  header .muted { color: var(--muted); font-size: .85rem; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 1rem; padding: 1rem 1.5rem; }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem; }
  h2 { font-size: .8rem; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 .6rem; }
  .big { display: flex; gap: 1.2rem; flex-wrap: wrap; }
  .big div { min-width: 5.5rem; }
  .big b { display: block; font-size: 1.5rem; font-variant-numeric: tabular-nums; }
  .big span, td.k { color: var(--muted); font-size: .8rem; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  td, th { padding: .2rem .3rem; text-align: right; white-space: nowrap; }
  td:first-child, th:first-child { text-align: left; }
  th { color: var(--muted); font-weight: normal; font-size: .8rem; }
  svg { width: 100%; height: 56px; display: block; margin-bottom: .8rem; border-bottom: 1px solid var(--line); }
  svg polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
  .state-ok, .state-closed, .state-true { color: var(--ok); }
  .state-half_open { color: var(--warn); }
  .state-breached, .state-open, .state-false { color: var(--bad); font-weight: 600; }
  #error { color: var(--bad); }
</style>
</head>
<body data-updates="0">
<header><h1>drupal-accelerator</h1><span class="muted">status · updated <span id="updated">—</span> · rates over <span data-key="rateWindowSeconds" data-format="int">—</span> s</span><span id="error"></span></header>
<main>
  <section>
    <h2>Traffic</h2>
    <div class="big">
      <div><b id="rps" data-key="http.requestsPerSecond" data-format="rate">—</b><span>requests/s</span></div>
      <div><b id="p50" data-key="http.p50Seconds" data-format="ms">—</b><span>p50</span></div>
      <div><b id="p99" data-key="http.p99Seconds" data-format="ms">—</b><span>p99</span></div>
      <div><b id="error-rate" data-key="http.errorRate" data-format="pct">—</b><span>5xx</span></div>
    </div>
    <table>
      <tr><td class="k">requests since start</td><td id="requests-total" data-key="http.requestsTotal" data-format="int">—</td></tr>
      <tr><td class="k">5xx since start</td><td id="errors-total" data-key="http.errorsTotal" data-format="int">—</td></tr>
      <tr><td class="k">in flight</td><td id="in-flight" data-key="http.inFlight" data-format="int">—</td></tr>
    </table>
  </section>
  <section>
    <h2>Requests/s, last minutes</h2>
    <svg id="spark-rps" viewBox="0 0 300 56" preserveAspectRatio="none" role="img" aria-label="requests per second"><polyline points=""/></svg>
    <h2>p99, last minutes</h2>
    <svg id="spark-p99" viewBox="0 0 300 56" preserveAspectRatio="none" role="img" aria-label="p99 latency"><polyline points=""/></svg>
  </section>
  <section>
    <h2>Cache (since start)</h2>
    <table>
      <tr><th>tier</th><th>hit ratio</th><th>hits</th><th>misses</th><th>stale</th><th>errors</th></tr>
      <tr><td>memory</td><td id="hit-ratio-memory" data-key="cache.tiers.0.hitRatio" data-format="pct">—</td><td id="hits-memory" data-key="cache.tiers.0.hit" data-format="int">—</td><td data-key="cache.tiers.0.miss" data-format="int">—</td><td data-key="cache.tiers.0.stale" data-format="int">—</td><td data-key="cache.tiers.0.error" data-format="int">—</td></tr>
      <tr><td>redis</td><td id="hit-ratio-redis" data-key="cache.tiers.1.hitRatio" data-format="pct">—</td><td id="hits-redis" data-key="cache.tiers.1.hit" data-format="int">—</td><td data-key="cache.tiers.1.miss" data-format="int">—</td><td data-key="cache.tiers.1.stale" data-format="int">—</td><td data-key="cache.tiers.1.error" data-format="int">—</td></tr>
      <tr><td>postgres</td><td id="hit-ratio-postgres" data-key="cache.tiers.2.hitRatio" data-format="pct">—</td><td id="hits-postgres" data-key="cache.tiers.2.hit" data-format="int">—</td><td data-key="cache.tiers.2.miss" data-format="int">—</td><td data-key="cache.tiers.2.stale" data-format="int">—</td><td data-key="cache.tiers.2.error" data-format="int">—</td></tr>
    </table>
    <table>
      <tr><td class="k">origin loads/s</td><td id="origin-rate" data-key="cache.originLoadsPerSecond" data-format="rate">—</td></tr>
      <tr><td class="k">origin loads since start</td><td id="origin-total" data-key="cache.originLoadsTotal" data-format="int">—</td></tr>
      <tr><td class="k">memory tier</td><td><span data-key="cache.memoryBytes" data-format="bytes">—</span> · <span data-key="cache.memoryEntries" data-format="int">—</span> entries</td></tr>
      <tr><td class="k">evictions</td><td data-key="cache.evictionsTotal" data-format="int">—</td></tr>
    </table>
  </section>
  <section>
    <h2>Pools and circuits</h2>
    <table>
      <tr><th></th><th>open</th><th>busy</th><th>pending</th></tr>
      <tr><td>upstream</td><td id="upstream-open" data-key="pools.upstream.open" data-format="int">—</td><td id="upstream-busy" data-key="pools.upstream.busy" data-format="int">—</td><td data-key="pools.upstream.pending" data-format="int">—</td></tr>
      <tr><th></th><th>total</th><th>idle</th><th>waiting</th></tr>
      <tr><td>postgres</td><td id="pg-total" data-key="pools.postgres.total" data-format="int">—</td><td data-key="pools.postgres.idle" data-format="int">—</td><td data-key="pools.postgres.waiting" data-format="int">—</td></tr>
      <tr><td>redis connected</td><td colspan="3" id="redis" data-key="pools.redisConnected" data-format="text">—</td></tr>
    </table>
    <table id="circuits"><tr><th>circuit</th><th>state</th></tr></table>
  </section>
  <section>
    <h2>SLO (<span data-key="slo.windowSeconds" data-format="int">—</span> s window)</h2>
    <div class="big">
      <div><b id="slo-state" data-key="slo.state" data-format="text">—</b><span>state</span></div>
      <div><b data-key="slo.requestsPerSecond" data-format="rate">—</b><span>requests/s</span></div>
      <div><b data-key="slo.p99Seconds" data-format="ms">—</b><span>p99</span></div>
    </div>
    <table id="objectives"><tr><th>objective</th><th>observed</th><th>threshold</th><th>state</th></tr></table>
  </section>
  <section>
    <h2>Process</h2>
    <table>
      <tr><td class="k">event loop delay p99</td><td data-key="process.eventLoopDelayP99Seconds" data-format="ms">—</td></tr>
      <tr><td class="k">heap used</td><td data-key="process.heapUsedBytes" data-format="bytes">—</td></tr>
      <tr><td class="k">resident memory</td><td data-key="process.residentMemoryBytes" data-format="bytes">—</td></tr>
    </table>
  </section>
</main>
<script>
"use strict";
(function () {
  var fmt = {
    int: function (v) { return String(Math.round(v)); },
    rate: function (v) { return v.toFixed(1); },
    ms: function (v) { return (v * 1000).toFixed(1) + " ms"; },
    pct: function (v) { return (v * 100).toFixed(1) + " %"; },
    bytes: function (v) { return (v / 1048576).toFixed(1) + " MiB"; },
    text: function (v) { return String(v); }
  };
  function get(obj, path) {
    return path.split(".").reduce(function (o, k) { return o === null || o === undefined ? null : o[k]; }, obj);
  }
  function show(el, value, format) {
    var text = value === null || value === undefined ? "\\u2014" : (fmt[format] || fmt.text)(value);
    el.textContent = text;
    el.className = format === "text" && value !== null && value !== undefined ? "state-" + String(value) : "";
  }
  function spark(svg, values) {
    var line = svg.querySelector("polyline");
    var nums = values.map(function (v) { return v === null ? 0 : v; });
    if (nums.length < 2) { line.setAttribute("points", ""); return; }
    var max = Math.max.apply(null, nums.concat([1e-9]));
    var step = 300 / (nums.length - 1);
    line.setAttribute("points", nums.map(function (v, i) {
      return (i * step).toFixed(1) + "," + (54 - (v / max) * 52).toFixed(1);
    }).join(" "));
    svg.setAttribute("data-max", String(max));
  }
  function rows(table, header, items) {
    while (table.rows.length > 1) table.deleteRow(1);
    items.forEach(function (cells) {
      var tr = table.insertRow();
      cells.forEach(function (c) {
        var td = tr.insertCell();
        td.textContent = c.text;
        if (c.cls) td.className = c.cls;
        if (c.id) td.id = c.id;
      });
    });
  }
  function render(s) {
    document.querySelectorAll("[data-key]").forEach(function (el) {
      show(el, get(s, el.getAttribute("data-key")), el.getAttribute("data-format"));
    });
    rows(document.getElementById("circuits"), true, s.circuits.map(function (c) {
      return [{ text: c.circuit }, { text: c.state, cls: "state-" + c.state, id: "circuit-" + c.circuit }];
    }));
    rows(document.getElementById("objectives"), true, s.slo === null ? [] : s.slo.objectives.map(function (o) {
      var f = o.unit === "seconds" ? fmt.ms : fmt.pct;
      return [{ text: o.objective }, { text: o.observed === null ? "\\u2014" : f(o.observed) }, { text: f(o.threshold) },
        { text: o.state, cls: "state-" + o.state, id: "slo-" + o.objective }];
    }));
    spark(document.getElementById("spark-rps"), s.history.map(function (h) { return h.requestsPerSecond; }));
    spark(document.getElementById("spark-p99"), s.history.map(function (h) { return h.p99Seconds; }));
    document.getElementById("updated").textContent = new Date(s.generatedAt).toLocaleTimeString();
    window.__statusSummary = s;
    document.body.dataset.updates = String(Number(document.body.dataset.updates || "0") + 1);
  }
  function tick() {
    fetch("status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (s) { document.getElementById("error").textContent = ""; render(s); })
      .catch(function (e) { document.getElementById("error").textContent = "update failed: " + e.message; })
      .finally(function () { setTimeout(tick, 2000); });
  }
  tick();
})();
</script>
</body>
</html>
`
