/**
 * Clients that ask for a large Markdown document and never read it must not starve anyone
 * else: streamed bodies use a connection pool of their own, and a body that stalls is cut after
 * `DRUPAL_STREAM_IDLE_TIMEOUT_MS`, which frees its upstream connection.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import { startGateway } from "./fixtures.js"

const MB = 1024 * 1024
const HUGE_ID = 7

/** Sends a request on a raw socket and never reads the answer. */
const stuckReader = (base: string, path: string) =>
  Effect.acquireRelease(
    Effect.async<net.Socket>((resume) => {
      const url = new URL(base)
      const socket = net.connect(Number(url.port), url.hostname, () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer demo-admin-token\r\n\r\n`)
        socket.pause()
        resume(Effect.succeed(socket))
      })
      socket.on("error", () => {})
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

describe("slow and stuck readers", () => {
  it.scopedLive("four stuck Markdown readers do not take the connections JSON calls need; their streams are cut and freed", () =>
    Effect.gen(function*() {
      const { base, request } = yield* startGateway(
        {
          DRUPAL_MAX_CONNECTIONS: "4",
          DRUPAL_STREAM_MAX_CONNECTIONS: "2",
          DRUPAL_STREAM_IDLE_TIMEOUT_MS: "1500",
          DRUPAL_HEADERS_TIMEOUT_MS: "60000"
        },
        { hugeItemId: HUGE_ID, hugeItemBytes: 12 * MB }
      )
      for (let i = 0; i < 4; i++) yield* stuckReader(base, `/content/${HUGE_ID}/markdown`)
      // Let the streams start and fill every buffer between the gateway and its stuck readers.
      yield* Effect.sleep("2 seconds")

      // Cold JSON calls of other callers still go through, each on the JSON pool.
      const auth = { headers: { authorization: "Bearer demo-admin-token" } }
      const answers = yield* Effect.promise(() => Promise.all(Array.from({ length: 20 }, (_, i) => request(`/content/${20 + i}`, auth))))
      assert.deepStrictEqual(answers.map((a) => a.status), Array.from({ length: 20 }, () => 200))
      assert.deepStrictEqual(answers.map((a) => a.body.id), Array.from({ length: 20 }, (_, i) => 20 + i))

      // The stuck streams are cut after their idle timeout, so streams for other callers get
      // upstream connections again: a whole Markdown document comes through.
      const markdown = yield* Effect.promise(() => request(`/content/21/markdown`, auth))
      assert.strictEqual(markdown.status, 200, markdown.text)
      assert.isTrue(markdown.text.startsWith("---\ntitle: "))
      const health = yield* Effect.promise(() => request("/health"))
      assert.strictEqual(health.status, 200)
    }), { timeout: 120_000 })

  it.scopedLive("with every stream connection held, a Markdown miss is answered 503 upstream_busy before anything is sent, and the upstream's circuit stays closed", () =>
    Effect.gen(function*() {
      const { base, request } = yield* startGateway(
        {
          DRUPAL_STREAM_MAX_CONNECTIONS: "1",
          DRUPAL_STREAM_IDLE_TIMEOUT_MS: "60000",
          DRUPAL_HEADERS_TIMEOUT_MS: "800",
          // One counted failure would open the circuit.
          DRUPAL_BREAKER_CONSECUTIVE_FAILURES: "1"
        },
        // Every streamed reply paced at 16 KB/s: the 2 MB document holds the one stream
        // connection for the whole spec, whoever reads it.
        { hugeItemId: HUGE_ID, hugeItemBytes: 2 * MB, faults: { slowStreamRate: 1, streamBytesPerSecond: 16 * 1024 } }
      )
      const auth = { headers: { authorization: "Bearer demo-admin-token" } }
      const holder = new AbortController()
      yield* Effect.addFinalizer(() => Effect.sync(() => holder.abort()))
      void fetch(`${base}/content/${HUGE_ID}/markdown`, { ...auth, signal: holder.signal }).then((res) => res.text()).catch(() => undefined)
      yield* Effect.sleep("1 second")

      const busy = yield* Effect.promise(() => Promise.all([21, 22, 23].map((id) => request(`/content/${id}/markdown`, auth))))
      for (const answer of busy) {
        assert.strictEqual(answer.status, 503, answer.text)
        assert.strictEqual(answer.body?.error?.code, "upstream_busy")
        assert.strictEqual(answer.headers.get("retry-after"), "1")
      }
      // Waiting on the gateway's own readers is not the upstream failing: cold JSON calls go on.
      const json = yield* Effect.promise(() => Promise.all([31, 32, 33].map((id) => request(`/content/${id}`, auth))))
      assert.deepStrictEqual(json.map((a) => [a.status, a.body?.id]), [[200, 31], [200, 32], [200, 33]])
    }), { timeout: 60_000 })

  it.scopedLive("a response a client does not read is cut after HTTP_RESPONSE_TIMEOUT_MS", () =>
    Effect.gen(function*() {
      const { base, request } = yield* startGateway(
        { HTTP_RESPONSE_TIMEOUT_MS: "1500", DRUPAL_HEADERS_TIMEOUT_MS: "60000" },
        { hugeItemId: HUGE_ID, hugeItemBytes: 12 * MB }
      )
      const socket = yield* stuckReader(base, `/content/${HUGE_ID}/markdown`)
      // Never read while the bound passes (with a margin for the simulator to measure the 12 MB
      // reply before its headers), then read what is left.
      yield* Effect.sleep("6 seconds")
      const received = yield* Effect.async<string>((resume) => {
        let text = ""
        socket.setEncoding("latin1").on("data", (chunk: string) => (text = (text + chunk).slice(-64)))
        socket.once("close", () => resume(Effect.succeed(text)))
        socket.resume()
      }).pipe(Effect.timeout("30 seconds"))
      // Cut: the connection closed without the chunked body's last chunk (a whole answer ends
      // with "0\r\n\r\n" and would have kept the connection open for the next request).
      assert.isFalse(received.endsWith("0\r\n\r\n"), "the response was cut before its end")
      const health = yield* Effect.promise(() => request("/health"))
      assert.strictEqual(health.status, 200)
    }), { timeout: 60_000 })
})
