import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
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

/**
 * Opens `clients` connections to a listener with `acceptHandles` extra handles while its loop is
 * held (the kernel completes them into the backlog), then counts the connections the first loop
 * turn accepted, and asks `/x` on each connection.
 */
const measureBurst = async (app: HttpRouter.HttpRouter<never, never>, acceptHandles: number, clients: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const context = yield* Layer.build(HttpServer.serve(app).pipe(Layer.provideMerge(GatewayServer.layer({ ...options, acceptHandles }))))
    const state = Context.get(context, Listener.ListenerState)
    const sockets = yield* Effect.promise(() => connectAll(state.port, clients, state.connectionsAccepted))
    const mostInOneTurn = sockets.mostInOneTurn
    const answers = yield* Effect.promise(() => Promise.all(sockets.sockets.map((socket) => askOn(socket, "/x"))))
    return { mostInOneTurn, answers }
  })))

/**
 * Connects `n` sockets at once (the kernel completes the handshakes into the listener's
 * backlog) and follows the server's accepts loop turn by loop turn (a `setImmediate` runs once
 * per turn, after its poll phase): the most connections one turn accepted.
 */
const connectAll = (port: number, n: number, countAccepted: () => number) =>
  new Promise<{ readonly sockets: ReadonlyArray<Net.Socket>; readonly mostInOneTurn: number }>((resolve, reject) => {
    const base = countAccepted()
    const sockets = Array.from({ length: n }, () => Net.connect(port, "127.0.0.1"))
    for (const s of sockets) s.once("error", reject)
    let last = base
    let most = 0
    let turns = 0
    const turn = () => {
      const now = countAccepted()
      most = Math.max(most, now - last)
      last = now
      if (now - base >= n) return resolve({ sockets, mostInOneTurn: most })
      if (++turns > 100_000) return reject(new Error(`only ${now - base} of ${n} connections accepted`))
      setImmediate(turn)
    }
    setImmediate(turn)
  })

/** One `GET path` on a raw socket; resolves with the body (the connection is then closed). */
const askOn = (socket: Net.Socket, path: string) =>
  new Promise<string>((resolve, reject) => {
    let raw = ""
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      raw += chunk
      const head = raw.indexOf("\r\n\r\n")
      const length = /content-length: (\d+)/i.exec(raw)
      if (head >= 0 && length !== null && raw.length >= head + 4 + Number(length[1])) {
        socket.destroy()
        resolve(raw.slice(head + 4))
      }
    })
    socket.once("error", reject)
    socket.write(`GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`)
  })

/** Resolves once `check` holds (polled every 5 ms; fails after 5 s). */
const waitFor = (check: () => boolean) =>
  new Promise<void>((resolve, reject) => {
    const started = Date.now()
    const poll = () => {
      if (check()) return resolve()
      if (Date.now() - started > 5_000) return reject(new Error("condition not met within 5 s"))
      setTimeout(poll, 5)
    }
    poll()
  })

describe("GatewayServer", () => {
  it.live.each([0, 8])("a request in flight completes during shutdown, new connections are refused (%i extra accepting handles)", (acceptHandles) =>
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
      const { info, port, scope } = yield* start(app, { acceptHandles })
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

  it.live("a request that arrives before the app is attached is held and answered by the app once it is", () =>
    Effect.scoped(Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(HttpRouter.get("/x", Effect.succeed(HttpServerResponse.text("served"))))
      const { server, state } = yield* GatewayServer.make({ ...options, acceptHandles: 4 })
      const early = yield* Effect.fork(get(state.port, "/x"))
      // Accepted and parsed, but no app yet: held (not refused as a shutdown).
      yield* Effect.promise(() => waitFor(() => state.inFlight() === 1))
      yield* Effect.sleep("100 millis")
      assert.isNull(early.unsafePoll(), "the early request must wait for the app")
      yield* server.serve(app)
      const answer = yield* Fiber.join(early)
      assert.strictEqual(answer.status, 200)
      assert.strictEqual(answer.body, "served")
      assert.strictEqual((yield* get(state.port, "/x")).body, "served")
    })))

  it.live("early requests are bounded: one too many, or one held too long, is answered 503 starting", () =>
    Effect.scoped(Effect.gen(function*() {
      const { state } = yield* GatewayServer.make({ ...options, earlyMaxRequests: 1, earlyWait: "300 millis" })
      const held = yield* Effect.fork(get(state.port, "/x"))
      yield* Effect.promise(() => waitFor(() => state.inFlight() === 1))
      const tooMany = yield* get(state.port, "/x")
      assert.strictEqual(tooMany.status, 503)
      assert.strictEqual(JSON.parse(tooMany.body).error.code, "starting")
      assert.isNull(held.unsafePoll(), "the held request is still waiting")
      const late = yield* Fiber.join(held)
      assert.strictEqual(late.status, 503)
      assert.strictEqual(JSON.parse(late.body).error.code, "starting")
      // Its place is free again.
      const again = yield* Effect.fork(get(state.port, "/x"))
      yield* Effect.promise(() => waitFor(() => state.inFlight() === 1))
      assert.strictEqual((yield* Fiber.join(again)).status, 503)
    })))

  it.live("with extra accepting handles, one loop turn accepts a burst of waiting connections, all served by the one app", () =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(HttpRouter.get("/x", Effect.succeed(HttpServerResponse.text("app"))))
      const server = yield* Effect.promise(() => measureBurst(app, 12, 20))
      // 20 connections wait in the backlog: a turn takes one per handle (13), the next the rest.
      assert.strictEqual(server.mostInOneTurn, 13, "one connection per handle in a turn")
      assert.deepStrictEqual(server.answers, Array.from({ length: 20 }, () => "app"))
      const single = yield* Effect.promise(() => measureBurst(app, 0, 5))
      assert.strictEqual(single.mostInOneTurn, 1, "without extra handles libuv takes one per turn")
      assert.deepStrictEqual(single.answers, Array.from({ length: 5 }, () => "app"))
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
