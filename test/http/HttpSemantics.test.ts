/**
 * HTTP semantics through the gateway, on both paths: the synchronous hit path (fresh memory hits,
 * `Server-Timing` without `app;dur`) and the Effect app (loads, other tiers, first demand of a
 * coding, Markdown streams). Raw requests (undici `request`): no automatic decompression and no
 * `Accept-Encoding` unless a spec sends one.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { request as raw } from "undici"
import { brotliDecompressSync, gunzipSync } from "node:zlib"
import { startGateway } from "./fixtures.js"

interface RawAnswer {
  readonly status: number
  readonly headers: Record<string, string | undefined>
  readonly body: Buffer
}

const get = (base: string, path: string, headers: Record<string, string> = {}) =>
  Effect.promise(async (): Promise<RawAnswer> => {
    const res = await raw(base + path, { headers })
    const body = Buffer.from(await res.body.arrayBuffer())
    const flat: Record<string, string | undefined> = {}
    for (const [k, v] of Object.entries(res.headers)) flat[k] = Array.isArray(v) ? v.join(", ") : v
    return { status: res.statusCode, headers: flat, body }
  })

const SUBSCRIBER = { authorization: "Bearer demo-subscriber-token" }
const ANON_CONTROL = /^public, max-age=\d+, stale-while-revalidate=\d+, stale-if-error=\d+$/
const fromHitPath = (a: RawAnswer) => a.headers["x-cache"] === "HIT-MEMORY" && !(a.headers["server-timing"] ?? "").includes("app;dur")
const fromApp = (a: RawAnswer) => (a.headers["server-timing"] ?? "").includes("app;dur")

/** Whether the simulator has answered a conditional request 304 (polled up to 1 s). */
const upstream304 = (sim: { readonly stats: Effect.Effect<{ readonly responses: Readonly<Record<string, number>> }> }) =>
  Effect.gen(function*() {
    for (let i = 0; i < 50; i++) {
      if (((yield* sim.stats).responses["304"] ?? 0) >= 1) return true
      yield* Effect.sleep("20 millis")
    }
    return false
  })

/** `path` asked until the memory tier answers it (the renewed entry is stored just after the 304). */
const memoryHit = (base: string, path: string) =>
  Effect.gen(function*() {
    let renewed = yield* get(base, path)
    for (let i = 0; i < 25 && renewed.headers["x-cache"] !== "HIT-MEMORY"; i++) {
      yield* Effect.sleep("20 millis")
      renewed = yield* get(base, path)
    }
    return renewed
  })

/**
 * `path` asked until it is answered stale (its entry, renewed by the last refresh at a moment a
 * loaded machine may delay, has gone stale again): every answer before that is a fresh hit.
 */
const staleAgain = (base: string, path: string) =>
  Effect.gen(function*() {
    let answer = yield* get(base, path)
    for (let i = 0; i < 60 && answer.headers["x-cache"] === "HIT-MEMORY"; i++) {
      yield* Effect.sleep("50 millis")
      answer = yield* get(base, path)
    }
    return answer
  })

