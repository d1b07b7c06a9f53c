/**
 * The gateway's HTTP listener: a plain `node:http` server that implements Effect's
 * `HttpServer` service, so `HttpApiBuilder.serve()` runs on it unchanged, while keeping two
 * things the stock `NodeHttpServer` does not give us:
 *
 * - a synchronous **fast path** consulted before the Effect app (`listener/Listener.ts`: telemetry,
 *   then a memory-tier hit answered in microseconds without a fiber; misses fall through to the
 *   full app);
 * - **bursts of new connections** accepted many per event-loop turn (`AcceptHandles`), not one;
 * - **requests that arrive before the app is attached** (the socket listens, and accepts, while
 *   the extra handles are made and the app is built on it) are held, not refused: at most
 *   {@link EARLY_MAX_REQUESTS} for at most {@link EARLY_WAIT_MS} each, then `503 starting`, and
 *   handed to the app the moment it is attached;
 * - **graceful shutdown**: when the serving scope closes, the listener stops accepting, idle
 *   keep-alive sockets are closed, responses in flight get `Connection: close` and may finish
 *   for up to `shutdownTimeout`, and only then are the remaining sockets cut.
 *
 * @since 0.1.0
 */
import { FileSystem, HttpServer } from "@effect/platform"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Data, Duration, Effect, Layer, Option, type Scope } from "effect"
import * as Http from "node:http"
import type * as Net from "node:net"
import type { AddressInfo } from "node:net"
import { ServerConfig } from "../Config.js"
import { settleWithin, waitUntil } from "../concurrency/Release.js"
import { BodyPath, FastPath, ListenerState, REQUEST_ID_HEADER, setBufferedBody } from "../listener/Listener.js"
import * as AcceptHandles from "./AcceptHandles.js"
import { acceptRequestId, requestIds } from "./RequestContext.js"

/** The listener could not start (port in use, permission denied, …). */
export class ServerStartError extends Data.TaggedError("ServerStartError")<{
  readonly host: string
  readonly port: number
  readonly cause: unknown
}> {
  override get message() {
    return `cannot listen on ${this.host}:${this.port}: ${String((this.cause as Error)?.message ?? this.cause)}`
  }
}

/** Options of {@link make}; see `ServerConfig` for the defaults. */
export interface GatewayServerOptions {
  readonly port: number
  readonly host: string
  readonly shutdownTimeout: Duration.DurationInput
  readonly keepAliveTimeout: Duration.DurationInput
  readonly headersTimeout: Duration.DurationInput
  readonly requestTimeout: Duration.DurationInput
  readonly maxBodyBytes: number
  /**
   * Longest time from a request's arrival to its response's last byte handed to the client; a
   * response still unfinished then (a client that stopped reading, or reads too slowly) is cut
   * and whatever it holds upstream is released. Default: unbounded.
   */
  readonly responseTimeout?: Duration.DurationInput | undefined
  readonly fastPath?: FastPath | undefined
  /** Small bodies read ahead and answered synchronously when possible (`POST /mcp`); see {@link BodyPath}. */
  readonly bodyPath?: BodyPath | undefined
  /**
   * Extra accepting handles on the listening socket (`AcceptHandles`): a loop turn accepts up to
   * this many connections more than one. Default 0; when they cannot be made, the listener runs
   * with its one handle and logs why.
   */
  readonly acceptHandles?: number | undefined
  /** Requests held while the app is not attached yet; default {@link EARLY_MAX_REQUESTS}. */
  readonly earlyMaxRequests?: number | undefined
  /** Longest a request is held for the app to be attached; default {@link EARLY_WAIT_MS}. */
  readonly earlyWait?: Duration.DurationInput | undefined
}

/** Requests held at most while the listener accepts but the app is not attached yet (start). */
export const EARLY_MAX_REQUESTS = 1_024

/** Longest a request waits for the app to be attached before it is answered `503 starting`. */
export const EARLY_WAIT_MS = 10_000

/**
 * Starts the listener in the current scope and returns Effect's `HttpServer` for it plus the
 * live state. The app is attached by `HttpServer.serve`; its scope's release drains in-flight
 * requests (bounded by `shutdownTimeout`) before it detaches the app.
 */
