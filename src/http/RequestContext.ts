/**
 * Per-request context of the Effect app: the request id in every log line, per-request trace
 * sampling, one warning log for every 5xx answer (with the request id, so an operator can
 * find the request the client reports), and `Cache-Control: no-store` on every error answer.
 *
 * The id itself is set by the listener (`GatewayServer`): the client's `X-Request-Id` when it is
 * a sane token, otherwise a generated one, echoed in the response.
 *
 * @since 0.1.0
 */
import { type HttpApp, HttpServerRequest, HttpServerResponse, HttpTraceContext } from "@effect/platform"
import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"

/** Most characters of a client-supplied request id kept; longer or odd ones are replaced. */
export const MAX_REQUEST_ID_LENGTH = 128

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** The client's id when it is a sane token, else `undefined`. */
export const acceptRequestId = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" && SANE_ID.test(value) ? value : undefined

/**
 * A generator of request ids for requests that bring none: a random prefix per generator (72
 * bits, base64url) and a counter, e.g. `q3Jx0v9LkZ2a-1b`. Unique across processes and restarts
 * without a random draw per request (a UUID per request was 6 % of a memory hit's allocations).
 * Ids are labels for logs and support, not secrets: the counter shows the order of requests.
 */
export const requestIds = (): (() => string) => {
  const prefix = randomBytes(9).toString("base64url")
  let next = 0
  return () => `${prefix}-${(next++).toString(36)}`
}

/** An error answer (status >= 400) that says nothing about caching is marked `no-store`: no client or CDN keeps an error. */
export const noStoreOnError = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse =>
  response.status >= 400 && response.headers["cache-control"] === undefined
    ? HttpServerResponse.setHeader(response, "cache-control", "no-store")
    : response

/**
 * Wraps the app: annotates logs with `request_id`, traces a `sampleRatio` share of requests
 * (0: tracing off, so a request pays no span cost), logs 5xx answers, marks errors `no-store`. A
 * traced request's server span carries the method and the path, never the query string (where a
 * client may have put a token) nor any header.
 */
export const withRequestContext = (sampleRatio: number) => <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const id = request.headers["x-request-id"] ?? "-"
    const path = request.url.split("?")[0]!
    const answered = Effect.map(app, noStoreOnError)
    // An untraced request builds no span and asks for none (asking for a span that is not
    // there costs an exception with its stack trace), and runs with the tracer off, so the
    // spans of the code it calls are no-ops.
    const traced = sampleRatio > 0 && Math.random() < sampleRatio
    const run = traced
      ? answered.pipe(
        Effect.tap((response) => Effect.annotateCurrentSpan("http.response.status_code", response.status)),
        Effect.withSpan(`http.server ${request.method}`, {
          kind: "server",
          captureStackTrace: false,
          attributes: { "http.request.method": request.method, "url.path": path },
          ...Option.match(HttpTraceContext.fromHeaders(request.headers), { onNone: () => ({}), onSome: (parent) => ({ parent }) })
        })
      )
      : answered
    return run.pipe(
      Effect.tap((response) =>
        response.status >= 500
          ? Effect.logWarning("request answered with a server error").pipe(
            Effect.annotateLogs({ status: response.status, method: request.method, path })
          )
          : Effect.void
      ),
      Effect.annotateLogs("request_id", id),
      Effect.withTracerEnabled(traced)
    )
  })
