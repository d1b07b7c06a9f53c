/**
 * Counters of what the simulated site was asked, since start or the last reset; control
 * routes (`/__sim/…`) are not counted. Cheap increments on the event loop; `snapshot` copies.
 *
 * @since 0.1.0
 */

/** A snapshot of the counters (also the JSON of `GET /__sim/stats`). */
export interface SimulatorStats {
  /** HTTP requests to the site (`/jsonrpc`, discovery, anything but `/__sim/`). */
  readonly http_requests: number
  /** JSON-RPC items received in parseable requests (a batch of 5 counts 5), notifications included. */
  readonly rpc_calls: number
  /** Requests whose body was a JSON array. */
  readonly batches: number
  /** Largest batch seen. */
  readonly max_batch_size: number
  /** Notification items received. */
  readonly notifications: number
  /** `GET /jsonrpc` and `POST /jsonrpc` requests. */
  readonly get_requests: number
  readonly post_requests: number
  /** Requests to `/jsonrpc/methods` and `/jsonrpc/methods/{id}`. */
  readonly discovery_requests: number
  /** Items received per method id (registered methods only; others under `(unknown)`). */
  readonly methods: Readonly<Record<string, number>>
  /** Responses by HTTP status (`"200"`, `"400"`, …). */
  readonly responses: Readonly<Record<string, number>>
  /** Per-item error replies (HTTP 200). */
  readonly rpc_errors: number
  /** Replies streamed chunk by chunk. */
  readonly streamed_responses: number
  /** Body bytes written by the site. */
  readonly bytes_sent: number
  /** Time PHP workers were held by requests, in ms (the cost model; 0 when it is off). */
  readonly worker_ms: number
  /** Time requests waited for a worker, in ms. */
  readonly queue_ms: number
  /** Requests answered 503 because `queueMax` requests were already waiting. */
  readonly queue_rejections: number
  /** Injected faults. */
  readonly faults: {
    readonly hangs: number
    readonly resets: number
    readonly http_503: number
    readonly rpc_errors: number
    readonly slow_streams: number
    readonly delayed_requests: number
  }
  /** API requests being handled now (hung ones included). */
  readonly in_flight: number
  /** Workers held now. */
  readonly workers_busy: number
  /** Requests waiting for a worker now. */
  readonly queue_length: number
  /** When counting started (ISO 8601). */
  readonly since: string
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] }

/** The live counters. */
export interface StatsCollector {
  readonly counters: Mutable<Omit<SimulatorStats, "in_flight" | "workers_busy" | "queue_length">>
  /** In-flight count (not zeroed by reset: those requests are still there). */
  inFlight: number
  /** Live pool gauges (not zeroed by reset); set once the pool exists. */
  pool: () => { readonly busy: number; readonly waiting: number }
  readonly countMethod: (id: string, known: boolean) => void
  readonly countResponse: (status: number) => void
  readonly reset: () => void
  readonly snapshot: () => SimulatorStats
}

const fresh = (): Mutable<Omit<SimulatorStats, "in_flight" | "workers_busy" | "queue_length">> => ({
  http_requests: 0,
  rpc_calls: 0,
  batches: 0,
  max_batch_size: 0,
  notifications: 0,
  get_requests: 0,
  post_requests: 0,
  discovery_requests: 0,
  methods: {},
  responses: {},
  rpc_errors: 0,
  streamed_responses: 0,
  bytes_sent: 0,
  worker_ms: 0,
  queue_ms: 0,
  queue_rejections: 0,
  faults: { hangs: 0, resets: 0, http_503: 0, rpc_errors: 0, slow_streams: 0, delayed_requests: 0 },
  since: new Date().toISOString()
})

/** New zeroed counters. */
export const makeStats = (): StatsCollector => {
  const self: StatsCollector = {
    counters: fresh(),
    inFlight: 0,
    pool: () => ({ busy: 0, waiting: 0 }),
    countMethod: (id, known) => {
      const key = known ? id : "(unknown)"
      self.counters.methods[key] = (self.counters.methods[key] ?? 0) + 1
    },
    countResponse: (status) => {
      const key = String(status)
      self.counters.responses[key] = (self.counters.responses[key] ?? 0) + 1
    },
    reset: () => {
      Object.assign(self.counters, fresh())
    },
    snapshot: () => {
      const pool = self.pool()
      return structuredClone({
        ...self.counters,
        worker_ms: Math.round(self.counters.worker_ms * 1000) / 1000,
        queue_ms: Math.round(self.counters.queue_ms * 1000) / 1000,
        in_flight: self.inFlight,
        workers_busy: pool.busy,
        queue_length: pool.waiting
      })
    }
  }
  return self
}