describe("HTTP semantics", () => {
  it.scopedLive("ETag, Cache-Control, Vary and Age on both paths; If-None-Match gives an empty 304 on both, also on a cold instance", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway()
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const path = `/content/${free.id}`
      const miss = yield* get(base, path)
      assert.strictEqual(miss.status, 200)
      assert.isTrue(fromApp(miss))
      const etag = miss.headers["etag"]!
      assert.match(etag, /^"[A-Za-z0-9_-]{27}"$/)
      assert.match(miss.headers["cache-control"]!, ANON_CONTROL)
      assert.strictEqual(miss.headers["vary"], "Authorization, Accept-Encoding")
      assert.strictEqual(miss.headers["age"], "0")

      const hit = yield* get(base, path)
      assert.isTrue(fromHitPath(hit))
      assert.strictEqual(hit.headers["etag"], etag)
      assert.match(hit.headers["cache-control"]!, ANON_CONTROL)
      assert.strictEqual(hit.headers["vary"], "Authorization, Accept-Encoding")
      assert.deepStrictEqual(hit.body, miss.body)

      const notModified = yield* get(base, path, { "if-none-match": etag })
      assert.isTrue(fromHitPath(notModified))
      assert.strictEqual(notModified.status, 304)
      assert.strictEqual(notModified.body.byteLength, 0)
      assert.strictEqual(notModified.headers["etag"], etag)
      assert.match(notModified.headers["cache-control"]!, ANON_CONTROL)
      const changed = yield* get(base, path, { "if-none-match": "\"somethingelse\"" })
      assert.strictEqual(changed.status, 200)

      // Age grows with the entry's age (whole seconds).
      yield* Effect.sleep("1100 millis")
      const older = yield* get(base, path)
      assert.isTrue(fromHitPath(older))
      assert.isAtLeast(Number(older.headers["age"]), 1)

      // A second, cold instance (same site, same bytes) answers that ETag with a 304 after loading.
      // Its own simulator stays idle: the same site is what gives the same bytes.
      const cold = yield* startGateway({ DRUPAL_URL: sim.url })
      const coldAnswer = yield* get(cold.base, path, { "if-none-match": etag })
      assert.strictEqual(coldAnswer.status, 304)
      assert.strictEqual(coldAnswer.headers["x-cache"], "MISS")
      assert.isTrue(fromApp(coldAnswer))
      assert.strictEqual(coldAnswer.body.byteLength, 0)
      assert.strictEqual(coldAnswer.headers["etag"], etag)

      // Search and discovery routes follow the same rules through the app and the hit path.
      for (const route of ["/search?q=drupal&limit=5", "/methods"]) {
        const first = yield* get(cold.base, route)
        assert.isTrue(fromApp(first))
        const tag = first.headers["etag"]!
        assert.isDefined(tag, route)
        assert.match(first.headers["cache-control"]!, ANON_CONTROL)
        const again = yield* get(cold.base, route, { "if-none-match": tag })
        assert.isTrue(fromHitPath(again), route)
        assert.strictEqual(again.status, 304, route)
        const elsewhere = yield* get(base, route, { "if-none-match": tag })
        assert.strictEqual(elsewhere.status, 304, route)
        assert.isTrue(fromApp(elsewhere), route)
      }
    }))

  it.scopedLive("signed-in answers are private, no-store on both paths; errors are no-store on both paths", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway()
      const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
      const first = yield* get(base, `/content/${locked.id}`, SUBSCRIBER)
      assert.strictEqual(first.status, 200)
      assert.isTrue(fromApp(first))
      assert.strictEqual(first.headers["cache-control"], "private, no-store")
      assert.strictEqual(first.headers["vary"], "Authorization, Accept-Encoding")
      const second = yield* get(base, `/content/${locked.id}`, { ...SUBSCRIBER, "if-none-match": first.headers["etag"]! })
      assert.isTrue(fromHitPath(second))
      assert.strictEqual(second.status, 304)
      assert.strictEqual(second.headers["cache-control"], "private, no-store")

      const forbidden = yield* get(base, `/content/${locked.id}`)
      assert.strictEqual(forbidden.status, 403)
      assert.strictEqual(forbidden.headers["cache-control"], "no-store")
      assert.isUndefined(forbidden.headers["etag"])
      const bad = yield* get(base, "/content/abc")
      assert.strictEqual(bad.status, 400)
      assert.strictEqual(bad.headers["cache-control"], "no-store")
      // An unknown id is a cached 404: no-store from the app, then from the hit path.
      const unknown = yield* get(base, "/content/99999999")
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.headers["cache-control"], "no-store")
      const unknownAgain = yield* get(base, "/content/99999999")
      assert.strictEqual(unknownAgain.status, 404)
      assert.isTrue(fromHitPath(unknownAgain))
      assert.strictEqual(unknownAgain.headers["cache-control"], "no-store")
    }))

  it.scopedLive("compression: made once on first demand by the app, then sent by the hit path; q-values; small bodies stay identity", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway()
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const path = `/content/${free.id}`
      const plain = yield* get(base, path)
      assert.isAbove(plain.body.byteLength, 1024)
      assert.isUndefined(plain.headers["content-encoding"])

      const firstGzip = yield* get(base, path, { "accept-encoding": "gzip, deflate" })
      assert.isTrue(fromApp(firstGzip))
      assert.strictEqual(firstGzip.headers["x-cache"], "HIT-MEMORY")
      assert.strictEqual(firstGzip.headers["content-encoding"], "gzip")
      assert.strictEqual(firstGzip.headers["etag"], plain.headers["etag"]!.replace(/"$/, "-gz\""))
      assert.deepStrictEqual(gunzipSync(firstGzip.body), plain.body)
      const gzipHit = yield* get(base, path, { "accept-encoding": "gzip" })
      assert.isTrue(fromHitPath(gzipHit))
      assert.strictEqual(gzipHit.headers["content-encoding"], "gzip")
      assert.strictEqual(Number(gzipHit.headers["content-length"]), gzipHit.body.byteLength)
      assert.deepStrictEqual(gzipHit.body, firstGzip.body)
      // A gzip ETag validates the identity representation too (same bytes underneath).
      const crossed = yield* get(base, path, { "if-none-match": gzipHit.headers["etag"]! })
      assert.strictEqual(crossed.status, 304)

      const br = yield* get(base, path, { "accept-encoding": "gzip;q=0.5, br" })
      assert.strictEqual(br.headers["content-encoding"], "br")
      assert.deepStrictEqual(brotliDecompressSync(br.body), plain.body)
      const brHit = yield* get(base, path, { "accept-encoding": "br;q=1, gzip;q=0.5" })
      assert.isTrue(fromHitPath(brHit))
      assert.strictEqual(brHit.headers["content-encoding"], "br")
      const preferGzip = yield* get(base, path, { "accept-encoding": "br;q=0.1, gzip;q=0.9" })
      assert.isTrue(fromHitPath(preferGzip))
      assert.strictEqual(preferGzip.headers["content-encoding"], "gzip")
      const refused = yield* get(base, path, { "accept-encoding": "br;q=0, gzip;q=0" })
      assert.isUndefined(refused.headers["content-encoding"])
      assert.deepStrictEqual(refused.body, plain.body)

      // A body under 1 KB stays identity, on both paths.
      const small = yield* get(base, `/content/${free.id}?include_content=false`, { "accept-encoding": "gzip" })
      assert.isBelow(small.body.byteLength, 1024)
      assert.isUndefined(small.headers["content-encoding"])
      const smallHit = yield* get(base, `/content/${free.id}?include_content=false`, { "accept-encoding": "gzip" })
      assert.isTrue(fromHitPath(smallHit))
      assert.isUndefined(smallHit.headers["content-encoding"])
    }))

  it.scopedLive("Markdown: streamed compressed on the fly, then cached with a validator; a cold stream asked with an ETag answers 304", () =>
    Effect.gen(function*() {
      // Every document streams, small ones too (by default a small one is converted whole).
      const { base, sim } = yield* startGateway({ MARKDOWN_WHOLE_BELOW_BYTES: "0" })
      const free = sim.corpus.items.filter((i) => i.access === "free")
      const path = `/content/${free[0]!.id}/markdown`
      const streamed = yield* get(base, path, { "accept-encoding": "gzip" })
      assert.strictEqual(streamed.status, 200)
      assert.strictEqual(streamed.headers["x-cache"], "MISS")
      assert.strictEqual(streamed.headers["content-encoding"], "gzip")
      assert.isUndefined(streamed.headers["content-length"])
      assert.strictEqual(streamed.headers["vary"], "Authorization, Accept-Encoding")
      const text = gunzipSync(streamed.body)
      const cached = yield* get(base, path)
      assert.isTrue(fromHitPath(cached))
      assert.deepStrictEqual(cached.body, text)
      assert.match(cached.headers["cache-control"]!, ANON_CONTROL)

      const brStream = yield* get(base, `/content/${free[1]!.id}/markdown`, { "accept-encoding": "br" })
      assert.strictEqual(brStream.headers["content-encoding"], "br")
      const brText = brotliDecompressSync(brStream.body)
      const brCached = yield* get(base, `/content/${free[1]!.id}/markdown`)
      assert.deepStrictEqual(brCached.body, brText)

      const cold = yield* startGateway({ DRUPAL_URL: sim.url, MARKDOWN_WHOLE_BELOW_BYTES: "0" })
      const revalidated = yield* get(cold.base, path, { "if-none-match": cached.headers["etag"]! })
      assert.strictEqual(revalidated.status, 304)
      assert.strictEqual(revalidated.body.byteLength, 0)
      assert.isTrue(fromApp(revalidated))
    }))

  it.scopedLive("Markdown: a document whose reply fits MARKDOWN_WHOLE_BELOW_BYTES is converted whole (one call for metadata and body, a length, a validator, stored), the same bytes as streamed", () =>
    Effect.gen(function*() {
      const whole = yield* startGateway()
      const streaming = yield* startGateway({ DRUPAL_URL: whole.sim.url, MARKDOWN_WHOLE_BELOW_BYTES: "0" })
      const tutorialCalls = Effect.map(whole.sim.stats, (stats) => stats.methods["content.get_tutorial"] ?? 0)
      const items = whole.sim.corpus.items.filter((i) => i.access === "free").slice(0, 30)
      for (const item of items) {
        const path = `/content/${item.id}/markdown`
        const before = yield* tutorialCalls
        const converted = yield* get(whole.base, path)
        // One call: its reply carries the metadata and the body.
        assert.strictEqual((yield* tutorialCalls) - before, 1, path)
        assert.strictEqual(converted.status, 200)
        assert.strictEqual(converted.headers["x-cache"], "MISS")
        assert.strictEqual(converted.headers["content-type"], "text/markdown; charset=utf-8")
        assert.strictEqual(converted.headers["content-length"], String(converted.body.byteLength))
        assert.isDefined(converted.headers["etag"])
        const streamed = yield* get(streaming.base, path)
        assert.isUndefined(streamed.headers["content-length"])
        assert.strictEqual(converted.body.toString("utf8"), streamed.body.toString("utf8"), path)
        // Stored before it was answered: the next ask is a memory hit with the same validator.
        const hit = yield* get(whole.base, path)
        assert.isTrue(fromHitPath(hit))
        assert.strictEqual(hit.headers["etag"], converted.headers["etag"])
        assert.deepStrictEqual(hit.body, converted.body)
      }
      // Compressed as any answer is, when asked.
      const other = whole.sim.corpus.items.filter((i) => i.access === "free")[40]!
      const compressed = yield* get(whole.base, `/content/${other.id}/markdown`, { "accept-encoding": "gzip" })
      assert.strictEqual(compressed.headers["content-encoding"], "gzip")
      const plain = yield* get(streaming.base, `/content/${other.id}/markdown`)
      assert.strictEqual(gunzipSync(compressed.body).toString("utf8"), plain.body.toString("utf8"))
    }))

  it.scopedLive("a stale anonymous item is revalidated upstream with Drupal's validators: a 304 renews it without a body", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway({ CACHE_CONTENT_FRESH_MS: "1000", CACHE_JITTER: "0" })
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const path = `/content/${free.id}`
      const first = yield* get(base, path)
      assert.strictEqual(first.headers["x-cache"], "MISS")
      // Stale: answered at once, refreshed in the background (the first refresh fetches validators).
      yield* Effect.sleep("1100 millis")
      assert.strictEqual((yield* staleAgain(base, path)).headers["x-cache"], "STALE")
      yield* Effect.sleep("1000 millis")
      // Stale again: this refresh is conditional, and the page cache answers 304.
      const second = yield* staleAgain(base, path)
      assert.strictEqual(second.headers["x-cache"], "STALE")
      assert.isTrue(yield* upstream304(sim), "the refresh was answered 304 upstream")
      // The renewed entry is stored just after the 304 arrives.
      const renewed = yield* memoryHit(base, path)
      assert.strictEqual(renewed.headers["x-cache"], "HIT-MEMORY")
      assert.strictEqual(renewed.headers["etag"], first.headers["etag"])
      assert.deepStrictEqual(renewed.body, first.body)
      assert.strictEqual((yield* sim.stats).methods["content.get_tutorial"], 3)
    }))

  it.scopedLive("a stale anonymous search page is revalidated upstream the same way: a 304 renews it without a body", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway({ CACHE_SEARCH_FRESH_MS: "1000", CACHE_JITTER: "0" })
      const path = "/search?q=views&limit=5"
      const first = yield* get(base, path)
      assert.strictEqual(first.headers["x-cache"], "MISS")
      yield* Effect.sleep("1100 millis")
      assert.strictEqual((yield* staleAgain(base, path)).headers["x-cache"], "STALE")
      yield* Effect.sleep("1000 millis")
      assert.strictEqual((yield* staleAgain(base, path)).headers["x-cache"], "STALE")
      assert.isTrue(yield* upstream304(sim), "the refresh of the page was answered 304 upstream")
      const renewed = yield* memoryHit(base, path)
      assert.strictEqual(renewed.headers["x-cache"], "HIT-MEMORY")
      assert.strictEqual(renewed.headers["etag"], first.headers["etag"])
      assert.deepStrictEqual(renewed.body, first.body)
      assert.strictEqual((yield* sim.stats).methods["content.search"], 3)
    }))
})
