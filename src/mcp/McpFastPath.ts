/**
 * The MCP fast path: a synchronous {@link BodyPath} for `POST /mcp` that answers `tools/call` of
 * the cached read-only tools (`content.search`; `content.get_tutorial` as Markdown, or without its
 * body) from **fresh memory hits** of the caller's partition, without a fiber, a router or a
 * span, with the bytes and headers the Effect path ({@link McpServer}) answers.
 *
 * It answers only when every check the Effect path makes passes, and the Effect path has
 * validated the same arguments against the caller's current method set
 * ({@link McpServer.validated}, keyed by the set's fingerprint); the checks are the same ones:
 * origin, content type, `Accept`, `Authorization` length, the JSON-RPC envelope, and per revision
 * `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, the `_meta` envelope (2026-07-28) or the
 * session id and version header (legacy). Everything else (a failed check, a notification, another
 * method or tool, an unknown partition or method set, arguments not validated yet, a miss, a
 * stale entry, a Markdown entry that is not a document, an HTML body, the `jsonrpc_mcp` tool
 * source) falls through to the Effect app, which answers it (errors included) as before.
 *
 * Cost of a hit: a JSON parse of the small body, for a token an HMAC of the header, two map
 * lookups (the validated call, read once by the Effect path; the partition), one or two LRU
 * lookups, and the reply written from the serialized result memoized per cache entry (weakly: it
 * goes with the entry; for a document, per piece).
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
import { contentCacheKey, markdownCacheKey, responseOf, searchCacheKey } from "../content/CacheKeys.js"
import { Discovery } from "../discovery/Discovery.js"
import { MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { BodyPath } from "../listener/Listener.js"
import { routes } from "../listener/Routes.js"
import * as Metrics from "../telemetry/Metrics.js"
import * as Catalog from "./Catalog.js"
import {
  McpServer,
  type Outcome,
  resultPayload,
  structuredOutcome,
  tutorialFromString,
  type ValidatedCall,
  type ValidatedCalls
} from "./McpServer.js"
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

/** Largest body the fast path reads ahead: a `tools/call` of a cached tool is a few hundred bytes. */
export const MAX_FAST_BODY_BYTES = 16 * 1024

/** Cached values whose serialized results are memoized (larger ones are serialized per call). */
const MAX_MEMOIZED_VALUE_BYTES = 64 * 1024
/** Pieces of one Markdown entry memoized at most (a new one beyond clears them). */
const MAX_MEMOIZED_PIECES = 16

const decoder = new TextDecoder()

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
  readonly validated: Pick<ValidatedCalls, "get">
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
  /** The end of a reply (`,"result":…}`) per revision ([legacy, modern]), for a result outcome. */
  const endsOf = (outcome: Outcome): [Buffer, Buffer] | undefined =>
    outcome._tag !== "Result" ? undefined : [
      Buffer.from(`,"result":${JSON.stringify(resultPayload(outcome.result, false))}}`, "utf8"),
      Buffer.from(`,"result":${JSON.stringify(resultPayload(outcome.result, true))}}`, "utf8")
    ]

  // Reply ends of an entry answered as structured content; weak, so they go with the entry.
  const structured = new WeakMap<CacheEntry, [Buffer, Buffer]>()
  const structuredEnds = (entry: CacheEntry): [Buffer, Buffer] | undefined => {
    const known = structured.get(entry)
    if (known !== undefined) return known
    const ends = endsOf(structuredOutcome(entry.value, responseOf(entry.contentType).status, options.maxResultBytes))
    if (ends !== undefined && entry.value.byteLength <= MAX_MEMOIZED_VALUE_BYTES) structured.set(entry, ends)
    return ends
  }

  // Reply ends of a Markdown entry's pieces (by offset), made with the item entry `head`.
  const pieces = new WeakMap<CacheEntry, { readonly head: CacheEntry; readonly byOffset: Map<number, [Buffer, Buffer]> }>()
  const pieceEnds = (head: CacheEntry, markdown: CacheEntry, offset: number): [Buffer, Buffer] | undefined => {
    const known = pieces.get(markdown)
    const hit = known !== undefined && known.head === head ? known.byOffset.get(offset) : undefined
    if (hit !== undefined) return hit
    const { content: _body, ...item } = JSON.parse(decoder.decode(head.value)) as { readonly [key: string]: unknown }
    const ends = endsOf(tutorialFromString(item, "markdown", decoder.decode(markdown.value), offset, options.maxResultBytes))
    if (ends === undefined || markdown.value.byteLength > MAX_MEMOIZED_VALUE_BYTES) return ends
    const memo = known !== undefined && known.head === head ? known : { head, byOffset: new Map<number, [Buffer, Buffer]>() }
    if (memo.byOffset.size >= MAX_MEMOIZED_PIECES) memo.byOffset.clear()
    memo.byOffset.set(offset, ends)
    pieces.set(markdown, memo)
    return ends
  }

  const fresh = (key: string, now: number): CacheEntry | undefined => {
    const entry = options.memory.lookupSync(key, now)
    return entry !== undefined && now < entry.freshUntil ? entry : undefined
  }

  /** The reply ends of a validated call from fresh memory entries, as the Effect path reads them; `undefined` on any doubt. */
  const endsFor = (partition: string, call: ValidatedCall, now: number): [Buffer, Buffer] | undefined => {
    if (call.tool === Catalog.SEARCH) {
      const entry = fresh(searchCacheKey(partition, call.query), now)
      return entry === undefined ? undefined : structuredEnds(entry)
    }
    const head = fresh(contentCacheKey(partition, call.id, call.format === "html" && call.includeContent, "html"), now)
    if (head === undefined) return undefined
    if (responseOf(head.contentType).status !== 200 || !call.includeContent) return structuredEnds(head)
    // An HTML body is cut from the item's JSON; only Markdown pieces are answered here.
    if (call.format !== "markdown") return undefined
    const markdown = fresh(markdownCacheKey(partition, call.id), now)
    if (markdown === undefined || responseOf(markdown.contentType).status !== 200) return undefined
    return pieceEnds(head, markdown, call.offset)
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
      const name = message.params["name"]
      if (message.id === undefined || message.method !== "tools/call" || (name !== Catalog.SEARCH && name !== Catalog.GET_TUTORIAL)) return false
      if (!protocolHolds(headers, message)) return false
      const args = message.params["arguments"] ?? {}
      if (!isObject(args)) return false
      const partition = options.access.partitionSync(options.access.credentials(authorization))
      if (partition === undefined) return false
      const set = options.discovery.peek(partition.id)
      const call = set === undefined ? undefined : options.validated.get(set.fingerprint, name, JSON.stringify(args))
      if (call === undefined) return false
      const ends = endsFor(partition.id, call, Date.now())
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
