/**
 * The listener's contract: what the raw HTTP listener (`http/GatewayServer.ts`) calls before
 * the Effect app, and what it tells about itself. Telemetry and the memory-hit path depend on
 * this contract, not on the listener's implementation.
 *
 * A request goes: listener → {@link FastPath} (telemetry: timing, `/metrics`, `/status`; then
 * the {@link HitPath}: fresh memory hits) → the {@link BodyPath} for the small bodies it claims
 * (read first, then answered or handed on) → the Effect app, when no fast path answered it.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type * as Http from "node:http"

/**
 * A synchronous handler tried before the Effect app. It returns `true` when it has answered
 * the request (it must then have ended the response), `false` to hand the request on.
 * It must not throw and must not block: it runs on the event loop for every request.
 *
 * Every answer carries the request's id as `x-request-id` ({@link withRequestId}). The listener
 * adds it to a response whose headers are not written yet when the fast path returns; a fast
 * path that writes its headers before returning includes it itself (in one `writeHead`, which
 * is node's cheapest way to write headers: nothing set before it).
 */
export type FastPath = (req: Http.IncomingMessage, res: Http.ServerResponse) => boolean

/** The response header that carries the request's id. */
export const REQUEST_ID_HEADER = "x-request-id"

/**
 * `headers` with the request's id added as `x-request-id` (the listener puts it in the request's
 * headers before any fast path runs; without the listener there is none), for a fast path that
 * writes its headers itself. Returns the same object.
 */
export const withRequestId = <H extends Http.OutgoingHttpHeaders>(req: Http.IncomingMessage, headers: H): H => {
  const id = req.headers[REQUEST_ID_HEADER]
  if (typeof id === "string") (headers as Http.OutgoingHttpHeaders)[REQUEST_ID_HEADER] = id
  return headers
}

/** The fast path the listener calls first for every request (telemetry, then the hit path). */
export const FastPath = Context.GenericTag<FastPath>("accelerator/FastPath")

/** The fast path behind telemetry: answers fresh memory hits of the cache. */
export type HitPath = FastPath

/** The memory-hit path, handed to the telemetry fast path as the step after it. */
export const HitPath = Context.GenericTag<HitPath>("accelerator/HitPath")

/**
 * A synchronous handler for requests whose answer depends on a small body (`POST /mcp`): the
 * listener asks `claims` (synchronously, after the {@link FastPath} and its body bounds: 411,
 * 413), reads a claimed body whole (a declared `Content-Length` of at most `maxBytes`), then calls
 * `answer` with it. `answer` returns `true` when it has answered (and ended the response), `false`
 * to hand the request to the Effect app, which then reads the same bytes through
 * {@link bufferedBody}. Neither may throw or block.
 */
export interface BodyPath {
  /** Largest body read ahead; a longer one goes to the app unread. */
  readonly maxBytes: number
  readonly claims: (req: Http.IncomingMessage) => boolean
  readonly answer: (req: Http.IncomingMessage, res: Http.ServerResponse, body: Buffer) => boolean
}

/** The optional body path of the listener (the MCP fast path). */
export const BodyPath = Context.GenericTag<BodyPath>("accelerator/BodyPath")

// Bodies read ahead by the listener for requests it then handed to the app (weak: gone with the request).
const buffered = new WeakMap<Http.IncomingMessage, Buffer>()

/** Records the body the listener read ahead for `req` (before handing it to the app). */
export const setBufferedBody = (req: Http.IncomingMessage, body: Buffer): void => {
  buffered.set(req, body)
}

/** The body the listener read ahead for `req`, when it did: the request stream is then already consumed. */
export const bufferedBody = (req: Http.IncomingMessage): Buffer | undefined => buffered.get(req)

/** Live view of the running listener, for health and metrics. */
export interface ListenerState {
  /** Requests received whose response has not finished. */
  readonly inFlight: () => number
  /** Connections accepted since the listener started. */
  readonly connectionsAccepted: () => number
  /** Whether the listener is draining (shutting down). */
  readonly draining: () => boolean
  /** The port it listens on. */
  readonly port: number
}

/** State of the running listener. */
export const ListenerState = Context.GenericTag<ListenerState>("accelerator/ListenerState")
