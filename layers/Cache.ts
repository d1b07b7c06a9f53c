/**
 * Tiers: the tiered cache over whichever connections are configured (memory always; Redis and
 * PostgreSQL when their URLs are set), with its invalidation bus and load lease, its telemetry
 * wired to the metrics. What it builds and why is in `src/cache/CacheStack.ts`.
 */
import { Layer } from "effect"
import * as CacheStack from "../src/cache/CacheStack.js"
import { NAMESPACES } from "../src/content/CacheKeys.js"
import * as Metrics from "../src/telemetry/Metrics.js"
import { InfrastructureLive } from "./Infrastructure.js"

/** The tiered cache (`TieredCache`). After a bus outage every content namespace is dropped from memory. */
export const CacheLive = CacheStack.layerConfig(
  {
    hooks: {
      onLookup: Metrics.cacheHooks.onLookup,
      onOriginResult: Metrics.cacheHooks.onOriginLoad,
      onWriteFailed: Metrics.cacheHooks.onWriteFailed,
      onMemoryDropped: Metrics.cacheHooks.onMemoryDropped
    },
    onEvict: Metrics.cacheHooks.onEvict,
    onBreakerChange: Metrics.breakerStateHook()
  },
  NAMESPACES
).pipe(Layer.provide(InfrastructureLive))
