/**
 * The cache through the HTTP API, against real Redis and PostgreSQL and the simulator.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis as IORedis } from "ioredis"
import * as http from "node:http"
import zlibModule from "node:zlib"
import { inject, vi } from "vitest"
import { startGateway } from "./fixtures.js"

/** A GET whose body is read as it is sent (fetch would decode the content coding). */
const rawGet = (url: string, headers: Record<string, string>) =>
  new Promise<{ readonly headers: http.IncomingHttpHeaders; readonly body: Buffer }>((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }))
      res.on("error", reject)
    }).on("error", reject)
  })

const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })
let run = 0
const unique = () => `t${process.pid}_${Date.now().toString(36)}_${run++}`

describe("cache through the HTTP API", () => {
  it.scopedLive("GET /content/{id} answers MISS, then HIT-MEMORY from the hit path without reaching Drupal", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway()
      const free = sim.corpus.items.find((i) => i.access === "free")!
      yield* sim.reset
      const first = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      const second = yield* Effect.promise(() => request(`/content/${free.id}?include_content=false`))
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      assert.match(first.headers.get("server-timing") ?? "", /cache;desc="MISS", app;dur=[\d.]+, upstream;dur=[\d.]+/)
      assert.strictEqual(second.headers.get("x-cache"), "HIT-MEMORY")
      assert.include(second.headers.get("server-timing") ?? "", "HIT-MEMORY")
      assert.deepStrictEqual(second.body, first.body)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1)
    }))

  it.scopedLive("a stale memory entry is answered STALE by the hit path and revalidated once in the background (items, search, denials)", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway({
        CACHE_CONTENT_FRESH_MS: "300",
        CACHE_SEARCH_FRESH_MS: "300",
        CACHE_DENIED_MS: "300",
        CACHE_JITTER: "0"
      })
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      const paths = [`/content/${free.id}?include_content=false`, "/search?q=views&limit=5", `/content/${locked.id}?include_content=false`]
      const firsts = []
      for (const path of paths) firsts.push(yield* Effect.promise(() => request(path)))
      assert.deepStrictEqual(firsts.map((r) => r.status), [200, 200, 403])
      yield* Effect.sleep("400 millis")
      yield* sim.reset
      for (const [i, path] of paths.entries()) {
        // Five stale asks at once: answered at once by the hit path (no `app;dur`): stale, or
        // fresh again once the one reload upstream is done.
        const answers = yield* Effect.promise(() => Promise.all(Array.from({ length: 5 }, () => request(path))))
        assert.isTrue(answers.some((r) => r.headers.get("x-cache") === "STALE"), `${path}: answered stale`)
        for (const r of answers) {
          const status = r.headers.get("x-cache")
          assert.include(["STALE", "HIT-MEMORY"], status, path)
          assert.strictEqual(r.headers.get("server-timing"), `cache;desc="${status}"`, `${path}: answered by the hit path`)
          assert.strictEqual(r.status, firsts[i]!.status)
          assert.deepStrictEqual(r.body, firsts[i]!.body)
        }
      }
      // The revalidations renewed the entries: fresh memory hits again.
      for (const path of paths) {
        let hit = yield* Effect.promise(() => request(path))
        for (let attempt = 0; attempt < 50 && hit.headers.get("x-cache") !== "HIT-MEMORY"; attempt++) {
          yield* Effect.sleep("20 millis")
          hit = yield* Effect.promise(() => request(path))
        }
        assert.strictEqual(hit.headers.get("x-cache"), "HIT-MEMORY", `${path} renewed`)
      }
      const stats = yield* sim.stats
      assert.strictEqual(stats.methods["content.get_tutorial"], 2, "one reload per stale item entry")
      assert.strictEqual(stats.methods["content.search"], 1, "one reload of the stale page")
    }))

  it.scopedLive("after a restart with Redis configured, HIT-REDIS; with only PostgreSQL, HIT-POSTGRES", () =>
    Effect.gen(function*() {
      const redisConfig = { REDIS_URL: inject("redisUrl"), CACHE_REDIS_PREFIX: `${unique()}:` }
      yield* Effect.scoped(Effect.gen(function*() {
        const { request } = yield* startGateway(redisConfig)
        const miss = yield* Effect.promise(() => request("/content/4?include_content=false", auth("demo-admin-token")))
        assert.strictEqual(miss.headers.get("x-cache"), "MISS")
      })) // closing the scope drains the write queue into Redis
      const { request: again } = yield* startGateway(redisConfig)
      const hit = yield* Effect.promise(() => again("/content/4?include_content=false", auth("demo-admin-token")))
      assert.strictEqual(hit.headers.get("x-cache"), "HIT-REDIS")
      assert.strictEqual(hit.body.id, 4)

      const pgConfig = { DATABASE_URL: inject("databaseUrl"), CACHE_PG_TABLE: unique() }
      yield* Effect.scoped(Effect.gen(function*() {
        const { request } = yield* startGateway(pgConfig)
        const miss = yield* Effect.promise(() => request("/content/5?include_content=false", auth("demo-admin-token")))
        assert.strictEqual(miss.headers.get("x-cache"), "MISS")
      }))
      const { request: pgAgain } = yield* startGateway(pgConfig)
      const pgHit = yield* Effect.promise(() => pgAgain("/content/5?include_content=false", auth("demo-admin-token")))
      assert.strictEqual(pgHit.headers.get("x-cache"), "HIT-POSTGRES")
      assert.strictEqual(pgHit.body.id, 5)
    }))

  it.scopedLive("an item read back from Redis is sent gzip with the bytes Redis stores, from the app and then the hit path, without compressing again", () =>
    Effect.gen(function*() {
      const config = { REDIS_URL: inject("redisUrl"), CACHE_REDIS_PREFIX: `${unique()}:`, CACHE_COMPRESS_ABOVE_BYTES: "1024" }
      let path = ""
      let identity: Buffer = Buffer.alloc(0)
      yield* Effect.scoped(Effect.gen(function*() {
        const { base, sim } = yield* startGateway(config)
        const free = sim.corpus.items.find((i) => i.access === "free")!
        path = `/content/${free.id}`
        const miss = yield* Effect.promise(() => rawGet(base + path, {}))
        assert.strictEqual(miss.headers["x-cache"], "MISS")
        identity = miss.body
      })) // closing the scope drains the write queue into Redis
      assert.isAbove(identity.byteLength, 1024)
      const { base } = yield* startGateway(config)
      const gzip = vi.spyOn(zlibModule, "gzip")
      const brotli = vi.spyOn(zlibModule, "brotliCompress")
      try {
        // A client that takes br and gzip alike (as fetch and most HTTP libraries ask).
        const accept = { "accept-encoding": "gzip, deflate, br" }
        const fromRedis = yield* Effect.promise(() => rawGet(base + path, accept))
        assert.strictEqual(fromRedis.headers["x-cache"], "HIT-REDIS")
        assert.strictEqual(fromRedis.headers["content-encoding"], "gzip")
        assert.deepStrictEqual(zlibModule.gunzipSync(fromRedis.body), identity)
        const fromMemory = yield* Effect.promise(() => rawGet(base + path, accept))
        assert.strictEqual(fromMemory.headers["x-cache"], "HIT-MEMORY")
        assert.strictEqual(fromMemory.headers["server-timing"], `cache;desc="HIT-MEMORY"`, "answered by the hit path")
        assert.deepStrictEqual(fromMemory.body, fromRedis.body)
        assert.strictEqual(fromMemory.headers["etag"], fromRedis.headers["etag"])
        assert.strictEqual(gzip.mock.calls.length + brotli.mock.calls.length, 0, "nothing compressed")
      } finally {
        gzip.mockRestore()
        brotli.mockRestore()
      }
    }))

  it.scopedLive("an item's Markdown is made from its JSON answer held in memory, without asking Drupal: the same document, per partition", () =>
    Effect.gen(function*() {
      // The document asked cold, from Drupal, on a gateway of its own (same corpus).
      const cold = yield* startGateway()
      const free = cold.sim.corpus.items.find((i) => i.access === "free")!
      const locked = cold.sim.corpus.items.find((i) => i.access === "subscriber")!
      const fromDrupal = yield* Effect.promise(() => cold.request(`/content/${free.id}/markdown`))
      assert.strictEqual(fromDrupal.status, 200)
      const { request, sim } = yield* startGateway()
      const json = yield* Effect.promise(() => request(`/content/${free.id}`))
      assert.strictEqual(json.status, 200)
      yield* sim.reset
      const derived = yield* Effect.promise(() => request(`/content/${free.id}/markdown`))
      assert.strictEqual(derived.status, 200)
      assert.strictEqual(derived.headers.get("x-cache"), "MISS")
      // The same document, but for the site's address (each simulator listens on a port of its own).
      const expected = fromDrupal.text.replaceAll(cold.sim.url, sim.url)
      assert.notStrictEqual(expected, fromDrupal.text)
      assert.strictEqual(derived.text, expected)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"] ?? 0, 0, "no upstream call for the document")
      const again = yield* Effect.promise(() => request(`/content/${free.id}/markdown`))
      assert.strictEqual(again.headers.get("x-cache"), "HIT-MEMORY")
      assert.strictEqual(again.text, expected)
      // Another partition's JSON is not this caller's: the subscriber's answer does not make the
      // anonymous caller's document (Drupal is asked, and denies it).
      const subscriberJson = yield* Effect.promise(() => request(`/content/${locked.id}`, auth("demo-subscriber-token")))
      assert.strictEqual(subscriberJson.status, 200)
      const anonymous = yield* Effect.promise(() => request(`/content/${locked.id}/markdown`))
      assert.strictEqual(anonymous.status, 403)
      assert.isAtLeast((yield* sim.stats).methods["content.get_tutorial"] ?? 0, 2)
      // A JSON copy read longer ago than a Markdown copy may stay fresh is not used: Drupal is asked.
      const short = yield* startGateway({ CACHE_MARKDOWN_FRESH_MS: "200", CACHE_JITTER: "0" })
      yield* Effect.promise(() => short.request(`/content/${free.id}`))
      yield* Effect.sleep("300 millis")
      yield* short.sim.reset
      const older = yield* Effect.promise(() => short.request(`/content/${free.id}/markdown`))
      assert.strictEqual(older.status, 200)
      assert.strictEqual((yield* short.sim.stats).methods["content.get_tutorial"], 1)
    }))

  it.scopedLive("a refusal kept by one of an item's routes answers the other in the same partition, without asking Drupal", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway()
      const [first, second] = sim.corpus.items.filter((i) => i.access === "subscriber")
      const unknown = sim.corpus.items.length + 1000
      // JSON first: its denial (and an unknown id's not-found) answers the Markdown route.
      const denied = yield* Effect.promise(() => request(`/content/${first!.id}`))
      const missing = yield* Effect.promise(() => request(`/content/${unknown}`))
      assert.deepStrictEqual([denied.status, missing.status], [403, 404])
      yield* sim.reset
      const mdDenied = yield* Effect.promise(() => request(`/content/${first!.id}/markdown`))
      const mdMissing = yield* Effect.promise(() => request(`/content/${unknown}/markdown`))
      assert.deepStrictEqual([mdDenied.status, mdMissing.status], [403, 404])
      assert.strictEqual(mdDenied.text, denied.text)
      assert.strictEqual(mdMissing.text, missing.text)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"] ?? 0, 0, "no upstream call for the documents")
      // Markdown first: its denial answers the JSON route.
      const mdFirst = yield* Effect.promise(() => request(`/content/${second!.id}/markdown`))
      assert.strictEqual(mdFirst.status, 403)
      const json = yield* Effect.promise(() => request(`/content/${second!.id}`))
      assert.strictEqual(json.status, 403)
      assert.strictEqual(json.headers.get("x-cache"), "HIT-MEMORY")
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1)
      // Another partition is asked on its own: the subscriber reads the item.
      const subscriber = yield* Effect.promise(() => request(`/content/${second!.id}/markdown`, auth("demo-subscriber-token")))
      assert.strictEqual(subscriber.status, 200)
    }))

  it.scopedLive("a Markdown miss read whole keeps the item's JSON answer too: /content/{id} is then a hit, the same bytes", () =>
    Effect.gen(function*() {
      const cold = yield* startGateway()
      const free = cold.sim.corpus.items.find((i) => i.access === "free")!
      const fromDrupal = yield* Effect.promise(() => cold.request(`/content/${free.id}`))
      assert.strictEqual(fromDrupal.status, 200)
      const { request, sim } = yield* startGateway()
      const markdown = yield* Effect.promise(() => request(`/content/${free.id}/markdown`))
      assert.strictEqual(markdown.status, 200)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1)
      const json = yield* Effect.promise(() => request(`/content/${free.id}`))
      assert.strictEqual(json.headers.get("x-cache"), "HIT-MEMORY")
      assert.strictEqual(json.text, fromDrupal.text.replaceAll(cold.sim.url, sim.url))
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 1, "no second upstream call")
      // Not another partition's: a subscriber asking the item loads it as the subscriber.
      const subscriber = yield* Effect.promise(() => request(`/content/${free.id}`, auth("demo-subscriber-token")))
      assert.strictEqual(subscriber.headers.get("x-cache"), "MISS")
    }))

  it.scopedLive("no caller ever receives a value cached for another access level (content, search, Markdown)", () =>
    Effect.gen(function*() {
      const prefix = `${unique()}:`
      const { request, sim } = yield* startGateway({ REDIS_URL: inject("redisUrl"), CACHE_REDIS_PREFIX: prefix })
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!

      const asSubscriber = yield* Effect.promise(() => request(`/content/${locked.id}`, auth("demo-subscriber-token")))
      const againSubscriber = yield* Effect.promise(() => request(`/content/${locked.id}`, auth("demo-subscriber-token")))
      assert.strictEqual(asSubscriber.status, 200)
      assert.strictEqual(againSubscriber.headers.get("x-cache"), "HIT-MEMORY")
      const asAnonymous = yield* Effect.promise(() => request(`/content/${locked.id}`))
      const asFree = yield* Effect.promise(() => request(`/content/${locked.id}`, auth("demo-free-token")))
      assert.deepStrictEqual([asAnonymous.status, asAnonymous.body.error.code], [403, "forbidden"])
      assert.deepStrictEqual([asFree.status, asFree.body.error.code], [403, "forbidden"])

      const md = yield* Effect.promise(() => request(`/content/${locked.id}/markdown`, auth("demo-subscriber-token")))
      assert.strictEqual(md.status, 200)
      const mdCached = yield* Effect.promise(() => request(`/content/${locked.id}/markdown`, auth("demo-subscriber-token")))
      assert.strictEqual(mdCached.headers.get("x-cache"), "HIT-MEMORY")
      assert.strictEqual(mdCached.text, md.text)
      const mdAnonymous = yield* Effect.promise(() => request(`/content/${locked.id}/markdown`))
      assert.strictEqual(mdAnonymous.status, 403)

      const subscriberSearch = yield* Effect.promise(() => request("/search?q=drupal&limit=50", auth("demo-subscriber-token")))
      const anonymousSearch = yield* Effect.promise(() => request("/search?q=drupal&limit=50"))
      assert.isAbove(subscriberSearch.body.total, anonymousSearch.body.total)
      const visible = new Set(sim.corpus.items.filter((i) => i.access === "free").map((i) => i.id))
      assert.isTrue(anonymousSearch.body.results.every((r: { id: number }) => visible.has(r.id)))

      // No token in any key or value written to Redis.
      const client = new IORedis(inject("redisUrl"))
      const leaked = yield* Effect.promise(async () => {
        let cursor = "0"
        const found: Array<string> = []
        do {
          const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500)
          cursor = next
          for (const key of keys) {
            const type = await client.type(key)
            const value = type === "string" ? await client.getBuffer(key) : Buffer.from((await client.smembers(key)).join(","))
            if (`${key}${value?.toString("latin1")}`.includes("demo-")) found.push(key)
          }
        } while (cursor !== "0")
        await client.quit()
        return found
      })
      assert.deepStrictEqual(leaked, [])
    }))

  it.scopedLive("search pages and tool lists are cached; an unknown item is a cached 404", () =>
    Effect.gen(function*() {
      const { request, sim } = yield* startGateway()
      yield* sim.reset
      const first = yield* Effect.promise(() => request("/search?q=Views%20 Caching&tags=views,caching"))
      const second = yield* Effect.promise(() => request("/search?q=views%20caching&tags=caching&tags=views"))
      assert.strictEqual(first.headers.get("x-cache"), "MISS")
      assert.strictEqual(second.headers.get("x-cache"), "HIT-MEMORY", "equal questions share one key")
      const tools = yield* Effect.promise(() => request("/tools"))
      const toolsAgain = yield* Effect.promise(() => request("/tools"))
      assert.strictEqual(toolsAgain.headers.get("x-cache"), "HIT-MEMORY")
      assert.deepStrictEqual(toolsAgain.body, tools.body)
      const missing = yield* Effect.promise(() => request("/content/999999"))
      const missingAgain = yield* Effect.promise(() => request("/content/999999"))
      assert.deepStrictEqual([missing.status, missingAgain.status], [404, 404])
      assert.strictEqual(missingAgain.headers.get("x-cache"), "HIT-MEMORY")
      const stats = yield* sim.stats
      assert.strictEqual(stats.methods["content.search"], 1)
      assert.strictEqual(stats.methods["content.get_tutorial"], 1)
    }))
})
