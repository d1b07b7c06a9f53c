/**
 * Handlers of the `content` group: search and retrieval as the caller, through the cache. Each
 * answer carries `X-Cache` (how it was found) and `Server-Timing`.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeStream } from "@effect/platform-node"
import { Clock, Effect, Stream } from "effect"
import * as zlib from "node:zlib"
import { AccessScope } from "../access/AccessScope.js"
import { CachedContent, type Served } from "../content/CachedContent.js"
import { normalizeSearch } from "../content/SearchQuery.js"
import type { DrupalError } from "../drupal/DrupalError.js"
import { type Credentials, fromAuthorizationHeader, MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { GatewayApi } from "./Api.js"
import { failWithApiError } from "./ErrorMapping.js"
import * as Representation from "./Representation.js"
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

/** `true` when the request carries no (non-blank) `Authorization`: the anonymous caller. */
const isAnonymous = (request: HttpServerRequest.HttpServerRequest): boolean =>
  fromAuthorizationHeader(request.headers["authorization"]).fingerprint === "anonymous"

/**
 * The response for a served answer, with the HTTP semantics of `Representation` (the same the
 * hit path writes): a cached 200 gets its ETag, `Cache-Control`, `Vary`, `Age`, the coding
 * negotiated from `Accept-Encoding` (made once per body, here, when it does not exist yet) and
 * a 304 with an empty body when `If-None-Match` matches; anything else (a cached not-found) is
 * `no-store`.
 */
export const respond = (
  served: Served,
  semantics: Representation.HttpSemanticsOptions = Representation.defaults
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const base = { "x-cache": served.cache, "server-timing": serverTiming(served) }
    if (served.httpStatus !== 200 || served.entry === undefined) {
      return HttpServerResponse.uint8Array(served.body, {
        status: served.httpStatus,
        contentType: served.contentType,
        headers: { ...base, "cache-control": "no-store" }
      })
    }
    const request = yield* HttpServerRequest.HttpServerRequest
    const now = yield* Clock.currentTimeMillis
    const chosen = yield* Representation.encode(
      served.body,
      Representation.codingFor(semantics, request.headers["accept-encoding"], served.body.byteLength, served.body)
    )
    yield* Representation.prepare(served.body)
    const headers = Representation.validatorHeaders(served.body, chosen.coding, isAnonymous(request), served.entry, now)
    if (Representation.ifNoneMatchHits(request.headers["if-none-match"], served.body)) {
      delete headers["content-encoding"]
      return HttpServerResponse.empty({ status: 304, headers: { ...base, ...headers } })
    }
    return HttpServerResponse.uint8Array(chosen.bytes, {
      status: served.httpStatus,
      contentType: served.contentType,
      headers: { ...base, ...headers }
    })
  })

/**
 * A Markdown document streamed from upstream, compressed on the fly (sync-flushed per chunk, so
 * the client reads as it arrives) in the negotiated coding. It has no validator yet, so anonymous
 * callers get `public, no-cache` and signed-in ones `private, no-store`.
 */
const respondStream = (
  stream: Stream.Stream<string, DrupalError>,
  semantics: Representation.HttpSemanticsOptions
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest> =>
  Effect.map(HttpServerRequest.HttpServerRequest, (request) => {
    const coding = semantics.compression ? Representation.negotiate(request.headers["accept-encoding"]) : "identity"
    const headers: Record<string, string> = {
      "x-cache": "MISS",
      "server-timing": `cache;desc="MISS"`,
      "cache-control": isAnonymous(request) ? "public, no-cache" : "private, no-store",
      vary: Representation.VARY
    }
    const bytes = Stream.encodeText(stream)
    if (coding === "identity") return HttpServerResponse.stream(bytes, { contentType: MARKDOWN, headers })
    headers["content-encoding"] = coding
    const compressor = () =>
      coding === "gzip"
        ? zlib.createGzip({ flush: zlib.constants.Z_SYNC_FLUSH })
        : zlib.createBrotliCompress({
          flush: zlib.constants.BROTLI_OPERATION_FLUSH,
          params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT }
        })
    return HttpServerResponse.stream(
      NodeStream.pipeThroughDuplex(bytes, compressor, (cause) => cause),
      { contentType: MARKDOWN, headers }
    )
  })

const MARKDOWN = "text/markdown; charset=utf-8"

/** The `content` group's handlers. */
export const ContentHandlers = HttpApiBuilder.group(GatewayApi, "content", (handlers) =>
  Effect.gen(function*() {
    const content = yield* CachedContent
    const semantics = yield* Representation.HttpSemanticsConfig
    return handlers
      .handleRaw("search", ({ urlParams }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          const query = yield* normalizeSearch(urlParams)
          return yield* respond(yield* content.search(query, credentials), semantics)
        }).pipe(Effect.catchAll(failWithApiError)))
      .handleRaw("get", ({ path, urlParams }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          const id = yield* parseId(path.id)
          const options = yield* parseContentOptions(urlParams)
          return yield* respond(yield* content.item(id, credentials, options), semantics)
        }).pipe(Effect.catchAll(failWithApiError)))
      .handleRaw("markdown", ({ path }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          const id = yield* parseId(path.id)
          // Opened ahead: the front matter and the first body piece are pulled before the 200 is
          // committed, so a failure to open is a JSON error (or the fail-safe copy), never a cut 200.
          let answer = yield* content.markdownOpened(id, credentials)
          const request = yield* HttpServerRequest.HttpServerRequest
          if (answer._tag === "Streamed" && request.headers["if-none-match"] !== undefined) {
            // A validator from another instance (or an older copy): read the document to its end
            // (which stores it) and answer from the stored copy, a 304 when it still matches.
            yield* Stream.runDrain(answer.stream)
            answer = yield* content.markdownOpened(id, credentials)
          }
          if (answer._tag === "Cached") return yield* respond(answer.served, semantics)
          return yield* respondStream(answer.stream, semantics)
        }).pipe(Effect.catchAll(failWithApiError)))
  }))
