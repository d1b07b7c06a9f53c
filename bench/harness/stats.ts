/** Percentiles and per-window summaries of load records. */
import { CACHE_STATES, type Records } from "./load.js"

/** Nearest-rank percentile of `xs` (sorted copy); NaN when empty. */
export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return Number.NaN
  const sorted = Float64Array.from(xs).sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const round1 = (x: number) => (Number.isFinite(x) ? Math.round(x * 10) / 10 : null)

export interface Window {
  readonly requests: number
  readonly statuses: Record<string, number>
  readonly cache: Record<string, number>
  readonly errors: number
  readonly error_rate: number
  readonly p50_ms: number | null
  readonly p90_ms: number | null
  readonly p99_ms: number | null
  readonly max_ms: number | null
  readonly rps: number
}

/** Indexes of records started in [from, to) (ms since epoch of the records) and matching `filter`. */
export const indexesIn = (r: Records, from: number, to: number, filter: (i: number) => boolean = () => true) => {
  const out: Array<number> = []
  for (let i = 0; i < r.length; i++) if (r.t[i]! >= from && r.t[i]! < to && filter(i)) out.push(i)
  return out
}

/** Errors are transport failures (status 0) and 5xx; abandoned requests (status -1) are neither. */
export const isError = (status: number) => status === 0 || status >= 500

export const summarize = (r: Records, idx: ReadonlyArray<number>, seconds: number): Window => {
  const statuses: Record<string, number> = {}
  const cache: Record<string, number> = {}
  const lat: Array<number> = []
  let errors = 0
  let counted = 0
  for (const i of idx) {
    const s = r.status[i]!
    const name = s === 0 ? "transport_error" : s === -1 ? "abandoned" : String(s)
    statuses[name] = (statuses[name] ?? 0) + 1
    const c = CACHE_STATES[r.cache[i]!] || "none"
    cache[c] = (cache[c] ?? 0) + 1
    if (s === -1) continue
    counted++
    if (isError(s)) errors++
    lat.push(r.ms[i]!)
  }
  return {
    requests: idx.length,
    statuses,
    cache,
    errors,
    error_rate: counted === 0 ? 0 : Math.round((errors / counted) * 10_000) / 10_000,
    p50_ms: round1(percentile(lat, 50)),
    p90_ms: round1(percentile(lat, 90)),
    p99_ms: round1(percentile(lat, 99)),
    max_ms: round1(lat.length === 0 ? Number.NaN : Math.max(...lat)),
    rps: seconds > 0 ? Math.round(idx.length / seconds) : 0
  }
}

/** Per-second buckets of p99 and error rate over [from, to). */
export const timeline = (r: Records, from: number, to: number, filter?: (i: number) => boolean, bucketMs = 1000) => {
  const out: Array<{ t: number; requests: number; p99_ms: number | null; error_rate: number }> = []
  for (let start = from; start < to; start += bucketMs) {
    const w = summarize(r, indexesIn(r, start, Math.min(to, start + bucketMs), filter), bucketMs / 1000)
    out.push({ t: start, requests: w.requests, p99_ms: w.p99_ms, error_rate: w.error_rate })
  }
  return out
}

/**
 * Recovery time: ms from `faultEnd` to the start of the first one-second bucket from which every
 * later bucket has p99 ≤ max(2 × baseline p99, baseline p99 + 50 ms) and an error rate ≤ baseline
 * + 2 %. null when the run ended before that.
 */
export const recoveryMs = (
  buckets: ReadonlyArray<{ t: number; requests: number; p99_ms: number | null; error_rate: number }>,
  faultEnd: number,
  baseline: Window
): number | null => {
  const p99Bound = Math.max(2 * (baseline.p99_ms ?? 0), (baseline.p99_ms ?? 0) + 50)
  const errBound = baseline.error_rate + 0.02
  const ok = (b: (typeof buckets)[number]) => b.requests > 0 && (b.p99_ms ?? 0) <= p99Bound && b.error_rate <= errBound
  const after = buckets.filter((b) => b.t >= faultEnd)
  for (let i = 0; i < after.length; i++) {
    if (after.slice(i).every(ok)) return Math.max(0, after[i]!.t - faultEnd)
  }
  return null
}
