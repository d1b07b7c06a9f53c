/**
 * Handlers of the `admin` group: operator invalidation and the signed Drupal webhook, both in
 * front of the tiered cache (`delete` / `invalidateTags` / `clear` run on every tier and are
 * published to the other instances).
 *
 * Each call logs one structured line: its outcome, counts and, for a refusal, its stable code;
 * never a token, a signature or a key.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { MaxBodySize } from "@effect/platform/HttpIncomingMessage"
import { Chunk, Clock, ConfigError, Duration, Effect, Either, Option, Redacted, Schema, Stream } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import { TieredCache } from "../cache/TieredCache.js"
import { AdminToken, InvalidationConfig, RedisPrefix } from "../Config.js"
import { MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import {
  decodeEvent,
  ID_HEADER,
  MAX_WEBHOOK_BODY_BYTES,
  parseJson,
  secretProblem,
  SIGNATURE_HEADER,
  tagsForEvent,
  TIMESTAMP_HEADER,
  toInvalidPayload,
  verifyDelivery
} from "../invalidation/Webhook.js"
import * as WebhookReplays from "../invalidation/WebhookReplays.js"
import { Redis } from "../redis/Redis.js"
import { AdminOnlyApi, InvalidateRequest, MAX_ADMIN_BODY_BYTES } from "./AdminApi.js"
import { type ApiError, apiError } from "./ApiError.js"
import * as Traced from "../telemetry/Traced.js"

type AdminError = ApiError

const sha256 = (value: string): Buffer => createHash("sha256").update(value).digest()

/**
 * The configured secret, or none when unset or blank (a blank secret would be a guessable
 * one, so it disables the route like an unset one).
 */
const configured = (secret: Option.Option<Redacted.Redacted<string>>): Option.Option<Redacted.Redacted<string>> =>
  Option.filter(secret, (s) => Redacted.value(s).trim().length > 0)

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i

/**
 * Whether an `Authorization` header carries the admin token: the sha256 digests of the presented
 * and the expected token are compared with `crypto.timingSafeEqual`, so neither the token's
 * length nor its prefix can be learned from the timing.
 */
export const bearerMatches = (header: string | undefined, expectedDigest: Buffer): boolean => {
  if (header === undefined || header.length > MAX_AUTHORIZATION_LENGTH) return false
  const match = BEARER.exec(header)
  return match !== null && timingSafeEqual(sha256(match[1]!), expectedDigest)
}

/** Adds a header to the response, whether it is a success or an encoded error. */
const withResponseHeader = (name: string, value: string) =>
  HttpApp.appendPreResponseHandler((_, response) => Effect.succeed(HttpServerResponse.setHeader(response, name, value)))

/**
 * The request body, at most `maxBytes` (or the server's `HTTP_MAX_BODY_BYTES` if smaller):
 * a larger `Content-Length` is answered 413 `payload_too_large` (with `Connection: close`) before
 * anything is read; a body without one is read until it passes the bound, and then the request
 * is aborted (the platform destroys an unfinished request stream, so the client sees the
 * connection close rather than the 413).
 */
export const readBoundedBody = (
  maxBytes: number
): Effect.Effect<Uint8Array, ApiError, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const serverMax = yield* MaxBodySize
    const limit = Option.match(serverMax, { onNone: () => maxBytes, onSome: (size) => Math.min(maxBytes, Number(size)) })
    const tooLarge = apiError(413, "payload_too_large", `The body must not exceed ${limit} bytes`)
    const declared = request.headers["content-length"]
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > limit) {
      // The rest of the body is not wanted: close the connection rather than drain it for keep-alive.
      yield* withResponseHeader("connection", "close")
      return yield* Effect.fail(tooLarge)
    }
    const chunks = yield* request.stream.pipe(
      Stream.mapError(() => apiError(400, "bad_request", "body: could not be read")),
      Stream.mapAccumEffect(0, (size, chunk) =>
        size + chunk.length > limit ? Effect.fail(tooLarge) : Effect.succeed([size + chunk.length, chunk] as const)),
      Stream.runCollect
    )
    return Buffer.concat(Chunk.toArray(chunks))
  })

const decodeInvalidateRequest = Schema.decodeUnknownEither(InvalidateRequest, {
  errors: "first",
  onExcessProperty: "error"
})

/** Logs the refusal of a call (one line, its stable code) and passes the error on. */
const logRefusal = (route: string) => <A, R>(self: Effect.Effect<A, AdminError, R>) =>
  Effect.tapError(self, (error) => Effect.logWarning(`${route}: refused`).pipe(Effect.annotateLogs({ route, code: error.code })))

const notFound = apiError(404, "not_found", "No such route")

