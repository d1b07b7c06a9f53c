/**
 * HTTP: the raw listener, the fast path it calls first for every request (telemetry, then
 * memory hits), and the Effect app it hands every other request to.
 */
import { HttpApiBuilder, HttpMiddleware, HttpServer } from "@effect/platform"
import * as PlatformErrors from "../src/http/PlatformErrors.js"
import { Effect, Layer, Option } from "effect"
import { TieredCache } from "../src/cache/TieredCache.js"
import { TracingConfig } from "../src/Config.js"
import { AdminHandlers } from "../src/http/AdminHandlers.js"
import { GatewayApi } from "../src/http/Api.js"
import { ContentHandlers } from "../src/http/ContentHandlers.js"
import * as GatewayServer from "../src/http/GatewayServer.js"
import * as HitPath from "../src/http/HitPath.js"
import { MethodsHandlers } from "../src/http/MethodsHandlers.js"
import { withRequestContext } from "../src/http/RequestContext.js"
import { SystemHandlers } from "../src/http/SystemHandlers.js"
import { ClientLimits, layer as ClientLimitsLive } from "../src/limits/ClientLimits.js"
import { HitPath as HitPathTag, ListenerState } from "../src/listener/Listener.js"
import * as McpFastPath from "../src/mcp/McpFastPath.js"
import * as McpRoute from "../src/mcp/McpRoute.js"
import { McpServer } from "../src/mcp/McpServer.js"
import { routes } from "../src/listener/Routes.js"
import * as HttpTelemetry from "../src/telemetry/HttpTelemetry.js"
import * as ResourceMonitor from "../src/telemetry/ResourceMonitor.js"
import * as SloMonitor from "../src/telemetry/SloMonitor.js"
import * as StatusPage from "../src/telemetry/StatusPage.js"
import { UpstreamLive } from "./Upstream.js"

/** The listener (`GatewayServer`) on `PORT`, handed the fast path; it announces where it listens. */
export const ListenerLive = Layer.effectDiscard(
  Effect.flatMap(ListenerState, (state) => Effect.logInfo(`gateway listening on port ${state.port}`))
).pipe(Layer.provideMerge(GatewayServer.layerConfig()))

/**
 * The Effect app served on the listener: each request gets its log context and trace sampling.
 * The platform's own server span is off: it exports the full URL (query strings, and so any token
 * a client put there); `withRequestContext` opens the sampled requests' server span with the path only.
 */
export const ServeLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const app = yield* HttpApiBuilder.httpApp
    const tracing = yield* TracingConfig
    const ratio = Option.isSome(tracing.endpoint) ? tracing.sampleRatio : 0
    return HttpServer.serve(withRequestContext(ratio)(app)).pipe(HttpMiddleware.withTracerDisabledWhen(() => true))
  })
)

/** Samples process, pool and memory-tier gauges; built where the listener's state is in context. */
export const ResourceMonitorLive = Layer.unwrapEffect(
  Effect.map(TieredCache, (cache) => ResourceMonitor.layerFromContext({ memoryCache: () => cache.memory.stats() }))
)

/** The SLO monitor and the status page over it. */
export const MonitorsLive = StatusPage.layerConfig.pipe(Layer.provideMerge(SloMonitor.layerConfig()))

/** The memory-hit path behind the per-client bounds: a client over its bounds is answered 429 first. */
export const GuardedHitPathLive = Layer.effect(
  HitPathTag,
  Effect.map(Effect.all([ClientLimits, HitPathTag]), ([limits, hits]) => limits.guard(hits))
).pipe(Layer.provide(HitPath.layer), Layer.provide(ClientLimitsLive))

/** The MCP server: one instance for the `/mcp` route and the MCP fast path (which answers only calls it validated). */
export const McpServerLive = McpServer.Default.pipe(Layer.provide(UpstreamLive))

/**
 * The fast path: telemetry first (timing every response, `/metrics`, `/status`), then the
 * per-client bounds (429 beyond them), then the memory-hit path (fresh memory hits of callers
 * whose partition is known); beside it, the MCP fast path (`POST /mcp` bodies read ahead:
 * `tools/call` of the cached tools answered from fresh memory hits).
 */
export const FastPathLive = HttpTelemetry.layer.pipe(
  Layer.provide(GuardedHitPathLive),
  Layer.provide(MonitorsLive),
  Layer.merge(McpFastPath.layer.pipe(Layer.provide(McpServerLive)))
)

/**
 * The Effect app: the API with every group's handlers, its OpenAPI document at `/openapi.json`,
 * and the MCP endpoint (`/mcp`, a raw route beside the API).
 */
export const AppLive = HttpApiBuilder.middlewareOpenApi({ path: routes.openapi.path }).pipe(
  Layer.merge(McpRoute.layer.pipe(Layer.provide(McpServerLive))),
  Layer.provideMerge(
    HttpApiBuilder.api(GatewayApi).pipe(Layer.provide([SystemHandlers, ContentHandlers, MethodsHandlers, AdminHandlers]))
  ),
  Layer.provideMerge(PlatformErrors.layer),
  Layer.provideMerge(HttpApiBuilder.Router.Live),
  Layer.provideMerge(HttpApiBuilder.Middleware.layer)
)
