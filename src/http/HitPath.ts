/**
 * The memory-hit path: a synchronous `FastPath` that answers GET requests for cached content
 * straight from the memory tier, without a fiber, a router or a span. It only ever answers
 * **fresh memory hits** of callers whose partition is already known; everything else (a miss, a
 * stale entry, an unknown token, a malformed question, any other route) falls through to the
 * Effect app, which owns every other behaviour (errors, stale-while-revalidate, loads). The keys
 * come from `CacheKeys`, the same functions the Effect routes use, so both paths agree.
 *
 * Cost per request: a URL parse, a search normalisation (search only), for a token a sha256 of
 * the header, and one LRU lookup.
 *
 * @since 0.1.0
 */
import { Effect, Either, Layer } from "effect"
import type * as Http from "node:http"
import { AccessScope } from "../access/AccessScope.js"
import type { MemoryCacheTier } from "../cache/MemoryTier.js"
import { TieredCacheService } from "../cache/TieredCache.js"
import { contentCacheKey, discoveryCacheKey, markdownCacheKey, responseOf, searchCacheKey } from "../content/CacheKeys.js"
import { normalizeSearch } from "../content/SearchQuery.js"
import { fromAuthorizationHeader, MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { type FastPath, HitPath } from "../listener/Listener.js"
import * as Metrics from "../telemetry/Metrics.js"

/** What the hit path needs. */
export interface HitPathOptions {
  readonly memory: MemoryCacheTier
  readonly access: AccessScope
  /** Told of each hit it answers (for the lookup metric). */
  readonly onHit?: () => void
}

const CONTENT = /^\/content\/([1-9]\d{0,15})(\/markdown)?$/

/** The cache key a GET request would be answered from, or `undefined` when the hit path cannot tell. */
const keyOf = (url: URL, partition: string): string | undefined => {
  const path = url.pathname
  if (path === "/search") {
    const params = url.searchParams
    const tags = params.getAll("tags")
    const query = normalizeSearch({
      q: params.get("q") ?? undefined,
      drupal_version: params.get("drupal_version") ?? undefined,
      tags: tags.length === 0 ? undefined : tags,
      content_type: params.get("content_type") ?? undefined,
      access_level: params.get("access_level") ?? undefined,
      sort: params.get("sort") ?? undefined,
      limit: params.get("limit") ?? undefined,
      offset: params.get("offset") ?? undefined
    })
    return Either.isRight(query) ? searchCacheKey(partition, query.right) : undefined
  }
  if (path === "/tools") return discoveryCacheKey(partition, "tools")
  if (path === "/methods") return discoveryCacheKey(partition, "methods")
  const match = CONTENT.exec(path)
  if (match === null) return undefined
  const id = Number(match[1])
  if (match[2] !== undefined) return markdownCacheKey(partition, id)
  const include = url.searchParams.get("include_content")
  const format = url.searchParams.get("format")
  const includeContent = include === null || include === "" || include === "true" || include === "1"
    ? true
    : include === "false" || include === "0"
    ? false
    : undefined
  const fmt = format === null || format === "" || format === "html" ? "html" : format === "markdown" ? "markdown" : undefined
  return includeContent === undefined || fmt === undefined ? undefined : contentCacheKey(partition, id, includeContent, fmt)
}

/** Builds the hit path. It never throws: any surprise falls through to the Effect app. */
export const make = (options: HitPathOptions): FastPath => (req: Http.IncomingMessage, res: Http.ServerResponse) => {
  if (req.method !== "GET" || req.url === undefined) return false
  try {
    const header = req.headers.authorization
    if (header !== undefined && header.length > MAX_AUTHORIZATION_LENGTH) return false
    const partition = options.access.partitionSync(fromAuthorizationHeader(header))
    if (partition === undefined) return false
    const key = keyOf(new URL(req.url, "http://gateway"), partition.id)
    if (key === undefined) return false
    const now = Date.now()
    const entry = options.memory.lookupSync(key, now)
    if (entry === undefined || now >= entry.freshUntil) return false
    const response = responseOf(entry.contentType)
    res.writeHead(response.status, {
      "content-type": response.contentType,
      "content-length": entry.value.byteLength,
      "x-cache": "HIT-MEMORY",
      "server-timing": `cache;desc="HIT-MEMORY"`
    })
    res.end(entry.value)
    options.onHit?.()
    return true
  } catch {
    return false
  }
}

/** The hit path over the cache's memory tier and the caller partitions, counting its hits as memory hits. */
export const layer: Layer.Layer<HitPath, never, TieredCacheService | AccessScope> = Layer.effect(
  HitPath,
  Effect.gen(function*() {
    const cache = yield* TieredCacheService
    const access = yield* AccessScope
    return make({ memory: cache.memory, access, onHit: () => Metrics.recordCacheLookup("memory", "hit") })
  })
)
