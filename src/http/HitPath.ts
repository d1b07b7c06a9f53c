/**
 * The memory-hit path: a synchronous `FastPath` that answers GET requests for cached content
 * straight from the memory tier, without a fiber, a router or a span. It answers **memory hits**
 * of callers whose partition is already known: fresh ones, and stale ones within grace once
 * their revalidation is started in the background (`CachedContent.revalidate`, the route's own
 * operation, as the app would run it: stale-while-revalidate, refusals, denials). Everything
 * else (a miss, a stale entry it cannot hand over, an unknown token, a malformed question, any
 * other route) falls through to the Effect app, which owns every other behaviour (errors,
 * loads). The keys come from `CacheKeys`, the routes from `listener/Routes.ts` and the request
 * values from `RequestParams`, the same the Effect routes use, so both paths agree.
 *
 * Cost per request: for a token an HMAC of the header (once per connection while the header
 * stays the same), one lookup of the request target in a memo of resolved keys, and one LRU
 * lookup; for a stale answer, a background fiber once per key. The memo maps (partition, request target) to the cache key and revalidation it resolves
 * to; it spares the URL parse, the route match and, for search, the question's normalisation
 * (most of a search hit's cost) on every repeat. It holds at most {@link MAX_RESOLVED} targets
 * of at most {@link MAX_RESOLVED_TARGET_LENGTH} characters (the oldest go first; 13–15 MB of
 * heap when full, measured); longer targets are resolved every time.
 *
 * @since 0.1.0
 */
