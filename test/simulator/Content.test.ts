import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Simulator from "../../src/simulator/Simulator.js"
import { isCommonToken, tokenize } from "../../src/simulator/Vocabulary.js"
import { bearer, call, json, post, start } from "./support.js"

type Result = { id: number; title: string; metadata: { drupal_version: string; tags: Array<string>; updated: string } }

const search = (sim: Simulator.Simulator, params: Record<string, unknown>, headers: Record<string, string> = {}) =>
  Effect.map(post(sim, call("content.search", params), headers), (r) => {
    const body = json(r)
    if (body.error !== undefined) throw new Error(JSON.stringify(body.error))
    return body.result as { results: Array<Result>; total: number; limit: number; offset: number }
  })

describe("Simulator content visibility", () => {
  it.scopedLive("a subscriber item: Access Denied for free and anonymous users, visible to subscriber and admin", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const item = sim.corpus.items.find((i) => i.access === "subscriber")!
      for (const headers of [{}, bearer("free")]) {
        const reply = yield* post(sim, call("content.get_tutorial", { id: item.id }), headers)
        assert.strictEqual(reply.status, 200)
        assert.deepStrictEqual(json(reply).error, {
          code: -32600,
          message: "Invalid Request",
          data: "Access Denied: The 'access subscriber content' permission is required."
        })
        assert.strictEqual(json(reply).id, null)
      }
      for (const who of ["subscriber", "admin"] as const) {
        const reply = json(yield* post(sim, call("content.get_tutorial", { id: item.id, format: "markdown" }), bearer(who)))
        assert.strictEqual(reply.result.id, item.id)
        assert.strictEqual(reply.result.title, item.title)
        assert.strictEqual(reply.result.format, "markdown")
        assert.strictEqual(reply.result.content, sim.corpus.bodyText(item, "markdown"))
      }
    }))

  it.scopedLive("get_tutorial: the item with its content in the asked format; include_content false drops it", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const item = sim.corpus.items.find((i) => i.access === "free")!
      const html = json(yield* post(sim, call("content.get_tutorial", { id: item.id }))).result
      assert.strictEqual(html.url, `${sim.url}/tutorial/${item.id}`)
      assert.deepStrictEqual(html.metadata, {
        drupal_version: item.drupalVersion,
        difficulty: item.difficulty,
        tags: item.tags,
        updated: item.updated,
        langcode: item.langcode
      })
      assert.strictEqual(html.format, "html")
      assert.match(html.content, /<h2>/)
      assert.isAtLeast(html.content.length, item.targetChars)
      const bare = json(yield* post(sim, call("content.get_tutorial", { id: item.id, include_content: false }))).result
      assert.notProperty(bare, "content")
      assert.strictEqual(bare.title, item.title)
    }))

  it.scopedLive("search lists only what the caller may see, so two users' results differ", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const params = { query: "drupal", page: { limit: 100 } }
      const anonymous = yield* search(sim, params)
      const subscriber = yield* search(sim, params, bearer("subscriber"))
      const free = sim.corpus.items.filter((i) => i.access === "free").length
      assert.strictEqual(anonymous.total, free)
      assert.strictEqual(subscriber.total, sim.corpus.size)
      for (const r of anonymous.results) assert.strictEqual(sim.corpus.get(r.id)!.access, "free")
    }))
})

