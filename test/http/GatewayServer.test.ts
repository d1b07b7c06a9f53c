import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Http from "node:http"
import * as GatewayServer from "../../src/http/GatewayServer.js"
import * as Listener from "../../src/listener/Listener.js"

const options: GatewayServer.GatewayServerOptions = {
  port: 0,
  host: "127.0.0.1",
  shutdownTimeout: "2 seconds",
  keepAliveTimeout: "5 seconds",
  headersTimeout: "5 seconds",
  requestTimeout: "10 seconds",
  maxBodyBytes: 1024
}

/** One GET on a fresh connection (no agent), so a refused listener shows as an error. */
const get = (port: number, path: string) =>
  Effect.async<{ status: number; body: string; connection: string | undefined }, Error>((resume) => {
    const req = Http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = ""
      res.setEncoding("utf8")
      res.on("data", (c) => (body += c))
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body, connection: res.headers.connection })))
      res.on("error", (e) => resume(Effect.fail(e)))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
  })

const start = (app: HttpRouter.HttpRouter<never, never>, extra: Partial<GatewayServer.GatewayServerOptions> = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      HttpServer.serve(app).pipe(Layer.provideMerge(GatewayServer.layer({ ...options, ...extra }))),
      scope
    )
    return { scope, port: Context.get(context, Listener.ListenerState).port, info: Context.get(context, Listener.ListenerState) }
  })

describe("GatewayServer", () => {
  it.live("a request in flight completes during shutdown, new connections are refused", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/slow",
          Effect.zipRight(Deferred.succeed(entered, undefined), Effect.sleep("400 millis")).pipe(
            Effect.as(HttpServerResponse.text("finished"))
          )
        )
      )
      const { info, port, scope } = yield* start(app)
      const inFlight = yield* Effect.fork(get(port, "/slow"))
      yield* Deferred.await(entered)
      assert.strictEqual(info.inFlight(), 1)

      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.sleep("50 millis")
      assert.isTrue(info.draining())
      const refused = yield* Effect.either(get(port, "/slow"))
      assert.isTrue(refused._tag === "Left", "a new connection during drain must be refused")

      const response = yield* Fiber.join(inFlight)
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.body, "finished")
      assert.strictEqual(response.connection, "close")
      yield* Fiber.join(closing)
      assert.strictEqual(info.inFlight(), 0)
    }))

  it.live("a request longer than the shutdown bound is cut when the bound passes", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.get(
          "/hang",
          Effect.zipRight(Deferred.succeed(entered, undefined), Effect.never).pipe(Effect.as(HttpServerResponse.empty()))
        )
      )
      const { port, scope } = yield* start(app, { shutdownTimeout: "200 millis" })
      const inFlight = yield* Effect.fork(Effect.either(get(port, "/hang")))
      yield* Deferred.await(entered)
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      const elapsed = Date.now() - started
      assert.isAtLeast(elapsed, 190)
      assert.isBelow(elapsed, 2_000)
      const result = yield* Fiber.join(inFlight)
      assert.strictEqual(result._tag, "Left", "the hanging request's connection is closed")
    }))

  it.live("the fast path answers before the Effect app; other requests fall through", () =>
    Effect.gen(function*() {
      let appCalls = 0
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/x", Effect.sync(() => appCalls++).pipe(Effect.as(HttpServerResponse.text("app"))))
      )
      const fastPath: Listener.FastPath = (req, res) => {
        if (req.url !== "/fast") return false
        res.end("fast")
        return true
      }
      const { port, scope } = yield* start(app, { fastPath })
      const fast = yield* get(port, "/fast")
      const slow = yield* get(port, "/x")
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual([fast.body, slow.body, appCalls], ["fast", "app", 1])
    }))

  it.live("a port in use fails with ServerStartError", () =>
    Effect.gen(function*() {
      const { port, scope } = yield* start(HttpRouter.empty)
      const second = yield* Effect.either(Effect.scoped(GatewayServer.make({ ...options, port })))
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(second._tag, "Left")
      if (second._tag === "Left") assert.strictEqual(second.left._tag, "ServerStartError")
    }))
})
