/**
 * The gateway program: the HTTP API on the gateway listener, over the services, the Drupal
 * client, the optional Redis and PostgreSQL connections and the upstream. Read top to bottom,
 * this is the system.
 */
import { HttpApiBuilder, HttpServer } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { TieredCacheService } from "../src/cache/TieredCache.js"
import { DISCOVERY_TAG } from "../src/content/CacheKeys.js"
import { CachedContent } from "../src/content/CachedContent.js"
import { Content } from "../src/content/Content.js"
import { WarmerLive } from "../src/content/Warmer.js"
import * as ArgumentValidator from "../src/discovery/ArgumentValidator.js"
import * as Discovery from "../src/discovery/Discovery.js"
import * as DrupalRpc from "../src/drupal/DrupalRpc.js"
import { Health } from "../src/health/Health.js"
import { GatewayApi } from "../src/http/Api.js"
import { AdminHandlers } from "../src/http/AdminHandlers.js"
import { ContentHandlers } from "../src/http/ContentHandlers.js"
import * as GatewayServer from "../src/http/GatewayServer.js"
import { MethodsHandlers } from "../src/http/MethodsHandlers.js"
import { withRequestContext } from "../src/http/RequestContext.js"
import { SystemHandlers } from "../src/http/SystemHandlers.js"
import { TracingConfig } from "../src/Config.js"
import * as Metrics from "../src/telemetry/Metrics.js"
import { AccessScopeLive, TieredCacheLive } from "./Cache.js"
import { InfrastructureLive } from "./Infrastructure.js"
import { FastPathLive, ResourceMonitorLive } from "./Telemetry.js"
import { TracingLive } from "./Tracing.js"
import { UpstreamLive } from "./Upstream.js"

/** The pooled, batching JSON-RPC client of the upstream. */
export const DrupalRpcLive = DrupalRpc.layerConfig(Metrics.drupalRpcHooks(), Metrics.breakerStateHook()).pipe(
  Layer.provide(UpstreamLive)
)

/** The tiered cache over the configured tiers. */
export const CacheLive = TieredCacheLive.pipe(Layer.provide(InfrastructureLive))

/** Method discovery with its background refresh; a change invalidates cached method and tool lists. */
export const DiscoveryLive = Layer.unwrapEffect(
  Effect.map(TieredCacheService, (cache) =>
    Discovery.layerConfig({
      onChange: () => cache.invalidateTags([DISCOVERY_TAG]),
      onMethods: (ids) => void Metrics.registerUpstreamMethods(ids)
    }))
).pipe(Layer.provide([DrupalRpcLive, ArgumentValidator.Default, CacheLive]))

/** Caller partitions. */
export const AccessLive = AccessScopeLive.pipe(Layer.provide([DrupalRpcLive, CacheLive]))

/** The content API through the cache. */
export const CachedContentLive = CachedContent.Default.pipe(
  Layer.provide(Content.Default.pipe(Layer.provide([DrupalRpcLive, UpstreamLive]))),
  Layer.provide([CacheLive, AccessLive, DiscoveryLive])
)

/** Services the handlers use, and cache warming in the background. */
export const ServicesLive = Layer.mergeAll(
  Health.Default.pipe(Layer.provide([InfrastructureLive, UpstreamLive])),
  CachedContentLive,
  WarmerLive.pipe(Layer.provide(CachedContentLive)),
  DiscoveryLive,
  DrupalRpcLive,
  CacheLive
)

/**
 * The API with every group's handlers and its OpenAPI document at `/openapi.json`, registered on
 * the router that `HttpLive` serves, and the listener's fast path (telemetry, memory hits).
 */
export const ApiLive = HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }).pipe(
  Layer.provideMerge(
    HttpApiBuilder.api(GatewayApi).pipe(
      Layer.provide([SystemHandlers, ContentHandlers, MethodsHandlers, AdminHandlers]),
      Layer.provide(ServicesLive)
    )
  ),
  Layer.provideMerge(HttpApiBuilder.Router.Live),
  Layer.provideMerge(HttpApiBuilder.Middleware.layer),
  Layer.provideMerge(FastPathLive.pipe(Layer.provide([CacheLive, AccessLive]))),
  Layer.provideMerge(ServicesLive),
  // In the context too, so the resource sampler finds the Redis and PostgreSQL pools.
  Layer.provideMerge(InfrastructureLive)
)

/** The listener, announcing where it listens. */
const ServerLive = Layer.effectDiscard(
  Effect.flatMap(GatewayServer.GatewayServerInfo, (info) => Effect.logInfo(`gateway listening on port ${info.port}`))
).pipe(Layer.provideMerge(GatewayServer.layerConfig()))

/** The HTTP side: the API's app served on the listener, and the resource sampler that reads the listener's state. */
const HttpLive = Layer.merge(
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const app = yield* HttpApiBuilder.httpApp
      const tracing = yield* TracingConfig
      const ratio = Option.isSome(tracing.endpoint) ? tracing.sampleRatio : 0
      return HttpServer.serve(withRequestContext(ratio)(app))
    })
  ),
  ResourceMonitorLive
).pipe(Layer.provide(ServerLive))

/**
 * The whole gateway: build it with `Layer.launch`. The services (and the embedded simulator) are
 * built first, in a scope that encloses the HTTP side's, so no connection is accepted before the
 * gateway can serve it, and at shutdown the listener drains the requests in flight before any
 * service they use (pools, batch loader, simulator) is released.
 */
export const GatewayLive = Layer.unwrapScoped(
  Effect.map(Layer.build(ApiLive), (api) => HttpLive.pipe(Layer.provide(Layer.succeedContext(api))))
).pipe(Layer.provide(TracingLive))