/**
 * The `admin` group's handlers, built against {@link AdminOnlyApi} (same API id as `GatewayApi`).
 *
 * Requires `TieredCache` (and uses `Redis` when in context) and reads `ADMIN_TOKEN`,
 * `WEBHOOK_SECRET`, `WEBHOOK_TOLERANCE_MS` and the Redis prefix from the `ConfigProvider` when
 * built (fails with a `ConfigError` on a bad value, e.g. a secret that is not `whsec_…`). Holds
 * the webhook's replay memory (`invalidation/WebhookReplays.ts`) for the layer's lifetime.
 */
export const AdminHandlers = HttpApiBuilder.group(AdminOnlyApi, "admin", (handlers) =>
  Effect.gen(function*() {
    const cache = yield* TieredCache
    const adminToken = configured(yield* AdminToken)
    const { webhookSecret: rawSecret, webhookTolerance } = yield* InvalidationConfig
    const webhookSecret = configured(rawSecret)
    if (Option.isSome(webhookSecret)) {
      const problem = secretProblem(webhookSecret.value)
      if (problem !== undefined) return yield* Effect.fail(ConfigError.InvalidData(["WEBHOOK_SECRET"], problem))
    }
    const toleranceMs = Duration.toMillis(webhookTolerance)
    const adminDigest = Option.map(adminToken, (token) => sha256(Redacted.value(token)))
    const replays = WebhookReplays.make({ redis: yield* Effect.serviceOption(Redis), prefix: yield* RedisPrefix })

    const invalidate = Traced.fn("Admin.invalidate")(function*(expectedDigest: Buffer) {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (!bearerMatches(request.headers["authorization"], expectedDigest)) {
        yield* withResponseHeader("www-authenticate", "Bearer")
        return yield* Effect.fail(apiError(401, "unauthorized", "A valid admin bearer token is required"))
      }
      const body = yield* readBoundedBody(MAX_ADMIN_BODY_BYTES)
      const decoded = Either.flatMap(parseJson(body), (json) => Either.mapLeft(decodeInvalidateRequest(json), toInvalidPayload))
      if (Either.isLeft(decoded)) return yield* Effect.fail(apiError(400, "bad_request", decoded.left.message))
      const { keys = [], namespace, tags = [] } = decoded.right
      const uniqueKeys = Array.from(new Set(keys))
      const uniqueTags = Array.from(new Set(tags))
      if (uniqueKeys.length > 0) yield* cache.delete(uniqueKeys)
      if (uniqueTags.length > 0) yield* cache.invalidateTags(uniqueTags)
      if (namespace !== undefined) yield* cache.clear(namespace)
      const invalidated = { keys: uniqueKeys.length, tags: uniqueTags.length, namespace: namespace ?? null }
      yield* Effect.logInfo("admin: cache invalidated").pipe(
        Effect.annotateLogs({ route: "admin/invalidate", keys: invalidated.keys, tags: invalidated.tags, namespace: invalidated.namespace ?? "none" })
      )
      return { invalidated }
    })

    const webhook = Traced.fn("Admin.drupalWebhook")(function*(secret: Redacted.Redacted<string>) {
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* readBoundedBody(MAX_WEBHOOK_BODY_BYTES)
      const now = yield* Clock.currentTimeMillis
      const verified = verifyDelivery({
        secret,
        idHeader: request.headers[ID_HEADER],
        timestampHeader: request.headers[TIMESTAMP_HEADER],
        signatureHeader: request.headers[SIGNATURE_HEADER],
        body,
        nowMs: now,
        toleranceMs
      })
      if (Either.isLeft(verified)) {
        yield* withResponseHeader("www-authenticate", "HMAC-SHA256")
        return yield* Effect.fail(apiError(401, verified.left.code, verified.left.message))
      }
      const event = decodeEvent(body)
      if (Either.isLeft(event)) return yield* Effect.fail(apiError(400, "bad_request", event.left.message))
      // Recorded only once authentic and well-formed: a refused delivery does not spend its id.
      if (!(yield* replays.accept(verified.right.id, verified.right.rememberMs))) {
        // A retry of a delivery already carried out (here or on another instance): success, no second effect.
        yield* Effect.logInfo("webhook: duplicate delivery").pipe(Effect.annotateLogs({ route: "webhooks/drupal", duplicate: true }))
        return { invalidated: { tags: 0 }, duplicate: true }
      }
      const tags = tagsForEvent(event.right)
      if (tags.length > 0) yield* cache.invalidateTags(tags)
      yield* Effect.logInfo("webhook: cache invalidated").pipe(
        Effect.annotateLogs({ route: "webhooks/drupal", event: event.right.event, ids: event.right.ids.length, tags: tags.length })
      )
      return { invalidated: { tags: tags.length } }
    })

    return handlers
      .handleRaw("invalidate", () =>
        Option.match(adminDigest, {
          onNone: () => Effect.fail(notFound),
          onSome: invalidate
        }).pipe(logRefusal("admin/invalidate")))
      .handleRaw("drupalWebhook", () =>
        Option.match(webhookSecret, {
          onNone: () => Effect.fail(notFound),
          onSome: webhook
        }).pipe(logRefusal("webhooks/drupal")))
  }))
