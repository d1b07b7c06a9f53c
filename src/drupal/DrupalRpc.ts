/**
 * The Drupal JSON-RPC client: JSON-RPC 2.0 over a pooled keep-alive undici `Pool` (bounded
 * connections per origin), with
 *
 * - **batching**: calls from any fiber that arrive within `batchWindow` are coalesced into one
 *   JSON-RPC batch POST (at most `batchMaxSize` items), one batch per credential fingerprint, so
 *   calls with different credentials never share a batch;
 * - **deduplication**: identical read calls (same credentials, method and params) in flight at
 *   the same time share one upstream call, within a batch and across batch windows;
 * - **replies matched by position**: the jsonrpc module answers a batch item by item in request
 *   order and gives most per-item errors `"id": null`, so replies are paired with calls by
 *   position; ids are only a cross-check;
 * - **parse-stage splitting**: Drupal fails a whole batch with HTTP 400 when one item fails to
 *   parse, and names the item only for an unknown method or a missing required param; the client
 *   answers the named item and resends the others, and otherwise finds the culprit by resending
 *   small batches one call per request and splitting larger ones in halves, so one bad call
 *   never fails its neighbours;
 * - **resilience**: retries with full-jitter backoff for transient failures only, and a circuit
 *   breaker over the upstream's HTTP requests that fails fast while open.
 *
 * Reads go out as `GET /jsonrpc?query=` (cacheable by a CDN in front of Drupal) and fall back to
 * POST when the URL would pass `maxGetUrlLength`; batches and writes are POSTs.
 *
 * **Client disconnects do not cancel upstream calls** made through `call`: a call may be shared
 * by other callers (deduplication, batching), its reply is worth caching, and aborting would
 * destroy a pooled keep-alive socket. Every call is bounded by `callTimeout` instead.
 * `stream` is the exception: it is never shared, so interrupting its consumer aborts the
 * upstream request.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Request, RequestResolver, type Scope, Stream } from "effect"
import type { NonEmptyArray } from "effect/Array"
import { errors as UndiciErrors, Pool } from "undici"
import { DrupalClientConfig } from "../Config.js"
import * as Deadline from "../concurrency/Deadline.js"
import * as RequestWindow from "../concurrency/RequestWindow.js"
import { settleWithin } from "../concurrency/Release.js"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import * as Retry from "../resilience/Retry.js"
import * as BatchPolicy from "./BatchPolicy.js"
import type { Credentials } from "./Credentials.js"
import { DrupalEndpoint } from "./DrupalEndpoint.js"
import {
  DrupalDecodeError,
  type DrupalError,
  DrupalHttpError,
  DrupalRpcError,
  DrupalTimeoutError,
  DrupalTransportError,
  isDrupalError,
  isReplyTooLarge,
  isTransient,
  isTransientUnknown,
  type JsonRpcErrorObject,
  ReplyTooLarge
} from "./DrupalError.js"
import { canonicalJson, getUrl, isErrorItem, isReplyItem, requestItem, type RpcReplyItem } from "./JsonRpc.js"
import * as LargeJson from "../markdown/LargeJson.js"
import * as Traced from "../telemetry/Traced.js"

/** Options of {@link make}; `DrupalClientConfig` holds the defaults. */
export interface DrupalRpcOptions {
  /** Base URL of the site (the API is at `<url>/jsonrpc`). */
  readonly url: URL
  readonly maxConnections: number
  /** Connections of the pool that `stream` uses, apart from `maxConnections`. Default: as many. */
  readonly streamMaxConnections?: number
  /** A streamed body that delivers nothing for this long is cut (e.g. its reader stalled). Default: `callTimeout`. */
  readonly streamIdleTimeout?: Duration.DurationInput
  readonly connectTimeout: Duration.DurationInput
  readonly headersTimeout: Duration.DurationInput
  /** Bound on one upstream request, headers and body. */
  readonly callTimeout: Duration.DurationInput
  readonly keepAliveTimeout: Duration.DurationInput
  /** Largest reply body read into memory by `call` / `discovery`; larger replies fail (use `stream`). */
  readonly maxReplyBytes: number
  readonly maxGetUrlLength: number
  /** Methods without side effects: sent as GET when alone, and deduplicated. */
  readonly readMethods: ReadonlyArray<string>
  readonly batchWindow: Duration.DurationInput
  readonly batchMaxSize: number
  /** When calls are coalesced into batches: see {@link BatchPolicy}. Default: `always`. */
  readonly batch?: {
    readonly mode: BatchPolicy.BatchMode
    readonly inFlightThreshold: number
    readonly latencyFactor: number
  }
  /** Bound on distinct read calls tracked for deduplication at once. */
  readonly dedupMaxKeys: number
  readonly retry: Retry.RetryOptions<DrupalError>
  readonly breaker: Omit<CircuitBreaker.CircuitBreakerOptions, "name">
  /** Observability hooks (metrics are wired to these). */
  readonly hooks?: DrupalRpcHooks
}

