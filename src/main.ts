/**
 * Starts the gateway (see `layers/Gateway.ts`). SIGINT / SIGTERM close it gracefully.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { GatewayLive } from "../layers/Gateway.js"
import { LoggingLive } from "../layers/Logging.js"

Layer.launch(GatewayLive).pipe(Effect.provide(LoggingLive), NodeRuntime.runMain({ disablePrettyLogger: true }))
