/**
 * Client: the pooled, batching Drupal JSON-RPC client, and where Drupal is: `DRUPAL_URL` when
 * set; otherwise the built-in simulator is started in-process (on `SIM_PORT`) and used as the
 * upstream, so the gateway runs with nothing else installed.
 */
import { Effect, Layer, Option } from "effect"
import { DrupalUrl } from "../src/Config.js"
import { DrupalEndpoint, layer as drupalEndpointLayer } from "../src/drupal/DrupalEndpoint.js"
import * as DrupalRpc from "../src/drupal/DrupalRpc.js"
import * as Simulator from "../src/simulator/Simulator.js"
import * as Metrics from "../src/telemetry/Metrics.js"

const embedded = Layer.effect(
  DrupalEndpoint,
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    yield* Effect.logWarning(
      `DEMO MODE — DRUPAL_URL is not set: started the built-in Drupal simulator at ${sim.url} and using it as the upstream. ` +
        "Its demo users' tokens (README, \"Demo users\"; one is an administrator) work against this gateway; it listens on loopback only " +
        "unless DEMO_PUBLIC=true. Set DRUPAL_URL for production."
    )
    return { url: new URL(sim.url), embedded: true }
  })
).pipe(Layer.provide(Simulator.layerConfig()))

/** The upstream endpoint: configured, or the embedded simulator. */
export const UpstreamLive = Layer.unwrapEffect(
  Effect.map(DrupalUrl, Option.match({
    onNone: () => embedded,
    onSome: (url) =>
      Layer.effectDiscard(Effect.logInfo(`upstream Drupal at ${url.origin}`)).pipe(
        Layer.provideMerge(drupalEndpointLayer(url))
      )
  }))
)

/** The pooled, batching JSON-RPC client of the upstream, its calls and breaker wired to the metrics. */
export const DrupalRpcLive = DrupalRpc.layerConfig(Metrics.drupalRpcHooks(), Metrics.breakerStateHook()).pipe(
  Layer.provide(UpstreamLive)
)
