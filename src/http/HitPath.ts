/**
 * The memory-hit path: a synchronous `FastPath` that answers GET requests for cached content
 * straight from the memory tier, without a fiber, a router or a span. It only ever answers
 * **fresh memory hits** of callers whose partition is already known; everything else (a miss, a
 * stale entry, an unknown token, a malformed question, any other route) falls through to the
 * Effect app, which owns every other behaviour (errors, stale-while-revalidate, loads). The keys
 * come from `CacheKeys`, the routes from `listener/Routes.ts` and the request values from
 * `RequestParams`, the same the Effect routes use, so both paths agree.
 *
 * Cost per request: a URL parse, a search normalisation (search only), for a token a sha256 of
 * the header, and one LRU lookup.
 *
 * @since 0.1.0
 */
import { Effect, Either, Layer } from "effect"
import type { ConfigError } from "effect/ConfigError"
import type * as Http from "node:http"
import { AccessScope } from "../access/AccessScope.js"
import type { MemoryTier } from "../cache/MemoryTier.js"
import { TieredCache } from "../cache/TieredCache.js"
import { contentCacheKey, discoveryCacheKey, markdownCacheKey, responseOf, searchCacheKey } from "../content/CacheKeys.js"
import { normalizeSearch } from "../content/SearchQuery.js"
import { MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { type FastPath, HitPath } from "../listener/Listener.js"
import { matchRoute } from "../listener/Routes.js"
import * as Metrics from "../telemetry/Metrics.js"
import * as Representation from "./Representation.js"
import { parseContentOptions, parseId, repeatsSingleParam, searchInputOf } from "./RequestParams.js"

/** What the hit path needs. */
export interface HitPathOptions {
  readonly memory: MemoryTier
  readonly access: AccessScope
  /** Told of each hit it answers (for the lookup metric). */
  readonly onHit?: () => void
  /** Compression and its threshold; default `Representation.defaults`. */
  readonly semantics?: Representation.HttpSemanticsOptions
}

/** The cache key a GET request would be answered from, or `undefined` when the hit path cannot tell. */
const keyOf = (url: URL, partition: string): string | undefined => {
  if (repeatsSingleParam(url.searchParams)) return undefined
  const route = matchRoute(url.pathname)
  switch (route?.name) {
    case "search": {
      const query = normalizeSearch(searchInputOf(url.searchParams))
      return Either.isRight(query) ? searchCacheKey(partition, query.right) : undefined
    }
    case "tools":
      return discoveryCacheKey(partition, "tools")
    case "methods":
      return discoveryCacheKey(partition, "methods")
    case "markdown": {
      const id = parseId(route.params.id ?? "")
      return Either.isRight(id) ? markdownCacheKey(partition, id.right) : undefined
    }
    case "content": {
      const id = parseId(route.params.id ?? "")
      const options = parseContentOptions({
        include_content: url.searchParams.get("include_content") ?? undefined,
        format: url.searchParams.get("format") ?? undefined
      })
      return Either.isRight(id) && Either.isRight(options)
        ? contentCacheKey(partition, id.right, options.right.includeContent, options.right.format)
        : undefined
    }
    default:
      return undefined
  }
}

/**
 * Builds the hit path. It never throws: any surprise falls through to the Effect app. It answers
 * with the headers of `Representation` (ETag, Cache-Control, Vary, Age, and a 304 to a matching
 * `If-None-Match`), and only in a coding already made: a client asking for one not made yet
 * falls through to the app, which makes it once for every later hit.
 */
export const make = (options: HitPathOptions): FastPath => {
  const semantics = options.semantics ?? Representation.defaults
  return (req: Http.IncomingMessage, res: Http.ServerResponse) => {
    if (req.method !== "GET" || req.url === undefined) return false
    try {
      const header = req.headers.authorization
      if (header !== undefined && header.length > MAX_AUTHORIZATION_LENGTH) return false
      const credentials = options.access.credentials(header)
      const partition = options.access.partitionSync(credentials)
      if (partition === undefined) return false
      const key = keyOf(new URL(req.url, "http://gateway"), partition.id)
      if (key === undefined) return false
      const now = Date.now()
      const entry = options.memory.lookupSync(key, now)
      if (entry === undefined || now >= entry.freshUntil) return false
      const response = responseOf(entry.contentType)
      if (response.status !== 200) {
        res.writeHead(response.status, {
          "content-type": response.contentType,
          "content-length": entry.value.byteLength,
          "cache-control": "no-store",
          "x-cache": "HIT-MEMORY",
          "server-timing": `cache;desc="HIT-MEMORY"`
        })
        res.end(entry.value)
        options.onHit?.()
        return true
      }
      const chosen = Representation.encodedSync(
        entry.value,
        Representation.codingFor(semantics, req.headers["accept-encoding"], entry.value.byteLength)
      )
      if (chosen === undefined) return false
      const headers = Representation.validatorHeaders(entry.value, chosen.coding, credentials.fingerprint === "anonymous", entry, now)
      headers["x-cache"] = "HIT-MEMORY"
      headers["server-timing"] = `cache;desc="HIT-MEMORY"`
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
      options.onHit?.()
      return true
    } catch {
      return false
    }
  }
}

/** The hit path over the cache's memory tier and the caller partitions, counting its hits as memory hits. */
export const layer: Layer.Layer<HitPath, ConfigError, TieredCache | AccessScope> = Layer.effect(
  HitPath,
  Effect.gen(function*() {
    const cache = yield* TieredCache
    const access = yield* AccessScope
    const semantics = yield* Representation.HttpSemanticsConfig
    return make({ memory: cache.memory, access, semantics, onHit: () => Metrics.recordCacheLookup("memory", "hit") })
  })
)