export const make = (
  options: GatewayServerOptions
): Effect.Effect<
  { readonly server: HttpServer.HttpServer; readonly state: ListenerState },
  ServerStartError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    let inFlight = 0
    let draining = false
    const nextRequestId = requestIds()
    let handler: ((req: Http.IncomingMessage, res: Http.ServerResponse) => void) | undefined
    // Whether the app has ever been attached: before, requests are held; after, its absence means shutdown.
    let attached = false
    const early = new Set<Early>()
    const earlyMax = options.earlyMaxRequests ?? EARLY_MAX_REQUESTS
    const earlyWaitMs = options.earlyWait === undefined ? EARLY_WAIT_MS : Duration.toMillis(options.earlyWait)
    const fastPath = options.fastPath
    const bodyPath = options.bodyPath

    const onResponseClose = () => {
      inFlight--
    }
    const responseTimeoutMs = options.responseTimeout === undefined ? undefined : Duration.toMillis(options.responseTimeout)
    /** Cuts `res` if it has not finished within the response bound (timers only for slow ones). */
    const bound = (res: Http.ServerResponse) => {
      if (responseTimeoutMs === undefined || res.writableFinished) return
      const timer = setTimeout(() => {
        if (!res.writableFinished) res.destroy()
      }, responseTimeoutMs)
      timer.unref()
      res.once("close", () => clearTimeout(timer))
    }

    const server = Http.createServer({
      keepAliveTimeout: Duration.toMillis(options.keepAliveTimeout),
      headersTimeout: Duration.toMillis(options.headersTimeout),
      requestTimeout: Duration.toMillis(options.requestTimeout)
    })
    let connectionsAccepted = 0
    server.on("connection", () => {
      connectionsAccepted++
    })
    server.on("request", (req, res) => {
      inFlight++
      res.once("close", onResponseClose)
      // Every request has an id: the client's when it is sane, else a new one; echoed back.
      const requestId = acceptRequestId(req.headers[REQUEST_ID_HEADER]) ?? nextRequestId()
      req.headers[REQUEST_ID_HEADER] = requestId
      if (draining) res.setHeader("connection", "close")
      // A hit is written at once (its id included); only one whose bytes the client has not taken yet is bounded.
      if (fastPath !== undefined && fastPath(req, res)) {
        if (!res.headersSent) res.setHeader(REQUEST_ID_HEADER, requestId)
        return bound(res)
      }
      res.setHeader(REQUEST_ID_HEADER, requestId)
      if (handler !== undefined) return toApp(handler, req, res)
      if (!attached) return holdEarly(req, res)
      shuttingDown(res)
    })

    /** Hands a request to the attached app: bounded, a refused body answered, a claimed one read ahead. */
    const toApp = (
      app: (req: Http.IncomingMessage, res: Http.ServerResponse) => void,
      req: Http.IncomingMessage,
      res: Http.ServerResponse
    ) => {
      bound(res)
      const refusal = bodyRefusal(req, options.maxBodyBytes)
      if (refusal !== undefined) return refuseBody(req, res, refusal)
      if (bodyPath !== undefined && bodyPath.claims(req)) return readAhead(bodyPath, app, req, res)
      return app(req, res)
    }

    /** Holds a request that came before the app was attached (bounded in number and time). */
    const holdEarly = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      if (early.size >= earlyMax) return notReady(res)
      const entry: Early = {
        req,
        res,
        timer: setTimeout(() => {
          if (early.delete(entry)) notReady(res)
        }, earlyWaitMs)
      }
      early.add(entry)
      // A client that hangs up while held frees its place.
      res.once("close", () => {
        clearTimeout(entry.timer)
        early.delete(entry)
      })
    }

    /** The app is attached: every held request goes to it, in arrival order. */
    const attach = (app: (req: Http.IncomingMessage, res: Http.ServerResponse) => void) => {
      handler = app
      attached = true
      const held = Array.from(early)
      early.clear()
      for (const { req, res, timer } of held) {
        clearTimeout(timer)
        if (!res.destroyed && !res.writableEnded) toApp(app, req, res)
      }
    }

    /**
     * Reads a claimed body whole (a declared length within both bounds; node's parser holds the
     * client to it), then lets the body path answer, or hands the request and the bytes to the app.
     */
    const readAhead = (
      path: BodyPath,
      app: (req: Http.IncomingMessage, res: Http.ServerResponse) => void,
      req: Http.IncomingMessage,
      res: Http.ServerResponse
    ) => {
      const declared = Number(req.headers["content-length"] ?? "0")
      if (!(declared <= Math.min(path.maxBytes, options.maxBodyBytes))) return app(req, res)
      const chunks: Array<Buffer> = []
      let size = 0
      req.on("data", (chunk: Buffer) => {
        size += chunk.length
        chunks.push(chunk)
      })
      // An aborted request closes its response too; nothing to answer.
      req.once("error", () => {})
      req.once("end", () => {
        if (res.destroyed || res.writableEnded) return
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
        if (path.answer(req, res, body)) return
        if (handler === undefined) return shuttingDown(res)
        setBufferedBody(req, body)
        handler(req, res)
      })
    }
    // Requests node refuses before any handler sees them (unparsable, headers or URL over
    // node's header size bound, header timeouts) get the gateway's JSON error body like every
    // other answer; resets are just closed. Without a listener an `error` would crash the process.
    server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy()
      socket.end(clientErrorReply(err.code))
    })

    yield* Effect.acquireRelease(
      Effect.async<void, ServerStartError>((resume) => {
        const onError = (cause: unknown) =>
          resume(Effect.fail(new ServerStartError({ host: options.host, port: options.port, cause })))
        server.once("error", onError)
        server.listen({ port: options.port, host: options.host }, () => {
          server.off("error", onError)
          resume(Effect.void)
        })
      }),
      () =>
        Effect.zipRight(
          // By now the drain has run; whatever is still connected is cut, then the close completes.
          Effect.sync(() => server.closeAllConnections()),
          settleWithin(Duration.seconds(1), () => new Promise<void>((resolve) => server.close(() => resolve())))
        )
    )

    // Made once the socket listens; closed with it (and first, when the drain stops accepting).
    let extraHandles: ReadonlyArray<Net.Server> = []
    if ((options.acceptHandles ?? 0) > 0) {
      yield* Effect.acquireRelease(
        Effect.tryPromise(() => AcceptHandles.open(server, options.acceptHandles ?? 0)).pipe(
          Effect.tap((made) => {
            extraHandles = made
          }),
          Effect.catchAll((error) =>
            Effect.logWarning("listener: no extra accepting handles, one connection is accepted per loop turn").pipe(
              Effect.annotateLogs({ wanted: options.acceptHandles, cause: String(error.error) })
            )
          )
        ),
        () => Effect.sync(() => AcceptHandles.closeAll(extraHandles))
      )
    }

    const drain = Effect.gen(function*() {
      draining = true
      yield* Effect.logInfo("shutdown: no longer accepting connections, draining requests in flight").pipe(
        Effect.annotateLogs({ in_flight: inFlight })
      )
      // Stop accepting first; `close` resolves only when every socket has gone, so it is not awaited.
      AcceptHandles.closeAll(extraHandles)
      server.close()
      server.closeIdleConnections()
      // Polled (the listener counts responses in flight), bounded by the shutdown timeout.
      const finished = yield* waitUntil(() => inFlight === 0, options.shutdownTimeout)
      if (finished) {
        yield* Effect.logInfo("shutdown: all requests in flight finished")
      } else {
        yield* Effect.logWarning("shutdown: drain timed out, closing remaining connections").pipe(
          Effect.annotateLogs({ in_flight: inFlight })
        )
      }
      server.closeAllConnections()
    })

    const address = server.address() as AddressInfo
    const httpServer = HttpServer.make({
      address: { _tag: "TcpAddress", hostname: address.address, port: address.port },
      serve: (httpApp, middleware) =>
        Effect.gen(function*() {
          attach(yield* NodeHttpServer.makeHandler(httpApp, middleware!))
          yield* Effect.addFinalizer(() =>
            drain.pipe(
              Effect.ensuring(Effect.sync(() => {
                handler = undefined
              }))
            )
          )
        }).pipe(
          Effect.provideService(HttpIncomingMessage.MaxBodySize, Option.some(FileSystem.Size(options.maxBodyBytes)))
        )
    })

    return {
      server: httpServer,
      state: { inFlight: () => inFlight, connectionsAccepted: () => connectionsAccepted, draining: () => draining, port: address.port }
    }
  })

