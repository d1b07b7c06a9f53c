/**
 * Watches the gateway's service level objectives over a rolling window and raises one alert per
 * breach and one per recovery.
 *
 * - **Window**: `buckets` buckets of `bucket` each (default 12 × 5 s = 60 s), a ring of fixed
 *   size. Each bucket holds a request count, a 5xx count and a latency sketch: a fixed
 *   log-spaced histogram ({@link SKETCH_BUCKETS} counters from 0.5 ms to ≈ 96 s, then one overflow counter; ≈ 8 % per step).
 *   Memory is constant: `buckets × (SKETCH_BUCKETS + 2) × 4` bytes (≈ 8 KB by default).
 * - **Recording**: {@link SloMonitor.record} is synchronous and O(1) (one `Math.log`, three
 *   array increments, no allocation, no clock read): it runs for every request. It always
 *   writes into the current bucket; the evaluation fiber moves the ring on.
 * - **Evaluation**: a fiber forked in the monitor's scope wakes every `bucket`, judges p95 and
 *   p99 latency and the error rate (5xx share) over the whole window, then starts a new bucket.
 *   An objective is judged only when the window holds at least `minRequests` requests; with
 *   fewer, its state is kept as it is (too little traffic proves nothing either way).
 * - **No storm** (hysteresis): an objective goes `ok → breached` on the first evaluation above
 *   its threshold and `breached → ok` only after `recoveryEvaluations` evaluations in a row at or
 *   below `threshold × recoveryRatio`. Each transition produces exactly one log line (a warning
 *   on breach, info on recovery), sets `accelerator_slo_breached`, and queues one webhook alert.
 * - **Alerts** go to the webhook (when configured) from a second fiber, through a sliding queue
 *   of {@link ALERT_QUEUE_SIZE} (when the webhook is down for long, the oldest undelivered
 *   alerts give way to the newest). Each alert is POSTed as JSON, retried with jittered
 *   exponential backoff up to `maxAttempts` attempts; each attempt is bounded by `timeout` in
 *   real time. Nothing here ever waits on the webhook in the request path.
 *
 * @since 0.1.0
 */
import { Context, Data, Duration, Effect, Layer, Option, Queue, Redacted, Schedule, type Scope } from "effect"
import { Agent, request } from "undici"
import * as Metrics from "./Metrics.js"
import { AlertWebhookConfig, SloConfig } from "./TelemetryConfig.js"

/** Counters in one bucket's latency sketch. */
export const SKETCH_BUCKETS = 160
/** Upper bound of the sketch's first counter, in seconds. */
const SKETCH_MIN = 0.0005
/** Growth of the sketch's bounds per counter: 0.5 ms × 1.08^158 ≈ 96 s; the last counter is overflow. */
const SKETCH_FACTOR = 1.08
const LOG_FACTOR = Math.log(SKETCH_FACTOR)

/** Alerts waiting for the webhook at most; see the module documentation. */
export const ALERT_QUEUE_SIZE = 32

/** Upper bound (seconds) of sketch counter `i`; the last counter has no upper bound. */
const upperBound = (i: number): number => (i >= SKETCH_BUCKETS - 1 ? Infinity : SKETCH_MIN * Math.pow(SKETCH_FACTOR, i))

const sketchIndex = (seconds: number): number => {
  if (seconds <= SKETCH_MIN) return 0
  const i = Math.ceil(Math.log(seconds / SKETCH_MIN) / LOG_FACTOR)
  return i >= SKETCH_BUCKETS - 1 ? SKETCH_BUCKETS - 1 : i
}

/** Where the alert webhook is and how hard to try. */
export interface WebhookOptions {
  readonly url: string | URL
  /** Bound on one attempt, in real time (not the Effect clock, so test clocks cannot trip it). */
  readonly timeout: Duration.DurationInput
  /** Attempts per alert, the first included (>= 1). */
  readonly maxAttempts: number
  readonly backoffBase: Duration.DurationInput
  readonly backoffCap: Duration.DurationInput
}

