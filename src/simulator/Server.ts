/**
 * The simulator's HTTP front: a plain `node:http` request handler (raw socket control for
 * resets, hangs and paced streaming) that routes to the protocol, discovery and control code.
 *
 * Routes:
 * - `POST /jsonrpc`, `GET /jsonrpc?query=<url-encoded JSON>`: JSON-RPC (see `Protocol`).
 * - `GET /jsonrpc/methods`, `GET /jsonrpc/methods/{id}`: discovery for the calling user.
 * - `GET /mcp/tools/list?cursor=`: the `jsonrpc_mcp` module's tool list for the calling user.
 * - `/__sim/…`: control routes (no auth, not counted): `GET stats`, `POST reset`, `GET|POST faults`,
 *   `POST methods`, `DELETE methods/{id}`.
 *
 * Cost (see `Workers`): after the network latency, every site request waits for a PHP worker
 * (503 when the wait queue is full), pays a bootstrap, and a JSON-RPC request then pays each of
 * its executed items; the worker is held until the reply is written.
 *
 * Every site route needs `use jsonrpc services`; failures of authentication and of that
 * permission are HTML pages (401 with simple_oauth's `WWW-Authenticate`, 403), not JSON-RPC, as
 * is the 404 of discovery for an unknown or forbidden method. Site JSON is written with Drupal's
 * `Json::encode` escaping and every reply has a `Content-Length`. Bounds: request
 * bodies (413), batch size (413), and streamed replies use one chunk of memory at a time.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"
import { createHash } from "node:crypto"
import * as Http from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { renderCollection, renderMethod } from "./Discovery.js"
import { FaultPatch, type FaultInjector } from "./Faults.js"
import { fromSpec, type MethodDefinition, type MethodRegistry, MethodSpec, type RpcError, RpcErrors } from "./Methods.js"
import { renderToolsPage } from "./JsonRpcMcp.js"
import { canExecute, errorReply, execute, parseRequest } from "./Protocol.js"
import { drupalJson, isPlain, measurePieces, toPieces, writePieces } from "./ReplyWriter.js"
import { envelopeAsHtml500, type Site } from "./Site.js"
import type { StatsCollector } from "./Stats.js"
import { authenticate, type SiteUser } from "./Users.js"
import type { WorkerPool } from "./Workers.js"

/** Limits of the HTTP front. */
export interface ServerLimits {
  /** Largest request body accepted (POST), in bytes; larger: 413. */
  readonly maxBodyBytes: number
  /** Largest batch accepted; larger: 413. */
  readonly maxBatchSize: number
}

/** What the handler works with. */
export interface ServerContext {
  readonly site: Site
  readonly registry: MethodRegistry
  readonly faults: FaultInjector
  readonly stats: StatsCollector
  /** The PHP workers requests wait for (the cost model). */
  readonly workers: WorkerPool
  readonly limits: ServerLimits
  /** The simulator's own base URL (`http://host:port`), known once listening. */
  readonly baseUrl: () => string
}

const SITE_NAME = "Drupalize.Me (simulated)"

const html = (title: string, message: string): string =>
  `<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>${title} | ${SITE_NAME}</title></head>` +
  `<body><main><h1>${title}</h1><p>${message}</p></main></body></html>\n`

const sendPage = (
  res: Http.ServerResponse,
  status: number,
  title: string,
  message: string,
  headers: Http.OutgoingHttpHeaders = {}
): void => {
  const body = html(title, message)
  res.writeHead(status, {
    "Content-Type": "text/html; charset=UTF-8",
    "Content-Length": Buffer.byteLength(body),
    "Cache-Control": "no-cache, private",
    ...headers
  })
  res.end(body)
}

/** A site reply: JSON as Drupal's `Json::encode` writes it. */
const sendJson = (res: Http.ServerResponse, status: number, value: unknown, headers: Http.OutgoingHttpHeaders = {}) =>
  sendJsonText(res, status, drupalJson(value), headers)

/** A control-route reply (`/__sim/…`): plain JSON. */
const sendControl = (res: Http.ServerResponse, status: number, value: unknown) =>
  sendJsonText(res, status, JSON.stringify(value))

const sendJsonText = (res: Http.ServerResponse, status: number, body: string, headers: Http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(body),
    ...headers
  })
  res.end(body)
}

/** Most reply validators remembered (their first-seen time is the `Last-Modified`); cleared when full. */
const MAX_PAGE_CACHE_VALIDATORS = 10_000

