/**
 * Denials are cached per partition for `CACHE_DENIED_MS`, like not-found: anonymous callers
 * asking for subscriber-only items are answered from memory (the hit path included) instead of
 * reaching Drupal every time; other partitions are never answered with them. The Markdown route
 * asks for the item's metadata through the cache. Specs count upstream calls, never time.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"

const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })

describe("denials through the cache", () => {
  it.scopedLive("an anonymous ask for a subscriber item reaches Drupal once, then is a 403 from memory; subscribers still read it", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway()
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      yield* sim.reset
      const first = yield* Effect.promise(() => request(`/content/${locked.id}`))
      assert.deepStrictEqual([first.status, first.body?.error?.code], [403, "forbidden"])
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      for (let i = 0; i < 20; i++) {
        const again = yield* Effect.promise(() => request(`/content/${locked.id}`))
        assert.deepStrictEqual([again.status, again.body?.error?.code], [403, "forbidden"])
        assert.strictEqual(again.headers.get("x-cache"), "HIT-MEMORY")
        assert.strictEqual(again.text, first.text, "the same body as the first denial")
      }
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1, "one upstream call for 21 asks")

      // Another partition is never answered with the anonymous denial.
      const subscriber = yield* Effect.promise(() => request(`/content/${locked.id}`, auth("demo-subscriber-token")))
      assert.deepStrictEqual([subscriber.status, subscriber.body?.id], [200, locked.id])
    }))

  it.scopedLive("with CACHE_DENIED_MS=0 a denial is not kept: every ask reaches Drupal", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ CACHE_DENIED_MS: "0" })
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      yield* sim.reset
      for (let i = 0; i < 3; i++) {
        const reply = yield* Effect.promise(() => request(`/content/${locked.id}?include_content=false`))
        assert.deepStrictEqual([reply.status, reply.body?.error?.code], [403, "forbidden"])
      }
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 3)
    }))

  it.scopedLive("the Markdown route: its metadata comes through the cache, its denials are answered from memory", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway()
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      // The metadata entry is shared with `/content/{id}?include_content=false`.
      const meta = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      assert.strictEqual(meta.status, 200)
      yield* sim.reset
      const md = yield* Effect.promise(() => request(`/content/${free.id}/markdown`))
      assert.strictEqual(md.status, 200)
      assert.include(md.text, `id: ${free.id}`)
      const stats = yield* sim.stats
      assert.strictEqual(stats.methods["content.get_tutorial"], 1, "only the streamed body went upstream, no metadata call")

      yield* sim.reset
      const denied = yield* Effect.promise(() => request(`/content/${locked.id}/markdown`))
      assert.deepStrictEqual([denied.status, denied.body?.error?.code], [403, "forbidden"])
      for (let i = 0; i < 5; i++) {
        const again = yield* Effect.promise(() => request(`/content/${locked.id}/markdown`))
        assert.deepStrictEqual([again.status, again.body?.error?.code], [403, "forbidden"])
        assert.strictEqual(again.headers.get("x-cache"), "HIT-MEMORY")
      }
      // The denial of the Markdown route is the item's denial: the JSON route shares it.
      const json = yield* Effect.promise(() => request(`/content/${locked.id}?include_content=false`))
      assert.strictEqual(json.status, 403)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1, "one upstream call for 7 asks")
    }))

  it.scopedLive("a refresh answered by a denial replaces the stale copy: the next asks get the 403, from memory", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({ CACHE_CONTENT_FRESH_MS: "300", CACHE_CONTENT_GRACE_MS: "3600000", CACHE_JITTER: "0" })
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const first = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      assert.deepStrictEqual([first.status, first.headers.get("x-cache")], [200, "MISS"])
      // The item goes behind the paywall: the method now needs a permission anonymous lacks.
      yield* sim.addMethod({
        id: "content.get_tutorial",
        usage: "Retrieves a tutorial.",
        access: ["access subscriber content"],
        params: { id: { description: "Tutorial id", required: true, schema: { type: "integer" } } },
        result: {}
      })
      yield* Effect.sleep("500 millis")
      yield* sim.reset
      const stale = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      assert.deepStrictEqual([stale.status, stale.headers.get("x-cache")], [200, "STALE"])
      let after = stale
      for (let i = 0; i < 50 && after.status === 200; i++) {
        yield* Effect.sleep("50 millis")
        after = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      }
      assert.deepStrictEqual([after.status, after.body?.error?.code], [403, "forbidden"], after.text)
      const again = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      assert.deepStrictEqual([again.status, again.headers.get("x-cache")], [403, "HIT-MEMORY"])
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1, "one refresh, then the denial from memory")
    }))
})