/** Options of {@link make}; `SloConfig` / `AlertWebhookConfig` hold the defaults. */
export interface SloMonitorOptions {
  readonly bucket: Duration.DurationInput
  /** Buckets in the window (>= 1). */
  readonly buckets: number
  /** p95 objective. */
  readonly latencyP95: Duration.DurationInput
  /** p99 objective. */
  readonly latencyP99: Duration.DurationInput
  /** Error rate objective, a share in (0, 1]. */
  readonly errorRate: number
  readonly minRequests: number
  readonly recoveryEvaluations: number
  /** In (0, 1]: recovery needs the value at or below `threshold × recoveryRatio`. */
  readonly recoveryRatio: number
  /** Absent: breaches are logged and gauged, not posted. */
  readonly webhook?: WebhookOptions | undefined
}

/** State of one objective. */
export type ObjectiveState = "ok" | "breached"

/** One objective as last evaluated. */
export interface ObjectiveStatus {
  readonly objective: Metrics.SloObjective
  /** Seconds for latency objectives, a share for the error rate. */
  readonly threshold: number
  /** Value at the last evaluation that judged it (`null` until one did). */
  readonly observed: number | null
  readonly state: ObjectiveState
  readonly unit: "seconds" | "ratio"
}

/** The monitor's current figures, for the status page. */
export interface SloStatus {
  readonly windowSeconds: number
  /** Requests recorded in the window (including the current, partial bucket). */
  readonly requests: number
  /** Requests per second over the completed buckets of the window; `null` before the first one completes. */
  readonly requestsPerSecond: number | null
  readonly p50Seconds: number | null
  readonly p95Seconds: number | null
  readonly p99Seconds: number | null
  /** 5xx share of the window's requests; `null` without requests. */
  readonly errorRate: number | null
  readonly minRequests: number
  readonly objectives: ReadonlyArray<ObjectiveStatus>
  /** `breached` when any objective is. */
  readonly state: ObjectiveState
}

/** The body POSTed to the webhook. */
export interface AlertPayload {
  readonly type: "slo_breach" | "slo_recovery"
  readonly service: "drupal-accelerator"
  readonly objective: Metrics.SloObjective
  readonly observed: number
  readonly threshold: number
  readonly unit: "seconds" | "ratio"
  readonly window_seconds: number
  readonly requests: number
  /** ISO-8601 time of the evaluation. */
  readonly at: string
}

/** A webhook delivery attempt failed (transport, timeout, or a non-2xx answer). */
export class AlertDeliveryError extends Data.TaggedError("AlertDeliveryError")<{
  readonly status: number | undefined
  readonly cause?: unknown
}> {}

/** The monitor. */
export interface SloMonitor {
  /**
   * Records one finished request: duration in seconds and final HTTP status. Synchronous, O(1),
   * no allocation; call it for every request (e.g. as the `also` of `Metrics.trackHttp`).
   * Negative or non-finite durations are ignored.
   */
  readonly record: (seconds: number, status: number) => void
  /** Current figures over the window, computed on call (O(buckets × sketch size)). */
  readonly status: () => SloStatus
  /** Runs one evaluation now and starts a new bucket (what the background fiber does every `bucket`). */
  readonly evaluate: Effect.Effect<void>
}

/** Tag of the monitor. */
/** Tag of the SLO monitor (tag name = interface name). */
export const SloMonitor = Context.GenericTag<SloMonitor>("accelerator/SloMonitor")

interface Judged {
  readonly objective: Metrics.SloObjective
  readonly threshold: number
  readonly unit: "seconds" | "ratio"
  observed: number | null
  state: ObjectiveState
  /** Evaluations in a row below the recovery level while breached. */
  below: number
}

const positiveInteger = (name: string, value: number): number => {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`SloMonitor ${name} must be an integer >= 1, got ${value}`)
  return value
}

