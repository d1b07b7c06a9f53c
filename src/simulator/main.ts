/**
 * `npm run simulator`: the Drupal JSON-RPC simulator on its own, configured by the `SIM_*` keys
 * (see `SimulatorConfig.ts`). Logs where it listens and the demo credentials.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { DEMO_BASIC_AUTH, DEMO_TOKENS, layerConfig, Simulator } from "./Simulator.js"

const Announce = Layer.effectDiscard(
  Effect.gen(function*() {
    const sim = yield* Simulator
    yield* Effect.logInfo(`Drupal JSON-RPC simulator listening: ${sim.url}/jsonrpc (discovery: ${sim.url}/jsonrpc/methods)`)
    yield* Effect.logInfo(`corpus: ${sim.corpus.size} items (seed ${sim.corpus.seed})`)
    yield* Effect.logInfo(
      `demo bearer tokens: ${Object.entries(DEMO_TOKENS).map(([who, token]) => `${who}=${token}`).join(", ")}`
    )
    yield* Effect.logInfo(
      `demo basic auth: ${Object.values(DEMO_BASIC_AUTH).map((c) => `${c.user}:${c.password}`).join(", ")}; no Authorization header = anonymous`
    )
    yield* Effect.logInfo(`control routes: ${sim.url}/__sim/stats, /__sim/faults, /__sim/reset, /__sim/methods`)
  })
).pipe(Layer.provide(layerConfig()))

NodeRuntime.runMain(Layer.launch(Announce))
