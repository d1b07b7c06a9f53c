/**
 * The Drupal JSON-RPC client: JSON-RPC 2.0 over a pooled keep-alive undici `Pool` (bounded
 * connections per origin), with
 *
 * - **batching**: calls from any fiber that arrive within `batchWindow` are coalesced into one
 *   JSON-RPC batch POST (at most `batchMaxSize` items), one batch per credential fingerprint, so
 *   calls with different credentials never share a batch;
 * - **deduplication**: identical read calls (same credentials, method and params) in flight at
 *   the same time share one upstream call, within a batch and across batch windows;
 * - **parse-stage splitting**: Drupal fails a whole batch with HTTP 400 when one item fails to
 *   parse; the client answers that item with its error and resends the others, so one bad call
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
import * as ExperimentalResolver from "@effect/experimental/RequestResolver"
import { Context, Duration, Effect, Exit, Layer, Option, Redacted, Request, RequestResolver, type Scope, Stream } from "effect"
import type { NonEmptyArray } from "effect/Array"
import { errors as UndiciErrors, Pool } from "undici"
import { DrupalClientConfig } from "../Config.js"
import { settleWithin } from "../concurrency/Release.js"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import * as CircuitBreaker from "../resilience/CircuitBreaker.js"
import * as Retry from "../resilience/Retry.js"
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
  isTransient,
  isTransientUnknown,
  type JsonRpcErrorObject
} from "./DrupalError.js"
import { canonicalJson, getUrl, isErrorItem, isReplyItem, requestItem, type RpcReplyItem } from "./JsonRpc.js"

/** Options of {@link make}; `DrupalClientConfig` holds the defaults. */
export interface DrupalRpcOptions {
  /** Base URL of the site (the API is at `<url>/jsonrpc`). */
  readonly url: URL
  readonly maxConnections: number
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
  /** `GET /jsonrpc/methods` (or `/jsonrpc/methods/{id}`) as `credentials`, parsed JSON. */
  readonly discovery: (credentials: Credentials, id?: string) => Effect.Effect<unknown, DrupalError>
  readonly pool: () => PoolStats
  readonly breakerState: Effect.Effect<CircuitBreaker.State>
}

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
  readonly body: string
}

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