describe("Simulator search", () => {
  it.scopedLive("filters: drupal_version, tags (all of them), content_type, access_level", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const admin = bearer("admin")
      const all = sim.corpus.items
      const v10 = yield* search(sim, { query: "drupal", drupal_version: "10", page: { limit: 100 } }, admin)
      assert.strictEqual(v10.total, all.filter((i) => i.drupalVersion === "10").length)
      assert.isTrue(v10.results.every((r) => r.metadata.drupal_version === "10"))
      const pair = all.find((i) => i.tags.length >= 2)!
      const tags = pair.tags.slice(0, 2)
      const tagged = yield* search(sim, { query: "drupal", tags, page: { limit: 100 } }, admin)
      assert.strictEqual(tagged.total, all.filter((i) => tags.every((t) => i.tags.includes(t))).length)
      assert.isTrue(tagged.results.some((r) => r.id === pair.id))
      const videos = yield* search(sim, { query: "drupal", content_type: "video", page: { limit: 100 } }, admin)
      assert.strictEqual(videos.total, all.filter((i) => i.contentType === "video").length)
      const subscriberOnly = yield* search(sim, { query: "drupal", access_level: "subscriber", page: { limit: 100 } }, admin)
      assert.strictEqual(subscriberOnly.total, all.filter((i) => i.access === "subscriber").length)
      const none = yield* search(sim, { query: "drupal", tags: ["no-such-tag"] }, admin)
      assert.strictEqual(none.total, 0)
    }))

  it.scopedLive("sorts: date descending, title ascending, relevance by score with a deterministic tie-break", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const admin = bearer("admin")
      const byDate = yield* search(sim, { query: "drupal", sort: "date", page: { limit: 100 } }, admin)
      for (let i = 1; i < byDate.results.length; i++) {
        assert.isTrue(byDate.results[i - 1]!.metadata.updated >= byDate.results[i]!.metadata.updated)
      }
      const byTitle = yield* search(sim, { query: "drupal", sort: "title", page: { limit: 100 } }, admin)
      for (let i = 1; i < byTitle.results.length; i++) {
        assert.isTrue(byTitle.results[i - 1]!.title.toLowerCase() <= byTitle.results[i]!.title.toLowerCase())
      }
      // "views" in the title scores higher than "views" only among the topic words.
      const relevance = yield* search(sim, { query: "views", page: { limit: 100 } }, admin)
      assert.isAbove(relevance.total, 0)
      const first = relevance.results[0]!
      assert.match(first.title.toLowerCase(), /views/)
      const again = yield* search(sim, { query: "views", page: { limit: 100 } }, admin)
      assert.deepStrictEqual(again.results.map((r) => r.id), relevance.results.map((r) => r.id))
    }))

  it.scopedLive("pagination: total constant across pages, pages disjoint, default limit 20", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const admin = bearer("admin")
      const first = yield* search(sim, { query: "drupal", sort: "title" }, admin)
      assert.strictEqual(first.limit, 20)
      assert.strictEqual(first.offset, 0)
      assert.strictEqual(first.results.length, 20)
      const seen = new Set<number>()
      for (let offset = 0; offset < 100; offset += 25) {
        const page = yield* search(sim, { query: "drupal", sort: "title", page: { limit: 25, offset } }, admin)
        assert.strictEqual(page.total, first.total)
        assert.strictEqual(page.offset, offset)
        for (const r of page.results) {
          assert.isFalse(seen.has(r.id))
          seen.add(r.id)
        }
      }
      assert.strictEqual(seen.size, 100)
      const capped = yield* search(sim, { query: "drupal", page: { limit: 1000 } }, admin)
      assert.strictEqual(capped.limit, 100)
      assert.strictEqual(capped.results.length, 100)
    }))

  it.scopedLive("a word taken from an item's body finds that item (AND of terms, case-insensitive)", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const admin = bearer("admin")
      for (const id of [3, 50, 120, 240]) {
        const item = sim.corpus.get(id)!
        const body = sim.corpus.bodyText(item, "markdown")
        const words = [...new Set(tokenize(body))].filter((w) => !isCommonToken(w))
        assert.isAbove(words.length, 3)
        // Every distinctive body word, alone and upper-cased, finds the item.
        for (const word of words) {
          const found = yield* search(sim, { query: word.toUpperCase(), page: { limit: 100 } }, admin)
          const ids = new Set(found.results.map((r) => r.id))
          let offset = 100
          while (!ids.has(id) && offset < found.total) {
            const next = yield* search(sim, { query: word, page: { limit: 100, offset } }, admin)
            next.results.forEach((r) => ids.add(r.id))
            offset += 100
          }
          assert.isTrue(ids.has(id), `searching "${word}" should find item ${id}`)
        }
        const pairQuery = `${words[0]} ${words[words.length - 1]}`
        const pair = yield* search(sim, { query: pairQuery, page: { limit: 100 } }, admin)
        assert.isTrue(pair.total <= (yield* search(sim, { query: words[0]!, page: { limit: 1 } }, admin)).total)
      }
      const nothing = yield* search(sim, { query: "zzzqqqxxx" }, admin)
      assert.strictEqual(nothing.total, 0)
    }))
})

