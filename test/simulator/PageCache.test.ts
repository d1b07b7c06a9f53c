/**
 * Validators as Drupal's page cache gives them: anonymous GET replies carry `ETag` and
 * `Last-Modified` and a matching `If-None-Match` or `If-Modified-Since` gets an empty 304;
 * signed-in callers and POSTs get neither.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bearer, call, getRpc, post, start } from "./support.js"

describe("simulator page cache validators", () => {
  it.scopedLive("anonymous GET replies carry ETag and Last-Modified; a matching condition is an empty 304", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const question = call("content.get_tutorial", { id: 1, include_content: false })
      const first = yield* getRpc(sim, question)
      assert.strictEqual(first.status, 200)
      const etag = first.headers.get("etag")!
      const lastModified = first.headers.get("last-modified")!
      assert.match(etag, /^"[0-9a-f]{32}"$/)
      assert.isTrue(Number.isFinite(Date.parse(lastModified)))
      assert.strictEqual(first.headers.get("cache-control"), "max-age=300, public")

      const same = yield* getRpc(sim, question)
      assert.strictEqual(same.headers.get("etag"), etag)
      assert.strictEqual(same.headers.get("last-modified"), lastModified)

      const byTag = yield* getRpc(sim, question, { "If-None-Match": `"other", W/${etag}` })
      assert.strictEqual(byTag.status, 304)
      assert.strictEqual(byTag.text, "")
      assert.strictEqual(byTag.headers.get("etag"), etag)
      const byDate = yield* getRpc(sim, question, { "If-Modified-Since": lastModified })
      assert.strictEqual(byDate.status, 304)
      const older = yield* getRpc(sim, question, { "If-Modified-Since": new Date(Date.parse(lastModified) - 1000).toUTCString() })
      assert.strictEqual(older.status, 200)
      // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
      const mismatch = yield* getRpc(sim, question, { "If-None-Match": "\"other\"", "If-Modified-Since": lastModified })
      assert.strictEqual(mismatch.status, 200)
      const otherQuestion = yield* getRpc(sim, call("content.get_tutorial", { id: 2, include_content: false }), { "If-None-Match": etag })
      assert.strictEqual(otherQuestion.status, 200)
      assert.notStrictEqual(otherQuestion.headers.get("etag"), etag)
      assert.strictEqual((yield* sim.stats).responses["304"], 2)
    }))

  it.scopedLive("signed-in GETs and POSTs get no validators and are never 304", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const question = call("content.get_tutorial", { id: 1, include_content: false })
      const etag = (yield* getRpc(sim, question)).headers.get("etag")!
      const signedIn = yield* getRpc(sim, question, { ...bearer("subscriber"), "If-None-Match": etag })
      assert.strictEqual(signedIn.status, 200)
      assert.isNull(signedIn.headers.get("etag"))
      assert.isNull(signedIn.headers.get("last-modified"))
      const posted = yield* post(sim, question, { "If-None-Match": etag })
      assert.strictEqual(posted.status, 200)
      assert.isNull(posted.headers.get("etag"))
    }))
})
