/**
 * Services: what the handlers call. Cached content (the content API through the cache, as the
 * caller's partition), caller partitions, method discovery, health, and cache warming.
 */
import { Effect, Layer } from "effect"
import * as AccessScope from "../src/access/AccessScope.js"
import { TieredCache } from "../src/cache/TieredCache.js"
import { AccessConfig } from "../src/Config.js"
import { DISCOVERY_TAG } from "../src/content/CacheKeys.js"
import { anonymous } from "../src/drupal/Credentials.js"
import { CachedContent } from "../src/content/CachedContent.js"
import { Content } from "../src/content/Content.js"
import { WarmerLive } from "../src/content/Warmer.js"
import * as ArgumentValidator from "../src/discovery/ArgumentValidator.js"
import * as Discovery from "../src/discovery/Discovery.js"
import { Health } from "../src/health/Health.js"
import * as Metrics from "../src/telemetry/Metrics.js"
import { CacheLive } from "./Cache.js"
import { InfrastructureLive } from "./Infrastructure.js"
import { DrupalRpcLive, UpstreamLive } from "./Upstream.js"

/** Caller partitions, cached in the tiered cache. */
export const AccessScopeLive = AccessScope.layerConfig.pipe(Layer.provide([DrupalRpcLive, CacheLive]))

/**
 * Method discovery with its background refresh, keyed by access partition (a caller's
 * credentials are kept no longer than the partition TTL); a change invalidates cached method and
 * tool lists.
 */
export const DiscoveryLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const cache = yield* TieredCache
    const access = yield* AccessScope.AccessScope
    const { ttl } = yield* AccessConfig
    return Discovery.layerConfig({
      onChange: () => cache.invalidateTags([DISCOVERY_TAG]),
      // Only methods anonymous callers may see become metric labels (/metrics is public); the rest count as `other`.
      onMethods: (ids, partition) => {
        if (partition === AccessScope.anonymousPartition.id) Metrics.registerUpstreamMethods(ids)
      },
      prefetch: [anonymous],
      partitionOf: AccessScope.partitionIdOf(access),
      credentialTtl: ttl
    })
  })
).pipe(Layer.provide([DrupalRpcLive, ArgumentValidator.Default, CacheLive, AccessScopeLive]))

/** The content API through the cache. */
export const CachedContentLive = CachedContent.Default.pipe(
  Layer.provide(Content.Default.pipe(Layer.provide([DrupalRpcLive, UpstreamLive]))),
  Layer.provide([CacheLive, AccessScopeLive, DiscoveryLive])
)

/** Every service the handlers and the fast path use, and cache warming in the background. */
export const ServicesLive = Layer.mergeAll(
  Health.Default.pipe(Layer.provide([InfrastructureLive, UpstreamLive])),
  CachedContentLive,
  WarmerLive.pipe(Layer.provide(CachedContentLive)),
  AccessScopeLive,
  DiscoveryLive
)
