/**
 * The listener's contract: what the raw HTTP listener (`http/GatewayServer.ts`) calls before
 * the Effect app, and what it tells about itself. Telemetry and the memory-hit path depend on
 * this contract, not on the listener's implementation.
 *
 * A request goes: listener → {@link FastPath} (telemetry: timing, `/metrics`, `/status`; then
 * the {@link HitPath}: fresh memory hits) → the Effect app, when no fast path answered it.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type * as Http from "node:http"

/**
 * A synchronous handler tried before the Effect app. It returns `true` when it has answered
 * the request (it must then have ended the response), `false` to hand the request on.
 * It must not throw and must not block: it runs on the event loop for every request.
 */
export type FastPath = (req: Http.IncomingMessage, res: Http.ServerResponse) => boolean

/** The fast path the listener calls first for every request (telemetry, then the hit path). */
export const FastPath = Context.GenericTag<FastPath>("accelerator/FastPath")

/** The fast path behind telemetry: answers fresh memory hits of the cache. */
export type HitPath = FastPath

/** The memory-hit path, handed to the telemetry fast path as the step after it. */
export const HitPath = Context.GenericTag<HitPath>("accelerator/HitPath")

/** Live view of the running listener, for health and metrics. */
export interface ListenerState {
  /** Requests received whose response has not finished. */
  readonly inFlight: () => number
  /** Whether the listener is draining (shutting down). */
  readonly draining: () => boolean
  /** The port it listens on. */
  readonly port: number
}

/** State of the running listener. */
export const ListenerState = Context.GenericTag<ListenerState>("accelerator/ListenerState")
