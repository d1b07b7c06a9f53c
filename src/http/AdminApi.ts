/**
 * The `admin` group of the gateway's API: the two cache-invalidation entry points.
 *
 * - `POST /admin/invalidate`: an operator drops keys, tags or a whole namespace, with
 *   `Authorization: Bearer $ADMIN_TOKEN`. Answers 404 while `ADMIN_TOKEN` is unset.
 * - `POST /webhooks/drupal`: Drupal reports content changes as Standard Webhooks signed with
 *   `WEBHOOK_SECRET` (protocol in `invalidation/Webhook.ts`). Answers 404 while `WEBHOOK_SECRET`
 *   is unset; a delivery whose `webhook-id` was already carried out is answered 202
 *   `{"invalidated": {"tags": 0}, "duplicate": true}` without a second effect.
 *
 * Both bodies are read and validated by the handlers (the webhook's signature covers the raw
 * bytes), so every refusal has the gateway's error body `{error: {code, message}}`; the payload
 * schemas here document them in the OpenAPI description.
 *
 * | status | code | when |
 * | --- | --- | --- |
 * | 400 | `bad_request` | body not JSON or not matching its schema; the message names the field |
 * | 401 | `unauthorized` | admin: missing or wrong bearer token (`WWW-Authenticate: Bearer`); webhook: missing or malformed headers, no signature matching the body (`WWW-Authenticate: HMAC-SHA256`) |
 * | 401 | `stale_signature` | webhook: authentic, but `webhook-timestamp` is outside ±`WEBHOOK_TOLERANCE_MS` |
 * | 404 | `not_found` | the route is disabled (its secret is unset) |
 * | 413 | `payload_too_large` | `Content-Length` above the bound (webhook 64 KiB, admin 2 MiB; `HTTP_MAX_BODY_BYTES` when smaller); a body without one is cut off at the bound |
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import { NAMESPACES } from "../content/CacheKeys.js"
import { MAX_EVENT_IDS, WebhookEvent } from "../invalidation/Webhook.js"
import { routes } from "../listener/Routes.js"
import { withGatewayErrors } from "./ApiError.js"

/** Most keys, and most tags, one admin call may name. */
export const MAX_INVALIDATE_ITEMS = 1000

/** Longest key or tag accepted, in characters. */
export const MAX_INVALIDATE_ITEM_LENGTH = 512

/**
 * Largest admin body read, in bytes (the server's `HTTP_MAX_BODY_BYTES` applies when smaller):
 * room for 1000 keys and 1000 tags of 512 plain characters each.
 */
export const MAX_ADMIN_BODY_BYTES = 2 * 1024 * 1024

const Item = (what: string) =>
  Schema.String.pipe(
    Schema.minLength(1),
    Schema.maxLength(MAX_INVALIDATE_ITEM_LENGTH),
    Schema.annotations({ message: () => `each ${what} must be a string of 1 to ${MAX_INVALIDATE_ITEM_LENGTH} characters` })
  )

const Items = (what: string) =>
  Schema.Array(Item(what)).pipe(
    Schema.maxItems(MAX_INVALIDATE_ITEMS, { message: () => `at most ${MAX_INVALIDATE_ITEMS} ${what}s` })
  ).annotations({ message: () => `must be an array of ${what}s` })

/**
 * The body of `POST /admin/invalidate`. At least one of `keys`, `tags` (non-empty) or `namespace`;
 * unknown fields are refused, so a misspelt field is a 400 rather than a silent no-op.
 */
export const InvalidateRequest = Schema.Struct({
  keys: Schema.optional(Items("key")),
  tags: Schema.optional(Items("tag")),
  namespace: Schema.optional(
    Schema.Literal(...NAMESPACES).annotations({ message: () => `must be one of ${NAMESPACES.join(", ")}` })
  )
}).annotations({ message: () => "must be a JSON object" }).pipe(
  Schema.filter(
    (body) =>
      (body.keys?.length ?? 0) > 0 || (body.tags?.length ?? 0) > 0 || body.namespace !== undefined ||
      "nothing to invalidate: give keys, tags or namespace",
    { jsonSchema: { minProperties: 1 } }
  )
).annotations({ identifier: "InvalidateRequest" })
export type InvalidateRequest = typeof InvalidateRequest.Type

/** The answer of `POST /admin/invalidate`: how many distinct keys and tags were invalidated, and the namespace cleared. */
export const InvalidateResult = Schema.Struct({
  invalidated: Schema.Struct({
    keys: Schema.Int,
    tags: Schema.Int,
    namespace: Schema.NullOr(Schema.Literal(...NAMESPACES))
  })
})

/** The answer of `POST /webhooks/drupal`: how many distinct tags the event invalidated; `duplicate` for a delivery already carried out. */
export const WebhookResult = Schema.Struct({
  invalidated: Schema.Struct({ tags: Schema.Int }),
  duplicate: Schema.optional(Schema.Boolean)
})

/** Cache invalidation: by an operator, and by Drupal's signed content webhook. */
export class AdminApi extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("invalidate", routes.invalidate.path)
      .setPayload(InvalidateRequest)
      .addSuccess(InvalidateResult)
      .annotate(
        OpenApi.Summary,
        `Invalidate cache keys, tags (≤ ${MAX_INVALIDATE_ITEMS} each) and/or a namespace; Authorization: Bearer ADMIN_TOKEN`
      )
  )
  .add(
    HttpApiEndpoint.post("drupalWebhook", routes.drupalWebhook.path)
      .setPayload(WebhookEvent)
      .addSuccess(WebhookResult, { status: 202 })
      .annotate(
        OpenApi.Summary,
        `Drupal content changes (≤ ${MAX_EVENT_IDS} ids) as Standard Webhooks: webhook-id, webhook-timestamp (unix s) and ` +
          `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<raw body>"> keyed with the whsec_ secret`
      )
  )
{}

/**
 * The `admin` group alone, under the gateway API's id (`drupal-accelerator`): the handler layer
 * is built against it, so it compiles without the rest of the API and provides exactly what
 * `HttpApiBuilder.api(GatewayApi)` asks for the group once `GatewayApi` adds {@link AdminApi}.
 * Also served on its own by the specs.
 */
export class AdminOnlyApi extends withGatewayErrors(HttpApi.make("drupal-accelerator").add(AdminApi)) {}
