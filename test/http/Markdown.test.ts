/**
 * A 50 MB HTML body through `GET /content/{id}/markdown`: streamed end to end (simulator →
 * JSON-RPC reply parser → converter → client) with the heap bounded far below the body size.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { request } from "undici"
import { makeHeapProbe } from "../support/heap.js"
import { startGateway } from "./fixtures.js"

const MB = 1024 * 1024
const HUGE_ID = 7

describe("GET /content/{id}/markdown", () => {
  it.scopedLive("streams a 50 MB item with bounded heap growth", () =>
    Effect.gen(function*() {
      // Like Drupal, the simulator builds (here: measures) the whole 50 MB reply before its
      // headers, which takes seconds on a loaded machine: wait for them longer than by default.
      const { base } = yield* startGateway({ DRUPAL_HEADERS_TIMEOUT_MS: "60000" }, { hugeItemId: HUGE_ID, hugeItemBytes: 50 * MB })
      const probe = makeHeapProbe()
      const { body, head, bytes } = yield* Effect.promise(async () => {
        const res = await request(`${base}/content/${HUGE_ID}/markdown`)
        assert.strictEqual(res.statusCode, 200)
        assert.strictEqual(res.headers["content-type"], "text/markdown; charset=utf-8")
        let bytes = 0
        let head = ""
        let sinceCollect = 0
        for await (const chunk of res.body) {
          const buf = chunk as Buffer
          if (head.length < 400) head += buf.toString("utf8", 0, Math.min(buf.length, 400))
          bytes += buf.length
          sinceCollect += buf.length
          probe.sample()
          if (sinceCollect > 8 * MB) {
            probe.collect()
            sinceCollect = 0
          }
        }
        return { body: res, head, bytes }
      })
      probe.collect()
      const { retainedMaxMB, sampledMaxMB } = probe.report()
      console.log(`markdown of a 50 MB item: ${(bytes / MB).toFixed(1)} MB streamed, heap growth retained ≤ ${retainedMaxMB} MB, sampled ≤ ${sampledMaxMB} MB`)
      assert.isDefined(body)
      assert.isTrue(head.startsWith("---\ntitle: "), "front matter first")
      assert.isAbove(bytes, 20 * MB, "the whole body came through")
      assert.isBelow(retainedMaxMB, 64, "heap growth stays far below the body size")
    }), 120_000)
})
