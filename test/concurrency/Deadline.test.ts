/**
 * A deadline that forgives a busy event loop: a reply that reached the socket while the loop was
 * held past the deadline wins over the deadline timer, which node runs first.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
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
})