/**
 * The validators Drupal's page cache gives anonymous GET replies: an `ETag` (here a hash of the
 * reply, so it changes exactly when the reply does) and a `Last-Modified` (when this reply was
 * first produced), and the page cache's conditional check: `If-None-Match` when sent (weak
 * comparison, `*`), else `If-Modified-Since` at or after `Last-Modified`.
 */
const makePageCache = () => {
  const firstSeen = new Map<string, number>()
  return {
    validators: (text: string): { readonly etag: string; readonly lastModified: string; readonly modifiedMs: number } => {
      const etag = `"${createHash("sha256").update(text).digest("hex").slice(0, 32)}"`
      let at = firstSeen.get(etag)
      if (at === undefined) {
        if (firstSeen.size >= MAX_PAGE_CACHE_VALIDATORS) firstSeen.clear()
        at = Math.floor(Date.now() / 1000) * 1000
        firstSeen.set(etag, at)
      }
      return { etag, lastModified: new Date(at).toUTCString(), modifiedMs: at }
    },
    notModified: (req: Http.IncomingMessage, v: { readonly etag: string; readonly modifiedMs: number }): boolean => {
      const inm = req.headers["if-none-match"]
      if (inm !== undefined) {
        return inm.trim() === "*" || inm.split(",").some((tag) => tag.trim().replace(/^W\//, "") === v.etag)
      }
      const ims = req.headers["if-modified-since"]
      if (ims === undefined) return false
      const since = Date.parse(ims)
      return Number.isFinite(since) && since >= v.modifiedMs
    }
  }
}

type BodyRead = { readonly _tag: "Body"; readonly text: string } | { readonly _tag: "TooLarge" } | { readonly _tag: "Aborted" }

const readBody = (req: Http.IncomingMessage, limit: number): Promise<BodyRead> =>
  new Promise((resolve) => {
    const declared = Number(req.headers["content-length"] ?? "0")
    if (declared > limit) {
      resolve({ _tag: "TooLarge" })
      return
    }
    const chunks: Array<Buffer> = []
    let size = 0
    let settled = false
    const settle = (r: BodyRead) => {
      if (settled) return
      settled = true
      req.off("data", onData)
      resolve(r)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) settle({ _tag: "TooLarge" })
      else chunks.push(chunk)
    }
    req.on("data", onData)
    req.once("end", () => settle({ _tag: "Body", text: Buffer.concat(chunks).toString("utf8") }))
    req.once("error", () => settle({ _tag: "Aborted" }))
    req.once("close", () => settle(req.complete ? { _tag: "Body", text: Buffer.concat(chunks).toString("utf8") } : { _tag: "Aborted" }))
  })

const tooLarge = (res: Http.ServerResponse, message: string) => {
  // The rest of the body is not read: close the connection after the answer.
  sendPage(res, 413, "Payload Too Large", message, { Connection: "close" })
  res.once("finish", () => res.socket?.destroy())
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const backendFailure = (method: MethodDefinition): RpcError =>
  RpcErrors.internal(`Backend failure: the ${method.backend ?? "database"} backend did not respond (simulated fault).`)

/** The request handler and the set of requests it keeps hung (to cut at shutdown). */
export interface RequestHandler {
  readonly handle: (req: Http.IncomingMessage, res: Http.ServerResponse) => void
  readonly hung: ReadonlySet<Http.ServerResponse>
}

/** Builds the handler for one simulator. */
export const makeRequestHandler = (ctx: ServerContext): RequestHandler => {
  const { faults, limits, registry, site, stats, workers } = ctx
  const hung = new Set<Http.ServerResponse>()
  const c = stats.counters
  const pageCache = makePageCache()

  /**
   * An envelope failure or malformed JSON: 2.0.0–2.0.4 let the schema's `TypeError` escape
   * (Drupal's generic HTML 500 page); 2.0.5 catches it: HTTP 400, -32603, id null, data naming
   * the invalid input.
   */
  const envelopeInvalid = (res: Http.ServerResponse, data: string) => {
    if (envelopeAsHtml500(site.switches)) {
      return sendPage(res, 500, "Error", "The website encountered an unexpected error. Try again later.")
    }
    return sendJson(res, 400, errorReply(null, RpcErrors.internal(data)))
  }

  const handleRpc = async (req: Http.IncomingMessage, res: Http.ServerResponse, user: SiteUser, text: string | null) => {
    let body: unknown
    try {
      if (text === null) throw new Error("no query")
      body = JSON.parse(text)
    } catch {
      return envelopeInvalid(res, text === null || text === "" ? "The request body is empty." : "Syntax error: the request is not valid JSON.")
    }
    if (Array.isArray(body)) {
      c.batches++
      c.max_batch_size = Math.max(c.max_batch_size, body.length)
      if (body.length > limits.maxBatchSize) {
        return tooLarge(res, `A batch of ${body.length} requests exceeds the limit of ${limits.maxBatchSize}.`)
      }
    }
    const items: ReadonlyArray<unknown> = Array.isArray(body) ? body : isRecord(body) ? [body] : []
    c.rpc_calls += items.length
    for (const item of items) {
      if (!isRecord(item)) continue
      if (!("id" in item)) c.notifications++
      if (typeof item.method === "string") stats.countMethod(item.method, registry.get(item.method) !== undefined)
    }
    const parsed = parseRequest(body, site)
    if (parsed._tag === "EnvelopeInvalid") return envelopeInvalid(res, parsed.data)
    if (parsed._tag === "Rejected") return sendJson(res, 400, parsed.reply)
    const config = faults.config()
    if (config.errorKind === "http503" && parsed.calls.some((call) => faults.shouldFail(call.method.id))) {
      c.faults.http_503++
      return sendPage(res, 503, "Service unavailable", "The backend is temporarily unavailable (simulated fault).", {
        "Retry-After": "1"
      })
    }
    const inject = config.errorKind === "rpc"
      ? (method: MethodDefinition) => {
        if (!faults.shouldFail(method.id)) return undefined
        c.faults.rpc_errors++
        return backendFailure(method)
      }
      : () => undefined
    const replies = execute(parsed.calls, user, site, inject)
    // The items ran one after another in this worker.
    const itemsMs = workers.itemsMs(parsed.calls.map((call) => call.method.id))
    if (itemsMs > 0) {
      await sleep(itemsMs)
      if (res.destroyed) return
    }
    for (const r of replies) if ("error" in r) c.rpc_errors++
    if (replies.length === 0) {
      res.writeHead(204, { "Cache-Control": "no-cache, private" })
      return res.end()
    }
    const cacheable = req.method === "GET" && user.uid === 0
    const cacheControl = cacheable ? "max-age=300, public" : "must-revalidate, no-cache, private"
    const pieces = toPieces(parsed.batch ? replies : replies[0])
    if (isPlain(pieces)) {
      const text = pieces.join("")
      if (cacheable) {
        // As Drupal's page cache: validators on anonymous GET replies, 304 to a matching condition.
        const validators = pageCache.validators(text)
        const headers = { "Cache-Control": cacheControl, ETag: validators.etag, "Last-Modified": validators.lastModified }
        if (pageCache.notModified(req, validators)) {
          res.writeHead(304, headers)
          return res.end()
        }
        c.bytes_sent += text.length
        return sendJsonText(res, 200, text, headers)
      }
      c.bytes_sent += text.length
      return sendJsonText(res, 200, text, { "Cache-Control": cacheControl })
    }
    c.streamed_responses++
    const length = await measurePieces(pieces)
    if (res.destroyed) return
    const bytesPerSecond = faults.slowStream()
    if (bytesPerSecond !== undefined) c.faults.slow_streams++
    res.writeHead(200, { "Content-Type": "application/json", "Content-Length": length, "Cache-Control": cacheControl })
    await writePieces(res, pieces, { bytesPerSecond, onBytes: (n) => (c.bytes_sent += n) })
  }

  const handleDiscovery = (res: Http.ServerResponse, user: SiteUser, methodId: string | undefined) => {
    c.discovery_requests++
    const base = ctx.baseUrl()
    if (methodId === undefined) {
      const allowed = registry.list().filter((m) => canExecute(site, user, m))
      return sendJson(res, 200, renderCollection(allowed, base), { "Cache-Control": "must-revalidate, no-cache, private" })
    }
    const method = registry.get(methodId)
    if (method === undefined || !canExecute(site, user, method)) {
      return sendPage(res, 404, "Page not found", "The requested page could not be found.")
    }
    return sendJson(res, 200, renderMethod(method, base), { "Cache-Control": "must-revalidate, no-cache, private" })
  }

  const handleSite = async (req: Http.IncomingMessage, res: Http.ServerResponse, url: URL) => {
    const path = url.pathname.replace(/\/+$/, "")
    const isRpc = path === "/jsonrpc"
    const discovery = path === "/jsonrpc/methods"
      ? { id: undefined }
      : path.startsWith("/jsonrpc/methods/")
      ? { id: safeDecode(path.slice("/jsonrpc/methods/".length)) }
      : undefined
    // jsonrpc_mcp's tool list (JsonRpcMcp.ts) is served like discovery, with a cursor.
    const mcpTools = path === "/mcp/tools/list" ? { cursor: url.searchParams.get("cursor") } : undefined
    if (!isRpc && discovery === undefined && mcpTools === undefined) return sendPage(res, 404, "Page not found", "The requested page could not be found.")
    const allowed = isRpc ? ["GET", "POST"] : ["GET"]
    if (!allowed.includes(req.method ?? "")) {
      return sendPage(res, 405, "Method Not Allowed", "The method is not allowed for this route.", { Allow: allowed.join(", ") })
    }
    let text: string | null = null
    if (req.method === "POST") {
      c.post_requests++
      const read = await readBody(req, limits.maxBodyBytes)
      if (read._tag === "Aborted") return
      if (read._tag === "TooLarge") return tooLarge(res, `The request body exceeds ${limits.maxBodyBytes} bytes.`)
      text = read.text
    } else {
      if (isRpc) c.get_requests++
      text = url.searchParams.get("query")
      req.resume()
    }
    if (faults.shouldReset()) {
      c.faults.resets++
      req.socket.resetAndDestroy()
      return
    }
    if (faults.shouldHang()) {
      c.faults.hangs++
      hung.add(res)
      res.once("close", () => hung.delete(res))
      return
    }
    const delay = faults.latencyMs()
    if (delay > 0) {
      c.faults.delayed_requests++
      await sleep(delay)
      if (res.destroyed) return
    }
    const lease = await workers.acquire()
    if (lease === undefined) {
      c.queue_rejections++
      return sendPage(res, 503, "Service unavailable", "The server is temporarily unable to service your request.", {
        "Retry-After": "1"
      })
    }
    try {
      if (res.destroyed) return
      const bootstrap = workers.bootstrapMs()
      if (bootstrap > 0) {
        await sleep(bootstrap)
        if (res.destroyed) return
      }
      await handleBootstrapped(req, res, text, isRpc, discovery?.id, mcpTools)
    } finally {
      lease.release()
    }
  }

  /** The request once a worker holds it and Drupal is bootstrapped. */
  const handleBootstrapped = async (
    req: Http.IncomingMessage,
    res: Http.ServerResponse,
    text: string | null,
    isRpc: boolean,
    discoveryId: string | undefined,
    mcpTools?: { readonly cursor: string | null }
  ) => {
    const auth = authenticate(req.headers.authorization)
    if (auth._tag === "Rejected") {
      // simple_oauth's challenge for a token it does not know.
      return sendPage(res, 401, "Unauthorized", "The resource owner or authorization server denied the request.", {
        "WWW-Authenticate": "Bearer realm=\"OAuth\", error=\"invalid_token\""
      })
    }
    const user = auth.user
    if (!site.roles.has(user, "use jsonrpc services")) {
      return sendPage(res, 403, "Access denied", "You are not authorized to access this page.")
    }
    if (site.state.maintenanceMode && !site.roles.has(user, "access site in maintenance mode")) {
      return sendPage(res, 503, "Site under maintenance", `${SITE_NAME} is currently under maintenance.`, {
        "Retry-After": "60"
      })
    }
    if (isRpc) return handleRpc(req, res, user, text)
    if (mcpTools !== undefined) {
      const allowed = registry.list().filter((m) => canExecute(site, user, m))
      return sendJson(res, 200, renderToolsPage(allowed, mcpTools.cursor), { "Cache-Control": "must-revalidate, no-cache, private" })
    }
    return handleDiscovery(res, user, discoveryId)
  }

  const handleControl = async (req: Http.IncomingMessage, res: Http.ServerResponse, path: string) => {
    const route = `${req.method ?? ""} ${path.replace(/\/+$/, "")}`
    const readJson = async (): Promise<{ ok: true; value: unknown } | { ok: false }> => {
      const read = await readBody(req, limits.maxBodyBytes)
      if (read._tag !== "Body") return { ok: false }
      try {
        return { ok: true, value: JSON.parse(read.text) }
      } catch {
        return { ok: false }
      }
    }
    const badRequest = (message: string) => sendControl(res, 400, { error: message })
    if (route === "GET /__sim/stats") return sendControl(res, 200, stats.snapshot())
    if (route === "POST /__sim/reset") {
      stats.reset()
      res.writeHead(204)
      return res.end()
    }
    if (route === "GET /__sim/faults") return sendControl(res, 200, faults.config())
    if (route === "POST /__sim/faults") {
      const body = await readJson()
      if (!body.ok) return badRequest("The body must be JSON.")
      const decoded = Schema.decodeUnknownEither(FaultPatch)(body.value)
      if (Either.isLeft(decoded)) return badRequest(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
      faults.set(decoded.right)
      return sendControl(res, 200, faults.config())
    }
    if (route === "POST /__sim/methods") {
      const body = await readJson()
      if (!body.ok) return badRequest("The body must be JSON.")
      const decoded = Schema.decodeUnknownEither(MethodSpec)(body.value)
      if (Either.isLeft(decoded)) return badRequest(ParseResult.TreeFormatter.formatErrorSync(decoded.left))
      registry.add(fromSpec(decoded.right))
      return sendControl(res, 201, { id: decoded.right.id })
    }
    if (req.method === "DELETE" && path.startsWith("/__sim/methods/")) {
      const id = safeDecode(path.slice("/__sim/methods/".length))
      if (id === undefined || !registry.remove(id)) return sendControl(res, 404, { error: "No such method." })
      res.writeHead(204)
      return res.end()
    }
    return sendControl(res, 404, { error: `No control route ${route}.` })
  }

  const handle = (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://simulator")
    const onError = () => {
      if (!res.headersSent) sendPage(res, 500, "Error", "The website encountered an unexpected error.")
      else res.destroy()
    }
    if (url.pathname.startsWith("/__sim/")) {
      handleControl(req, res, url.pathname).catch(onError)
      return
    }
    c.http_requests++
    stats.inFlight++
    res.once("close", () => stats.inFlight--)
    res.once("finish", () => stats.countResponse(res.statusCode))
    handleSite(req, res, url).catch(onError)
  }

  return { handle, hung }
}

const safeDecode = (s: string): string | undefined => {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

/** A listening server. */
export interface RunningServer {
  readonly server: Http.Server
  readonly port: number
  /**
   * Stops accepting, closes idle connections and cuts hung ones at once, lets replies in flight
   * finish for up to `boundMs`, then destroys every remaining socket. Never rejects.
   */
  readonly close: (boundMs: number) => Promise<void>
}

/** Starts listening. Rejects with the listen error (port in use, permission denied, …). */
export const listen = (handler: RequestHandler, host: string, port: number): Promise<RunningServer> =>
  new Promise((resolve, reject) => {
    const server = Http.createServer({ keepAliveTimeout: 5_000 }, handler.handle)
    // Requests in progress per socket: `closeIdleConnections` misses sockets that were opened
    // but never carried a request (clients pre-connect), so shutdown tracks them itself.
    const sockets = new Map<Socket, number>()
    server.on("connection", (socket: Socket) => {
      sockets.set(socket, 0)
      socket.once("close", () => sockets.delete(socket))
    })
    server.on("request", (req: Http.IncomingMessage, res: Http.ServerResponse) => {
      const socket = req.socket
      sockets.set(socket, (sockets.get(socket) ?? 0) + 1)
      res.once("close", () => {
        if (sockets.has(socket)) sockets.set(socket, Math.max(0, (sockets.get(socket) ?? 1) - 1))
      })
    })
    const onError = (err: Error) => {
      server.off("listening", onListening)
      reject(err)
    }
    const onListening = () => {
      server.off("error", onError)
      // A listening server's later errors are per-connection noise; they must not crash the process.
      server.on("error", () => {})
      const address = server.address() as AddressInfo
      resolve({
        server,
        port: address.port,
        close: (boundMs) =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => server.closeAllConnections(), boundMs)
            server.close(() => {
              clearTimeout(timer)
              done()
            })
            server.closeIdleConnections()
            for (const res of handler.hung) res.destroy()
            for (const [socket, inProgress] of sockets) if (inProgress === 0) socket.destroy()
          })
      })
    }
    server.once("error", onError)
    server.once("listening", onListening)
    server.listen(port, host)
  })
