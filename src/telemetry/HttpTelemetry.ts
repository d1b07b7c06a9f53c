/**
 * The telemetry side of the raw listener, as one `FastPath` (the synchronous hook the listener
 * calls first for every request; see `listener/Listener.ts`): it times every response (the fast
 * path's and the Effect app's alike) into `accelerator_http_request_duration_seconds` and the SLO
 * monitor, answers `GET /metrics`, `/status` and `/status.json` itself, and hands every other
 * request to the `inner` fast path (the memory-hit path), then to the Effect app.
 *
 * The three endpoints carry no secrets (counts, ratios, pool sizes) but are answered without
 * authentication; put them behind the network boundary, or pass `endpoints: false` and route
 * them elsewhere.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { FastPath, HitPath } from "../listener/Listener.js"
import * as Metrics from "./Metrics.js"
import * as Prometheus from "./Prometheus.js"
import { SloMonitor } from "./SloMonitor.js"
import { StatusPage } from "./StatusPage.js"

/** Options of {@link fastPath}. */
export interface HttpTelemetryOptions {
  /** The fast path to run after ours (e.g. the memory-tier hit path). */
  readonly inner?: FastPath | undefined
  /** Fed with every response's duration and status. */
  readonly slo?: SloMonitor | undefined
  /** Serves `/status` and `/status.json` when given (and `endpoints` is not `false`). */
  readonly statusPage?: StatusPage | undefined
  /** Answer `/metrics` (and the status page) here; default `true`. */
  readonly endpoints?: boolean | undefined
}

/**
 * Builds the `FastPath`. Per request it costs one `close` listener and closure
 * ({@link Metrics.trackHttp}) and a few string comparisons on the path; it never throws and never
 * blocks (the `/metrics` body is rendered asynchronously).
 */
export const fastPath = (options: HttpTelemetryOptions = {}): FastPath => {
  const { inner, slo, statusPage } = options
  const endpoints = options.endpoints !== false
  const also = slo === undefined ? undefined : slo.record
  return (req, res) => {
    Metrics.trackHttp(req, res, also)
    if (endpoints) {
      const url = req.url ?? ""
      if (url === "/metrics" || url.startsWith("/metrics?")) {
        Prometheus.handle(req, res)
        return true
      }
      if (statusPage !== undefined && url.startsWith("/status") && statusPage.handle(req, res)) return true
    }
    return inner === undefined ? false : inner(req, res)
  }
}

/**
 * The listener's {@link FastPath}: {@link fastPath} over the `SloMonitor` and the
 * `StatusPage`, in front of the {@link HitPath} (memory hits). All three are required:
 * the telemetry and the hit path are handed to the listener explicitly.
 */
export const layer: Layer.Layer<FastPath, never, HitPath | SloMonitor | StatusPage> = Layer.effect(
  FastPath,
  Effect.gen(function*() {
    const slo = yield* SloMonitor
    const statusPage = yield* StatusPage
    const inner = yield* HitPath
    return fastPath({ inner, slo, statusPage })
  })
)
