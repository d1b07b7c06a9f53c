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
import { CachedContent } from "../content/CachedContent.js"
import { requestCredentials, respond } from "./ContentHandlers.js"
import { failWithApiError } from "./ErrorMapping.js"
import * as Representation from "./Representation.js"

/** The `methods` group's handlers. */
export const MethodsHandlers = HttpApiBuilder.group(GatewayApi, "methods", (handlers) =>
  Effect.gen(function*() {
    const discovery = yield* Discovery
    const content = yield* CachedContent
    const rpc = yield* DrupalRpc
    const semantics = yield* Representation.HttpSemanticsConfig
    return handlers
      .handleRaw("methods", () =>
        Effect.flatMap(requestCredentials, (credentials) => Effect.flatMap(content.methods(credentials), (served) => respond(served, semantics))).pipe(
          Effect.catchAll(failWithApiError)
        ))
      .handleRaw("tools", () =>
        Effect.flatMap(requestCredentials, (credentials) => Effect.flatMap(content.tools(credentials), (served) => respond(served, semantics))).pipe(
          Effect.catchAll(failWithApiError)
        ))
      .handle("rpc", ({ path, payload }) =>
        Effect.gen(function*() {
          const credentials = yield* requestCredentials
          yield* discovery.validate(credentials, path.method, payload)
          return { result: yield* rpc.call(path.method, payload, credentials) }
        }).pipe(Effect.catchAll(failWithApiError)))
  }))
