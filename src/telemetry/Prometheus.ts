/**
 * `GET /metrics`: the Effect metric registry in the Prometheus text exposition format 0.0.4.
 *
 * **Choice: prom-client as the formatter, Effect as the only source of values.** The gateway's
 * metrics live in Effect's registry (cheap `unsafeUpdate` on the hot path, one source for
 * `/metrics` and the status page). For the text format we do not write our own formatter: the
 * exposition format has enough corners (HELP escaping, label-value escaping, `+Inf`/`NaN`
 * spelling, histogram `_bucket`/`_sum`/`_count` families) that a hand-written one is a bug
 * farm. prom-client is the format's most used Node implementation and is already a dependency.
 * On each scrape we take one `Metric.unsafeSnapshot()`, group it into families by name, and
 * register for each family an object in prom-client's metric shape (`name` plus `get()`
 * returning `{ name, help, type, values }`, the public `MetricObjectWithValues` every prom-client
 * metric returns) carrying the snapshot's samples, histograms with their buckets: prom-client's
 * `Registry` then writes HELP (from the Effect description), TYPE, and the samples with its own
 * escaping. prom-client's value storage is never used, so nothing is counted twice and nothing
 * drifts. (Its metric classes are not used as carriers because they cannot take bucket counts
 * from outside: a histogram only accepts `observe`.) A registry is built per scrape: scrapes are
 * rare, concurrent scrapes stay independent, and new series appear without bookkeeping.
 *
 * Only families named with the project prefix (`accelerator_`) are exported by default: the
 * registry also holds Effect's own `effect_fiber_*` counters, whose names break the counter
 * naming rule (`_total`) that `promtool check metrics` enforces. `render` takes another filter
 * when wanted. Names and label names that the format does not allow are rewritten
 * (`[^a-zA-Z0-9_:]` → `_`); a family without a description gets a generic HELP.
 *
 * @since 0.1.0
 */
import { Effect, Metric, type MetricPair, MetricState, Option } from "effect"
import type * as Http from "node:http"
import { withRequestId } from "../listener/Listener.js"
import * as Prom from "prom-client"

/** `Content-Type` of the exposition: `text/plain; version=0.0.4; charset=utf-8`. */
export const contentType: string = Prom.Registry.PROMETHEUS_CONTENT_TYPE

/** Prometheus metric types we write. */
export type Kind = "counter" | "gauge" | "histogram" | "summary"

/** One sample as prom-client's registry formats it (`metricName` for `_bucket`, `_sum`, `_count`). */
export interface Sample {
  readonly metricName?: string
  readonly labels: Record<string, string | number>
  readonly value: number
}

/** One family: all series of one metric name, with its HELP and TYPE. */
export interface Family {
  readonly name: string
  readonly help: string
  readonly kind: Kind
  readonly samples: Array<Sample>
}

const sanitizeName = (name: string): string => {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[0-9]/.test(s) ? `_${s}` : s
}

const sanitizeLabelName = (name: string): string => {
  const s = name.replace(/[^a-zA-Z0-9_]/g, "_")
  const t = /^[0-9]/.test(s) ? `_${s}` : s
  return t.startsWith("__") ? `x${t}` : t
}

const toNumber = (value: number | bigint): number => (typeof value === "bigint" ? Number(value) : value)

const kindOf = (state: unknown): Kind | "frequency" | undefined => {
  if (MetricState.isCounterState(state)) return "counter"
  if (MetricState.isGaugeState(state)) return "gauge"
  if (MetricState.isHistogramState(state)) return "histogram"
  if (MetricState.isSummaryState(state)) return "summary"
  if (MetricState.isFrequencyState(state)) return "frequency"
  return undefined
}

/** `le` / `quantile` label values as Prometheus spells them. */
const boundLabel = (bound: number): string =>
  bound === Infinity ? "+Inf" : bound === -Infinity ? "-Inf" : Number.isNaN(bound) ? "NaN" : String(bound)

/** The project's metric name prefix; the default filter of {@link render}. */
export const prefix = "accelerator_"

const isOurs = (name: string): boolean => name.startsWith(prefix)

/**
 * Groups a snapshot into families, sorted by name, series sorted by labels. Pure; O(series ×
 * buckets). Families whose name clashes with a family of another type keep the first type seen
 * and drop the others (Prometheus allows one type per name).
 */
