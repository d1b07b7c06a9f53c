/**
 * The gateway's HTTP API as an `HttpApi` definition: routes, schemas and error statuses in one
 * place, from which the server and the OpenAPI document (`GET /openapi.json`) are derived.
 *
 * Query and path parameters are declared as plain strings and validated by the handlers, so a
 * bad value gets the gateway's own error body (`{error: {code, message}}`) naming the field.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { ContentItem, SearchResult } from "../content/ContentModel.js"
import { HealthReport } from "../health/Health.js"
import { routes } from "../listener/Routes.js"
import { AdminApi } from "./AdminApi.js"
import { withGatewayErrors } from "./ApiError.js"

/** `GET /health` when a dependency is not ready: the same report, with HTTP 503. */
export class NotReady extends Schema.Class<NotReady>("NotReady")(
  HealthReport.fields,
  HttpApiSchema.annotations({ status: 503 })
) {}

/** Liveness and readiness. */
export class SystemApi extends HttpApiGroup.make("system")
  .add(
    HttpApiEndpoint.get("health", routes.health.path)
      .addSuccess(HealthReport)
      .addError(NotReady)
      .annotate(OpenApi.Summary, "Readiness of the gateway and each configured dependency")
  )
  .add(
    HttpApiEndpoint.get("live", routes.healthLive.path)
      .addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
      .annotate(OpenApi.Summary, "Liveness: the process is up")
  )
{}

const Id = Schema.Struct({ id: Schema.String })

/** Search and retrieval of content. */
export class ContentApi extends HttpApiGroup.make("content")
  .add(
    HttpApiEndpoint.get("search", routes.search.path)
      .setUrlParams(Schema.Struct({
        q: Schema.optional(Schema.String),
        drupal_version: Schema.optional(Schema.String),
        tags: Schema.optional(Schema.Union(Schema.String, Schema.Array(Schema.String))),
        content_type: Schema.optional(Schema.String),
        access_level: Schema.optional(Schema.String),
        sort: Schema.optional(Schema.String),
        limit: Schema.optional(Schema.String),
        offset: Schema.optional(Schema.String)
      }))
      .addSuccess(SearchResult)
      .annotate(OpenApi.Summary, "Search content as the caller (tags: comma-separated or repeated)")
  )
  .add(
    HttpApiEndpoint.get("get", routes.content.path)
      .setPath(Id)
      .setUrlParams(Schema.Struct({
        include_content: Schema.optional(Schema.String),
        format: Schema.optional(Schema.String)
      }))
      .addSuccess(ContentItem)
      .annotate(OpenApi.Summary, "One content item as the caller")
  )
  .add(
    HttpApiEndpoint.get("markdown", routes.markdown.path)
      .setPath(Id)
      .addSuccess(HttpApiSchema.Text({ contentType: "text/markdown" }))
      .annotate(OpenApi.Summary, "One item as RAG-ready Markdown with YAML front matter, streamed")
  )
{}

/** One JSON-RPC method as discovery describes it. */
const MethodView = Schema.Struct({
  id: Schema.String,
  usage: Schema.String,
  params: Schema.Array(Schema.Struct({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    required: Schema.Boolean,
    schema: Schema.Record({ key: Schema.String, value: Schema.Unknown })
  }))
})

/** The site's methods and their MCP tool definitions, and validated pass-through calls. */
export class MethodsApi extends HttpApiGroup.make("methods")
  .add(
    HttpApiEndpoint.get("methods", routes.methods.path)
      .addSuccess(Schema.Struct({ fingerprint: Schema.String, methods: Schema.Array(MethodView) }))
      .annotate(OpenApi.Summary, "The JSON-RPC methods the caller may execute, with the set's fingerprint")
  )
  .add(
    HttpApiEndpoint.get("tools", routes.tools.path)
      .addSuccess(Schema.Struct({
        fingerprint: Schema.String,
        tools: Schema.Array(Schema.Struct({
          name: Schema.String,
          description: Schema.optional(Schema.String),
          inputSchema: Schema.Record({ key: Schema.String, value: Schema.Unknown })
        }))
      }))
      .annotate(OpenApi.Summary, "MCP tool definitions translated from the caller's methods")
  )
  .add(
    HttpApiEndpoint.post("rpc", routes.rpc.path)
      .setPath(Schema.Struct({ method: Schema.String }))
      .setPayload(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
      .addSuccess(Schema.Struct({ result: Schema.Unknown }))
      .annotate(OpenApi.Summary, "Call a method: JSON body = params, validated against the method's schema first")
  )
{}

/** The whole API. Every endpoint may answer any of the gateway's errors. */
export class GatewayApi extends withGatewayErrors(
  HttpApi.make("drupal-accelerator").add(SystemApi).add(ContentApi).add(MethodsApi).add(AdminApi)
) {}
