/**
 * The gateway's HTTP API as an `HttpApi` definition: routes, schemas and error statuses in one
 * place, from which the server and the OpenAPI document are derived.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { HealthReport } from "../health/Health.js"

/** `GET /health` when a dependency is not ready: the same report, with HTTP 503. */
export class NotReady extends Schema.Class<NotReady>("NotReady")(
  HealthReport.fields,
  HttpApiSchema.annotations({ status: 503 })
) {}

/** Liveness and readiness. */
export class SystemApi extends HttpApiGroup.make("system")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(HealthReport)
      .addError(NotReady)
      .annotate(OpenApi.Summary, "Readiness of the gateway and each configured dependency")
  )
  .add(
    HttpApiEndpoint.get("live", "/health/live").addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
  )
{}

/** The whole API. */
export class GatewayApi extends HttpApi.make("drupal-accelerator").add(SystemApi) {}
