/**
 * Request ids and optional OTLP trace export, through the whole gateway.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"
import { otlpCollector } from "./collector.js"

describe("request ids and tracing", () => {
  it.scopedLive("X-Request-Id is echoed when sane, generated otherwise, on hits and misses alike", () =>
    Effect.gen(function*() {
      const { request } = yield* startGateway()
      const echoed = yield* Effect.promise(() => request("/search?q=views", { headers: { "x-request-id": "abc-123" } }))
      const hit = yield* Effect.promise(() => request("/search?q=views", { headers: { "x-request-id": "abc-456" } }))
      const generated = yield* Effect.promise(() => request("/search?q=views"))
      const insane = yield* Effect.promise(() => request("/search?q=views", { headers: { "x-request-id": "<script>" } }))
      assert.strictEqual(echoed.headers.get("x-request-id"), "abc-123")
      assert.strictEqual(hit.headers.get("x-cache"), "HIT-MEMORY")
      assert.strictEqual(hit.headers.get("x-request-id"), "abc-456")
      const another = yield* Effect.promise(() => request("/search?q=views"))
      const id = generated.headers.get("x-request-id") ?? ""
      assert.match(id, /^[A-Za-z0-9_-]{12}-[0-9a-z]+$/)
      assert.notStrictEqual(another.headers.get("x-request-id"), id, "each request gets its own id")
      assert.strictEqual(another.headers.get("x-request-id")?.slice(0, 12), id.slice(0, 12), "one prefix per process")
      assert.notStrictEqual(insane.headers.get("x-request-id"), "<script>")
    }))

  it.scopedLive("every answer the listener's fast paths write themselves carries the request's id", () =>
    Effect.gen(function*() {
      // A burst of 1 (the status and metrics pages are exempt): the client's second content
      // request is refused by the per-client bound, a fast path.
      const { request } = yield* startGateway({ CLIENT_LIMITS: "on", CLIENT_RATE_PER_SEC: "1", CLIENT_RATE_BURST: "1" })
      const idOf = (path: string, init: RequestInit = {}) =>
        Effect.promise(async () => {
          const id = `id-${path.length}-${init.method ?? "GET"}`
          const res = await request(path, { ...init, headers: { "x-request-id": id } })
          return { sent: id, status: res.status, echoed: res.headers.get("x-request-id") }
        })
      const answers = [
        yield* idOf("/status.json"),
        yield* idOf("/metrics", { method: "POST" }),
        yield* idOf("/status", { method: "DELETE" }),
        yield* idOf("/content/1"),
        yield* idOf("/content/1?format=html")
      ]
      assert.deepStrictEqual(answers.map((a) => a.status), [200, 405, 405, 200, 429])
      for (const a of answers) assert.strictEqual(a.echoed, a.sent, `${a.status} carries the request's id`)
    }))

  it.scopedLive("with OTEL_EXPORTER_OTLP_ENDPOINT set, spans of sampled requests are exported over OTLP/HTTP", () =>
    Effect.gen(function*() {
      const { received, url } = yield* otlpCollector
      yield* Effect.scoped(Effect.gen(function*() {
        const { request } = yield* startGateway({
          OTEL_EXPORTER_OTLP_ENDPOINT: url,
          OTEL_TRACES_SAMPLER_ARG: "1"
        })
        const res = yield* Effect.promise(() => request("/search?q=forms"))
        assert.strictEqual(res.status, 200)
      })) // closing the gateway flushes the exporter
      const deadline = Date.now() + 10_000
      while (received.length === 0 && Date.now() < deadline) yield* Effect.sleep("100 millis")
      assert.isAbove(received.length, 0, "the collector received an export")
      assert.strictEqual(received[0]!.path, "/v1/traces")
      const exported = received.map((r) => r.body).join("")
      assert.include(exported, "Content.search")
      // The trace reaches the upstream: the client's call and its HTTP exchange with Drupal.
      assert.include(exported, "DrupalRpc.call")
      assert.include(exported, "DrupalRpc.upstream")
    }))
})
