/**
 * The acceptance, against the simulator's module-faithful defaults (per-item errors with
 * `"id": null`, Access Denied with its reason, the cost model on): a free user's request for a
 * subscriber item is 403 `forbidden` on every route, single and batched.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Client } from "undici"
import { startGateway } from "./fixtures.js"

const free = { authorization: "Bearer demo-free-token" }

describe("callers taking turns on one kept-alive connection", () => {
  it.scopedLive("each request is answered at its own header's access level, memory hits included", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway()
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      const client = new Client(base, { pipelining: 1 })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      const ask = (authorization: string | undefined) =>
        Effect.promise(async () => {
          const res = await client.request({ path: `/content/${locked.id}`, method: "GET", headers: authorization === undefined ? {} : { authorization } })
          await res.body.dump()
          return `${res.statusCode} ${String(res.headers["x-cache"] ?? "")}`
        })
      const subscriber = "Bearer demo-subscriber-token"
      // Loaded, then a memory hit: the connection now holds the subscriber's credentials.
      assert.match(yield* ask(subscriber), /^200 /)
      assert.strictEqual(yield* ask(subscriber), "200 HIT-MEMORY")
      // The same connection with another header, or none, is answered at that level.
      assert.match(yield* ask("Bearer demo-free-token"), /^403 /)
      assert.match(yield* ask(undefined), /^403 /)
      assert.match(yield* ask("Basic c3Vic2NyaWJlcjp3cm9uZw=="), /^403 /, "a wrong basic password is anonymous")
      assert.strictEqual(yield* ask(subscriber), "200 HIT-MEMORY")
      assert.match(yield* ask("Bearer demo-free-token"), /^403 /)
      assert.strictEqual(yield* ask(subscriber), "200 HIT-MEMORY")
    }))
})

describe("a free user asking for subscriber items (module-faithful simulator)", () => {
  it.scopedLive("is 403 forbidden on every route that reads an item", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway()
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      const routes: ReadonlyArray<readonly [string, RequestInit]> = [
        [`/content/${locked.id}`, { headers: free }],
        [`/content/${locked.id}?include_content=false`, { headers: free }],
        [`/content/${locked.id}?format=markdown`, { headers: free }],
        [`/content/${locked.id}/markdown`, { headers: free }],
        [`/rpc/content.get_tutorial`, {
          method: "POST",
          headers: { ...free, "content-type": "application/json" },
          body: JSON.stringify({ id: locked.id, include_content: false })
        }]
      ]
      for (const [path, init] of routes) {
        const reply = yield* Effect.promise(() => request(path, init))
        assert.deepStrictEqual([reply.status, reply.body?.error?.code], [403, "forbidden"], path)
      }
      // Asked again (now from the gateway's caches where it keeps denials): still 403.
      const again = yield* Effect.promise(() => request(`/content/${locked.id}`, { headers: free }))
      assert.deepStrictEqual([again.status, again.body?.error?.code], [403, "forbidden"])
    }))

  it.scopedLive("is 403 forbidden for each of many concurrent requests batched upstream, while free items succeed beside them", () =>
    Effect.gen(function*() {
      // Always batched: the adaptive policy sends calls alone when few are in flight, which on a
      // busy machine (requests arriving spread out) would leave no batch to look at.
      const { request, sim } = yield* startGateway({ DRUPAL_BATCH: "always" })
      const locked = sim.corpus.items.filter((i) => i.access === "subscriber").slice(0, 20)
      const open = sim.corpus.items.filter((i) => i.access === "free").slice(0, 20)
      yield* sim.reset
      const asked = [...locked, ...open].map((item) => ({ item, path: `/content/${item.id}?include_content=false` }))
      const replies = yield* Effect.promise(() => Promise.all(asked.map(({ path }) => request(path, { headers: free }))))
      asked.forEach(({ item }, i) => {
        const reply = replies[i]!
        if (item.access === "subscriber") {
          assert.deepStrictEqual([reply.status, reply.body?.error?.code], [403, "forbidden"], `item ${item.id}`)
        } else {
          assert.deepStrictEqual([reply.status, reply.body?.id], [200, item.id], `item ${item.id}`)
        }
      })
      const stats = yield* sim.stats
      assert.isAtLeast(stats.batches, 1, "the calls went upstream as JSON-RPC batches")
      assert.isBelow(stats.http_requests, asked.length, JSON.stringify(stats))
    }))
})
