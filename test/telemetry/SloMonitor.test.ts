import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Context, Duration, Effect, Exit, Layer, Logger, Queue, TestClock, TestServices } from "effect"
import * as Prometheus from "../../src/telemetry/Prometheus.js"
import * as SloMonitor from "../../src/telemetry/SloMonitor.js"
import { parseStrict, valueOf } from "./exposition.js"
import { webhookServer } from "./webhook.js"

/** Real time passes (the monitor's fibers and the local webhook get to run); the test clock does not move. */
const liveSleep = (ms: number) => TestServices.provideLive(Effect.sleep(Duration.millis(ms)))

/** One evaluation period of the test clock, then a moment of real time for the fibers. */
const tick = Effect.zipRight(TestClock.adjust("5 seconds"), liveSleep(5))

/** Moves the test clock in small steps until `cond` holds (bounded); fails the test if it never does. */
const advanceUntil = (cond: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 300 && !cond(); i++) {
      yield* TestClock.adjust("200 millis")
      yield* liveSleep(5)
    }
    assert.isTrue(cond(), what)
  })

/** Moves the test clock `steps` × 200 ms with real pauses (for "nothing more happens" checks). */
const advance = (steps: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < steps; i++) {
      yield* TestClock.adjust("200 millis")
      yield* liveSleep(2)
    }
  })

const options = (
  url?: string,
  webhook: Partial<SloMonitor.WebhookOptions> = {}
): SloMonitor.SloMonitorOptions => ({
  bucket: "5 seconds",
  buckets: 12,
  latencyP95: "500 millis",
  latencyP99: "1 second",
  errorRate: 0.01,
  minRequests: 20,
  recoveryEvaluations: 2,
  recoveryRatio: 0.9,
  webhook: url === undefined ? undefined : {
    url,
    timeout: "2 seconds",
    maxAttempts: 3,
    backoffBase: "100 millis",
    backoffCap: "1 second",
    ...webhook
  }
})

interface Entry {
  readonly level: string
  readonly message: string
  readonly annotations: Record<string, unknown>
}

/** A logger that keeps every entry, to count log lines. */
const captureLogs = () => {
  const entries: Array<Entry> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const first = Array.isArray(message) ? message[0] : message
    const record: Record<string, unknown> = {}
    for (const [k, v] of annotations) record[k] = v
    entries.push({ level: logLevel.label, message: String(first), annotations: record })
  })
  return { entries, layer: Logger.replace(Logger.defaultLogger, logger) }
}

const breachedGauge = (objective: string) =>
  Effect.map(Prometheus.exposition, (text) => valueOf(parseStrict(text), "accelerator_slo_breached", { objective }))

const deliveries = (result: "delivered" | "failed") =>
  Effect.map(
    Prometheus.exposition,
    (text) => valueOf(parseStrict(text), "accelerator_slo_alert_deliveries_total", { result })
  )

const record = (slo: SloMonitor.SloMonitor, n: number, seconds: number, status = 200) => {
  for (let i = 0; i < n; i++) slo.record(seconds, status)
}

