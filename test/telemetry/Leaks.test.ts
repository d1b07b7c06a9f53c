/**
 * Telemetry says nothing a stranger should not learn: `/metrics` names only methods of the
 * anonymous method set (the rest count as `other`), and exported spans carry no query string.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"
import { otlpCollector } from "./collector.js"

const ids = (body: { methods: ReadonlyArray<{ id: string }> }) => body.methods.map((m) => m.id)

describe("telemetry leaks", () => {
  it.scopedLive("/metrics never names a method only signed-in callers may see, even after an administrator used discovery", () =>
    Effect.gen(function*() {
      const { request } = yield* startGateway()
      const admin = { headers: { authorization: "Bearer demo-admin-token" } }
      const adminIds = ids((yield* Effect.promise(() => request("/methods", admin))).body)
      const anonIds = ids((yield* Effect.promise(() => request("/methods"))).body)
      const adminOnly = adminIds.filter((id) => !anonIds.includes(id))
      assert.isAbove(adminOnly.length, 0, "the simulator has admin-only methods")
      // Upstream calls as the administrator and anonymously.
      yield* Effect.promise(() => request("/search?q=views", admin))
      yield* Effect.promise(() => request("/search?q=forms"))
      const metrics = (yield* Effect.promise(() => request("/metrics"))).text
      for (const id of adminOnly) assert.notInclude(metrics, `"${id}"`, id)
      assert.include(metrics, `method="content.search"`, "anonymous methods are named")
    }))

  it.scopedLive("exported spans carry the path, never the query string (where a client may have put a token)", () =>
    Effect.gen(function*() {
      const { received, url } = yield* otlpCollector
      yield* Effect.scoped(Effect.gen(function*() {
        const { request } = yield* startGateway({ OTEL_EXPORTER_OTLP_ENDPOINT: url, OTEL_TRACES_SAMPLER_ARG: "1" })
        const res = yield* Effect.promise(() =>
          request("/search?q=forms&access_token=leaked-query-token", { headers: { authorization: "Bearer demo-free-token" } })
        )
        assert.strictEqual(res.status, 200)
      }))
      const deadline = Date.now() + 10_000
      while (received.length === 0 && Date.now() < deadline) yield* Effect.sleep("100 millis")
      const exported = received.map((r) => r.body).join("")
      assert.include(exported, "Content.search", "spans were exported")
      assert.include(exported, "/search")
      for (const secret of ["leaked-query-token", "access_token", "demo-free-token", "url.query", "url.full"]) {
        assert.notInclude(exported, secret)
      }
    }))
})