/** Callbacks for telemetry; each must be cheap and must not throw. */
export interface DrupalRpcHooks {
  /** One upstream HTTP request finished (any outcome). `methods` is the list of methods it carried. */
  readonly onUpstreamRequest?: (info: { readonly methods: ReadonlyArray<string>; readonly seconds: number; readonly ok: boolean }) => void
  /** A batch of `size` distinct calls is about to be sent. */
  readonly onBatch?: (size: number) => void
  /** A call joined an identical one already in flight. */
  readonly onDedupJoin?: () => void
  /** A call is retried. */
  readonly onRetry?: (method: string) => void
}

/** The validators of an upstream reply (Drupal's page cache: anonymous GETs). */
export interface UpstreamValidator {
  readonly etag?: string
  readonly lastModified?: string
}

/** What {@link DrupalRpc.callConditional} gives. */
export type ConditionalResult =
  | { readonly _tag: "NotModified"; readonly validator: UpstreamValidator | undefined }
  | { readonly _tag: "Modified"; readonly result: unknown; readonly validator: UpstreamValidator | undefined }

/** Live counters of the connection pool. */
export interface PoolStats {
  readonly connected: number
  readonly free: number
  readonly pending: number
  readonly running: number
}

/** The client. */
export interface DrupalRpc {
  /**
   * Calls `method` with `params` as `credentials`: batched, deduplicated (reads), retried when
   * transient, behind the breaker. Succeeds with the JSON-RPC `result`.
   */
  readonly call: (
    method: string,
    params: Record<string, unknown> | undefined,
    credentials: Credentials
  ) => Effect.Effect<unknown, DrupalError>
  /**
   * One call sent on its own, its reply body streamed as bytes without buffering (for large
   * results). The status is checked before the stream starts; the body is not parsed. Not
   * retried once bytes have flowed; interrupting the consumer aborts the upstream request.
   */
  readonly stream: (
    method: string,
    params: Record<string, unknown> | undefined,
    credentials: Credentials
  ) => Stream.Stream<Uint8Array, DrupalError>
  /**
   * {@link stream}, opened now in the caller's scope and read ahead up to `wholeBelow` bytes: a
   * reply that ends within them is `Whole` (its bytes, the connection already released); a longer
   * one is `Streaming` (the bytes read so far, then the rest as it arrives, the connection held
   * until the scope closes). Opening fails as the stream's start would (status, headers, busy
   * pool). With `wholeBelow <= 0` nothing is opened: `Streaming` with a lazy {@link stream}.
   * A small reply then costs one read, not a `Stream` per request. Optional so that stand-in
   * clients (specs) need not implement it: callers use `stream` then.
   */
  readonly openBody?: (
    method: string,
    params: Record<string, unknown> | undefined,
    credentials: Credentials,
    wholeBelow: number
  ) => Effect.Effect<OpenedBody, DrupalError, Scope.Scope>
  /**
   * A read revalidated with the validator of an earlier reply (`If-None-Match` /
   * `If-Modified-Since`), sent on its own as a GET, not batched nor deduplicated, retried and
   * behind the breaker like `call`. Drupal's page cache gives validators to anonymous GETs only:
   * for a signed-in caller, a write method or a URL too long for GET it is a plain `call`
   * (`Modified` without a validator). A 304 is `NotModified`: no body crossed the wire.
   * Optional so that stand-in clients (specs) need not implement it: callers use `call` then.
   */
  readonly callConditional?: (
    method: string,
    params: Record<string, unknown> | undefined,
    credentials: Credentials,
    validator: UpstreamValidator | undefined
  ) => Effect.Effect<ConditionalResult, DrupalError>
  /** `GET /jsonrpc/methods` (or `/jsonrpc/methods/{id}`) as `credentials`, parsed JSON. */
  readonly discovery: (credentials: Credentials, id?: string) => Effect.Effect<unknown, DrupalError>
  readonly pool: () => PoolStats
  readonly breakerState: Effect.Effect<CircuitBreaker.State>
}

/** A reply body opened by {@link DrupalRpc.openBody}. */
export type OpenedBody =
  | { readonly _tag: "Whole"; readonly chunks: ReadonlyArray<Uint8Array> }
  | { readonly _tag: "Streaming"; readonly stream: Stream.Stream<Uint8Array, DrupalError> }

/** Tag of the client. */
export const DrupalRpc = Context.GenericTag<DrupalRpc>("accelerator/DrupalRpc")

class RpcCall extends Request.Class<unknown, DrupalError, {
  readonly method: string
  readonly params: Record<string, unknown> | undefined
  readonly credentials: Credentials
  /** Identity for deduplication; `undefined` for calls that must never be merged (writes). */
  readonly dedupKey: string | undefined
}> {}

