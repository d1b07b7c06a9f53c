import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeCorpus } from "../../src/simulator/Corpus.js"
import { startGateway } from "../http/fixtures.js"

describe("cache warming", () => {
  it.scopedLive("loads the configured searches and items at start, so the first requests are hits", () =>
    Effect.gen(function*() {
      // The corpus is deterministic: the fixture's seed gives these free items.
      const corpus = makeCorpus({ size: 300, seed: 7, largeShare: 0 })
      const [a, b] = corpus.items.filter((i) => i.access === "free").map((i) => i.id)
      const { request, sim } = yield* startGateway({
        CACHE_WARM_SEARCHES: "views caching; Forms API",
        CACHE_WARM_ITEMS: `${a},${b}`,
        CACHE_WARM_CONCURRENCY: "2"
      })
      // Warming runs in the background: wait until the simulator has seen its four loads.
      const deadline = Date.now() + 10_000
      while (Date.now() < deadline) {
        const stats = yield* sim.stats
        if ((stats.methods["content.search"] ?? 0) >= 2 && (stats.methods["content.get_tutorial"] ?? 0) >= 2) break
        yield* Effect.sleep("50 millis")
      }
      const search = yield* Effect.promise(() => request("/search?q=Views%20Caching"))
      const forms = yield* Effect.promise(() => request("/search?q=forms%20api"))
      assert.strictEqual(search.headers.get("x-cache"), "HIT-MEMORY")
      assert.strictEqual(forms.headers.get("x-cache"), "HIT-MEMORY")
      const item = yield* Effect.promise(() => request(`/content/${b}`))
      assert.strictEqual(item.headers.get("x-cache"), "HIT-MEMORY")
      const stats = yield* sim.stats
      assert.strictEqual(stats.methods["content.search"], 2, "each warmed search loaded once")
    }))
})
