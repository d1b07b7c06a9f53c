/**
 * `/mcp` on the gateway's router: every verb goes to {@link McpServer} (which answers 405 to
 * all but POST), with the body read within the listener's body limit, or the bytes the listener
 * read ahead for the MCP fast path (`McpFastPath`) when it handed the request on.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServerRequest } from "@effect/platform-node"
import { Effect, Either } from "effect"
import { bufferedBody } from "../listener/Listener.js"
import { routes } from "../listener/Routes.js"
import { McpServer } from "./McpServer.js"

const respond = (reply: { readonly status: number; readonly headers: { readonly [name: string]: string }; readonly body?: unknown }) =>
  reply.body === undefined
    ? HttpServerResponse.empty({ status: reply.status, headers: reply.headers })
    : HttpServerResponse.text(JSON.stringify(reply.body), { status: reply.status, headers: reply.headers, contentType: "application/json" })

/** The route, added to the `HttpApi` app's router; the {@link McpServer} comes from the context (shared with the fast path). */
export const layer = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const server = yield* McpServer
    yield* router.all(
      routes.mcp.path,
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const ahead = request.method === "POST" ? bufferedBody(NodeHttpServerRequest.toIncomingMessage(request)) : undefined
        const body = request.method !== "POST"
          ? Either.right("")
          : ahead !== undefined
          ? Either.right(ahead.toString("utf8"))
          : yield* Effect.either(request.text)
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
)