describe("Simulator corpus determinism", () => {
  it.scopedLive("same seed: identical search results and bodies; another seed differs", () =>
    Effect.gen(function*() {
      const siteUrl = "https://drupalize.example"
      const a = yield* start({ seed: 11, siteUrl, largeShare: 0.05 })
      const b = yield* start({ seed: 11, siteUrl, largeShare: 0.05 })
      const c = yield* start({ seed: 12, siteUrl, largeShare: 0.05 })
      const query = [
        call("content.search", { query: "views", sort: "relevance", page: { limit: 50 } }, 1),
        call("content.search", { query: "drupal", sort: "date", page: { limit: 50, offset: 10 } }, 2),
        call("content.get_tutorial", { id: 17, format: "markdown" }, 3),
        call("content.get_tutorial", { id: 18, format: "html" }, 4)
      ]
      const ra = yield* post(a, query, bearer("admin"))
      const rb = yield* post(b, query, bearer("admin"))
      const rc = yield* post(c, query, bearer("admin"))
      assert.strictEqual(ra.text, rb.text)
      assert.notStrictEqual(ra.text, rc.text)
      const large = a.corpus.items.find((i) => i.large)!
      let same = true
      const ib = b.corpus.chunks(b.corpus.get(large.id)!, "html", 65536)
      for (const chunk of a.corpus.chunks(large, "html", 65536)) {
        const other = ib.next()
        if (other.done === true || other.value !== chunk) {
          same = false
          break
        }
      }
      assert.isTrue(same)
      assert.isTrue(ib.next().done === true)
      assert.notStrictEqual(c.corpus.bodyText(c.corpus.get(18)!, "html"), a.corpus.bodyText(a.corpus.get(18)!, "html"))
    }))

  it.scopedLive("default corpus size (10,000 items) starts quickly", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const sim = yield* Simulator.make({ port: 0, corpusSize: 10_000, seed: 42, largeShare: 0.01 })
      const elapsed = Date.now() - started
      assert.isBelow(elapsed, 3_000)
      assert.strictEqual(sim.corpus.size, 10_000)
      const large = sim.corpus.items.filter((i) => i.large).length
      assert.isAbove(large, 50)
      assert.isBelow(large, 160)
      const subscriber = sim.corpus.items.filter((i) => i.access === "subscriber").length / 10_000
      assert.isAbove(subscriber, 0.25)
      assert.isBelow(subscriber, 0.35)
      const t0 = Date.now()
      const result = yield* search(sim, { query: "cache tags" }, bearer("admin"))
      assert.isBelow(Date.now() - t0, 500)
      assert.isAbove(result.total, 0)
    }))
})

describe("Simulator core methods", () => {
  it.scopedLive("jsonrpc_core methods answer plausible results for an administrator", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const admin = bearer("admin")
      const replies = json(yield* post(sim, [
        call("plugins.list", { service: "plugin.manager.block", page: { limit: 2 } }, 1),
        call("plugins.list", { service: "no.such.service" }, 2),
        call("user_permissions.list", { page: { offset: 1, limit: 3 } }, 3),
        call("route_builder.rebuild", undefined, 4),
        call("maintenance_mode.isEnabled", undefined, 5)
      ], admin))
      assert.deepStrictEqual(Object.keys(replies[0].result), ["system_branding_block", "system_main_block"])
      assert.strictEqual(replies[1].error.code, -32602)
      assert.include(replies[1].error.data, "non-existent service")
      assert.strictEqual(Object.keys(replies[2].result).length, 3)
      assert.strictEqual(replies[3].result, true)
      assert.strictEqual(replies[4].result, false)
    }))

  it.scopedLive("maintenance mode: non-administrators get HTTP 503 until it is switched off", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const on = json(yield* post(sim, call("maintenance_mode.isEnabled", { enabled: true }), bearer("admin")))
      assert.strictEqual(on.result, true)
      const blocked = yield* post(sim, call("content.search", { query: "views" }))
      assert.strictEqual(blocked.status, 503)
      const adminStill = yield* post(sim, call("content.search", { query: "views" }), bearer("admin"))
      assert.strictEqual(adminStill.status, 200)
      yield* post(sim, call("maintenance_mode.isEnabled", { enabled: false }), bearer("admin"))
      assert.strictEqual((yield* post(sim, call("content.search", { query: "views" }))).status, 200)
    }))
})
