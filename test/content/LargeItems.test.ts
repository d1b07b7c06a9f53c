/**
 * A large item (3 MB of HTML) through the JSON route: the reply is over `LARGE_REPLY_BYTES`, so
 * the client parses it in steps (`LargeJson`) and the cache serialises it in steps; the answer is
 * the item exactly as `JSON.parse` would give it. Over the memory tier's value bound, it is
 * cached in Redis (gzipped by the envelope).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { LARGE_REPLY_BYTES } from "../../src/drupal/DrupalRpc.js"
import { startGateway } from "../http/fixtures.js"

describe("large items through the JSON route", () => {
  it.scopedLive("a 3 MB item is answered whole and exact, then from Redis", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway(
        { REDIS_URL: inject("redisUrl"), CACHE_REDIS_PREFIX: `large${process.pid}_${Date.now().toString(36)}:` },
        { hugeItemId: 3, hugeItemBytes: 3 * 1024 * 1024 }
      )
      yield* sim.reset
      const first = yield* Effect.promise(() => request("/content/3"))
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      assert.isAbove(first.text.length, LARGE_REPLY_BYTES, "the reply took the large path")
      assert.strictEqual(first.body.id, 3)
      assert.strictEqual(first.body.content, sim.corpus.bodyText(sim.corpus.get(3)!, "html"), "the body is the item's HTML, exactly")
      // The remote write is in the background: ask until it has landed.
      let again = yield* Effect.promise(() => request("/content/3"))
      for (let i = 0; i < 50 && again.headers.get("x-cache") !== "HIT-REDIS"; i++) {
        yield* Effect.sleep("100 millis")
        again = yield* Effect.promise(() => request("/content/3"))
      }
      assert.strictEqual(again.headers.get("x-cache"), "HIT-REDIS")
      assert.strictEqual(again.text, first.text)
    }))
})
