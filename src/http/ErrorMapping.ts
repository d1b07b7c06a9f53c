/**
 * From the gateway's internal failures to the client errors of `ApiError`: one place, one table.
 *
 * @since 0.1.0
 */
import type { LoadTimeout } from "../cache/TieredCache.js"
import type { InvalidSearch } from "../content/SearchQuery.js"
import type { InvalidArguments } from "../discovery/ArgumentValidator.js"
import type { UnknownMethod } from "../discovery/Discovery.js"
import type { DrupalError } from "../drupal/DrupalError.js"
import { HttpApp, HttpServerResponse } from "@effect/platform"
import { Effect } from "effect"
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
  if (seconds === undefined) return Effect.fail(error)
  return Effect.zipRight(
    HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", String(seconds)))),
    Effect.fail(error)
  )
}
