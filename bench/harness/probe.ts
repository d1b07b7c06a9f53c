/**
 * What a bench reads from the processes it measures: resident memory and CPU time from /proc
 * (Linux), the gateway's `/status.json` (tier lookups, event-loop delay) and the simulator's
 * `/__sim/stats` (upstream calls). A phase is bracketed by `startPhase` / `end()`.
 */
import * as fs from "node:fs"

const CLOCK_TICKS = 100

/** Current and peak (since start or the last `resetPeakRss`) resident set of `pid`, bytes. */
export const rssOf = (pid: number): { rss: number; peak: number } => {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024
    return { rss: kb("VmRSS"), peak: kb("VmHWM") }
  } catch {
    return { rss: 0, peak: 0 }
  }
}

/** Resets the kernel's peak-RSS mark of `pid` (`clear_refs` 5); false when not permitted. */
export const resetPeakRss = (pid: number): boolean => {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, "5")
    return true
  } catch {
    return false
  }
}

/** User + system CPU time of `pid`, ms. */
export const cpuMsOf = (pid: number): number => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return 0
  }
}

export const getJson = async (url: string, timeoutMs = 20_000): Promise<any> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
  return res.json()
}

/** {@link getJson}, three attempts, then `undefined` (a saturated process may not answer in time). */
const tryJson = async (url: string): Promise<any> => {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await getJson(url)
    } catch {
      // retry
    }
  }
  return undefined
}

type Tiers = Record<string, { hit: number; miss: number; stale: number; error: number }>

const tiersOf = (status: any): Tiers =>
  Object.fromEntries((status?.cache?.tiers ?? []).map((t: any) => [t.tier, { hit: t.hit, miss: t.miss, stale: t.stale, error: t.error }]))

export interface PhaseReport {
  /** Per tier: lookups during the phase and hit / all lookups of that tier. */
  readonly tiers: Record<string, { hit: number; miss: number; stale: number; error: number; hit_ratio: number | null }>
  readonly origin_loads: number | null
  /** Largest and median of the gateway's event-loop delay p99 samples during the phase, ms. */
  readonly event_loop_p99_ms: { readonly max: number | null; readonly median: number | null; readonly samples: number }
  /** Largest event-loop delay the gateway saw during the phase (max of its per-second maxima), ms. */
  readonly event_loop_max_ms: number | null
  readonly peak_rss_mb: number
  readonly rss_at_start_mb: number
  readonly cpu_ms: number
  /**
   * The gateway's own view of its answers during the phase, from its request-duration histogram
   * (`accelerator_http_request_duration_seconds`, from the request event to the response's
   * finish): the bucket bound at or under which 50/99/99.9 % of them finished, ms. Time a request
   * waited before the gateway read it (socket buffers, a load generator short of CPU) is not in it.
   */
  readonly gateway_side_ms: { readonly requests: number; readonly p50_at_most: number | null; readonly p99_at_most: number | null; readonly p999_at_most: number | null } | null
  /** The gateway's own upstream-request histogram (`accelerator_upstream_request_duration_seconds`): a call as the gateway saw it, from send to reply read. */
  readonly upstream_side_ms: { readonly requests: number; readonly p50_at_most: number | null; readonly p99_at_most: number | null; readonly p999_at_most: number | null } | null
  /** Simulator counters during the phase. */
  readonly upstream: {
    readonly http_requests: number
    readonly rpc_calls: number
    readonly methods: Record<string, number>
    readonly queue_rejections: number
    /** Mean time an HTTP request waited for a PHP worker of the simulator, ms (its cost model). */
    readonly queue_ms_per_request: number | null
    /** Share of the simulator's workers held over the phase (worker time / (workers × phase time)). */
    readonly worker_utilisation: number | null
  }
}

const mb = (b: number) => Math.round(b / 2 ** 20)