/** The listener as a layer over explicit options, with the platform services Effect's HTTP stack needs. */
export const layer = (options: GatewayServerOptions) =>
  Layer.scopedContext(
    Effect.map(make(options), ({ server, state }) =>
      Context.make(HttpServer.HttpServer, server).pipe(Context.add(ListenerState, state))
    )
  ).pipe(Layer.provideMerge(NodeHttpServer.layerContext))

/**
 * The listener configured from `ServerConfig`, handed its {@link FastPath} (telemetry, then
 * memory hits) explicitly: without one in the context the layer does not compile. A
 * {@link BodyPath} in the context (the MCP fast path) is used when there is one.
 */
export const layerConfig = (
  overrides: Partial<GatewayServerOptions> = {}
) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* ServerConfig
      const fastPath = yield* FastPath
      const bodyPath = Option.getOrUndefined(yield* Effect.serviceOption(BodyPath))
      return layer({ ...config, fastPath, bodyPath, ...overrides })
    })
  )

/** A request that arrived before the app was attached, held until it is (see {@link EARLY_WAIT_MS}). */
interface Early {
  readonly req: Http.IncomingMessage
  readonly res: Http.ServerResponse
  readonly timer: ReturnType<typeof setTimeout>
}

/** The answer once the app has been detached (shutdown). */
const shuttingDown = (res: Http.ServerResponse) => {
  res.writeHead(503, { "content-type": "application/json", "cache-control": "no-store", "connection": "close" })
  res.end(JSON.stringify({ error: { code: "shutting_down", message: "The gateway is shutting down" } }))
}

