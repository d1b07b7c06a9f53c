import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { contentCacheKey, itemTag, markdownCacheKey, SEARCH_TAG } from "../../src/content/CacheKeys.js"
import { MAX_WEBHOOK_BODY_BYTES, sign } from "../../src/invalidation/Webhook.js"
import { serveAdmin } from "./support.js"

const SECRET = "drupal-shared-secret"
const config = { WEBHOOK_SECRET: SECRET, WEBHOOK_TOLERANCE_MS: "60000" }

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A delivery as Drupal sends it; `overrides` replace the computed headers. */
const delivery = (body: string, options: { timestamp?: number; signature?: string } = {}): RequestInit => {
  const timestamp = options.timestamp ?? nowSeconds()
  return {
    headers: {
      "content-type": "application/json",
      "x-drupal-timestamp": String(timestamp),
      "x-drupal-signature": options.signature ?? sign(SECRET, timestamp, body)
    },
    body
  }
}

const event = (name: string, ids: Array<number>) => JSON.stringify({ event: name, ids })

// Item 7's JSON and Markdown, a search page listing it, and entries that must survive.
const json7 = contentCacheKey("anonymous", 7, true, "html")
const json7Subscriber = contentCacheKey("p:subscriber", 7, false, "markdown")
const md7 = markdownCacheKey("anonymous", 7)
const pageWith7 = "search:anonymous:views"
const pageWithout7 = "search:anonymous:blocks"
const json8 = contentCacheKey("anonymous", 8, true, "html")
const keys = [json7, json7Subscriber, md7, pageWith7, pageWithout7, json8] as const

const seeded = (config: Record<string, string>) =>
  Effect.gen(function*() {
    const hook = yield* serveAdmin(config)
    yield* hook.seed(json7, [itemTag(7)])
    yield* hook.seed(json7Subscriber, [itemTag(7)])
    yield* hook.seed(md7, [itemTag(7)])
    yield* hook.seed(pageWith7, [SEARCH_TAG, itemTag(7), itemTag(8)])
    yield* hook.seed(pageWithout7, [SEARCH_TAG, itemTag(9)])
    yield* hook.seed(json8, [itemTag(8)])
    const cached = Effect.all(keys.map(hook.has))
    return { ...hook, cached }
  })

