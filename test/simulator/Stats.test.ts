import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { call, fetchReply, get, json, post, start } from "./support.js"

describe("Simulator stats", () => {
  it.scopedLive("a batch of 5 counts 1 HTTP request, 1 batch and 5 RPC calls", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const batch = [1, 2, 3, 4, 5].map((id) => call("content.search", { query: "views" }, id))
      assert.strictEqual((yield* post(sim, batch)).status, 200)
      const stats = yield* sim.stats
      assert.strictEqual(stats.http_requests, 1)
      assert.strictEqual(stats.batches, 1)
      assert.strictEqual(stats.rpc_calls, 5)
      assert.strictEqual(stats.max_batch_size, 5)
      assert.deepStrictEqual(stats.methods, { "content.search": 5 })
      assert.deepStrictEqual(stats.responses, { "200": 1 })
    }))

  it.scopedLive("single calls, notifications, discovery and GETs are counted; control routes are not", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* post(sim, call("user.access_context"))
      yield* post(sim, call("user.access_context", undefined, null))
      yield* get(sim, `/jsonrpc?query=${encodeURIComponent(JSON.stringify(call("no.such")))}`)
      yield* get(sim, "/jsonrpc/methods")
      yield* get(sim, "/jsonrpc/methods/content.search")
      yield* fetchReply(`${sim.url}/__sim/faults`)
      const stats = json(yield* fetchReply(`${sim.url}/__sim/stats`))
      assert.strictEqual(stats.http_requests, 5)
      assert.strictEqual(stats.batches, 0)
      assert.strictEqual(stats.rpc_calls, 3)
      assert.strictEqual(stats.notifications, 1)
      assert.strictEqual(stats.get_requests, 1)
      assert.strictEqual(stats.post_requests, 2)
      assert.strictEqual(stats.discovery_requests, 2)
      assert.deepStrictEqual(stats.methods, { "user.access_context": 2, "(unknown)": 1 })
      assert.deepStrictEqual(stats.responses, { "200": 3, "204": 1, "400": 1 })
      assert.strictEqual(stats.in_flight, 0)
    }))

  it.scopedLive("reset zeroes the counters, by the service and by POST /__sim/reset", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* post(sim, [call("user.access_context", undefined, 1), call("user.access_context", undefined, 2)])
      assert.strictEqual((yield* sim.stats).rpc_calls, 2)
      yield* sim.reset
      const zero = yield* sim.stats
      assert.strictEqual(zero.http_requests, 0)
      assert.strictEqual(zero.rpc_calls, 0)
      assert.strictEqual(zero.batches, 0)
      assert.deepStrictEqual(zero.methods, {})
      yield* post(sim, call("user.access_context"))
      assert.strictEqual((yield* sim.stats).http_requests, 1)
      const reset = yield* fetchReply(`${sim.url}/__sim/reset`, { method: "POST" })
      assert.strictEqual(reset.status, 204)
      assert.strictEqual((yield* sim.stats).http_requests, 0)
    }))
})