interface RawReply {
  readonly status: number
  /** The body as text; for a large body (see `chunks`) only its head, for error excerpts. */
  readonly body: string
  readonly validator?: UpstreamValidator | undefined
  /** A body over {@link LARGE_REPLY_BYTES}, as received: parsed in steps (`LargeJson`), never whole on the event loop. */
  readonly chunks?: ReadonlyArray<Uint8Array>
}

const headerOf = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" && value.length > 0 && value.length <= 256 ? value : undefined

/** The reply's validators, when it has any (bounded: longer values are ignored). */
const validatorOf = (headers: Record<string, string | ReadonlyArray<string> | undefined>): UpstreamValidator | undefined => {
  const etag = headerOf(headers["etag"])
  const lastModified = headerOf(headers["last-modified"])
  return etag === undefined && lastModified === undefined
    ? undefined
    : { ...(etag === undefined ? {} : { etag }), ...(lastModified === undefined ? {} : { lastModified }) }
}

/**
 * Replies larger than this are parsed with `LargeJson` (bounded steps, yielding between them)
 * instead of one `JSON.parse`, which blocks the event loop ~10 ms per MB.
 */
export const LARGE_REPLY_BYTES = 1024 * 1024

/** Head of a large body kept as text for error excerpts. */
const LARGE_REPLY_HEAD_BYTES = 64 * 1024

const largeHead = (chunks: ReadonlyArray<Uint8Array>): string => {
  const decoder = new TextDecoder("utf-8")
  let text = ""
  for (const chunk of chunks) {
    text += decoder.decode(chunk.subarray(0, LARGE_REPLY_HEAD_BYTES - text.length), { stream: true })
    if (text.length >= LARGE_REPLY_HEAD_BYTES) break
  }
  return text
}

/** The parsed body of a reply (`undefined` when it is not JSON). */
const parseReply = (reply: RawReply): Effect.Effect<unknown> =>
  reply.chunks === undefined ? Effect.sync(() => parseJson(reply.body)) : LargeJson.parse(reply.chunks)

const authHeaders = (credentials: Credentials, extra: Record<string, string>): Record<string, string> =>
  Option.match(credentials.authorization, {
    onNone: () => extra,
    onSome: (auth) => ({ ...extra, authorization: Redacted.value(auth) })
  })

const mapUndiciError = (cause: unknown, label: string, options: DrupalRpcOptions): DrupalError => {
  if (cause instanceof UndiciErrors.ConnectTimeoutError) {
    return new DrupalTimeoutError({ phase: "connect", timeout: Duration.decode(options.connectTimeout), method: label })
  }
  if (cause instanceof UndiciErrors.HeadersTimeoutError) {
    return new DrupalTimeoutError({ phase: "headers", timeout: Duration.decode(options.headersTimeout), method: label })
  }
  if (cause instanceof UndiciErrors.BodyTimeoutError) {
    return new DrupalTimeoutError({ phase: "call", timeout: Duration.decode(options.callTimeout), method: label })
  }
  return DrupalTransportError.fromCause(cause, label)
}

/**
 * The body's chunks, cut when the consumer takes none for `idleMillis`. The pool's body timeout
 * covers an upstream that stops sending, but it is paused while the body is paused by
 * backpressure: a consumer that stopped reading (a response waiting on a client that does not
 * read) would hold the connection for as long as it stalls. Destroying the body frees the
 * connection at once; the consumer meets the error at its next pull.
 */
const drainedWithin = <A>(body: AsyncIterable<A> & { destroy: (error: Error) => void }, idleMillis: number): AsyncIterable<A> => ({
  async *[Symbol.asyncIterator]() {
    for await (const chunk of body) {
      const timer = setTimeout(() => body.destroy(new UndiciErrors.BodyTimeoutError()), idleMillis)
      try {
        yield chunk
      } finally {
        clearTimeout(timer)
      }
    }
  }
})