describe("POST /webhooks/drupal", () => {
  it.scopedLive("a signed content.updated is 202 and drops the item's JSON, Markdown and search pages only", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const answer = yield* hook.request("/webhooks/drupal", delivery(event("content.updated", [7])))
      assert.deepStrictEqual([answer.status, answer.body], [202, { invalidated: { tags: 1 } }])
      assert.deepStrictEqual(yield* hook.cached, [false, false, false, false, true, true])
      const line = hook.logs.find((l) => l.annotations["route"] === "webhooks/drupal")
      assert.deepStrictEqual(line?.annotations, { route: "webhooks/drupal", event: "content.updated", ids: 1, tags: 1 })
    }))

  it.scopedLive("content.deleted drops the items; content.created also every search page", () =>
    Effect.gen(function*() {
      const deleted = yield* seeded(config)
      const answer = yield* deleted.request("/webhooks/drupal", delivery(event("content.deleted", [8])))
      assert.deepStrictEqual([answer.status, answer.body], [202, { invalidated: { tags: 1 } }])
      assert.deepStrictEqual(yield* deleted.cached, [true, true, true, false, true, false])

      const created = yield* seeded(config)
      const answer2 = yield* created.request("/webhooks/drupal", delivery(event("content.created", [99])))
      assert.deepStrictEqual([answer2.status, answer2.body], [202, { invalidated: { tags: 2 } }])
      assert.deepStrictEqual(yield* created.cached, [true, true, true, false, false, true])
    }))

  it.scopedLive("a bad signature, a tampered body or missing headers are 401 unauthorized; nothing is dropped", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const body = event("content.updated", [7])
      const t = nowSeconds()
      const answers = yield* Effect.all([
        hook.request("/webhooks/drupal", delivery(body, { signature: sign("not-the-secret", t, body), timestamp: t })),
        hook.request("/webhooks/drupal", delivery(body, { signature: "sha256=00" })),
        hook.request("/webhooks/drupal", delivery(event("content.updated", [8]), { signature: sign(SECRET, t, body), timestamp: t })),
        hook.request("/webhooks/drupal", delivery(body, { signature: sign(SECRET, t - 1, body), timestamp: t })),
        hook.request("/webhooks/drupal", { headers: { "content-type": "application/json" }, body })
      ])
      for (const answer of answers) {
        assert.deepStrictEqual([answer.status, answer.body.error.code], [401, "unauthorized"])
        assert.isNotNull(answer.headers.get("www-authenticate"))
      }
      assert.deepStrictEqual(yield* hook.cached, [true, true, true, true, true, true])
    }))

  it.scopedLive("an authentic delivery outside the tolerance is 401 stale_signature", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const body = event("content.updated", [7])
      const old = yield* hook.request("/webhooks/drupal", delivery(body, { timestamp: nowSeconds() - 120 }))
      const future = yield* hook.request("/webhooks/drupal", delivery(body, { timestamp: nowSeconds() + 120 }))
      assert.deepStrictEqual([old.status, old.body.error.code], [401, "stale_signature"])
      assert.deepStrictEqual([future.status, future.body.error.code], [401, "stale_signature"])
      assert.deepStrictEqual(yield* hook.cached, [true, true, true, true, true, true])
      const withinWindow = yield* hook.request("/webhooks/drupal", delivery(body, { timestamp: nowSeconds() - 30 }))
      assert.strictEqual(withinWindow.status, 202)
    }))

  it.scopedLive("the exact same delivery sent again is 409 replayed and changes nothing", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const first = delivery(event("content.updated", [7]))
      assert.strictEqual((yield* hook.request("/webhooks/drupal", first)).status, 202)
      yield* hook.seed(json7, [itemTag(7)])
      const replay = yield* hook.request("/webhooks/drupal", first)
      assert.deepStrictEqual([replay.status, replay.body.error.code], [409, "replayed"])
      assert.isTrue(yield* hook.has(json7), "the replay did not invalidate again")
      const fresh = yield* hook.request("/webhooks/drupal", delivery(event("content.updated", [7]), { timestamp: nowSeconds() + 1 }))
      assert.strictEqual(fresh.status, 202, "a new delivery of the same event is accepted")
    }))

  it.scopedLive("a body over 64 KiB is 413 payload_too_large, declared or chunked", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const big = JSON.stringify({ event: "content.updated", ids: [7], padding: "x".repeat(MAX_WEBHOOK_BODY_BYTES) })
      const declared = yield* hook.request("/webhooks/drupal", delivery(big))
      assert.deepStrictEqual([declared.status, declared.body.error.code], [413, "payload_too_large"])
      const atTheBound = JSON.stringify({ event: "content.updated", ids: [7], padding: "" })
      const padded = atTheBound.replace(`"padding":""`, `"padding":"${"x".repeat(MAX_WEBHOOK_BODY_BYTES - atTheBound.length)}"`)
      assert.strictEqual(new TextEncoder().encode(padded).length, MAX_WEBHOOK_BODY_BYTES)
      const accepted = yield* hook.request("/webhooks/drupal", delivery(padded))
      assert.strictEqual(accepted.status, 202, "exactly 64 KiB is accepted")
    }))

  it.scopedLive("a chunked body over 64 KiB is cut off at the bound (413 or the connection closed), never accepted", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const chunk = new Uint8Array(16 * 1024).fill(0x20)
      let sent = 0
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          sent += chunk.length
          if (sent > 4 * MAX_WEBHOOK_BODY_BYTES) controller.close()
          else controller.enqueue(chunk)
        }
      })
      const t = nowSeconds()
      const status = yield* Effect.promise(() =>
        fetch(`${hook.base}/webhooks/drupal`, {
          method: "POST",
          headers: { "x-drupal-timestamp": String(t), "x-drupal-signature": sign(SECRET, t, "") },
          body: stream,
          duplex: "half"
        } as RequestInit).then((res) => res.status, () => "connection closed")
      )
      assert.include([413, "connection closed"], status)
      assert.deepStrictEqual(yield* hook.cached, [true, true, true, true, true, true])
    }))

  it.scopedLive("an unknown event or a malformed body, properly signed, is 400 bad_request naming the field", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const cases: Array<[string, string]> = [
        [event("content.exploded", [7]), "event"],
        [event("content.updated", [0]), "ids.0"],
        [JSON.stringify({ event: "content.updated", ids: Array.from({ length: 1001 }, (_, i) => i + 1) }), "ids"],
        ["{", "body"]
      ]
      for (const [body, field] of cases) {
        const answer = yield* hook.request("/webhooks/drupal", delivery(body))
        assert.deepStrictEqual([answer.status, answer.body.error.code], [400, "bad_request"])
        assert.isTrue(answer.body.error.message.startsWith(`${field}: `), answer.body.error.message)
      }
      assert.deepStrictEqual(yield* hook.cached, [true, true, true, true, true, true])
    }))

  it.scopedLive("is 404 not_found while WEBHOOK_SECRET is unset", () =>
    Effect.gen(function*() {
      const hook = yield* seeded({ ADMIN_TOKEN: "x" })
      const answer = yield* hook.request("/webhooks/drupal", delivery(event("content.updated", [7])))
      assert.deepStrictEqual([answer.status, answer.body.error.code], [404, "not_found"])
      assert.isTrue(yield* hook.has(json7))
    }))
})
