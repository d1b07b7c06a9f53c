/**
 * The cost of a request: PHP workers, a FIFO wait queue with a bound, a bootstrap per HTTP
 * request and a cost per executed item. Asserted with the simulator's own counters (busy worker
 * time and queue time lower bounds), not wall-clock thresholds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { defaultCost, makeWorkerPool } from "../../src/simulator/Workers.js"
import { call, json, post, start } from "./support.js"

// Bootstrap without spread (p99 ≤ mean gives a fixed draw), so lower bounds are exact.
const fixed = (overrides: Record<string, number> = {}) => ({
  enabled: true,
  workers: 16,
  queueMax: 256,
  bootstrapMeanMs: 30,
  bootstrapP99Ms: 30,
  itemMs: 5,
  searchMs: 25,
  ...overrides
})

describe("Simulator cost model", () => {
  it.scopedLive("one worker: two concurrent requests run one after the other; the second waits in the queue", () =>
    Effect.gen(function*() {
      // A bootstrap long enough that the two requests overlap even on a loaded machine.
      const sim = yield* start({ cost: fixed({ workers: 1, bootstrapMeanMs: 300, bootstrapP99Ms: 300 }) })
      yield* sim.reset
      const [a, b] = yield* Effect.all([
        post(sim, call("user.access_context", undefined, 1)),
        post(sim, call("user.access_context", undefined, 2))
      ], { concurrency: "unbounded" })
      assert.strictEqual(a.status, 200)
      assert.strictEqual(b.status, 200)
      const stats = yield* sim.stats
      // Each request held the only worker for its 300 ms bootstrap + one 5 ms item; the later one
      // waited for the rest of the earlier one's turn.
      assert.isAtLeast(stats.worker_ms, 2 * 305 - 2)
      assert.isAtLeast(stats.queue_ms, 150)
      assert.strictEqual(stats.queue_rejections, 0)
      assert.strictEqual(stats.workers_busy, 0)
      assert.strictEqual(stats.queue_length, 0)
    }))

  it.scopedLive("with every worker busy and the queue full, the next request is answered 503 at once", () =>
    Effect.gen(function*() {
      const sim = yield* start({ cost: fixed({ workers: 1, queueMax: 2, bootstrapMeanMs: 100, bootstrapP99Ms: 100 }) })
      yield* sim.reset
      const replies = yield* Effect.forEach(
        [1, 2, 3, 4, 5],
        (id) => post(sim, call("user.access_context", undefined, id)),
        { concurrency: "unbounded" }
      )
      const statuses = replies.map((r) => r.status).sort()
      // One running, two waiting, two refused.
      assert.deepStrictEqual(statuses, [200, 200, 200, 503, 503])
      const refused = replies.find((r) => r.status === 503)!
      assert.include(refused.headers.get("content-type") ?? "", "text/html")
      assert.strictEqual(refused.headers.get("retry-after"), "1")
      const stats = yield* sim.stats
      assert.strictEqual(stats.queue_rejections, 2)
      assert.isAtLeast(stats.queue_ms, 105 + 2 * 105 - 4, "the second waited one turn, the third two")
    }))

  it.scopedLive("a batch holds one worker for bootstrap + n × item; a search costs more than an item", () =>
    Effect.gen(function*() {
      const sim = yield* start({ cost: fixed({ bootstrapMeanMs: 20, bootstrapP99Ms: 20, itemMs: 10, searchMs: 40 }) })
      yield* sim.reset
      const items = Array.from({ length: 12 }, (_, i) => call("content.get_tutorial", { id: i + 1, include_content: false }, i + 1))
      const batch = yield* post(sim, items)
      assert.strictEqual(batch.status, 200)
      assert.strictEqual(json(batch).length, 12)
      const afterBatch = yield* sim.stats
      assert.isAtLeast(afterBatch.worker_ms, 20 + 12 * 10 - 2)
      assert.isBelow(afterBatch.worker_ms, 20 + 12 * 10 + 1_000, "one worker, one bootstrap")
      yield* sim.reset
      yield* post(sim, [call("content.search", { query: "views" }, 1), call("content.search", { query: "forms" }, 2)])
      assert.isAtLeast((yield* sim.stats).worker_ms, 20 + 2 * 40 - 2)
      // A parse-stage rejection runs nothing: bootstrap only.
      yield* sim.reset
      const rejected = yield* post(sim, [...items, call("no.such", undefined, 99)])
      assert.strictEqual(rejected.status, 400)
      const stats = yield* sim.stats
      assert.isAtLeast(stats.worker_ms, 20 - 2)
      assert.isBelow(stats.worker_ms, 20 + 12 * 10 - 2)
    }))

  it.scopedLive("n single requests cost n bootstraps: batching saves worker time", () =>
    Effect.gen(function*() {
      const sim = yield* start({ cost: fixed({ bootstrapMeanMs: 30, bootstrapP99Ms: 30 }) })
      yield* sim.reset
      yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], (id) => post(sim, call("content.get_tutorial", { id, include_content: false }, id)), {
        concurrency: "unbounded"
      })
      const singles = (yield* sim.stats).worker_ms
      yield* sim.reset
      yield* post(sim, [1, 2, 3, 4, 5, 6, 7, 8].map((id) => call("content.get_tutorial", { id, include_content: false }, id)))
      const batched = (yield* sim.stats).worker_ms
      assert.isAtLeast(singles, 8 * 35 - 4)
      assert.isBelow(batched, singles - 6 * 30)
    }))

  it("the bootstrap draws are log-normal with the configured mean and 99th percentile (seeded)", () => {
    const pool = makeWorkerPool({ ...defaultCost, bootstrapMeanMs: 30, bootstrapP99Ms: 120 }, { onQueued: () => {}, onReleased: () => {} })
    const draws = Array.from({ length: 20_000 }, () => pool.bootstrapMs()).sort((a, b) => a - b)
    const mean = draws.reduce((sum, d) => sum + d, 0) / draws.length
    const p99 = draws[Math.floor(draws.length * 0.99)]!
    assert.approximately(mean, 30, 3)
    assert.approximately(p99, 120, 15)
    assert.isTrue(draws.every((d) => d > 0))
  })

  it.scopedLive("the model off costs nothing", () =>
    Effect.gen(function*() {
      const off = yield* start()
      yield* off.reset
      yield* post(off, call("content.search", { query: "views" }))
      const stats = yield* off.stats
      assert.strictEqual(stats.worker_ms, 0)
      assert.strictEqual(stats.queue_ms, 0)
      const pool = makeWorkerPool({ ...defaultCost, enabled: false }, { onQueued: () => {}, onReleased: () => {} })
      assert.strictEqual(pool.bootstrapMs(), 0)
      assert.strictEqual(pool.itemsMs(["content.search", "content.get_tutorial"]), 0)
    }))
})
