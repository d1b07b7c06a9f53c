import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { inject } from "vitest"
import { contentCacheKey, itemTag, markdownCacheKey, SEARCH_TAG } from "../../src/content/CacheKeys.js"
import { MAX_WEBHOOK_BODY_BYTES, sign } from "../../src/invalidation/Webhook.js"
import { serveAdmin, WEBHOOK_SECRET as SECRET } from "./support.js"

const config = { WEBHOOK_SECRET: SECRET, WEBHOOK_TOLERANCE_MS: "60000" }

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** A delivery as Drupal sends it (a fresh id unless given); `options` replace the computed headers. */
const delivery = (body: string, options: { id?: string; timestamp?: number; signature?: string } = {}): RequestInit => {
  const timestamp = options.timestamp ?? nowSeconds()
  const id = options.id ?? `msg_${randomUUID()}`
  return {
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": options.signature ?? sign(SECRET, id, timestamp, body)
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

const seeded = (config: Record<string, string>, redisUrl?: string) =>
  Effect.gen(function*() {
    const hook = yield* serveAdmin(config, redisUrl)
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
      const other = "whsec_" + Buffer.alloc(32, 9).toString("base64")
      const answers = yield* Effect.all([
        hook.request("/webhooks/drupal", delivery(body, { id: "m1", signature: sign(other, "m1", t, body), timestamp: t })),
        hook.request("/webhooks/drupal", delivery(body, { signature: "v1,AAAA" })),
        hook.request("/webhooks/drupal", delivery(event("content.updated", [8]), { id: "m2", signature: sign(SECRET, "m2", t, body), timestamp: t })),
        hook.request("/webhooks/drupal", delivery(body, { id: "m3", signature: sign(SECRET, "m3", t - 1, body), timestamp: t })),
        hook.request("/webhooks/drupal", delivery(body, { id: "m4", signature: sign(SECRET, "m5", t, body), timestamp: t })),
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

  it.scopedLive("a delivery id seen before is a duplicate: 202 without a second effect, even re-signed at another time", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const first = delivery(event("content.updated", [7]), { id: "msg_retry" })
      assert.deepStrictEqual((yield* hook.request("/webhooks/drupal", first)).body, { invalidated: { tags: 1 } })
      yield* hook.seed(json7, [itemTag(7)])
      for (const again of [first, delivery(event("content.updated", [7]), { id: "msg_retry", timestamp: nowSeconds() + 1 })]) {
        const duplicate = yield* hook.request("/webhooks/drupal", again)
        assert.deepStrictEqual([duplicate.status, duplicate.body], [202, { invalidated: { tags: 0 }, duplicate: true }])
      }
      assert.isTrue(yield* hook.has(json7), "the duplicate did not invalidate again")
    }))

  it.scopedLive("two genuine deliveries of the same change in the same second (two ids) are both carried out", () =>
    Effect.gen(function*() {
      const hook = yield* seeded(config)
      const t = nowSeconds()
      const body = event("content.updated", [7])
      assert.deepStrictEqual((yield* hook.request("/webhooks/drupal", delivery(body, { timestamp: t }))).body, { invalidated: { tags: 1 } })
      yield* hook.seed(json7, [itemTag(7)])
      assert.deepStrictEqual((yield* hook.request("/webhooks/drupal", delivery(body, { timestamp: t }))).body, { invalidated: { tags: 1 } })
      assert.isFalse(yield* hook.has(json7), "the second change's invalidation was not lost")
    }))

  it.scopedLive("with Redis, a delivery carried out by one instance is a duplicate on another", () =>
    Effect.gen(function*() {
      const shared = { ...config, CACHE_REDIS_PREFIX: `spec:${randomUUID()}:` }
      const [a, b] = [yield* seeded(shared, inject("redisUrl")), yield* seeded(shared, inject("redisUrl"))]
      const once = delivery(event("content.updated", [7]))
      assert.deepStrictEqual((yield* a.request("/webhooks/drupal", once)).body, { invalidated: { tags: 1 } })
      const onB = yield* b.request("/webhooks/drupal", once)
      assert.deepStrictEqual([onB.status, onB.body], [202, { invalidated: { tags: 0 }, duplicate: true }])
      assert.isTrue(yield* b.has(json7), "B did not invalidate a second time")
      // Concurrent copies of one new delivery on both instances: exactly one carries it out.
      const twice = delivery(event("content.updated", [8]))
      const [x, y] = yield* Effect.all([a.request("/webhooks/drupal", twice), b.request("/webhooks/drupal", twice)], { concurrency: 2 })
      assert.deepStrictEqual([x.status, y.status], [202, 202])
      assert.strictEqual([x.body.duplicate, y.body.duplicate].filter((d) => d === true).length, 1)
    }))

  it.scoped("a WEBHOOK_SECRET that is not a Standard Webhooks secret fails at start, naming the key but not the value", () =>
    Effect.gen(function*() {
      const failed = yield* Effect.either(serveAdmin({ WEBHOOK_SECRET: "drupal-shared-secret" }))
      assert.isTrue(failed._tag === "Left")
      const text = String(failed._tag === "Left" ? failed.left : "")
      assert.include(text, "WEBHOOK_SECRET must be whsec_")
      assert.notInclude(text, "drupal-shared-secret")
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
          headers: { "webhook-id": "msg_big", "webhook-timestamp": String(t), "webhook-signature": sign(SECRET, "msg_big", t, "") },
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
