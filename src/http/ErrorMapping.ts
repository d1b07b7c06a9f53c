/**
 * From the gateway's internal failures to the client errors of `ApiError`: one place, one table.
 *
 * @since 0.1.0
 */
import type { LoadTimeout } from "../cache/TieredCache.js"
import type { InvalidSearch } from "../content/SearchQuery.js"
import type { InvalidArguments } from "../discovery/ArgumentValidator.js"
import type { UnknownMethod } from "../discovery/Discovery.js"
import { type DrupalError, isReplyTooLarge } from "../drupal/DrupalError.js"
import { HttpApp, HttpServerResponse } from "@effect/platform"
import { Duration, Effect } from "effect"
import { toClientError } from "./ClientError.js"
import { type ApiError, apiError, fromClientError } from "./ApiError.js"
import type { BadInput } from "./RequestParams.js"

/** Every failure a content or method handler can meet. */
export type HandlerFailure = DrupalError | InvalidArguments | UnknownMethod | InvalidSearch | BadInput | LoadTimeout

/**
 * | failure | status | code |
 * | --- | --- | --- |
 * | `BadInput`, `InvalidSearch` | 400 | `bad_request` |
 * | `UnknownMethod` | 404 | `method_not_found` |
 * | `LoadTimeout` (the cache's hard timeout) | 504 | `upstream_timeout` |
 * | -32602 from `content.get_tutorial` (an unknown id) | 404 | `not_found` |
 * | `InvalidArguments` and upstream errors | see `toClientError` | |
 */
export const toApiError = (failure: HandlerFailure): ApiError => {
  // Drupal reports an unknown content id like an unloadable entity parameter: -32602 at the
  // parse stage. For the content routes that means "no such item".
  // A site whose method answers it per item (id null, the module's default) says the same.
  if (
    (failure._tag === "DrupalHttpError" && failure.method === "content.get_tutorial" &&
      failure.rpcError?.code === -32602 && /not (be )?found/i.test(String(failure.rpcError.data))) ||
    (failure._tag === "DrupalRpcError" && failure.method === "content.get_tutorial" &&
      failure.code === -32602 && /not (be )?found/i.test(String(failure.data)))
  ) {
    return apiError(404, "not_found", "No such content item")
  }
  switch (failure._tag) {
    case "BadInput":
    case "InvalidSearch":
      return apiError(400, "bad_request", failure.message)
    case "UnknownMethod":
      return apiError(404, "method_not_found", failure.message)
    case "LoadTimeout":
      return apiError(504, "upstream_timeout", "The upstream timed out")
    default:
      return fromClientError(toClientError(failure))
  }
}

/**
 * Whole seconds after which a client may try again, for the failures that know it (an open
 * circuit, a busy stream pool); `undefined` for every other failure.
 */
export const retryAfterSeconds = (failure: HandlerFailure): number | undefined => {
  switch (failure._tag) {
    case "BadInput":
    case "InvalidSearch":
    case "UnknownMethod":
    case "LoadTimeout":
      return undefined
    default:
      return toClientError(failure).retryAfterSeconds
  }
}

/**
 * Fails a handler with the client error of `failure` ({@link toApiError}); one that says when to
 * come back also sets the response's `Retry-After`.
 */
export const failWithApiError = (failure: HandlerFailure): Effect.Effect<never, ApiError> => {
  const error = toApiError(failure)
  const seconds = retryAfterSeconds(failure)
  // A server error says why in the log (the listener's warning names the request and status only).
  const failed = SERVER_ERRORS.has(error._tag)
    ? Effect.zipRight(
      Effect.logWarning("request failed").pipe(Effect.annotateLogs({ code: error.code, cause: describeFailure(failure) })),
      Effect.fail(error)
    )
    : Effect.fail(error)
  if (seconds === undefined) return failed
  return Effect.zipRight(
    HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds)))),
    failed
  )
}

const SERVER_ERRORS: ReadonlySet<string> = new Set(["InternalError", "BadUpstreamReply", "UpstreamUnavailable", "UpstreamTimeout"])

/**
 * What went wrong, for the log: the failure's kind and its own short message (a reason, a status,
 * a JSON-RPC code, the method), never a body excerpt, a URL or a header.
 */
export const describeFailure = (failure: HandlerFailure): string => {
  switch (failure._tag) {
    case "DrupalHttpError":
      return `Drupal answered HTTP ${failure.status}${failure.rpcError === undefined ? "" : ` (JSON-RPC ${failure.rpcError.code})`}${
        failure.method === undefined ? "" : ` calling ${failure.method}`
      }`
    case "DrupalRpcError":
      return `JSON-RPC error ${failure.code} calling ${failure.method}`
    case "DrupalDecodeError":
      // The detail of a schema mismatch may quote the reply: only the bound's own detail is kept.
      return `DrupalDecodeError (${failure.reason})${failure.method === undefined ? "" : ` calling ${failure.method}`}${
        isReplyTooLarge(failure) ? `: ${failure.detail}` : ""
      }`
    case "DrupalTransportError":
    case "DrupalTimeoutError":
    case "CircuitOpenError":
      return `${failure._tag}: ${failure.message}`.slice(0, 300)
    case "LoadTimeout":
      return `LoadTimeout: the origin load took longer than ${Duration.format(failure.after)}`
    default:
      return failure._tag
  }
}