import { Effect, Either, Layer, Runtime } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type * as Http from "node:http"
import type * as Net from "node:net"
import { AccessScope } from "../access/AccessScope.js"
import * as BodyHash from "../cache/BodyHash.js"
import type { MemoryTier } from "../cache/MemoryTier.js"
import { TieredCache } from "../cache/TieredCache.js"
import { CachedContent, type Revalidation } from "../content/CachedContent.js"
import { contentCacheKey, discoveryCacheKey, markdownCacheKey, responseOf, searchCacheKey } from "../content/CacheKeys.js"
import { normalizeSearch } from "../content/SearchQuery.js"
import { type Credentials, MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { type FastPath, HitPath, withRequestId } from "../listener/Listener.js"
import { matchRoute } from "../listener/Routes.js"
import * as Metrics from "../telemetry/Metrics.js"
import * as Representation from "./Representation.js"
import { parseContentOptions, parseId, repeatsSingleParam, searchInputOf } from "./RequestParams.js"

/** What the hit path needs. */
export interface HitPathOptions {
  readonly memory: MemoryTier
  readonly access: AccessScope
  /** Told of each hit it answers (for the lookup metric): fresh, or stale within grace. */
  readonly onHit?: (stale: boolean) => void
  /** Compression and its threshold; default `Representation.defaults`. */
  readonly semantics?: Representation.HttpSemanticsOptions
  /**
   * Starts the revalidation of a stale entry it answered, in the background (never waits);
   * `false` when it could not be started (then the request goes to the app instead). Without
   * it, stale entries fall through to the app.
   */
  readonly revalidate?: (key: string, target: Revalidation, credentials: Credentials) => boolean
}

/** At most this many resolved request targets are remembered (per hit path). */
export const MAX_RESOLVED = 16_384

/** Request targets longer than this are resolved every time, never remembered. */
export const MAX_RESOLVED_TARGET_LENGTH = 512

/** The cache key a request is answered from, and what to revalidate it with. */
interface Resolved {
  readonly key: string
  readonly target?: Revalidation
}

/** The cache key a GET request would be answered from and what to revalidate it with, or `undefined` when the hit path cannot tell. */
const keyOf = (url: URL, partition: string): Resolved | undefined => {
  if (repeatsSingleParam(url.searchParams)) return undefined
  const route = matchRoute(url.pathname)
  switch (route?.name) {
    case "search": {
      const query = normalizeSearch(searchInputOf(url.searchParams))
      return Either.isRight(query) ? { key: searchCacheKey(partition, query.right), target: { route: "search", query: query.right } } : undefined
    }
    case "tools":
      return { key: discoveryCacheKey(partition, "tools") }
    case "methods":
      return { key: discoveryCacheKey(partition, "methods") }
    case "markdown": {
      const id = parseId(route.params.id ?? "")
      return Either.isRight(id) ? { key: markdownCacheKey(partition, id.right), target: { route: "markdown", id: id.right } } : undefined
    }
    case "content": {
      const id = parseId(route.params.id ?? "")
      const options = parseContentOptions({
        include_content: url.searchParams.get("include_content") ?? undefined,
        format: url.searchParams.get("format") ?? undefined
      })
      return Either.isRight(id) && Either.isRight(options)
        ? {
          key: contentCacheKey(partition, id.right, options.right.includeContent, options.right.format),
          target: { route: "content", id: id.right, options: options.right }
        }
        : undefined
    }
    default:
      return undefined
  }
}

/** Where a connection keeps the credentials of its last `Authorization` header. */
const LAST_CREDENTIALS = Symbol("accelerator/HitPath/lastCredentials")

/** A client connection, with the credentials of its last `Authorization` header. */
type ConnectionCredentials = Net.Socket & {
  [LAST_CREDENTIALS]?: { readonly header: string; readonly credentials: Credentials }
}

const HIT_TIMING = `cache;desc="HIT-MEMORY"`
const STALE_TIMING = `cache;desc="STALE"`

/**
 * Builds the hit path. It never throws: any surprise falls through to the Effect app. It answers
 * with the headers of `Representation` (ETag, Cache-Control, Vary, Age, and a 304 to a matching
 * `If-None-Match`), and only in a coding already made: a client asking for one not made yet
 * falls through to the app, which makes it once for every later hit.
 */
export const make = (options: HitPathOptions): FastPath => {
  const semantics = options.semantics ?? Representation.defaults
  const revalidate = options.revalidate
  // (partition, request target) → what it resolves to; `null` for a target the hit path never answers.
  const resolved = new Map<string, Resolved | null>()
  const resolve = (target: string, partition: string): Resolved | undefined => {
    if (target.length > MAX_RESOLVED_TARGET_LENGTH) return keyOf(new URL(target, "http://gateway"), partition)
    const memoKey = `${partition} ${target}`
    let found = resolved.get(memoKey)
    if (found === undefined) {
      found = keyOf(new URL(target, "http://gateway"), partition) ?? null
      if (resolved.size >= MAX_RESOLVED) resolved.delete(resolved.keys().next().value!)
      resolved.set(memoKey, found)
    }
    return found ?? undefined
  }
  // A client's connection carries the same `Authorization` on each of its requests: the
  // credentials made from it (an HMAC of the token) are kept on the connection and reused while
  // the header is the same string, and go with the connection.
  const credentialsOf = (socket: ConnectionCredentials | null | undefined, header: string | undefined): Credentials => {
    if (header === undefined || socket === null || socket === undefined) return options.access.credentials(header)
    const last = socket[LAST_CREDENTIALS]
    if (last !== undefined && last.header === header) return last.credentials
    const credentials = options.access.credentials(header)
    socket[LAST_CREDENTIALS] = { header, credentials }
    return credentials
  }
  return (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    if (req.method !== "GET" || req.url === undefined) return false
    try {
      const header = req.headers.authorization
      if (header !== undefined && header.length > MAX_AUTHORIZATION_LENGTH) return false
      const credentials = credentialsOf(req.socket as ConnectionCredentials | null, header)
      const partition = options.access.partitionSync(credentials)
      if (partition === undefined) return false
      const found = resolve(req.url, partition.id)
      if (found === undefined) return false
      const now = Date.now()
      const entry = options.memory.lookupSync(found.key, now)
      if (entry === undefined) return false
      // Stale within grace: answered as the app would (stale-while-revalidate), once the
      // revalidation is on its way; otherwise the app takes the request.
      const stale = now >= entry.freshUntil
      if (stale && (found.target === undefined || revalidate === undefined || !revalidate(found.key, found.target, credentials))) return false
      const status = stale ? "STALE" : "HIT-MEMORY"
      const response = responseOf(entry.contentType)
      if (response.status !== 200) {
        res.writeHead(
          response.status,
          withRequestId(req, {
            "content-type": response.contentType,
            "content-length": entry.value.byteLength,
            "cache-control": "no-store",
            "x-cache": status,
            "server-timing": stale ? STALE_TIMING : HIT_TIMING
          })
        )
        res.end(entry.value)
        options.onHit?.(stale)
        return true
      }
      // A large body not hashed yet (read from an envelope written without its hash) is hashed
      // by the app, in steps: here it would be one synchronous SHA-256 of megabytes.
      if (entry.value.byteLength > BodyHash.HASH_STEP_BYTES && BodyHash.known(entry.value) === undefined) return false
      const chosen = Representation.encodedSync(
        entry.value,
        Representation.codingFor(semantics, req.headers["accept-encoding"], entry.value.byteLength, entry.value)
      )
      // A coding not made yet: the app makes it (and, for a stale entry, the revalidation runs anyway).
      if (chosen === undefined) return false
      const headers = Representation.validatorHeaders(entry.value, chosen.coding, credentials.fingerprint === "anonymous", entry, now)
      headers["x-cache"] = status
      headers["server-timing"] = stale ? STALE_TIMING : HIT_TIMING
      withRequestId(req, headers)
      if (Representation.ifNoneMatchHits(req.headers["if-none-match"], entry.value)) {
        delete headers["content-encoding"]
        res.writeHead(304, headers)
        res.end()
      } else {
        headers["content-type"] = response.contentType
        headers["content-length"] = String(chosen.bytes.byteLength)
        res.writeHead(200, headers)
        res.end(chosen.bytes)
      }
      options.onHit?.(stale)
      return true
    } catch {
      return false
    }
  }
}

/**
 * The hit path over the cache's memory tier and the caller partitions, counting its answers as
 * memory lookups (hit or stale); stale answers are revalidated through `CachedContent`.
 */
export const layer: Layer.Layer<HitPath, ConfigError, TieredCache | AccessScope | CachedContent> = Layer.effect(
  HitPath,
  Effect.gen(function*() {
    const cache = yield* TieredCache
    const access = yield* AccessScope
    const content = yield* CachedContent
    const semantics = yield* Representation.HttpSemanticsConfig
    const runSync = Runtime.runSync(yield* Effect.runtime<never>())
    return make({
      memory: cache.memory,
      access,
      semantics,
      onHit: (stale) => Metrics.recordCacheLookup("memory", stale ? "stale" : "hit"),
      revalidate: (key, target, credentials) => runSync(content.revalidate(key, target, credentials))
    })
  })
)
