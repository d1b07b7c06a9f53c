/**
 * Tracing: off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set; then spans of a sampled share of the
 * requests that reach the Effect app (`OTEL_TRACES_SAMPLER_ARG`) are exported over OTLP/HTTP.
 * Memory hits never reach the Effect app and are never traced.
 */
import { OtlpSerialization, OtlpTracer } from "@effect/opentelemetry"
import { FetchHttpClient } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { TracingConfig } from "../src/Config.js"

export const TracingLive = Layer.unwrapEffect(
  Effect.map(TracingConfig, (config) =>
    Option.match(config.endpoint, {
      onNone: () => Layer.setTracerEnabled(false),
      onSome: (endpoint) =>
        OtlpTracer.layer({
          url: new URL("v1/traces", endpoint.href.endsWith("/") ? endpoint : `${endpoint.href}/`).href,
          resource: { serviceName: config.serviceName }
        }).pipe(
          Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson]),
          Layer.merge(Layer.effectDiscard(Effect.logInfo(`tracing: exporting sampled spans to ${endpoint.origin}`)))
        )
    }))
)