const shareInRange = (name: string, value: number): number => {
  if (!(value > 0 && value <= 1)) throw new RangeError(`SloMonitor ${name} must be in (0, 1], got ${value}`)
  return value
}

/**
 * Builds the monitor in the current scope and forks its evaluation fiber (and the webhook
 * fiber when a webhook is configured) there; both stop when the scope closes. Dies with a
 * `RangeError` on out-of-range options. Time comes from the Effect `Clock`, so `TestClock`
 * drives evaluations in tests.
 */
export const make = (options: SloMonitorOptions): Effect.Effect<SloMonitor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const bucketCount = positiveInteger("buckets", options.buckets)
    const minRequests = positiveInteger("minRequests", options.minRequests)
    const recoveryEvaluations = positiveInteger("recoveryEvaluations", options.recoveryEvaluations)
    const recoveryRatio = shareInRange("recoveryRatio", options.recoveryRatio)
    const errorRateObjective = shareInRange("errorRate", options.errorRate)
    const bucketDuration = Duration.decode(options.bucket)
    const bucketSeconds = Duration.toSeconds(bucketDuration)
    if (!(bucketSeconds > 0)) throw new RangeError("SloMonitor bucket must be > 0")
    const windowSeconds = bucketSeconds * bucketCount
    // Checked before anything is started, so a bad webhook stops startup cleanly.
    const webhook = options.webhook === undefined ? undefined : checkWebhook(options.webhook)

    const sketch = new Uint32Array(bucketCount * SKETCH_BUCKETS)
    const totals = new Uint32Array(bucketCount)
    const errors = new Uint32Array(bucketCount)
    let head = 0
    let offset = 0
    /** Buckets completed since start, capped at `bucketCount` (for the request rate). */
    let completed = 0

    const record = (seconds: number, status: number): void => {
      if (!(seconds >= 0 && seconds < Infinity)) return
      sketch[offset + sketchIndex(seconds)]!++
      totals[head]!++
      if (status >= 500 && status < 600) errors[head]!++
    }

    // Sums the window into `merged` (reused) and returns the request and 5xx counts.
    const merged = new Float64Array(SKETCH_BUCKETS)
    const mergeWindow = (): { requests: number; errors: number } => {
      merged.fill(0)
      let requests = 0
      let fails = 0
      for (let b = 0; b < bucketCount; b++) {
        if (totals[b] === 0) continue
        requests += totals[b]!
        fails += errors[b]!
        const base = b * SKETCH_BUCKETS
        for (let i = 0; i < SKETCH_BUCKETS; i++) merged[i]! += sketch[base + i]!
      }
      return { requests, errors: fails }
    }

    // Quantile of the merged sketch, interpolated linearly inside the counter that holds it.
    const quantile = (q: number, requests: number): number | null => {
      if (requests === 0) return null
      const rank = Math.max(1, Math.ceil(q * requests))
      let cumulative = 0
      for (let i = 0; i < SKETCH_BUCKETS; i++) {
        const c = merged[i]!
        if (c === 0) continue
        if (cumulative + c >= rank) {
          const lower = i === 0 ? 0 : upperBound(i - 1)
          const upper = upperBound(i)
          if (upper === Infinity) return lower
          return lower + (upper - lower) * ((rank - cumulative) / c)
        }
        cumulative += c
      }
      return upperBound(SKETCH_BUCKETS - 2)
    }

    const objectives: ReadonlyArray<Judged> = [
      {
        objective: "latency_p95",
        threshold: Duration.toSeconds(options.latencyP95),
        unit: "seconds",
        observed: null,
        state: "ok",
        below: 0
      },
      {
        objective: "latency_p99",
        threshold: Duration.toSeconds(options.latencyP99),
        unit: "seconds",
        observed: null,
        state: "ok",
        below: 0
      },
      { objective: "error_rate", threshold: errorRateObjective, unit: "ratio", observed: null, state: "ok", below: 0 }
    ]
    for (const o of objectives) Metrics.setSloBreached(o.objective, false)

    const alerts = yield* Effect.acquireRelease(
      Queue.sliding<AlertPayload>(ALERT_QUEUE_SIZE),
      (queue) => Queue.shutdown(queue)
    )

    const evaluate = Effect.gen(function*() {
      const { errors: fails, requests } = mergeWindow()
      const now = new Date(yield* Effect.clockWith((clock) => clock.currentTimeMillis)).toISOString()
      if (requests >= minRequests) {
        const values: Record<Metrics.SloObjective, number> = {
          latency_p95: quantile(0.95, requests)!,
          latency_p99: quantile(0.99, requests)!,
          error_rate: fails / requests
        }
        for (const o of objectives) {
          const value = values[o.objective]
          o.observed = value
          let transition: AlertPayload["type"] | undefined
          if (o.state === "ok") {
            if (value > o.threshold) {
              o.state = "breached"
              o.below = 0
              transition = "slo_breach"
            }
          } else if (value <= o.threshold * recoveryRatio) {
            o.below++
            if (o.below >= recoveryEvaluations) {
              o.state = "ok"
              o.below = 0
              transition = "slo_recovery"
            }
          } else {
            o.below = 0
          }
          if (transition === undefined) continue
          Metrics.setSloBreached(o.objective, o.state === "breached")
          const payload: AlertPayload = {
            type: transition,
            service: "drupal-accelerator",
            objective: o.objective,
            observed: value,
            threshold: o.threshold,
            unit: o.unit,
            window_seconds: windowSeconds,
            requests,
            at: now
          }
          const log = transition === "slo_breach"
            ? Effect.logWarning("SLO breached")
            : Effect.logInfo("SLO recovered")
          yield* log.pipe(
            Effect.annotateLogs({
              objective: o.objective,
              observed: value,
              threshold: o.threshold,
              unit: o.unit,
              window_seconds: windowSeconds,
              requests
            })
          )
          if (webhook !== undefined) yield* Queue.offer(alerts, payload)
        }
      }
      // Start a new bucket: the oldest one leaves the window.
      head = (head + 1) % bucketCount
      offset = head * SKETCH_BUCKETS
      sketch.fill(0, offset, offset + SKETCH_BUCKETS)
      totals[head] = 0
      errors[head] = 0
      if (completed < bucketCount) completed++
    })

    const status = (): SloStatus => {
      const { errors: fails, requests } = mergeWindow()
      // Completed buckets are all but the current one (at most bucketCount − 1 of them).
      const full = Math.min(completed, bucketCount - 1)
      const fullRequests = requests - totals[head]!
      const judged = objectives.map((o): ObjectiveStatus => ({
        objective: o.objective,
        threshold: o.threshold,
        observed: o.observed,
        state: o.state,
        unit: o.unit
      }))
      return {
        windowSeconds,
        requests,
        requestsPerSecond: full === 0 ? null : fullRequests / (full * bucketSeconds),
        p50Seconds: quantile(0.5, requests),
        p95Seconds: quantile(0.95, requests),
        p99Seconds: quantile(0.99, requests),
        errorRate: requests === 0 ? null : fails / requests,
        minRequests,
        objectives: judged,
        state: judged.some((o) => o.state === "breached") ? "breached" : "ok"
      }
    }

    yield* Effect.sleep(bucketDuration).pipe(Effect.zipRight(evaluate), Effect.forever, Effect.forkScoped)

    if (webhook !== undefined) {
      const deliver = yield* makeDelivery(webhook)
      yield* Queue.take(alerts).pipe(Effect.flatMap(deliver), Effect.forever, Effect.forkScoped)
    }

    return { record, status, evaluate }
  })

