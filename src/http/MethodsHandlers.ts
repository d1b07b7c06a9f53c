/**
 * Handlers of the `methods` group: the caller's method set, its MCP tools, and validated
 * pass-through calls.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder } from "@effect/platform"
import { Effect } from "effect"
import { Discovery } from "../discovery/Discovery.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"
import { GatewayApi } from "./Api.js"
import { requestCredentials } from "./ContentHandlers.js"
import { toApiError } from "./ErrorMapping.js"

/** The `methods` group's handlers. */
export const MethodsHandlers = HttpApiBuilder.group(GatewayApi, "methods", (handlers) =>
  Effect.gen(function*() {
    const discovery = yield* Discovery
    const rpc = yield* DrupalRpc
    return handlers
      .handle("methods", () =>
        Effect.gen(function*() {
          const set = yield* discovery.methodSet(yield* requestCredentials)
          return { fingerprint: set.fingerprint, methods: set.methods }
        }).pipe(Effect.mapError(toApiError)))
      .handle("tools", () =>
        Effect.gen(function*() {
          const set = yield* discovery.methodSet(yield* requestCredentials)
          return { fingerprint: set.fingerprint, tools: set.tools }
        }).pipe(Effect.mapError(toApiError)))
      .handle("rpc", ({ path, payload }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          yield* discovery.validate(credentials, path.method, payload)
          return { result: yield* rpc.call(path.method, payload, credentials) }
        }).pipe(Effect.mapError(toApiError)))
  }))
