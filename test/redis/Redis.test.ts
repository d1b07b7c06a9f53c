/**
 * The Redis adapter against a Redis that stops answering: the failure must surface as typed
 * errors of the calls that asked, never as an unhandled rejection that ends the process.
 *
 * The server here is a few lines of RESP over TCP that answers the connection handshake and
 * SUBSCRIBE until told to go silent on SUBSCRIBE — the state of a Redis that restarts under load
 * and answers late. A real redis-server cannot be made to drop exactly one command.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Redacted } from "effect"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import * as Redis from "../../src/redis/Redis.js"

/** Splits a RESP request stream into commands (arrays of bulk strings), as far as it is complete. */
const parseCommands = (buffer: string): { commands: Array<Array<string>>; rest: string } => {
  const commands: Array<Array<string>> = []
  let at = 0
  for (;;) {
    if (buffer[at] !== "*") break
    const head = buffer.indexOf("\r\n", at)
    if (head < 0) break
    const count = Number(buffer.slice(at + 1, head))
    let cursor = head + 2
    const args: Array<string> = []
    let complete = true
    for (let i = 0; i < count; i++) {
      const lenEnd = buffer.indexOf("\r\n", cursor)
      if (lenEnd < 0) {
        complete = false
        break
      }
      const len = Number(buffer.slice(cursor + 1, lenEnd))
      if (buffer.length < lenEnd + 2 + len + 2) {
        complete = false
        break
      }
      args.push(buffer.slice(lenEnd + 2, lenEnd + 2 + len))
      cursor = lenEnd + 2 + len + 2
    }
    if (!complete) break
    commands.push(args)
    at = cursor
  }
  return { commands, rest: buffer.slice(at) }
}

const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`

/** A RESP server that can drop its connections and stop answering SUBSCRIBE. */
const fakeRedis = Effect.acquireRelease(
  Effect.async<{ port: number; sockets: Set<net.Socket>; state: { answerSubscribe: boolean; subscribes: number }; server: net.Server }>(
    (resume) => {
      const sockets = new Set<net.Socket>()
      const state = { answerSubscribe: true, subscribes: 0 }
      const server = net.createServer((socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
        let buffered = ""
        socket.setEncoding("utf8").on("data", (chunk: string) => {
          const { commands, rest } = parseCommands(buffered + chunk)
          buffered = rest
          for (const [name, ...args] of commands) {
            const command = name!.toLowerCase()
            if (command === "info") socket.write(bulk("# Server\r\nloading:0\r\n"))
            else if (command === "ping") socket.write("+PONG\r\n")
            else if (command === "subscribe") {
              state.subscribes++
              if (!state.answerSubscribe) continue
              args.forEach((channel, i) => socket.write(`*3\r\n${bulk("subscribe")}${bulk(channel)}:${i + 1}\r\n`))
            } else socket.write("+OK\r\n")
          }
        })
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ port: (server.address() as AddressInfo).port, sockets, state, server })))
    }
  ),
  ({ server, sockets }) =>
    Effect.async<void>((resume) => {
      for (const socket of sockets) socket.destroy()
      server.close(() => resume(Effect.void))
    })
)

describe("Redis adapter", () => {
  it.scopedLive("a subscriber whose re-subscription after a reconnection times out does not raise an unhandled rejection", () =>
    Effect.gen(function*() {
      const unhandled: Array<unknown> = []
      const onUnhandled = (reason: unknown) => unhandled.push(reason)
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on("unhandledRejection", onUnhandled)),
        () => Effect.sync(() => process.off("unhandledRejection", onUnhandled))
      )
      const fake = yield* fakeRedis
      const redis = yield* Redis.make({
        url: Redacted.make(`redis://127.0.0.1:${fake.port}`),
        connectTimeout: Duration.seconds(1),
        commandTimeout: Duration.millis(100)
      })
      const subscriber = yield* redis.duplicate("bus")
      yield* Effect.promise(() => subscriber.subscribe("channel"))
      assert.strictEqual(fake.state.subscribes, 1)

      // The server drops every connection and, once back, no longer answers SUBSCRIBE in time.
      fake.state.answerSubscribe = false
      const ready = Effect.async<void>((resume) => {
        subscriber.once("ready", () => resume(Effect.void))
      })
      for (const socket of fake.sockets) socket.destroy()
      yield* ready.pipe(Effect.timeout("5 seconds"))
      // Well past the command timeout of anything sent on reconnection.
      yield* Effect.sleep("500 millis")
      assert.deepStrictEqual(unhandled.map(String), [])
      // The reconnected subscriber did ask again (the bus subscribes explicitly on "ready").
      yield* Effect.promise(() => subscriber.subscribe("channel").catch(() => undefined))
      assert.isAtLeast(fake.state.subscribes, 2)
    }))
})
