/**
 * A refusal from Drupal is never hidden behind a stale copy: when the refresh of a cached item is
 * refused (here the method is gone: -32601), the entry is deleted and callers get the refusal,
 * not `200 STALE` for the rest of the grace period. Transient failures still get the stale copy.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "./fixtures.js"

describe("refusals during a refresh", () => {
  it.scopedLive("a refused refresh deletes the entry; the next callers get the refusal, not the stale copy", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ CACHE_CONTENT_FRESH_MS: "300", CACHE_CONTENT_GRACE_MS: "3600000" })
      const first = yield* Effect.promise(() => request("/content/5"))
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("x-cache"), "MISS")

      yield* sim.removeMethod("content.get_tutorial")
      yield* Effect.sleep("500 millis")
      // Stale-while-revalidate answers the stale copy at once and refreshes in the background.
      const stale = yield* Effect.promise(() => request("/content/5"))
      assert.strictEqual(stale.status, 200)
      assert.strictEqual(stale.headers.get("x-cache"), "STALE")

      // The refresh is refused: from then on the refusal is answered, never the stale copy.
      let after = yield* Effect.promise(() => request("/content/5"))
      for (let i = 0; i < 50 && after.status === 200; i++) {
        yield* Effect.sleep("100 millis")
        after = yield* Effect.promise(() => request("/content/5"))
      }
      assert.notStrictEqual(after.status, 200, "the refused item is no longer served")
      assert.strictEqual(after.body?.error?.code, "method_not_found", after.text)
      const again = yield* Effect.promise(() => request("/content/5"))
      assert.strictEqual(again.status, after.status)
    }))
})

describe("the Markdown route under upstream failures", () => {
  it.scopedLive("a stale copy within grace is answered while the origin fails (refreshed in the background); a refusal deletes it and is answered", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ CACHE_MARKDOWN_FRESH_MS: "300", CACHE_MARKDOWN_GRACE_MS: "3600000" })
      const first = yield* Effect.promise(() => request("/content/5/markdown"))
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("x-cache"), "MISS")

      // Every upstream request fails with a 503 once the copy is stale: the copy is answered.
      yield* Effect.sleep("400 millis")
      yield* sim.setFaults({ errorRates: { "*": 1 }, errorKind: "http503" })
      const stale = yield* Effect.promise(() => request("/content/5/markdown"))
      assert.strictEqual(stale.status, 200, stale.text)
      assert.strictEqual(stale.headers.get("x-cache"), "STALE")
      assert.strictEqual(stale.text, first.text)

      // A refusal (the method is gone) deletes the copy: once the background refresh has been
      // refused, the refusal is answered, never the copy.
      yield* sim.setFaults({ errorRates: {} })
      yield* sim.removeMethod("content.get_tutorial")
      // (The 503s above opened the circuit breaker: the first refreshes after them fail fast
      // until its cooldown ends, and the copy keeps standing in meanwhile.)
      let refused = yield* Effect.promise(() => request("/content/5/markdown"))
      for (let i = 0; i < 200 && refused.status === 200; i++) {
        yield* Effect.sleep("100 millis")
        refused = yield* Effect.promise(() => request("/content/5/markdown"))
      }
      assert.strictEqual(refused.body?.error?.code, "method_not_found", refused.text)
      yield* sim.setFaults({ errorRates: { "*": 1 }, errorKind: "http503" })
      const after = yield* Effect.promise(() => request("/content/5/markdown"))
      assert.notStrictEqual(after.status, 200, "the deleted copy is not served as stale")
    }))
})
