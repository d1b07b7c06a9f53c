import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bearer } from "../../src/drupal/Credentials.js"
import * as BatchPolicy from "../../src/drupal/BatchPolicy.js"
import { DrupalRpc } from "../../src/drupal/DrupalRpc.js"
import * as Simulator from "../../src/simulator/Simulator.js"
import { ClientTest } from "./fixtures.js"

const admin = bearer("demo-admin-token")
const options = (mode: BatchPolicy.BatchMode): BatchPolicy.BatchPolicyOptions => ({
  mode,
  batchMaxSize: 50,
  inFlightThreshold: 4,
  latencyFactor: 2
})

describe("BatchPolicy", () => {
  it("off never coalesces; always always does, up to the largest batch", () => {
    const off = BatchPolicy.make(options("off"))
    const always = BatchPolicy.make(options("always"))
    const offSeen = Array.from({ length: 10 }, () => off.admit())
    const alwaysSeen = Array.from({ length: 10 }, () => always.admit())
    assert.deepStrictEqual(new Set(offSeen), new Set([false]))
    assert.strictEqual(off.cap(), 1)
    assert.deepStrictEqual(new Set(alwaysSeen), new Set([true]))
    assert.strictEqual(always.cap(), 50)
  })

  it("adaptive sends alone below the in-flight threshold and coalesces from it on", () => {
    const policy = BatchPolicy.make(options("adaptive"))
    const seen = Array.from({ length: 6 }, () => policy.admit())
    assert.deepStrictEqual(seen, [false, false, false, false, true, true])
    assert.strictEqual(policy.inFlight(), 6)
    policy.leave()
    policy.leave()
    policy.leave()
    assert.isFalse(policy.admit())
    assert.strictEqual(policy.inFlight(), 4)
  })

  it("adaptive learns the cap where a batch's time reaches the latency budget", () => {
    // A site where a request costs a 30 ms bootstrap plus 5 ms per item: a single call takes
    // 35 ms, so with a factor of 2 the budget is 70 ms = 30 + 5·n, n = 8.
    const policy = BatchPolicy.make(options("adaptive"))
    // Until it has measured both costs it batches as `always` does.
    assert.strictEqual(policy.cap(), 50)
    policy.observe(1, 35, true)
    assert.strictEqual(policy.cap(), 50)
    for (let round = 0; round < 200; round++) {
      policy.observe(1, 35, true)
      const n = policy.cap()
      policy.observe(n, 30 + 5 * n, true)
    }
    assert.strictEqual(policy.cap(), 8)
    // A large group is spread over at most `inFlightThreshold` (4) batches: 100 calls, 25 each.
    assert.strictEqual(policy.cap(100), 25)
    assert.strictEqual(policy.cap(20), 8)
    // Failures teach nothing: a refused connection answers at once.
    for (let i = 0; i < 50; i++) {
      policy.observe(1, 0.1, false)
    }
    assert.strictEqual(policy.cap(), 8)
  })

  it("split cuts into even parts of at most the cap", () => {
    const items = Array.from({ length: 23 }, (_, i) => i)
    const parts = BatchPolicy.split(items, 8)
    assert.deepStrictEqual(parts.map((p) => p.length), [8, 8, 7])
    assert.deepStrictEqual(parts.flat(), items)
    assert.deepStrictEqual(BatchPolicy.split(items, 50), [items])
  })
})

describe("DrupalRpc batching modes", () => {
  const burst = (n: number) =>
    Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const ids = Array.from({ length: n }, (_, i) => i + 1)
      const results = yield* Effect.forEach(ids, (id) => rpc.call("content.get_tutorial", { id, include_content: false }, admin), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(results.map((r) => (r as { id: number }).id), ids)
      return yield* sim.stats
    })

  it.live("off: every call is its own upstream request", () =>
    Effect.gen(function*() {
      const stats = yield* burst(30)
      assert.strictEqual(stats.http_requests, 30)
      assert.isAtMost(stats.max_batch_size, 1)
    }).pipe(Effect.provide(ClientTest({ batch: { mode: "off", inFlightThreshold: 4, latencyFactor: 2 } }))))

  it.live("adaptive: the first calls go alone, the rest are coalesced", () =>
    Effect.gen(function*() {
      const first = yield* burst(60)
      // 4 singles while the upstream is idle (a few more if one answers before the window
      // closes), then the others coalesced in one window.
      assert.isAtLeast(first.http_requests, 5)
      assert.isAtMost(first.http_requests, 10)
      assert.isAtLeast(first.max_batch_size, 50)
    }).pipe(Effect.provide(ClientTest({ batch: { mode: "adaptive", inFlightThreshold: 4, latencyFactor: 2 } }))))
})
