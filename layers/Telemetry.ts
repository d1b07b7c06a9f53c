/**
 * Telemetry: the SLO monitor, the status page, the resource sampler, and the listener's fast
 * path (metrics timing, `/metrics`, `/status`, then the memory-hit path of the cache).
 */
import { Effect, Layer } from "effect"
import { AccessScope } from "../src/access/AccessScope.js"
import { TieredCacheService } from "../src/cache/TieredCache.js"
import * as HitPath from "../src/http/HitPath.js"
import * as HttpTelemetry from "../src/telemetry/HttpTelemetry.js"
import * as Metrics from "../src/telemetry/Metrics.js"
import * as ResourceMonitor from "../src/telemetry/ResourceMonitor.js"
import * as SloMonitor from "../src/telemetry/SloMonitor.js"
import * as StatusPage from "../src/telemetry/StatusPage.js"

/** SLO monitor and the status page over it. */
export const MonitorsLive = StatusPage.layerConfig.pipe(Layer.provideMerge(SloMonitor.layerConfig()))

/** The listener's fast path: telemetry first, then memory hits. Needs the cache and the partitions. */
export const FastPathLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const cache = yield* TieredCacheService
    const access = yield* AccessScope
    const hits = HitPath.make({ memory: cache.memory, access, onHit: () => Metrics.recordCacheLookup("memory", "hit") })
    return HttpTelemetry.layerFastPath(hits)
  })
).pipe(Layer.provide(MonitorsLive))

/** Samples process, pool and memory-tier gauges (built where the listener's state is in context). */
export const ResourceMonitorLive = Layer.unwrapEffect(
  Effect.map(TieredCacheService, (cache) => ResourceMonitor.layerFromContext({ memoryCache: () => cache.memory.stats() }))
)
