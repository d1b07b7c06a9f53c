/**
 * Handlers of the `content` group: search and retrieval as the caller, through the cache. Each
 * answer carries `X-Cache` (how it was found) and `Server-Timing`.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Stream } from "effect"
import { AccessScope } from "../access/AccessScope.js"
import { CachedContent, type Served } from "../content/CachedContent.js"
import { normalizeSearch } from "../content/SearchQuery.js"
import { type Credentials, MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { GatewayApi } from "./Api.js"
import { toApiError } from "./ErrorMapping.js"
import { BadInput, parseContentOptions, parseId } from "./RequestParams.js"

/** The caller's credentials from the request's `Authorization` header. */
export const requestCredentials: Effect.Effect<Credentials, BadInput, HttpServerRequest.HttpServerRequest | AccessScope> =
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request) => {
      const header = request.headers["authorization"]
      return header !== undefined && header.length > MAX_AUTHORIZATION_LENGTH
        ? Effect.fail(new BadInput("authorization", "the Authorization header is too long"))
        : Effect.map(AccessScope, (access) => access.credentials(header))
    }
  )

/** The `Server-Timing` value of an answer: the tier that answered, the total, and the upstream time when there was a load. */
export const serverTiming = (served: Pick<Served, "cache" | "millis" | "upstreamMillis">): string =>
  `cache;desc="${served.cache}", app;dur=${Math.max(0, served.millis).toFixed(1)}` +
  (served.upstreamMillis === undefined ? "" : `, upstream;dur=${served.upstreamMillis.toFixed(1)}`)

/** The response for a served answer. */
export const respond = (served: Served): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.uint8Array(served.body, {
    status: served.httpStatus,
    contentType: served.contentType,
    headers: { "x-cache": served.cache, "server-timing": serverTiming(served) }
  })

/** The `content` group's handlers. */
export const ContentHandlers = HttpApiBuilder.group(GatewayApi, "content", (handlers) =>
  Effect.gen(function*() {
    const content = yield* CachedContent
    return handlers
      .handleRaw("search", ({ urlParams }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          const query = yield* normalizeSearch(urlParams)
          return respond(yield* content.search(query, credentials))
        }).pipe(Effect.mapError(toApiError)))
      .handleRaw("get", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          const id = yield* parseId(path.id)
          const options = yield* parseContentOptions(urlParams)
          return respond(yield* content.item(id, credentials, options))
        }).pipe(Effect.mapError(toApiError)))
      .handleRaw("markdown", ({ path }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          const id = yield* parseId(path.id)
          const answer = yield* content.markdown(id, credentials)
          if (answer._tag === "Cached") return respond(answer.served)
          return HttpServerResponse.stream(Stream.encodeText(answer.stream), {
            contentType: "text/markdown; charset=utf-8",
            headers: { "x-cache": "MISS", "server-timing": `cache;desc="MISS"` }
          })
        }).pipe(Effect.mapError(toApiError)))
  }))
