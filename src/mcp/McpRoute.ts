/**
 * `/mcp` on the gateway's router: every verb goes to {@link McpServer} (which answers 405 to
 * all but POST), with the body read within the listener's body limit.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Layer } from "effect"
import { routes } from "../listener/Routes.js"
import { McpServer } from "./McpServer.js"

const respond = (reply: { readonly status: number; readonly headers: { readonly [name: string]: string }; readonly body?: unknown }) =>
  reply.body === undefined
    ? HttpServerResponse.empty({ status: reply.status, headers: reply.headers })
    : HttpServerResponse.text(JSON.stringify(reply.body), { status: reply.status, headers: reply.headers, contentType: "application/json" })

/** The route, added to the `HttpApi` app's router. */
export const layer = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const server = yield* McpServer
    yield* router.all(
      routes.mcp.path,
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = request.method === "POST"
          ? yield* Effect.either(request.text)
          : { _tag: "Right" as const, right: "" }
        if (body._tag === "Left") {
          return HttpServerResponse.text(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32700, message: "The request body could not be read" } }), {
            status: 400,
            contentType: "application/json"
          })
        }
        const reply = yield* server.handle({ method: request.method, headers: request.headers, body: body.right })
        return respond(reply)
      })
    )
  })
).pipe(Layer.provide(McpServer.Default))