describe("SloMonitor", () => {
  it.scoped("one alert on breach, one on recovery, none while the state holds", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const hook = yield* webhookServer()
      const slo = yield* SloMonitor.make(options(hook.url))

      record(slo, 50, 0.7)
      yield* tick
      const breach = yield* Queue.take(hook.received)
      assert.strictEqual(breach.type, "slo_breach")
      assert.strictEqual(breach.objective, "latency_p95")
      assert.strictEqual(breach.threshold, 0.5)
      assert.strictEqual(breach.window_seconds, 60)
      assert.strictEqual(breach.requests, 50)
      assert.strictEqual(breach.unit, "seconds")
      assert.isTrue(breach.observed > 0.64 && breach.observed < 0.76, `observed ${breach.observed}`)
      assert.strictEqual(yield* breachedGauge("latency_p95"), 1)
      assert.strictEqual(yield* breachedGauge("latency_p99"), 0)
      assert.strictEqual(slo.status().state, "breached")

      // The breach holds: more evaluations, no more alerts.
      for (let i = 0; i < 5; i++) {
        record(slo, 50, 0.7)
        yield* tick
      }
      // Latency drops: the slow buckets leave the window, then two good evaluations recover.
      for (let i = 0; i < 16; i++) {
        record(slo, 200, 0.02)
        yield* tick
      }
      const recovery = yield* Queue.take(hook.received)
      assert.strictEqual(recovery.type, "slo_recovery")
      assert.strictEqual(recovery.objective, "latency_p95")
      assert.isTrue(recovery.observed <= 0.45)
      // The recovered state holds too.
      for (let i = 0; i < 5; i++) {
        record(slo, 200, 0.02)
        yield* tick
      }
      yield* liveSleep(200)

      assert.strictEqual(hook.count(), 2)
      assert.strictEqual(yield* Queue.size(hook.received), 0)
      assert.strictEqual(yield* breachedGauge("latency_p95"), 0)
      assert.strictEqual(slo.status().state, "ok")
      const warnings = logs.entries.filter((e) => e.message === "SLO breached")
      assert.strictEqual(warnings.length, 1)
      assert.strictEqual(warnings[0]!.level, "WARN")
      assert.strictEqual(warnings[0]!.annotations["objective"], "latency_p95")
      assert.strictEqual(warnings[0]!.annotations["threshold"], 0.5)
      assert.strictEqual(warnings[0]!.annotations["window_seconds"], 60)
      const recoveries = logs.entries.filter((e) => e.message === "SLO recovered")
      assert.strictEqual(recoveries.length, 1)
    }).pipe(Effect.provide(logs.layer))
  })

  it.scoped("judges the error rate, and nothing below the minimum request count", () =>
    Effect.gen(function*() {
      const hook = yield* webhookServer()
      const slo = yield* SloMonitor.make(options(hook.url))

      // 19 requests, all failing and slow: fewer than minRequests (20), so nothing is judged.
      record(slo, 19, 3, 503)
      yield* tick
      yield* liveSleep(100)
      assert.strictEqual(hook.count(), 0)
      assert.isTrue(slo.status().objectives.every((o) => o.observed === null && o.state === "ok"))

      // Let them leave the window, then 2 % of 5xx at low latency: only the error rate breaches.
      for (let i = 0; i < 12; i++) yield* tick
      record(slo, 98, 0.01, 200)
      record(slo, 2, 0.01, 503)
      yield* tick
      const alert = yield* Queue.take(hook.received)
      assert.strictEqual(alert.objective, "error_rate")
      assert.strictEqual(alert.unit, "ratio")
      assert.strictEqual(alert.observed, 0.02)
      assert.strictEqual(alert.threshold, 0.01)
      yield* liveSleep(100)
      assert.strictEqual(hook.count(), 1)
      assert.strictEqual(yield* breachedGauge("error_rate"), 1)
    }))

  it.scoped("a failing webhook is retried with backoff until it accepts", () =>
    Effect.gen(function*() {
      const hook = yield* webhookServer((n) => (n <= 2 ? 500 : 204))
      const slo = yield* SloMonitor.make(options(hook.url, { maxAttempts: 4 }))
      const delivered = yield* deliveries("delivered")

      record(slo, 50, 0.7)
      yield* tick
      yield* advanceUntil(() => hook.count() >= 1, "first attempt")
      yield* advanceUntil(() => hook.count() >= 2, "second attempt")
      yield* advanceUntil(() => hook.count() >= 3, "third attempt")
      yield* advance(100)
      assert.strictEqual(hook.count(), 3)
      const bodies = yield* Queue.takeAll(hook.received)
      assert.deepStrictEqual([...bodies].map((b) => b.type), ["slo_breach", "slo_breach", "slo_breach"])
      assert.strictEqual((yield* deliveries("delivered")) - delivered, 1)
    }))

  it.scoped("retries are bounded: a webhook that never accepts gets maxAttempts POSTs", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const hook = yield* webhookServer(() => 500)
      const slo = yield* SloMonitor.make(options(hook.url, { maxAttempts: 3 }))
      const failed = yield* deliveries("failed")

      record(slo, 50, 0.7)
      yield* tick
      yield* advanceUntil(() => hook.count() >= 3, "three attempts")
      yield* advance(150)
      assert.strictEqual(hook.count(), 3)
      assert.strictEqual((yield* deliveries("failed")) - failed, 1)
      assert.strictEqual(logs.entries.filter((e) => e.message === "SLO alert delivery failed").length, 1)
      // Serving was never involved: recording still works and the state is still known.
      record(slo, 10, 0.7)
      assert.strictEqual(slo.status().state, "breached")
    }).pipe(Effect.provide(logs.layer))
  })

  it.scoped("without a webhook a breach is still logged once and gauged", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const slo = yield* SloMonitor.make(options())
      record(slo, 100, 2.5)
      yield* tick
      yield* tick
      assert.strictEqual(logs.entries.filter((e) => e.message === "SLO breached").length, 2) // p95 and p99
      assert.strictEqual(yield* breachedGauge("latency_p99"), 1)
    }).pipe(Effect.provide(logs.layer))
  })

  it.scoped("window figures: quantiles within the sketch's resolution, rate over completed buckets", () =>
    Effect.gen(function*() {
      const slo = yield* SloMonitor.make(options())
      for (let ms = 1; ms <= 1000; ms++) slo.record(ms / 1000, ms % 100 === 0 ? 500 : 200)
      const before = slo.status()
      assert.strictEqual(before.requests, 1000)
      assert.isNull(before.requestsPerSecond)
      assert.strictEqual(before.errorRate, 0.01)
      assert.isTrue(Math.abs(before.p50Seconds! - 0.5) / 0.5 < 0.08, `p50 ${before.p50Seconds}`)
      assert.isTrue(Math.abs(before.p99Seconds! - 0.99) / 0.99 < 0.08, `p99 ${before.p99Seconds}`)
      yield* tick
      assert.strictEqual(slo.status().requestsPerSecond, 200)
      // Ignored: not a duration.
      slo.record(NaN, 200)
      slo.record(-1, 200)
      assert.strictEqual(slo.status().requests, 1000)
      // Bounded memory: after the window has passed, everything is gone.
      for (let i = 0; i < 12; i++) yield* tick
      assert.strictEqual(slo.status().requests, 0)
    }))

  it.scoped("reads objectives and the webhook from config", () =>
    Effect.gen(function*() {
      const hook = yield* webhookServer()
      const provider = ConfigProvider.fromMap(
        new Map([
          ["SLO_LATENCY_P95_MS", "200"],
          ["SLO_MIN_REQUESTS", "10"],
          ["ALERT_WEBHOOK_URL", hook.url],
          ["ALERT_WEBHOOK_MAX_ATTEMPTS", "2"]
        ])
      )
      const context = yield* Layer.build(SloMonitor.layerConfig()).pipe(Effect.withConfigProvider(provider))
      const slo = Context.get(context, SloMonitor.SloMonitor)
      const status = slo.status()
      assert.strictEqual(status.windowSeconds, 60)
      assert.strictEqual(status.minRequests, 10)
      assert.deepStrictEqual(status.objectives.map((o) => o.threshold), [0.2, 1, 0.01])
      record(slo, 10, 0.3)
      yield* tick
      const alert = yield* Queue.take(hook.received)
      assert.strictEqual(alert.objective, "latency_p95")
      assert.strictEqual(alert.threshold, 0.2)

      const bad = yield* Effect.exit(
        Layer.build(SloMonitor.layerConfig()).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["SLO_ERROR_RATE", "2"]])))
        )
      )
      assert.isTrue(Exit.isFailure(bad))
    }))

  it.scoped("an invalid webhook URL stops startup without showing the URL", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(SloMonitor.make(options("not-a-url/with-secret-token")))
      assert.isTrue(Exit.isFailure(exit))
      const text = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
      assert.include(text, "ALERT_WEBHOOK_URL")
      assert.notInclude(text, "secret-token")
    }))
})