/** Creates the client in the current scope (its pool, breaker and batch loader live there). */
export const make = (options: DrupalRpcOptions): Effect.Effect<DrupalRpc, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hooks = options.hooks ?? {}
    const basePath = options.url.pathname.replace(/\/+$/, "")
    const apiPath = `${basePath}/jsonrpc`
    const readMethods = new Set(options.readMethods)
    const callTimeout = Duration.decode(options.callTimeout)

    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Pool(options.url.origin, {
          connections: options.maxConnections,
          keepAliveTimeout: Duration.toMillis(options.keepAliveTimeout),
          connect: { timeout: Duration.toMillis(options.connectTimeout) },
          headersTimeout: Duration.toMillis(options.headersTimeout),
          bodyTimeout: Duration.toMillis(options.callTimeout)
        })
      ),
      (pool) =>
        Effect.zipRight(
          settleWithin(Duration.seconds(2), () => pool.close()),
          settleWithin(Duration.seconds(1), () => pool.destroy())
        )
    )

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
      methods: ReadonlyArray<string>
    ): Effect.Effect<RawReply, DrupalError> => {
      const label = methods.length === 1 ? methods[0]! : "batch"
      const run = Effect.tryPromise({
        try: async (signal) => {
          const res = await pool.request({
            method,
            path,
            signal,
            headers: authHeaders(credentials, body === undefined
              ? { accept: "application/json" }
              : { accept: "application/json", "content-type": "application/json" }),
            ...(body === undefined ? {} : { body })
          })
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
          return { status: res.statusCode, body: Buffer.concat(chunks).toString("utf8") }
        },
        catch: (cause): DrupalError =>
          cause instanceof ReplyTooLarge
            ? new DrupalDecodeError({
              reason: "unexpected_result",
              detail: `reply larger than ${options.maxReplyBytes} bytes`,
              method: label
            })
            : mapUndiciError(cause, label, options)
      }).pipe(
        Effect.timeoutFail({
          duration: callTimeout,
          onTimeout: () => new DrupalTimeoutError({ phase: "call", timeout: callTimeout, method: label })
        })
      )
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
          Effect.sync(() =>
            hooks.onUpstreamRequest?.({ methods, seconds: (performance.now() - started) / 1000, ok: Exit.isSuccess(exit) })
          )
        )
      )
    }

    interface Unique {
      readonly id: number
      readonly method: string
      readonly params: Record<string, unknown> | undefined
      readonly requests: Array<RpcCall>
    }

    const completeAll = (unique: Unique, exit: Exit.Exit<unknown, DrupalError>) =>
      Effect.forEach(unique.requests, (request) => Request.complete(request, exit), { discard: true })

    const interpretItem = (unique: Unique, item: RpcReplyItem | undefined): Exit.Exit<unknown, DrupalError> => {
      if (item === undefined) {
        return Exit.fail(
          new DrupalDecodeError({ reason: "missing_response", detail: `no reply item for id ${unique.id}`, method: unique.method })
        )
      }
      if (isErrorItem(item)) {
        return Exit.fail(
          new DrupalRpcError({
            code: item.error.code,
            message: item.error.message,
            data: item.error.data,
            method: unique.method,
            id: item.id
          })
        )
      }
      return Exit.succeed(item.result)
    }

    /** Sends `items` (one request, or a batch) and answers every caller; splits on parse-stage 400. */
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
            yield* Effect.forEach(pending, (u) => completeAll(u, Exit.fail(reply.left)), { discard: true })
            return
          }
          const { body, status } = reply.right
          const parsed = parseJson(body)
          if (status === 200) {
            const replyItems = Array.isArray(parsed) ? parsed : [parsed]
            if (!replyItems.every(isReplyItem)) {
              const error = new DrupalDecodeError({
                reason: parsed === undefined ? "invalid_json" : "invalid_envelope",
                detail: "the reply is not a JSON-RPC response",
                method: methods.length === 1 ? methods[0]! : "batch"
              })
              yield* Effect.forEach(pending, (u) => completeAll(u, Exit.fail(error)), { discard: true })
              return
            }
            const byId = new Map<unknown, RpcReplyItem>(replyItems.map((item) => [item.id, item]))
            yield* Effect.forEach(pending, (u) => completeAll(u, interpretItem(u, byId.get(u.id))), { discard: true })
            return
          }
          const rpc = rpcErrorOf(parsed)
          const httpError = (u: Unique) =>
            new DrupalHttpError({
              status,
              bodyExcerpt: body,
              method: u.method,
              ...(rpc === undefined ? {} : { rpcError: rpc.error, id: rpc.id })
            })
          if (status === 400 && !single) {
            // Parse stage: the whole batch failed because of one item. Answer that item and
            // resend the rest; when the culprit cannot be told, send every item on its own.
            const culprit = rpc === undefined ? undefined : pending.find((u) => u.id === rpc.id)
            if (culprit === undefined) {
              yield* Effect.forEach(pending, (u) => sendGroup([u], credentials), { concurrency: 8, discard: true })
              return
            }
            yield* completeAll(culprit, Exit.fail(httpError(culprit)))
            pending = pending.filter((u) => u !== culprit)
            continue
          }
          yield* Effect.forEach(pending, (u) => completeAll(u, Exit.fail(httpError(u))), { discard: true })
          return
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
      return Effect.forEach(
        groups.values(),
        (group) => sendGroup([...group.uniques.values()], group.credentials),
        { concurrency: "unbounded", discard: true } // one fiber per credential group of one batch (≤ batchMaxSize)
      )
    })

    const loader = yield* ExperimentalResolver.dataLoader(resolver, {
      window: options.batchWindow,
      maxBatchSize: options.batchMaxSize
    })

    const singleFlight = yield* SingleFlight.make({
      maxKeys: options.dedupMaxKeys,
      ...(hooks.onDedupJoin === undefined ? {} : { onJoin: hooks.onDedupJoin })
    })

    const call = (method: string, rawParams: Record<string, unknown> | undefined, credentials: Credentials) => {
      // An empty `params` is sent as none: some jsonrpc versions refuse any `params` member on a
      // method without params, and for the others the two are the same.
      const params = rawParams !== undefined && Object.keys(rawParams).length === 0 ? undefined : rawParams
      const isRead = readMethods.has(method)
      const dedupKey = isRead ? `${credentials.fingerprint}\u0000${method}\u0000${canonicalJson(params ?? null)}` : undefined
      const once = Effect.request(new RpcCall({ method, params, credentials, dedupKey }), loader)
      const retried = Retry.retry<DrupalError>({
        isRetryable: isTransientUnknown,
        ...options.retry,
        onRetry: () => Effect.sync(() => hooks.onRetry?.(method))
      })(once)
      return dedupKey === undefined ? retried : singleFlight.run(dedupKey, retried)
    }

    const stream = (method: string, params: Record<string, unknown> | undefined, credentials: Credentials) => {
      const payload = JSON.stringify(requestItem(1, method, params))
      const url = getUrl(apiPath, payload)
      const asGet = readMethods.has(method) && url.length + options.url.origin.length <= options.maxGetUrlLength
      const open = breaker.withBreaker(
        Effect.tryPromise({
          try: (signal) =>
            pool.request({
              method: asGet ? "GET" : "POST",
              path: asGet ? url : apiPath,
              signal,
              headers: authHeaders(credentials, asGet
                ? { accept: "application/json" }
                : { accept: "application/json", "content-type": "application/json" }),
              ...(asGet ? {} : { body: payload })
            }),
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
      return Stream.unwrapScoped(
        Effect.map(
          Effect.acquireRelease(open, (res) => Effect.sync(() => res.body.destroy())),
          (res) =>
            Stream.fromAsyncIterable(res.body as AsyncIterable<Uint8Array>, (cause) => mapUndiciError(cause, method, options))
        )
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
        ({ body, status }): Effect.Effect<unknown, DrupalError> => {
          if (status !== 200) return Effect.fail(new DrupalHttpError({ status, bodyExcerpt: body, method: "discovery" }))
          const parsed = parseJson(body)
          return parsed === undefined
            ? Effect.fail(new DrupalDecodeError({ reason: "invalid_json", detail: "discovery reply is not JSON", method: "discovery" }))
            : Effect.succeed(parsed)
        }
      ).pipe(Retry.retry<DrupalError>({ isRetryable: isTransientUnknown, ...options.retry }))

    return DrupalRpc.of({
      call,
      stream,
      discovery,
      pool: () => {
        const stats = pool.stats
        return { connected: stats.connected, free: stats.free, pending: stats.pending, running: stats.running }
      },
      breakerState: breaker.state
    })
  })

class ReplyTooLarge extends Error {}

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
