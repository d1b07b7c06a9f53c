/**
 * Concurrent misses of one Markdown document share one upstream stream: the first streams it
 * into the cache, the others wait for it to be stored and answer from the cache. A document
 * over the cache's bound is never stored, so the others stream on their own as soon as the first
 * passes the bound.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "./fixtures.js"

const auth = { headers: { authorization: "Bearer demo-admin-token" } }

describe("Markdown stampede", () => {
  for (const [mode, config, expected, why] of [
    ["converted whole", {}, 1, "one reply: the metadata and the body"],
    ["streamed", { MARKDOWN_WHOLE_BELOW_BYTES: "0" }, 2, "the item's metadata (cached, shared) and one streamed body"]
  ] as const) {
    it.scopedLive(`50 concurrent misses of one document (${mode}) cost one upstream load, and every answer is the same document`, () =>
      Effect.gen(function*() {
        const { request, sim } = yield* startGateway(config)
        const before = (yield* sim.stats).methods["content.get_tutorial"] ?? 0
        const answers = yield* Effect.promise(() => Promise.all(Array.from({ length: 50 }, () => request("/content/21/markdown", auth))))
        assert.deepStrictEqual([...new Set(answers.map((a) => a.status))], [200])
        assert.strictEqual(new Set(answers.map((a) => a.text)).size, 1, "one document")
        assert.isTrue(answers[0]!.text.startsWith("---\ntitle: "))
        const calls = ((yield* sim.stats).methods["content.get_tutorial"] ?? 0) - before
        assert.strictEqual(calls, expected, `upstream content.get_tutorial calls (${why}): ${calls}`)
      }), { timeout: 60_000 })
  }

  it.scopedLive("a document over the cache's bound is streamed for every caller: nobody waits for a copy that will not be kept", () =>
    Effect.gen(function*() {
      // Streamed documents (a small one converted whole is one call per caller, nothing to wait for).
      const { request, sim } = yield* startGateway({ CACHE_MARKDOWN_MAX_BYTES: "1024", MARKDOWN_WHOLE_BELOW_BYTES: "0" })
      const before = (yield* sim.stats).methods["content.get_tutorial"] ?? 0
      const answers = yield* Effect.promise(() => Promise.all(Array.from({ length: 10 }, () => request("/content/22/markdown", auth))))
      assert.deepStrictEqual([...new Set(answers.map((a) => a.status))], [200])
      assert.strictEqual(new Set(answers.map((a) => a.text)).size, 1, "one document")
      assert.isAbove(answers[0]!.text.length, 1024)
      const calls = ((yield* sim.stats).methods["content.get_tutorial"] ?? 0) - before
      assert.strictEqual(calls, 11, "the metadata once, a stream per caller")
    }), { timeout: 60_000 })
})