export const families = (
  pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  include: (name: string) => boolean = isOurs
): ReadonlyArray<Family> => {
  const byName = new Map<string, Family>()
  const sorted = pairs.filter((pair) => include(pair.metricKey.name)).map((pair) => {
    const labels: Record<string, string> = {}
    for (const tag of pair.metricKey.tags) labels[sanitizeLabelName(tag.key)] = tag.value
    // Series sort by their label values in declaration order (route, then status class, …).
    const labelKey = pair.metricKey.tags.map((tag) => tag.value).join("\u0000")
    return { pair, labels, labelKey }
  }).sort((a, b) => (a.labelKey < b.labelKey ? -1 : a.labelKey > b.labelKey ? 1 : 0))

  for (const { labels, pair } of sorted) {
    const state: unknown = pair.metricState
    const found = kindOf(state)
    if (found === undefined) continue
    const kind: Kind = found === "frequency" ? "counter" : found
    const name = sanitizeName(pair.metricKey.name)
    let family = byName.get(name)
    if (family === undefined) {
      family = {
        name,
        help: Option.getOrElse(pair.metricKey.description, () => `Effect metric ${name}.`),
        kind,
        samples: []
      }
      byName.set(name, family)
    } else if (family.kind !== kind) {
      continue
    }
    const out = family.samples
    if (MetricState.isCounterState(state)) {
      out.push({ labels, value: toNumber(state.count) })
    } else if (MetricState.isGaugeState(state)) {
      out.push({ labels, value: toNumber(state.value) })
    } else if (MetricState.isHistogramState(state)) {
      for (const [bound, cumulative] of state.buckets) {
        // Effect's last boundary is +Inf; its count is the total, written below for certain.
        if (bound === Infinity) continue
        out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: boundLabel(bound) }, value: cumulative })
      }
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: state.count })
      out.push({ metricName: `${name}_sum`, labels, value: state.sum })
      out.push({ metricName: `${name}_count`, labels, value: state.count })
    } else if (MetricState.isSummaryState(state)) {
      for (const [quantile, value] of state.quantiles) {
        out.push({ labels: { ...labels, quantile: boundLabel(quantile) }, value: Option.getOrElse(value, () => NaN) })
      }
      out.push({ metricName: `${name}_sum`, labels, value: state.sum })
      out.push({ metricName: `${name}_count`, labels, value: state.count })
    } else if (MetricState.isFrequencyState(state)) {
      for (const [word, count] of [...state.occurrences].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        out.push({ labels: { ...labels, word }, value: count })
      }
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

// What prom-client's `Registry` reads from a metric: `name` to register it, `get()` to format it
// (the public `MetricObjectWithValues` shape every prom-client metric returns). Only histograms
// also have the internal `getForPromString`; our objects do not, so the registry formats exactly
// what `get()` returns. prom-client's own value storage is never involved.
const promMetric = (family: Family): Prom.Metric => {
  const metric = {
    name: family.name,
    help: family.help,
    type: family.kind,
    aggregator: "sum",
    get: () => Promise.resolve({ name: family.name, help: family.help, type: family.kind, aggregator: "sum", values: family.samples })
  }
  // `registerMetric` is typed for prom-client's classes, but reads only `name` and `get()`.
  return metric as unknown as Prom.Metric
}

/**
 * Renders a snapshot as the text exposition (format 0.0.4): for every family whose name passes
 * `include` (default: the `accelerator_` prefix) `# HELP`, `# TYPE` and its samples. Cost O(series × buckets); nothing is retained after it resolves.
 */
export const render = (
  pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  include: (name: string) => boolean = isOurs
): Promise<string> => {
  const registry = new Prom.Registry()
  for (const family of families(pairs, include)) registry.registerMetric(promMetric(family))
  return registry.metrics()
}

/**
 * The current exposition of Effect's global metric registry (the `accelerator_` families). For raw `node:http` handlers.
 * One snapshot per call; safe to call concurrently.
 */
export const scrape = (): Promise<string> => render(Metric.unsafeSnapshot())

/** {@link scrape} as an Effect (never fails; a formatting defect would be a bug and dies). */
export const exposition: Effect.Effect<string> = Effect.suspend(() => Effect.promise(scrape))

/**
 * A raw `node:http` handler for `GET /metrics` (also answers `HEAD`; other methods get 405).
 * Never throws; a rendering failure answers 500.
 */
export const handle = (req: Http.IncomingMessage, res: Http.ServerResponse): void => {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, withRequestId(req, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }))
    res.end("method not allowed\n")
    return
  }
  scrape().then(
    (body) => {
      res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" })
      res.end(req.method === "HEAD" ? undefined : body)
    },
    () => {
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" })
      res.end("metrics rendering failed\n")
    }
  )
}