const parseJson = (body: string): unknown => {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

const rpcErrorOf = (parsed: unknown): { error: JsonRpcErrorObject; id: string | number | null } | undefined => {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const item = parsed as { error?: unknown; id?: unknown }
  if (typeof item.error !== "object" || item.error === null) return undefined
  const error = item.error as JsonRpcErrorObject
  if (typeof error.code !== "number" || typeof error.message !== "string") return undefined
  const id = typeof item.id === "string" || typeof item.id === "number" ? item.id : null
  return { error, id }
}

/**
 * A batch that fails at parse stage without naming its culprit is resent one call per request
 * up to this size, and split in halves above it.
 */
const SINGLES_AT_MOST = 4

/** Creates the client in the current scope (its pool, breaker and batch loader live there). */
export const make = (options: DrupalRpcOptions): Effect.Effect<DrupalRpc, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hooks = options.hooks ?? {}
    const basePath = options.url.pathname.replace(/\/+$/, "")
    const apiPath = `${basePath}/jsonrpc`
    const readMethods = new Set(options.readMethods)
    const callTimeout = Duration.decode(options.callTimeout)

    const makePool = (connections: number, bodyTimeout: Duration.DurationInput) =>
      Effect.acquireRelease(
        Effect.sync(() =>
          new Pool(options.url.origin, {
            connections,
            keepAliveTimeout: Duration.toMillis(options.keepAliveTimeout),
            connect: { timeout: Duration.toMillis(options.connectTimeout) },
            headersTimeout: Duration.toMillis(options.headersTimeout),
            bodyTimeout: Duration.toMillis(bodyTimeout)
          })
        ),
        (pool) =>
          Effect.zipRight(
            settleWithin(Duration.seconds(2), () => pool.close()),
            settleWithin(Duration.seconds(1), () => pool.destroy())
          )
      )
    const pool = yield* makePool(options.maxConnections, options.callTimeout)
    // Streams get connections of their own: a client that reads a large body slowly (or not at
    // all) holds its upstream connection for as long as it stalls, and must never hold one that
    // JSON calls need. A body that stalls for `streamIdleTimeout` is cut and its connection freed.
    const streamIdleMillis = Duration.toMillis(options.streamIdleTimeout ?? options.callTimeout)
    const streamConnections = options.streamMaxConnections ?? options.maxConnections
    const streamPool = yield* makePool(streamConnections, streamIdleMillis)
    // One slot per stream connection, held from the request until the body is released. A stream
    // waits for a slot here, not in the pool's queue: waiting on readers that hold every
    // connection is the gateway's congestion, not the upstream's slowness, so it fails on its
    // own deadline (`pool`, 503 upstream_busy) and never counts against the upstream's breaker;
    // the headers deadline starts once a connection is ours.
    const streamSlots = yield* Effect.makeSemaphore(streamConnections)
    const streamSlot = streamSlots.take(1).pipe(
      Effect.timeoutFail({
        duration: options.headersTimeout,
        onTimeout: () => new DrupalTimeoutError({ phase: "pool", timeout: Duration.decode(options.headersTimeout) })
      }),
      Effect.interruptible
    )
    /** The release of one slot, run once whichever comes first: the body closing or the stream's scope. */
    const slotHolder = () => {
      let held = true
      return {
        free: () => {
          if (!held) return
          held = false
          Effect.runSync(streamSlots.release(1))
        }
      }
    }

    const policy = BatchPolicy.make({
      mode: options.batch?.mode ?? "always",
      batchMaxSize: options.batchMaxSize,
      inFlightThreshold: options.batch?.inFlightThreshold ?? 8,
      latencyFactor: options.batch?.latencyFactor ?? 2
    })

    // Only transient errors count against the upstream: a 404 or an access denied proves it alive.
    const breaker = yield* CircuitBreaker.make({
      isFailure: (error) => !isDrupalError(error) || isTransient(error),
      ...options.breaker,
      name: "drupal"
    })

    /** One bounded HTTP exchange; the whole body is read, up to `maxReplyBytes`. */
    const exchange = (
      method: "GET" | "POST",
      path: string,
      body: string | undefined,
      credentials: Credentials,
      methods: ReadonlyArray<string>,
      conditional?: Record<string, string>
    ): Effect.Effect<RawReply, DrupalError> => {
      const label = methods.length === 1 ? methods[0]! : "batch"
      const run = Effect.tryPromise({
        try: async (signal) => {
          const res = await pool.request({
            method,
            path,
            signal,
            headers: authHeaders(credentials, body === undefined
              ? { accept: "application/json", ...conditional }
              : { accept: "application/json", "content-type": "application/json" }),
            ...(body === undefined ? {} : { body })
          }).then(guardBody)
          const chunks: Array<Buffer> = []
          let size = 0
          for await (const chunk of res.body) {
            size += (chunk as Buffer).length
            if (size > options.maxReplyBytes) {
              res.body.destroy()
              throw new ReplyTooLarge()
            }
            chunks.push(chunk as Buffer)
          }
          const validator = conditional === undefined ? undefined : validatorOf(res.headers)
          return size > LARGE_REPLY_BYTES
            ? { status: res.statusCode, body: largeHead(chunks), chunks, validator }
            : { status: res.statusCode, body: Buffer.concat(chunks).toString("utf8"), validator }
        },
        catch: (cause): DrupalError =>
          cause instanceof ReplyTooLarge
            ? new DrupalDecodeError({
              reason: "unexpected_result",
              detail: `reply larger than ${options.maxReplyBytes} bytes`,
              method: label,
              cause
            })
            : mapUndiciError(cause, label, options)
      }).pipe(
        // Forgiving and cheap (`Deadline`): a reply read in the poll phase after the deadline wins.
        (self) =>
          Deadline.timeoutFail(self, {
            duration: callTimeout,
            onTimeout: () => new DrupalTimeoutError({ phase: "call", timeout: callTimeout, method: label })
          })
      )
      return Traced.withSpan(Effect.suspend(() => {
        const started = performance.now()
        return breaker.withBreaker(
          // A 5xx is a reply, but it counts against the upstream like a transport failure.
          Effect.flatMap(run, (reply) =>
            reply.status >= 500
              ? Effect.fail(
                new DrupalHttpError({ status: reply.status, bodyExcerpt: reply.body, method: label }) as DrupalError
              )
              : Effect.succeed(reply))
        ).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              const ms = performance.now() - started
              const ok = Exit.isSuccess(exit)
              if (methods[0] !== "discovery") policy.observe(methods.length, ms, ok)
              hooks.onUpstreamRequest?.({ methods, seconds: ms / 1000, ok })
            })
          )
        )
      }), "DrupalRpc.upstream", { attributes: { "http.request.method": method, "rpc.calls": methods.length } })
    }

    interface Unique {
      readonly id: number
      readonly method: string
      readonly params: Record<string, unknown> | undefined
      readonly requests: Array<RpcCall>
    }

    const completeAll = (unique: Unique, exit: Exit.Exit<unknown, DrupalError>) =>
      Effect.forEach(unique.requests, (request) => Request.complete(request, exit), { discard: true })

    const interpretItem = (unique: Unique, item: RpcReplyItem): Exit.Exit<unknown, DrupalError> =>
      isErrorItem(item)
        ? Exit.fail(
          new DrupalRpcError({
            code: item.error.code,
            message: item.error.message,
            data: item.error.data,
            method: unique.method,
            id: item.id
          })
        )
        : Exit.succeed(item.result)

    const failAll = (pending: ReadonlyArray<Unique>, error: DrupalError) =>
      Effect.forEach(pending, (u) => completeAll(u, Exit.fail(error)), { discard: true })

    /**
     * Pairs a 200 reply with the calls it answers, by position: the module answers every item
     * of a batch without notifications exactly once, in request order, and gives a per-item
     * error `"id": null` when access was denied or the method raised the error itself. Ids are
     * only a cross-check: a non-null id that is not the id sent at that position, a reply that
     * is not an array for a batch, or a count that differs, is a decode error for every call.
     */
    const matchReplies = (
      pending: ReadonlyArray<Unique>,
      parsed: unknown
    ): { readonly _tag: "Matched"; readonly items: ReadonlyArray<RpcReplyItem> } | { readonly _tag: "Invalid"; readonly error: DrupalError } => {
      const label = pending.length === 1 ? pending[0]!.method : "batch"
      const invalid = (reason: "invalid_json" | "invalid_envelope" | "missing_response", detail: string) =>
        ({ _tag: "Invalid", error: new DrupalDecodeError({ reason, detail, method: label }) }) as const
      if (parsed === undefined) return invalid("invalid_json", "the reply is not JSON")
      const single = pending.length === 1 && !Array.isArray(parsed)
      const items: ReadonlyArray<unknown> = single ? [parsed] : Array.isArray(parsed) ? parsed : []
      if (!single && !Array.isArray(parsed)) return invalid("invalid_envelope", "a batch was answered without an array")
      if (!items.every(isReplyItem)) return invalid("invalid_envelope", "the reply is not a JSON-RPC response")
      if (items.length !== pending.length) {
        return invalid("missing_response", `${pending.length} calls were answered with ${items.length} reply items`)
      }
      const replies = items as ReadonlyArray<RpcReplyItem>
      for (let i = 0; i < replies.length; i++) {
        const id = replies[i]!.id
        if (id !== null && id !== pending[i]!.id) {
          return invalid("missing_response", `reply item ${i} carries id ${JSON.stringify(id)}, sent ${pending[i]!.id}`)
        }
      }
      return { _tag: "Matched", items: replies }
    }

    /**
     * Sends `items` (one request, or a batch) and answers every caller.
     *
     * A parse-stage 400 fails a whole batch for one bad item. When the 400 names the id of an
     * item (unknown method, missing required param), that item gets the error and the others are
     * resent as one batch. When it does not (the module sends `id: null` for a param that fails
     * its schema and for a missing entity), the culprit is found without it: a batch of at most
     * {@link SINGLES_AT_MOST} calls is resent one call per request, a larger one is split in
     * halves that are sent (and split again) on their own. A batch of n calls holding k bad
     * items that the 400 cannot name costs about 2k·log2(n/k) more requests, never n. A batch
     * whose reply is over `maxReplyBytes` is resent one call per request.
     */
    const sendGroup = (items: ReadonlyArray<Unique>, credentials: Credentials): Effect.Effect<void> =>
      Effect.gen(function*() {
        let pending = items
        while (pending.length > 0) {
          const single = pending.length === 1
          const payload = single
            ? JSON.stringify(requestItem(pending[0]!.id, pending[0]!.method, pending[0]!.params))
            : JSON.stringify(pending.map((u) => requestItem(u.id, u.method, u.params)))
          const asGet = single && readMethods.has(pending[0]!.method) &&
            getUrl(apiPath, payload).length + options.url.origin.length <= options.maxGetUrlLength
          if (!single) hooks.onBatch?.(pending.length)
          const methods = pending.map((u) => u.method)
          const reply = yield* Effect.either(
            asGet
              ? exchange("GET", getUrl(apiPath, payload), undefined, credentials, methods)
              : exchange("POST", apiPath, payload, credentials, methods)
          )
          if (reply._tag === "Left") {
            // A batch whose reply passed the bound (one large item is enough) is not a failure of
            // every call in it: each call is sent on its own, so only one whose own reply is too
            // large fails.
            if (!single && isReplyTooLarge(reply.left)) {
              return yield* Effect.forEach(pending, (u) => sendGroup([u], credentials), { concurrency: SINGLES_AT_MOST, discard: true })
            }
            return yield* failAll(pending, reply.left)
          }
          const { body, status } = reply.right
          const parsed = yield* parseReply(reply.right)
          if (status === 200) {
            const matched = matchReplies(pending, parsed)
            if (matched._tag === "Invalid") return yield* failAll(pending, matched.error)
            const current = pending
            return yield* Effect.forEach(current, (u, i) => completeAll(u, interpretItem(u, matched.items[i]!)), {
              discard: true
            })
          }
          const rpc = rpcErrorOf(parsed)
          const httpError = (u: Unique) =>
            new DrupalHttpError({
              status,
              bodyExcerpt: body,
              method: u.method,
              ...(rpc === undefined ? {} : { rpcError: rpc.error, id: rpc.id })
            })
          if (status === 400 && !single && rpc !== undefined) {
            const named = rpc.id === null ? undefined : pending.find((u) => u.id === rpc.id)
            if (named !== undefined) {
              yield* completeAll(named, Exit.fail(httpError(named)))
              pending = pending.filter((u) => u !== named)
              continue
            }
            const parts = pending.length <= SINGLES_AT_MOST
              ? pending.map((u) => [u])
              : [pending.slice(0, Math.ceil(pending.length / 2)), pending.slice(Math.ceil(pending.length / 2))]
            return yield* Effect.forEach(parts, (part) => sendGroup(part, credentials), {
              concurrency: SINGLES_AT_MOST,
              discard: true
            })
          }
          return yield* Effect.forEach(pending, (u) => completeAll(u, Exit.fail(httpError(u))), { discard: true })
        }
      })

    const resolver = RequestResolver.makeBatched((requests: NonEmptyArray<RpcCall>) => {
      const groups = new Map<string, { credentials: Credentials; uniques: Map<string, Unique> }>()
      let nextId = 1
      for (const request of requests) {
        let group = groups.get(request.credentials.fingerprint)
        if (group === undefined) {
          group = { credentials: request.credentials, uniques: new Map() }
          groups.set(request.credentials.fingerprint, group)
        }
        const key = request.dedupKey ?? `#${nextId}`
        const existing = group.uniques.get(key)
        if (existing !== undefined) {
          hooks.onDedupJoin?.()
          existing.requests.push(request)
        } else {
          group.uniques.set(key, { id: nextId++, method: request.method, params: request.params, requests: [request] })
        }
      }
      const parts = [...groups.values()].flatMap((group) =>
        BatchPolicy.split([...group.uniques.values()], policy.cap(group.uniques.size)).map((part) => ({
          part,
          credentials: group.credentials
        }))
      )
      return Effect.forEach(
        parts,
        ({ credentials, part }) => sendGroup(part, credentials),
        { concurrency: "unbounded", discard: true } // one fiber per part of one batch (≤ batchMaxSize parts)
      )
    })

    const windowed = yield* RequestWindow.make(resolver, {
      window: options.batchWindow,
      maxBatchSize: options.batchMaxSize
    })

    const singleFlight = yield* SingleFlight.make({
      maxKeys: options.dedupMaxKeys,
      ...(hooks.onDedupJoin === undefined ? {} : { onJoin: hooks.onDedupJoin })
    })

    const call = Traced.fn("DrupalRpc.call")(function*(
      method: string,
      rawParams: Record<string, unknown> | undefined,
      credentials: Credentials
    ) {
      yield* Traced.annotate("rpc.method", method)
      // An empty `params` is sent as none: the module treats the two alike (undeclared params are
      // ignored), and one form gives one deduplication key.
      const params = rawParams !== undefined && Object.keys(rawParams).length === 0 ? undefined : rawParams
      const isRead = readMethods.has(method)
      const dedupKey = isRead ? `${credentials.fingerprint}\u0000${method}\u0000${canonicalJson(params ?? null)}` : undefined
      const request = new RpcCall({ method, params, credentials, dedupKey })
      // Decided per attempt: a retry made when the upstream has become busy may be coalesced.
      const once = Effect.suspend(() =>
        Effect.ensuring(policy.admit() ? windowed(request) : Effect.request(request, resolver), Effect.sync(policy.leave))
      )
      const retried = Retry.retry<DrupalError>({
        isRetryable: isTransientUnknown,
        ...options.retry,
        onRetry: () => Effect.sync(() => hooks.onRetry?.(method))
      })(once)
      return yield* (dedupKey === undefined ? retried : singleFlight.run(dedupKey, retried))
    })

    /** One call sent on its own on a stream connection, its response (status 200) held in the caller's scope. */
    const openStream = (method: string, params: Record<string, unknown> | undefined, credentials: Credentials) => {
      const payload = JSON.stringify(requestItem(1, method, params))
      const url = getUrl(apiPath, payload)
      const asGet = readMethods.has(method) && url.length + options.url.origin.length <= options.maxGetUrlLength
      const open = breaker.withBreaker(
        Effect.tryPromise({
          try: (signal) =>
            streamPool.request({
              method: asGet ? "GET" : "POST",
              path: asGet ? url : apiPath,
              signal,
              headers: authHeaders(credentials, asGet
                ? { accept: "application/json" }
                : { accept: "application/json", "content-type": "application/json" }),
              ...(asGet ? {} : { body: payload })
            }).then(guardBody),
          catch: (cause) => mapUndiciError(cause, method, options)
        }).pipe(
          Effect.timeoutFail({
            duration: options.headersTimeout,
            onTimeout: () => new DrupalTimeoutError({ phase: "headers", timeout: Duration.decode(options.headersTimeout), method })
          }),
          Effect.flatMap((res) => {
            if (res.statusCode === 200) return Effect.succeed(res)
            return Effect.flatMap(
              Effect.promise(() => res.body.text().catch(() => "")),
              (body) => {
                const rpc = rpcErrorOf(parseJson(body))
                return Effect.fail<DrupalError>(
                  new DrupalHttpError({
                    status: res.statusCode,
                    bodyExcerpt: body,
                    method,
                    ...(rpc === undefined ? {} : { rpcError: rpc.error, id: rpc.id })
                  })
                )
              }
            )
          })
        )
      )
      // The open is interruptible: a consumer that goes away while the upstream has not
      // answered yet aborts the request instead of waiting for its headers.
      return Effect.flatMap(
        Effect.acquireRelease(Effect.as(streamSlot, slotHolder()), (holder) => Effect.sync(holder.free)),
        (holder) =>
          Effect.acquireRelease(
            Effect.tap(Effect.interruptible(open), (res) =>
              // The connection is free once its body is done (ended, cut idle, destroyed),
              // which may be long before the consumer lets the stream go (a response
              // waiting on a client that stopped reading).
              Effect.sync(() => res.body.once("close", holder.free))),
            (res) => Effect.sync(() => res.body.destroy())
          )
      )
    }
    const bodyOf = (res: { readonly body: unknown }) =>
      drainedWithin(res.body as AsyncIterable<Uint8Array> & { destroy: (error: Error) => void }, streamIdleMillis)

    const stream = (method: string, params: Record<string, unknown> | undefined, credentials: Credentials) =>
      Stream.withSpan(
        Stream.unwrapScoped(
          Effect.map(openStream(method, params, credentials), (res) => Stream.fromAsyncIterable(bodyOf(res), (cause) => mapUndiciError(cause, method, options)))
        ),
        "DrupalRpc.stream",
        { attributes: { "rpc.method": method } }
      )

    const openBody = (
      method: string,
      params: Record<string, unknown> | undefined,
      credentials: Credentials,
      wholeBelow: number
    ): Effect.Effect<OpenedBody, DrupalError, Scope.Scope> => {
      if (wholeBelow <= 0) return Effect.succeed({ _tag: "Streaming", stream: stream(method, params, credentials) })
      return Effect.gen(function*() {
        const res = yield* openStream(method, params, credentials)
        const iterator = bodyOf(res)[Symbol.asyncIterator]()
        const next = Effect.tryPromise({ try: () => iterator.next(), catch: (cause) => mapUndiciError(cause, method, options) })
        const chunks: Array<Uint8Array> = []
        let bytes = 0
        while (bytes < wholeBelow) {
          const read = yield* next
          if (read.done === true) return { _tag: "Whole", chunks } as const
          chunks.push(read.value)
          bytes += read.value.byteLength
        }
        const rest: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => iterator }
        return {
          _tag: "Streaming",
          stream: Stream.concat(Stream.fromIterable(chunks), Stream.fromAsyncIterable(rest, (cause) => mapUndiciError(cause, method, options)))
        } as const
      }).pipe(Traced.withSpan("DrupalRpc.openBody", { attributes: { "rpc.method": method } }))
    }

    const callConditional = (
      method: string,
      rawParams: Record<string, unknown> | undefined,
      credentials: Credentials,
      validator: UpstreamValidator | undefined
    ): Effect.Effect<ConditionalResult, DrupalError> => {
      const params = rawParams !== undefined && Object.keys(rawParams).length === 0 ? undefined : rawParams
      const url = getUrl(apiPath, JSON.stringify(requestItem(1, method, params)))
      if (
        Option.isSome(credentials.authorization) || !readMethods.has(method) ||
        url.length + options.url.origin.length > options.maxGetUrlLength
      ) {
        return Effect.map(call(method, rawParams, credentials), (result) => ({ _tag: "Modified", result, validator: undefined }))
      }
      const conditional: Record<string, string> = {}
      if (validator?.etag !== undefined) conditional["if-none-match"] = validator.etag
      if (validator?.lastModified !== undefined) conditional["if-modified-since"] = validator.lastModified
      const once = Effect.flatMap(
        exchange("GET", url, undefined, credentials, [method], conditional),
        (reply): Effect.Effect<ConditionalResult, DrupalError> => {
          if (reply.status === 304) return Effect.succeed({ _tag: "NotModified", validator: reply.validator ?? validator })
          const parsed = parseJson(reply.body)
          const rpc = rpcErrorOf(parsed)
          if (reply.status !== 200) {
            return Effect.fail(new DrupalHttpError({
              status: reply.status,
              bodyExcerpt: reply.body,
              method,
              ...(rpc === undefined ? {} : { rpcError: rpc.error, id: rpc.id })
            }))
          }
          if (rpc !== undefined) {
            return Effect.fail(new DrupalRpcError({ code: rpc.error.code, message: rpc.error.message, data: rpc.error.data, method, id: rpc.id }))
          }
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !("result" in parsed)) {
            return Effect.fail(new DrupalDecodeError({ reason: "unexpected_result", detail: "reply has no result", method }))
          }
          return Effect.succeed({ _tag: "Modified", result: (parsed as { result: unknown }).result, validator: reply.validator })
        }
      )
      return once.pipe(
        Retry.retry<DrupalError>({
          isRetryable: isTransientUnknown,
          ...options.retry,
          onRetry: () => Effect.sync(() => hooks.onRetry?.(method))
        }),
        Traced.withSpan("DrupalRpc.callConditional", { attributes: { "rpc.method": method } })
      )
    }

    const discovery = (credentials: Credentials, id?: string) =>
      Effect.flatMap(
        exchange(
          "GET",
          `${apiPath}/methods${id === undefined ? "" : `/${encodeURIComponent(id)}`}`,
          undefined,
          credentials,
          ["discovery"]
        ),
        (reply): Effect.Effect<unknown, DrupalError> => {
          if (reply.status !== 200) return Effect.fail(new DrupalHttpError({ status: reply.status, bodyExcerpt: reply.body, method: "discovery" }))
          return Effect.flatMap(parseReply(reply), (parsed) =>
            parsed === undefined
              ? Effect.fail(new DrupalDecodeError({ reason: "invalid_json", detail: "discovery reply is not JSON", method: "discovery" }))
              : Effect.succeed(parsed))
        }
      ).pipe(Retry.retry<DrupalError>({ isRetryable: isTransientUnknown, ...options.retry }), Traced.withSpan("DrupalRpc.discovery"))

    return DrupalRpc.of({
      call,
      callConditional,
      stream,
      openBody,
      discovery,
      pool: () => {
        const stats = pool.stats
        return { connected: stats.connected, free: stats.free, pending: stats.pending, running: stats.running }
      },
      breakerState: breaker.state
    })
  })

