/**
 * Configuration keys of the telemetry part (metrics sampling, SLO monitor, alert webhook,
 * status page), with their defaults, in one place. The lead merges these into the README's
 * configuration table.
 *
 * @since 0.1.0
 */
import { Config, Duration } from "effect"
import { millis as millisFrom, positiveInt, ratio } from "../ConfigKeys.js"

/** Telemetry durations must be > 0. */
const millis = (name: string, defaultMs: number): Config.Config<Duration.Duration> => millisFrom(name, defaultMs, 1)

/** Sampling of process and pool gauges by `ResourceMonitor`. */
export const ResourceMonitorConfig = Config.all({
  /** How often process (event loop, heap, RSS) and pool gauges are sampled. */
  interval: millis("METRICS_SAMPLE_INTERVAL_MS", 5_000)
})
export type ResourceMonitorConfig = Config.Config.Success<typeof ResourceMonitorConfig>

/**
 * The alert webhook: absent disables alert delivery (breaches are still logged and set the
 * `accelerator_slo_breached` gauge). Redacted: webhook URLs usually embed a secret token.
 */
export const AlertWebhookConfig = Config.all({
  url: Config.option(Config.redacted("ALERT_WEBHOOK_URL")),
  /** Bound on one delivery attempt (connect, headers and body), in real time. */
  timeout: millis("ALERT_WEBHOOK_TIMEOUT_MS", 3_000),
  /** Attempts per alert, the first included. */
  maxAttempts: positiveInt("ALERT_WEBHOOK_MAX_ATTEMPTS", 5),
  /** First retry delay; doubles per attempt (with jitter) up to `backoffCap`. */
  backoffBase: millis("ALERT_WEBHOOK_BACKOFF_MS", 500),
  backoffCap: millis("ALERT_WEBHOOK_BACKOFF_CAP_MS", 10_000)
})
export type AlertWebhookConfig = Config.Config.Success<typeof AlertWebhookConfig>

/** Service level objectives judged by `SloMonitor`, and its rolling window. */
export const SloConfig = Config.all({
  /** Width of one window bucket; the monitor evaluates once per bucket. */
  bucket: millis("SLO_BUCKET_MS", 5_000),
  /** Buckets in the rolling window (window = bucket × buckets, 60 s by default). */
  buckets: positiveInt("SLO_BUCKETS", 12),
  /** Objective: p95 latency stays below this. */
  latencyP95: millis("SLO_LATENCY_P95_MS", 500),
  /** Objective: p99 latency stays below this. */
  latencyP99: millis("SLO_LATENCY_P99_MS", 1_000),
  /** Objective: share of 5xx responses stays below this. */
  errorRate: ratio("SLO_ERROR_RATE", 0.01),
  /** Requests the window must hold before an objective is judged at all. */
  minRequests: positiveInt("SLO_MIN_REQUESTS", 100),
  /** A breached objective recovers after this many evaluations in a row below `threshold × SLO_RECOVERY_RATIO`. */
  recoveryEvaluations: positiveInt("SLO_RECOVERY_EVALUATIONS", 2),
  /** Hysteresis: recovery needs the value below this share of the threshold. */
  recoveryRatio: ratio("SLO_RECOVERY_RATIO", 0.9)
})
export type SloConfig = Config.Config.Success<typeof SloConfig>

/** The status page's server-side history (sparklines and rates). */
export const StatusPageConfig = Config.all({
  /** How often a sample of the metrics is kept for the page. */
  interval: millis("STATUS_SAMPLE_INTERVAL_MS", 2_000),
  /** Samples kept (ring buffer); 150 × 2 s = the last 5 minutes. */
  samples: positiveInt("STATUS_HISTORY_SAMPLES", 150),
  /** Rates and latency quantiles on the page are computed over this trailing window. */
  window: millis("STATUS_RATE_WINDOW_MS", 60_000)
})
export type StatusPageConfig = Config.Config.Success<typeof StatusPageConfig>
