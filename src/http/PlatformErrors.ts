/**
 * The platform's own request failures, answered like every other error: a request that does not
 * match an endpoint's schema (`HttpApiDecodeError`: a repeated query parameter, a wrong type) or
 * whose body cannot be read or parsed (`RequestError`) becomes a 400 `bad_request` naming the
 * fields at fault, never the schema's inner text; a request no route matches (`RouteNotFound`)
 * becomes a 404 `not_found`. Repeated query parameters: only parameters
 * declared as lists (`tags`) may repeat; any other given twice is a 400 (`RequestParams.
 * repeatsSingleParam`, which also keeps the memory-hit path from serving such a request).
 *
 * @since 0.2.0
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Cause, Effect } from "effect"
import { errorJson } from "./ApiError.js"

const MAX_FIELDS = 5

interface DecodeFailure {
  readonly _tag: "HttpApiDecodeError"
  readonly issues: ReadonlyArray<{ readonly path: ReadonlyArray<PropertyKey> }>
}

const tagOf = (error: unknown): unknown => (typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined)

const badRequest = (message: string) =>
  HttpServerResponse.text(errorJson("bad_request", message), {
    status: 400,
    contentType: "application/json",
    headers: { "cache-control": "no-store" }
  })

/** The message for a decode failure: the fields at fault, at most {@link MAX_FIELDS}. */
const decodeMessage = (error: DecodeFailure): string => {
  const fields = [...new Set(error.issues.map((issue) => issue.path.map(String).join(".")).filter((p) => p !== ""))]
  if (fields.length === 0) return "The request does not match this route"
  return `Invalid or repeated parameter: ${fields.slice(0, MAX_FIELDS).map((f) => `"${f}"`).join(", ")}`
}

/** The API middleware that answers the platform's decode and body errors as `bad_request`. */
export const layer = HttpApiBuilder.middleware((app) =>
  Effect.catchAllCause(app, (cause) => {
    // Interruptions (a client that went away) stay what they are.
    if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
    // The body parse failure reaches here as a defect of the payload decoder, hence `squash`.
    const error = Cause.squash(cause)
    if (tagOf(error) === "RouteNotFound") {
      return HttpServerResponse.text(errorJson("not_found", "There is no route for this method and path"), {
        status: 404,
        contentType: "application/json",
        headers: { "cache-control": "no-store" }
      })
    }
    if (tagOf(error) === "HttpApiDecodeError") return badRequest(decodeMessage(error as DecodeFailure))
    if (tagOf(error) === "RequestError" && (error as { reason?: unknown }).reason === "Decode") {
      return badRequest("The request body could not be read as JSON")
    }
    return Effect.failCause(cause)
  })
)
