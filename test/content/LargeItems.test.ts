/**
 * A large item (2 MB of HTML) through the JSON route: the reply is over `LARGE_REPLY_BYTES`, so
 * the client parses it in steps (`LargeJson`) and the cache serialises it in steps; the answer is
 * the item exactly as `JSON.parse` would give it. Over the memory tier's value bound, it is
 * kept by the memory tier's large-value segment, and cached in Redis (gzipped by the envelope):
 * the Redis specs turn the segment off (`CACHE_MEMORY_LARGE_MAX_BYTES=0`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { LARGE_REPLY_BYTES } from "../../src/drupal/DrupalRpc.js"
import { startGateway } from "../http/fixtures.js"

/**
 * The remote write is in the background: asks (a whole document each time, so once a second)
 * until the answer comes from Redis, at most 20 times.
 */
const untilRedisHit = <A extends { readonly headers: Headers }>(ask: () => Promise<A>) =>
  Effect.gen(function*() {
    let answer = yield* Effect.promise(ask)
    for (let i = 0; i < 20 && answer.headers.get("x-cache") !== "HIT-REDIS"; i++) {
      yield* Effect.sleep("1 second")
      answer = yield* Effect.promise(ask)
    }
    return answer
  })

describe("large items through the JSON route", () => {
  it.scopedLive("a 2 MB item is answered whole and exact, then from Redis", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway(
        { REDIS_URL: inject("redisUrl"), CACHE_REDIS_PREFIX: `large${process.pid}_${Date.now().toString(36)}:`, CACHE_MEMORY_LARGE_MAX_BYTES: "0" },
        { hugeItemId: 3, hugeItemBytes: 2 * 1024 * 1024 }
      )
      yield* sim.reset
      const first = yield* Effect.promise(() => request("/content/3"))
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      assert.isAbove(first.text.length, LARGE_REPLY_BYTES, "the reply took the large path")
      assert.strictEqual(first.body.id, 3)
      assert.strictEqual(first.body.content, sim.corpus.bodyText(sim.corpus.get(3)!, "html"), "the body is the item's HTML, exactly")
      const again = yield* untilRedisHit(() => request("/content/3"))
      assert.strictEqual(again.headers.get("x-cache"), "HIT-REDIS")
      assert.strictEqual(again.text, first.text)
    }), 120_000)

  it.scopedLive("its Markdown (over 1 MiB) is cached too: held gzipped while it streams, then answered from Redis", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway(
        { REDIS_URL: inject("redisUrl"), CACHE_REDIS_PREFIX: `largemd${process.pid}_${Date.now().toString(36)}:`, CACHE_MEMORY_LARGE_MAX_BYTES: "0" },
        { hugeItemId: 3, hugeItemBytes: 3 * 1024 * 1024 }
      )
      const first = yield* Effect.promise(() => request("/content/3/markdown"))
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      assert.isAbove(first.text.length, 1024 * 1024)
      const again = yield* untilRedisHit(() => request("/content/3/markdown"))
      assert.strictEqual(again.headers.get("x-cache"), "HIT-REDIS")
      assert.strictEqual(again.text, first.text)
      yield* sim.reset
      const third = yield* Effect.promise(() => request("/content/3/markdown"))
      assert.strictEqual(third.headers.get("x-cache"), "HIT-REDIS")
      assert.strictEqual(third.text, first.text)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"] ?? 0, 0, "no upstream call once stored")
    }), 120_000)

  it.scopedLive("by default a large item and its Markdown are answered again from memory (the large-value segment): the same bytes, no upstream call", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({}, { hugeItemId: 3, hugeItemBytes: 2 * 1024 * 1024 })
      const first = yield* Effect.promise(() => request("/content/3"))
      const firstMd = yield* Effect.promise(() => request("/content/3/markdown"))
      assert.deepStrictEqual([first.headers.get("x-cache"), firstMd.headers.get("x-cache")], ["MISS", "MISS"])
      assert.isAbove(first.text.length, 1024 * 1024, "over CACHE_MEMORY_MAX_VALUE_BYTES")
      assert.isAbove(firstMd.text.length, 1024 * 1024, "over CACHE_MEMORY_MAX_VALUE_BYTES")
      yield* sim.reset
      for (let i = 0; i < 2; i++) {
        const again = yield* Effect.promise(() => request("/content/3"))
        const againMd = yield* Effect.promise(() => request("/content/3/markdown"))
        assert.deepStrictEqual([again.headers.get("x-cache"), againMd.headers.get("x-cache")], ["HIT-MEMORY", "HIT-MEMORY"])
        assert.strictEqual(again.text, first.text)
        assert.strictEqual(againMd.text, firstMd.text)
        assert.strictEqual(again.headers.get("etag"), first.headers.get("etag"))
      }
      assert.strictEqual((yield* sim.stats).rpc_calls, 0, "no upstream call once stored")
    }), 120_000)

  it.scopedLive("a Markdown document over CACHE_MARKDOWN_MAX_BYTES is streamed every time, never stored", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway(
        { CACHE_MARKDOWN_MAX_BYTES: String(1024 * 1024) },
        { hugeItemId: 3, hugeItemBytes: 3 * 1024 * 1024 }
      )
      const first = yield* Effect.promise(() => request("/content/3/markdown"))
      const second = yield* Effect.promise(() => request("/content/3/markdown"))
      assert.deepStrictEqual([first.headers.get("x-cache"), second.headers.get("x-cache")], ["MISS", "MISS"])
      assert.strictEqual(second.text, first.text)
      assert.isAtLeast((yield* sim.stats).streamed_responses, 2)
    }), 120_000)
})
