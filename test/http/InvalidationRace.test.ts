/**
 * A load that straddles an invalidation is not stored: a Markdown document still streaming when
 * its item is invalidated would otherwise be stored after the invalidation and served, old, for
 * its whole fresh time. Every store carries the epoch of the moment its load began.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { itemTag } from "../../src/content/CacheKeys.js"
import { startGateway } from "./fixtures.js"

const TOKEN = "race-admin-token"
const ITEM = 7

describe("invalidation races", () => {
  it.scopedLive("a Markdown stream held open across an invalidation of its item is not stored", () =>
    Effect.gen(function*() {
      const { request } = yield* startGateway(
        { ADMIN_TOKEN: TOKEN },
        // A 600 KB body streamed at 200 KB/s: about three seconds on the wire.
        { hugeItemId: ITEM, hugeItemBytes: 600 * 1024, faults: { slowStreamRate: 1, streamBytesPerSecond: 200 * 1024 } }
      )
      const streaming = request(`/content/${ITEM}/markdown`)
      yield* Effect.sleep("1 second")
      const invalidated = yield* Effect.promise(() =>
        request("/admin/invalidate", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ tags: [itemTag(ITEM)] })
        })
      )
      assert.isBelow(invalidated.status, 300, invalidated.text)
      const first = yield* Effect.promise(() => streaming)
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      assert.isTrue(first.text.startsWith("---\ntitle: "))

      // The document that began before the invalidation was not kept: the next read loads again.
      const second = yield* Effect.promise(() => request(`/content/${ITEM}/markdown`))
      assert.strictEqual(second.status, 200)
      assert.strictEqual(second.headers.get("x-cache"), "MISS")
      // And that one, begun after it, is kept.
      const third = yield* Effect.promise(() => request(`/content/${ITEM}/markdown`))
      assert.match(third.headers.get("x-cache") ?? "", /^HIT/)
    }), { timeout: 60_000 })
})
