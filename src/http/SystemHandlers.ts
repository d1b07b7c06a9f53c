/**
 * Handlers of the `system` group: liveness and readiness.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Health } from "../health/Health.js"
import { GatewayApi, NotReady } from "./Api.js"

/** The `system` group's handlers. */
export const SystemHandlers = HttpApiBuilder.group(GatewayApi, "system", (handlers) =>
  Effect.gen(function*() {
    const health = yield* Health
    return handlers
      .handle("health", () =>
        Effect.flatMap(health.report, (report) =>
          report.status === "ok" ? Effect.succeed(report) : Effect.fail(new NotReady(report))))
      .handle("live", () => Effect.succeed({ status: "ok" as const }))
  }))
