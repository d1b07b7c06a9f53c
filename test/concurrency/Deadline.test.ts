/**
 * A deadline that forgives a busy event loop: a reply that reached the socket while the loop was
 * held past the deadline wins over the deadline timer, which node runs first.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Either, Fiber } from "effect"
import * as net from "node:net"
import * as Deadline from "../../src/concurrency/Deadline.js"

/** An echo server on a free loopback port and a connected client, closed with the scope. */
const echo = Effect.acquireRelease(
  Effect.async<{ server: net.Server; client: net.Socket }>((resume) => {
    const server = net.createServer((socket) => socket.pipe(socket)).listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      const client = net.connect(port, "127.0.0.1", () => resume(Effect.succeed({ server, client })))
    })
  }),
  ({ client, server }) => Effect.sync(() => (client.destroy(), server.close()))
)

/** A server that echoes each read, then holds the event loop `holdMs`, and a connected client. */
const echoThenHold = (holdMs: number) =>
  Effect.acquireRelease(
    Effect.async<{ server: net.Server; client: net.Socket }>((resume) => {
      const server = net.createServer((socket) => {
        socket.on("error", () => {})
        socket.on("data", (data) => {
          socket.write(data)
          const until = Date.now() + holdMs
          while (Date.now() < until) {
            // held
          }
        })
      }).listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        const client = net.connect(port, "127.0.0.1", () => resume(Effect.succeed({ server, client })))
      })
    }),
    ({ client, server }) => Effect.sync(() => (client.destroy(), server.close()))
  )

/**
 * Sends "ping" and waits for it back; in the loop's next check phase (once the deadline timer of
 * the race is set), holds the event loop `holdMs`: the echo arrives in the socket buffer meanwhile.
 */
const roundTrip = (client: net.Socket, holdMs: number) =>
  Effect.async<string>((resume) => {
    client.once("data", (data) => resume(Effect.succeed(data.toString())))
    client.write("ping")
    setImmediate(() => {
      const until = Date.now() + holdMs
      while (Date.now() < until) {
        // held
      }
    })
  })

describe("Deadline.timeoutFail", () => {
  it.scopedLive("a reply that arrived while the loop was held past the deadline is taken, where Effect.timeoutFail fails", () =>
    Effect.gen(function*() {
      // A connection per race: the interrupted round trip's reply is not the next one's.
      const first = yield* echo
      const second = yield* echo
      const plain = yield* Effect.either(
        Effect.timeoutFail(roundTrip(first.client, 150), { duration: "20 millis", onTimeout: () => "timeout" as const })
      )
      assert.deepStrictEqual(plain, Either.left("timeout"), "the stock timeout fires first")
      const forgiving = yield* Effect.either(
        Deadline.timeoutFail(roundTrip(second.client, 150), { duration: "20 millis", onTimeout: () => "timeout" as const })
      )
      assert.deepStrictEqual(forgiving, Either.right("ping"))
    }))

  it.live("an operation that does not answer still times out", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(Deadline.timeoutFail(Effect.never, { duration: "20 millis", onTimeout: () => "timeout" as const }))
      assert.deepStrictEqual(result, Either.left("timeout"))
    }))

  it.live("on a timeout the operation is interrupted before the failure is answered", () =>
    Effect.gen(function*() {
      const interrupted = yield* Deferred.make<void>()
      const result = yield* Effect.either(Deadline.timeoutFail(
        Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined)),
        { duration: "20 millis", onTimeout: () => "timeout" as const }
      ))
      assert.deepStrictEqual(result, Either.left("timeout"))
      assert.isTrue(yield* Deferred.isDone(interrupted), "the operation was interrupted first")
    }))

  it.live("interrupting the caller interrupts the operation; a finished operation answers its own result or failure", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const caller = yield* Effect.fork(Deadline.timeoutFail(
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined))),
        { duration: "10 seconds", onTimeout: () => "timeout" as const }
      ))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(caller)
      assert.isTrue(yield* Deferred.isDone(interrupted))
      const ok = yield* Deadline.timeoutFail(Effect.succeed(7), { duration: "1 second", onTimeout: () => "timeout" as const })
      assert.strictEqual(ok, 7)
      const failed = yield* Effect.either(Deadline.timeoutFail(Effect.fail("boom" as const), { duration: "1 second", onTimeout: () => "timeout" as const }))
      assert.deepStrictEqual(failed, Either.left("boom"))
    }))
})

describe("Deadline.promiseWithin", () => {
  const bound = { duration: Duration.millis(20), onTimeout: () => "timeout", onError: (cause: unknown) => `error: ${String(cause)}` }

  it.scopedLive("a reply that arrived while the loop was held past the deadline is taken", () =>
    Effect.gen(function*() {
      // This server answers, then holds the loop (it shares the process): the reply waits in the
      // client's socket buffer while the deadline passes.
      const { client } = yield* echoThenHold(150)
      // A plain promise settled in the socket's callback, as a client library's reply is.
      const reply = yield* Deadline.promiseWithin(
        () =>
          new Promise<string>((resolve) => {
            client.once("data", (data) => resolve(data.toString()))
            client.write("ping")
          }),
        bound
      )
      assert.strictEqual(reply, "ping")
    }))

  it.live("no answer times out; a rejection and a throw are the operation's errors", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Effect.either(Deadline.promiseWithin(() => new Promise<never>(() => {}), bound)), Either.left("timeout"))
      assert.deepStrictEqual(yield* Effect.either(Deadline.promiseWithin(() => Promise.reject(new Error("refused")), bound)), Either.left("error: Error: refused"))
      assert.deepStrictEqual(
        yield* Effect.either(Deadline.promiseWithin(() => {
          throw new Error("thrown")
        }, bound)),
        Either.left("error: Error: thrown")
      )
      assert.strictEqual(yield* Deadline.promiseWithin(() => Promise.resolve(3), bound), 3)
    }))
})