/** The answer to a request held too long, or one too many, before the app was attached (start). */
const notReady = (res: Http.ServerResponse) => {
  if (res.headersSent || res.destroyed) return
  res.writeHead(503, { "content-type": "application/json", "cache-control": "no-store", "retry-after": "1" })
  res.end(JSON.stringify({ error: { code: "starting", message: "The gateway is starting; retry shortly" } }))
}

/** Request bytes read and discarded at most before a refused body is answered; beyond, the connection is cut. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024

/**
 * Why a request's body is refused before the app reads it, if it is: a body declared larger than
 * `maxBodyBytes` (413), or one without a declared length (`Transfer-Encoding`, 411), whose size
 * would only be known by reading it. (The platform's own bound would tear the connection down
 * mid-request, and the client would see no answer at all.)
 */
export const bodyRefusal = (
  req: Http.IncomingMessage,
  maxBodyBytes: number
): readonly [status: number, code: string, message: string] | undefined => {
  if (req.headers["transfer-encoding"] !== undefined) {
    return [411, "length_required", "A request body must be sent with a Content-Length"]
  }
  const declared = req.headers["content-length"]
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    return [413, "body_too_large", `The request body is larger than ${maxBodyBytes} bytes`]
  }
  return undefined
}

/**
 * Answers a refused body once the client has finished sending it (read and discarded, so closing
 * the connection afterwards cannot reset it under the answer), and at once when it exceeds
 * {@link DRAIN_MAX_BYTES}, closing the connection.
 */
const refuseBody = (
  req: Http.IncomingMessage,
  res: Http.ServerResponse,
  [status, code, message]: readonly [number, string, string]
) => {
  const body = JSON.stringify({ error: { code, message } })
  let drained = 0
  const answer = (close: boolean) => {
    if (res.headersSent) return
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
      ...(close ? { connection: "close" } : {})
    })
    res.end(body)
  }
  req.on("error", () => {})
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length
    if (drained > DRAIN_MAX_BYTES) {
      answer(true)
      req.destroy()
    }
  })
  req.once("end", () => answer(false))
}

/** What node's own refusals are answered with: the gateway's error body, then the connection closes. */
const CLIENT_ERRORS: Readonly<Record<string, readonly [status: number, reason: string, code: string, message: string]>> = {
  HPE_HEADER_OVERFLOW: [431, "Request Header Fields Too Large", "headers_too_large", "The request line and headers are larger than allowed"],
  ERR_HTTP_REQUEST_TIMEOUT: [408, "Request Timeout", "request_timeout", "The request was not received in time"],
  ERR_HTTP_HEADERS_TIMEOUT: [408, "Request Timeout", "request_timeout", "The request headers were not received in time"]
}

/** The raw HTTP/1.1 answer to a request node refused with `code` (400 `bad_request` by default). */
export const clientErrorReply = (code: string | undefined): string => {
  const [status, reason, errorCode, message] = CLIENT_ERRORS[code ?? ""] ??
    [400, "Bad Request", "bad_request", "The request could not be parsed as HTTP"]
  const body = JSON.stringify({ error: { code: errorCode, message } })
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`
}
