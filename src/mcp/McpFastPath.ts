/**
 * The MCP fast path: a synchronous {@link BodyPath} for `POST /mcp` that answers `tools/call
 * content.search` from a **fresh memory hit** of the caller's partition, without a fiber, a
 * router or a span, with the bytes and headers the Effect path ({@link McpServer}) answers.
 *
 * It answers only when every check the Effect path makes passes, and the Effect path has
 * validated the same arguments against the caller's current method set
 * ({@link McpServer.validated}, keyed by the set's fingerprint); the checks are the same ones:
 * origin, content type, `Accept`, `Authorization` length, the JSON-RPC envelope, and per revision
 * `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, the `_meta` envelope (2026-07-28) or the
 * session id and version header (legacy). Everything else (a failed check, a notification, another
 * method or tool, an unknown partition or method set, arguments not validated yet, a search that
 * does not normalise, a miss, a stale entry, the `jsonrpc_mcp` tool source) falls through to the
 * Effect app, which answers it (errors included) as before.
 *
 * Cost of a hit: a JSON parse of the small body, for a token an HMAC of the header, two map
 * lookups (the validated search, normalised once by the Effect path; the partition), one LRU
 * lookup, and the reply written from the serialized result memoized per cache entry (weakly: it
 * goes with the entry).
 *
 * @since 0.1.0
 */