/** One of the gateway's duration histograms, summed over its labels: cumulative count per bound (s). */
const durationHistogram = async (gatewayUrl: string, metric = "accelerator_http_request_duration_seconds"): Promise<Map<number, number> | undefined> => {
  try {
    const res = await fetch(`${gatewayUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })
    const buckets = new Map<number, number>()
    for (const line of (await res.text()).split("\n")) {
      if (!line.startsWith(`${metric}_bucket`)) continue
      const le = /le="([^"]+)"/.exec(line)?.[1]
      if (le === undefined) continue
      const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le)
      buckets.set(bound, (buckets.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)))
    }
    return buckets
  } catch {
    return undefined
  }
}

const gatewaySide = (before: Map<number, number> | undefined, after: Map<number, number> | undefined): PhaseReport["gateway_side_ms"] => {
  if (before === undefined || after === undefined) return null
  const bounds = [...after.keys()].sort((a, b) => a - b)
  const total = (after.get(Number.POSITIVE_INFINITY) ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0)
  if (total <= 0) return { requests: 0, p50_at_most: null, p99_at_most: null, p999_at_most: null }
  const at = (q: number) => {
    for (const bound of bounds) {
      if ((after.get(bound) ?? 0) - (before.get(bound) ?? 0) >= q * total) return Number.isFinite(bound) ? bound * 1000 : null
    }
    return null
  }
  return { requests: total, p50_at_most: at(0.5), p99_at_most: at(0.99), p999_at_most: at(0.999) }
}

const queuePerRequest = (sim0: any, sim1: any): number | null => {
  const requests = (sim1?.http_requests ?? 0) - (sim0?.http_requests ?? 0)
  const queued = (sim1?.queue_ms ?? Number.NaN) - (sim0?.queue_ms ?? Number.NaN)
  return requests > 0 && Number.isFinite(queued) ? Math.round((queued / requests) * 10) / 10 : null
}

const utilisation = (sim0: any, sim1: any, workers: number, seconds: number): number | null => {
  const held = (sim1?.worker_ms ?? Number.NaN) - (sim0?.worker_ms ?? Number.NaN)
  return Number.isFinite(held) && seconds > 0 ? Math.round((held / (workers * seconds * 1000)) * 1000) / 1000 : null
}

/**
 * Starts watching one phase: gateway at `gatewayUrl` (pid `pid`), simulator at `simUrl`. The
 * gateway should sample its gauges every second (`METRICS_SAMPLE_INTERVAL_MS=1000`).
 */
export const startPhase = async (options: { readonly gatewayUrl: string; readonly pid: number; readonly simUrl: string; readonly workers?: number }) => {
  const phaseStarted = performance.now()
  const upstreamMetric = "accelerator_upstream_request_duration_seconds"
  const [status0, sim0, durations0, upstream0] = await Promise.all([tryJson(`${options.gatewayUrl}/status.json`), tryJson(`${options.simUrl}/__sim/stats`), durationHistogram(options.gatewayUrl), durationHistogram(options.gatewayUrl, upstreamMetric)])
  const rss0 = rssOf(options.pid).rss
  const peakReset = resetPeakRss(options.pid)
  let peakPolled = rss0
  const cpu0 = cpuMsOf(options.pid)
  const loopSamples: Array<number> = []
  let loopMax: number | null = null
  let stopped = false
  // The gauges are those of the gateway's last sample (every METRICS_SAMPLE_INTERVAL_MS, 1 s in
  // the benches), over the interval before it: the first poll's may cover the end of the
  // previous phase, so the loop's figures start at the second poll.
  let polls = 0
  const poller = (async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 1_000))
      peakPolled = Math.max(peakPolled, rssOf(options.pid).rss)
      try {
        const s = await getJson(`${options.gatewayUrl}/status.json`, 5_000)
        const fresh = polls++ > 0
        const v = s?.process?.eventLoopDelayP99Seconds
        if (typeof v === "number" && fresh) loopSamples.push(v * 1000)
        const m = s?.process?.eventLoopDelayMaxSeconds
        if (typeof m === "number" && fresh) loopMax = Math.max(loopMax ?? 0, Math.round(m * 10_000) / 10)
      } catch {
        // busy: skip this sample
      }
    }
  })()
  return {
    end: async (): Promise<PhaseReport> => {
      stopped = true
      await poller
      const [status1, sim1, durations1, upstream1] = await Promise.all([tryJson(`${options.gatewayUrl}/status.json`), tryJson(`${options.simUrl}/__sim/stats`), durationHistogram(options.gatewayUrl), durationHistogram(options.gatewayUrl, upstreamMetric)])
      const t0 = tiersOf(status0)
      const t1 = tiersOf(status1)
      const tiers = Object.fromEntries(Object.entries(t1).map(([name, b]) => {
        const a = t0[name] ?? { hit: 0, miss: 0, stale: 0, error: 0 }
        const d = { hit: b.hit - a.hit, miss: b.miss - a.miss, stale: b.stale - a.stale, error: b.error - a.error }
        const all = d.hit + d.miss + d.stale + d.error
        return [name, { ...d, hit_ratio: all === 0 ? null : Math.round((d.hit / all) * 1000) / 1000 }]
      }))
      const methods: Record<string, number> = {}
      for (const [m, n] of Object.entries<number>(sim1?.methods ?? {})) {
        const d = n - (sim0?.methods?.[m] ?? 0)
        if (d !== 0) methods[m] = d
      }
      const sorted = [...loopSamples].sort((a, b) => a - b)
      const peak = peakReset ? rssOf(options.pid).peak : Math.max(peakPolled, rssOf(options.pid).rss)
      const origin0 = status0?.cache?.originLoadsTotal
      const origin1 = status1?.cache?.originLoadsTotal
      return {
        tiers,
        origin_loads: typeof origin0 === "number" && typeof origin1 === "number" ? origin1 - origin0 : null,
        gateway_side_ms: gatewaySide(durations0, durations1),
        upstream_side_ms: gatewaySide(upstream0, upstream1),
        event_loop_p99_ms: {
          max: sorted.length === 0 ? null : Math.round(sorted[sorted.length - 1]! * 10) / 10,
          median: sorted.length === 0 ? null : Math.round(sorted[Math.floor(sorted.length / 2)]! * 10) / 10,
          samples: sorted.length
        },
        event_loop_max_ms: loopMax,
        peak_rss_mb: mb(peak),
        rss_at_start_mb: mb(rss0),
        cpu_ms: Math.round(cpuMsOf(options.pid) - cpu0),
        // NaN (written as null) when the simulator did not answer its stats in time.
        upstream: {
          http_requests: (sim1?.http_requests ?? Number.NaN) - (sim0?.http_requests ?? Number.NaN),
          rpc_calls: (sim1?.rpc_calls ?? Number.NaN) - (sim0?.rpc_calls ?? Number.NaN),
          methods,
          queue_rejections: (sim1?.queue_rejections ?? Number.NaN) - (sim0?.queue_rejections ?? Number.NaN),
          queue_ms_per_request: queuePerRequest(sim0, sim1),
          worker_utilisation: utilisation(sim0, sim1, options.workers ?? 16, (performance.now() - phaseStarted) / 1000)
        }
      }
    }
  }
}