interface CheckedWebhook extends WebhookOptions {
  readonly url: URL
}

const checkWebhook = (webhook: WebhookOptions): CheckedWebhook => {
  let url: URL
  try {
    url = new URL(webhook.url)
  } catch {
    // The URL may carry a secret token: the error names the key, never the value.
    throw new RangeError("SloMonitor webhook url (ALERT_WEBHOOK_URL) is not a valid absolute URL")
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RangeError("SloMonitor webhook url (ALERT_WEBHOOK_URL) must be http: or https:")
  }
  return { ...webhook, url, maxAttempts: positiveInteger("webhook maxAttempts", webhook.maxAttempts) }
}

/**
 * The webhook sender: one POST per alert, retried with jittered exponential backoff (base
 * doubling, capped) up to `maxAttempts` attempts in total. Owns an undici `Agent` (2 connections)
 * closed with the scope. The returned effect never fails: the final outcome is counted in
 * `accelerator_slo_alert_deliveries_total` and a final failure is logged once.
 */
const makeDelivery = (webhook: CheckedWebhook) =>
  Effect.gen(function*() {
    const { maxAttempts, url } = webhook
    const timeoutMs = Duration.toMillis(webhook.timeout)
    const agent = yield* Effect.acquireRelease(
      Effect.sync(() => new Agent({ connections: 2 })),
      (agent) =>
        Effect.promise(() => agent.close().catch(() => undefined)).pipe(
          Effect.timeoutOption(Duration.seconds(1)),
          Effect.zipRight(Effect.promise(() => agent.destroy().catch(() => undefined))),
          Effect.interruptible
        )
    )
    const schedule = Schedule.exponential(webhook.backoffBase).pipe(
      Schedule.union(Schedule.spaced(webhook.backoffCap)),
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(maxAttempts - 1))
    )

    const attempt = (body: string) =>
      Effect.tryPromise({
        try: async (signal) => {
          const res = await request(url, {
            method: "POST",
            dispatcher: agent,
            headers: { "content-type": "application/json" },
            body,
            signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
          })
          await res.body.dump()
          return res.statusCode
        },
        catch: (cause) => new AlertDeliveryError({ status: undefined, cause })
      }).pipe(
        Effect.flatMap((status) =>
          status >= 200 && status < 300 ? Effect.void : Effect.fail(new AlertDeliveryError({ status }))
        )
      )

    return (alert: AlertPayload): Effect.Effect<void> => {
      const body = JSON.stringify(alert)
      return attempt(body).pipe(
        Effect.retry(schedule),
        Effect.matchCauseEffect({
          onSuccess: () => Effect.sync(() => Metrics.recordAlertDelivery(true)),
          onFailure: (cause) =>
            Effect.zipRight(
              Effect.sync(() => Metrics.recordAlertDelivery(false)),
              Effect.logWarning("SLO alert delivery failed", cause).pipe(
                Effect.annotateLogs({ objective: alert.objective, alert: alert.type, attempts: maxAttempts })
              )
            )
        })
      )
    }
  })

/** The monitor as a layer over explicit options. */
export const layer = (options: SloMonitorOptions): Layer.Layer<SloMonitor> =>
  Layer.scoped(SloMonitor, make(options))

/** The monitor configured from `SloConfig` and `AlertWebhookConfig`, with `overrides` on top. */
export const layerConfig = (overrides: Partial<SloMonitorOptions> = {}) =>
  Layer.scoped(
    SloMonitor,
    Effect.gen(function*() {
      const slo = yield* SloConfig
      const hook = yield* AlertWebhookConfig
      const webhook = Option.map(hook.url, (url): WebhookOptions => ({
        url: Redacted.value(url),
        timeout: hook.timeout,
        maxAttempts: hook.maxAttempts,
        backoffBase: hook.backoffBase,
        backoffCap: hook.backoffCap
      }))
      return yield* make({ ...slo, webhook: Option.getOrUndefined(webhook), ...overrides })
    })
  )