import { Effect, Layer, Metric } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type * as Http from "node:http"
import { AccessScope } from "../access/AccessScope.js"
import type { CacheEntry } from "../cache/Envelope.js"
import type { MemoryTier } from "../cache/MemoryTier.js"
import { TieredCache } from "../cache/TieredCache.js"
import { McpConfig } from "../Config.js"
import { responseOf, searchCacheKey } from "../content/CacheKeys.js"
import { Discovery } from "../discovery/Discovery.js"
import { MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { BodyPath } from "../listener/Listener.js"
import { routes } from "../listener/Routes.js"
import * as Metrics from "../telemetry/Metrics.js"
import * as Catalog from "./Catalog.js"
import { McpServer, resultPayload, structuredOutcome, type ValidatedSearches } from "./McpServer.js"
import {
  acceptsJson,
  decodeHeaderValue,
  envelopeOf,
  LEGACY_HEADER_VERSIONS,
  type Message,
  META,
  MODERN_VERSION,
  originAllowed,
  parseMessage,
  validSessionId
} from "./Protocol.js"

/** Largest body the fast path reads ahead: a `tools/call` of a search is a few hundred bytes. */
export const MAX_FAST_BODY_BYTES = 16 * 1024

/** Cached values whose serialized results are memoized (larger ones are serialized per call). */
const MAX_MEMOIZED_VALUE_BYTES = 64 * 1024

/** `tools/call` answered by the MCP fast path (fresh memory hits). */
export const fastPathCalls = Metric.counter("accelerator_mcp_fast_path_calls_total", {
  description: "MCP tools/call requests answered by the fast path from fresh memory hits",
  incremental: true
})

/** What the fast path needs. */
export interface McpFastPathOptions {
  readonly memory: MemoryTier
  readonly access: AccessScope
  readonly discovery: Pick<Discovery, "peek">
  readonly validated: Pick<ValidatedSearches, "get">
  readonly allowedOrigins: ReadonlyArray<string>
  readonly maxResultBytes: number
  /** Told of each call it answers. */
  readonly onHit?: () => void
}

const isObject = (u: unknown): u is { readonly [key: string]: unknown } => typeof u === "object" && u !== null && !Array.isArray(u)

const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i

/** Whether `url` is the MCP endpoint's path (any query). */
const isMcpUrl = (url: string | undefined): boolean =>
  url !== undefined && url.startsWith(routes.mcp.path) && (url.length === routes.mcp.path.length || url[routes.mcp.path.length] === "?")

/**
 * Whether the transport and revision checks of the Effect path all pass for a `tools/call`
 * request (the ones that, failing, make it answer an error or a 202 instead of a result).
 */
const protocolHolds = (headers: Http.IncomingHttpHeaders, message: Message): boolean => {
  const versionHeader = headers["mcp-protocol-version"]
  const envelope = envelopeOf(message)
  if (envelope !== undefined || versionHeader === MODERN_VERSION) {
    if (envelope === undefined || envelope[META.protocolVersion] !== MODERN_VERSION || versionHeader !== MODERN_VERSION) return false
    if (headers["mcp-method"] !== message.method) return false
    const nameHeader = headers["mcp-name"]
    if (typeof nameHeader !== "string" || decodeHeaderValue(nameHeader) !== message.params["name"]) return false
    return isObject(envelope[META.clientCapabilities])
  }
  const session = headers["mcp-session-id"]
  if (session !== undefined && (typeof session !== "string" || !validSessionId(session))) return false
  return versionHeader === undefined || (typeof versionHeader === "string" && LEGACY_HEADER_VERSIONS.includes(versionHeader))
}

/**
 * Builds the fast path. It never throws: any surprise falls through to the Effect app.
 */
export const make = (options: McpFastPathOptions): BodyPath => {
  // The end of a reply (`,"result":…}`) for an entry, per revision ([legacy, modern]); weak, so it goes with the entry.
  const memo = new WeakMap<CacheEntry, [Buffer, Buffer]>()
  const replyEnds = (entry: CacheEntry): [Buffer, Buffer] | undefined => {
    const known = memo.get(entry)
    if (known !== undefined) return known
    const outcome = structuredOutcome(entry.value, responseOf(entry.contentType).status, options.maxResultBytes)
    if (outcome._tag !== "Result") return undefined
    const results: [Buffer, Buffer] = [
      Buffer.from(`,"result":${JSON.stringify(resultPayload(outcome.result, false))}}`, "utf8"),
      Buffer.from(`,"result":${JSON.stringify(resultPayload(outcome.result, true))}}`, "utf8")
    ]
    if (entry.value.byteLength <= MAX_MEMOIZED_VALUE_BYTES) memo.set(entry, results)
    return results
  }

  const answer = (req: Http.IncomingMessage, res: Http.ServerResponse, body: Buffer): boolean => {
    try {
      const headers = req.headers
      if (!originAllowed(headers.origin, options.allowedOrigins)) return false
      const contentType = headers["content-type"]
      if (contentType === undefined || !JSON_CONTENT_TYPE.test(contentType.trim()) || !acceptsJson(headers.accept)) return false
      const authorization = headers.authorization
      if (authorization !== undefined && authorization.length > MAX_AUTHORIZATION_LENGTH) return false
      const read = parseMessage(JSON.parse(body.toString("utf8")))
      if (read._tag !== "Message") return false
      const message = read.message
      if (message.id === undefined || message.method !== "tools/call" || message.params["name"] !== Catalog.SEARCH) return false
      if (!protocolHolds(headers, message)) return false
      const args = message.params["arguments"] ?? {}
      if (!isObject(args)) return false
      const partition = options.access.partitionSync(options.access.credentials(authorization))
      if (partition === undefined) return false
      const set = options.discovery.peek(partition.id)
      const query = set === undefined ? undefined : options.validated.get(set.fingerprint, JSON.stringify(args))
      if (query === undefined) return false
      const now = Date.now()
      const entry = options.memory.lookupSync(searchCacheKey(partition.id, query), now)
      if (entry === undefined || now >= entry.freshUntil) return false
      const ends = replyEnds(entry)
      if (ends === undefined) return false
      const end = ends[envelopeOf(message) !== undefined ? 1 : 0]
      const start = Buffer.from(`{"jsonrpc":"2.0","id":${JSON.stringify(message.id)}`, "utf8")
      res.writeHead(200, { "content-type": "application/json", "content-length": start.byteLength + end.byteLength })
      res.end(Buffer.concat([start, end], start.byteLength + end.byteLength))
      options.onHit?.()
      return true
    } catch {
      return false
    }
  }

  return {
    maxBytes: MAX_FAST_BODY_BYTES,
    claims: (req) => req.method === "POST" && isMcpUrl(req.url),
    answer
  }
}

const noLabels: ReadonlyArray<never> = []

/** The body path that claims nothing (the `jsonrpc_mcp` tool source: its lists are fetched per call). */
const claimsNothing: BodyPath = { maxBytes: 0, claims: () => false, answer: () => false }

/**
 * The fast path over the cache's memory tier, the caller partitions, discovery and the MCP
 * server's validated calls, counting its answers as memory hits and in {@link fastPathCalls}.
 * With the `jsonrpc_mcp` tool source it claims nothing.
 */
export const layer: Layer.Layer<BodyPath, ConfigError, TieredCache | AccessScope | Discovery | McpServer> = Layer.effect(
  BodyPath,
  Effect.gen(function*() {
    const config = yield* McpConfig
    if (config.toolsSource !== "discovery") return claimsNothing
    const cache = yield* TieredCache
    const server = yield* McpServer
    return make({
      memory: cache.memory,
      access: yield* AccessScope,
      discovery: yield* Discovery,
      validated: server.validated,
      allowedOrigins: config.allowedOrigins,
      maxResultBytes: config.maxResultBytes,
      onHit: () => {
        Metrics.recordCacheLookup("memory", "hit")
        fastPathCalls.unsafeUpdate(1, noLabels)
      }
    })
  })
)
