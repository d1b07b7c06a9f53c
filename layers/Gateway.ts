/**
 * The gateway program. Read top to bottom, it is the way of one request:
 *
 * 1. **HTTP** (`layers/Http.ts`): the listener (`src/http/GatewayServer.ts`) takes the request
 *    and gives it an id;
 * 2. **fast path**: telemetry (`src/telemetry/HttpTelemetry.ts`) times it and answers `/metrics`
 *    and `/status`; the memory-hit path (`src/http/HitPath.ts`) answers a fresh memory hit;
 * 3. **the Effect app**: the `HttpApi` router and its handlers (`src/http/*Handlers.ts`);
 * 4. **services** (`layers/Services.ts`): cached content, caller partitions, discovery, health;
 * 5. **tiers** (`layers/Cache.ts`): the tiered cache (memory → Redis → PostgreSQL) and its bus;
 * 6. **client** (`layers/Upstream.ts`): the batching Drupal JSON-RPC client
 *    (`src/drupal/DrupalRpc.ts`), which calls the upstream.
 */
import { Effect, Layer } from "effect"
import { CacheLive } from "./Cache.js"
import { AppLive, FastPathLive, ListenerLive, ResourceMonitorLive, ServeLive } from "./Http.js"
import { InfrastructureLive } from "./Infrastructure.js"
import { ServicesLive } from "./Services.js"
import { TracingLive } from "./Tracing.js"
import { DrupalRpcLive } from "./Upstream.js"

/**
 * `front` over the context `back` built: `back` is built first, in a scope that encloses
 * `front`'s, so no connection is accepted before the program can serve it, and at shutdown the
 * listener drains the requests in flight before any service they use is released.
 */
const inFrontOf = <A2, E2>(back: Layer.Layer<A2, E2>) => <A, E, R>(front: Layer.Layer<A, E, R>) =>
  Layer.unwrapScoped(Effect.map(Layer.build(back), (built) => front.pipe(Layer.provide(Layer.succeedContext(built)))))

/** The whole gateway: build it with `Layer.launch`. */
export const GatewayLive = Layer.mergeAll(ServeLive, ResourceMonitorLive).pipe( // 1. HTTP: the app served on
  Layer.provide(ListenerLive), //                                                  the listener
  inFrontOf(
    FastPathLive.pipe( //                                                      2. fast path
      Layer.merge(AppLive), //                                                 3. the Effect app
      Layer.provideMerge(ServicesLive), //                                     4. services
      Layer.provideMerge(CacheLive), //                                        5. tiers
      Layer.provideMerge(DrupalRpcLive), //                                    6. client
      // In the context too, so the resource sampler finds the Redis and PostgreSQL pools.
      Layer.provideMerge(InfrastructureLive)
    )
  ),
  Layer.provide(TracingLive)
)
