/**
 * Origin cost per caller, through the whole gateway against the simulator: a token Drupal
 * refuses costs one upstream call per AUTH_FAILURE_CACHE_MS, however often it is presented.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"

describe("refused tokens through the gateway", () => {
  it.scopedLive("20 requests with one unknown token make 1 upstream call, each answered 401", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ AUTH_FAILURE_CACHE_MS: "60000" })
      // The simulator refuses an unknown token at the route (simple_oauth's 401 page), before
      // JSON-RPC: count its 401 answers (the start-up discovery call may still be on its way
      // when the count begins, so a count of all requests would race with it).
      const calls = Effect.map(sim.stats, (stats) => stats.responses["401"] ?? 0)
      const before = yield* calls
      const headers = { authorization: "Bearer not-a-real-token" }
      for (let i = 0; i < 20; i++) {
        const answer = yield* Effect.promise(() => request(`/search?q=views${i}`, { headers }))
        assert.strictEqual(answer.status, 401)
      }
      assert.strictEqual((yield* calls) - before, 1)
      // A known token is not affected.
      const known = yield* Effect.promise(() => request("/search?q=views", { headers: { authorization: "Bearer demo-free-token" } }))
      assert.strictEqual(known.status, 200)
    }))
})