const ignoreBodyError = (): void => {}

/**
 * Gives an upstream reply body an `error` listener the moment it exists. Its errors are read
 * through its iterator or `text()`; but a body that is released unread — the caller was
 * interrupted (a client hung up) after the headers arrived, or the abort signal fired — is
 * destroyed with an `AbortError`, and an `error` event with no listener takes the process down.
 */
const guardBody = <R extends { readonly body: NodeJS.EventEmitter }>(res: R): R => {
  res.body.on("error", ignoreBodyError)
  return res
}

/** The client as a layer over explicit options. */
export const layer = (options: DrupalRpcOptions): Layer.Layer<DrupalRpc> => Layer.scoped(DrupalRpc, make(options))

/** The client from `DrupalClientConfig` and the `DrupalEndpoint` in context, with optional telemetry hooks. */
export const layerConfig = (
  hooks?: DrupalRpcHooks,
  onBreakerChange?: CircuitBreaker.CircuitBreakerOptions["onStateChange"]
): Layer.Layer<DrupalRpc, import("effect/ConfigError").ConfigError, DrupalEndpoint> =>
  Layer.scoped(
    DrupalRpc,
    Effect.gen(function*() {
      const config = yield* DrupalClientConfig
      const endpoint = yield* DrupalEndpoint
      return yield* make({
        ...config,
        url: endpoint.url,
        breaker: onBreakerChange === undefined ? config.breaker : { ...config.breaker, onStateChange: onBreakerChange },
        ...(hooks === undefined ? {} : { hooks })
      })
    })
  )
