import { assert, describe, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import { itemTag, SEARCH_TAG } from "../../src/content/CacheKeys.js"
import {
  decodeEvent,
  makeReplayGuard,
  MAX_EVENT_IDS,
  parseTimestamp,
  sign,
  tagsForEvent,
  verifyDelivery,
  verifySignature,
  type WebhookEvent,
  withinTolerance
} from "../../src/invalidation/Webhook.js"

const secret = "drupal-webhook-secret"
const body = `{"event":"content.updated","ids":[42]}`
const bytes = (s: string) => new TextEncoder().encode(s)

describe("Webhook signatures", () => {
  it("sign is HMAC-SHA256 of '<timestamp>.<body>' as sha256=<hex> (vector from openssl dgst -hmac)", () => {
    assert.strictEqual(
      sign(secret, 1700000000, body),
      "sha256=380fe1e540448f3386b4dee195b8f433aeecc3fd63149c1fd5e2f9f81e3318de"
    )
    assert.strictEqual(sign(Redacted.make(secret), "1700000000", bytes(body)), sign(secret, 1700000000, body))
  })

  it("verifySignature accepts exactly the signed timestamp, body and secret", () => {
    const header = sign(secret, 1700000000, body)
    assert.isTrue(verifySignature(secret, "1700000000", bytes(body), header))
    assert.isTrue(verifySignature(Redacted.make(secret), "1700000000", bytes(body), header.toUpperCase().replace("SHA256=", "sha256=")))
    assert.isFalse(verifySignature(secret, "1700000000", bytes(body.replace("42", "43")), header), "tampered body")
    assert.isFalse(verifySignature(secret, "1700000001", bytes(body), header), "other timestamp")
    assert.isFalse(verifySignature("another-secret", "1700000000", bytes(body), header), "other secret")
  })

  it("verifySignature refuses malformed headers without throwing", () => {
    const hex = sign(secret, 1700000000, body).slice("sha256=".length)
    for (const header of [undefined, "", hex, `sha1=${hex}`, `sha256=${hex.slice(2)}`, `sha256=${hex}00`, `sha256=${"zz".repeat(32)}`]) {
      assert.isFalse(verifySignature(secret, "1700000000", bytes(body), header), String(header))
    }
  })

  it("parseTimestamp takes whole unix seconds only; withinTolerance includes its bounds both ways", () => {
    assert.strictEqual(parseTimestamp("1700000000"), 1700000000)
    assert.strictEqual(parseTimestamp(" 1700000000 "), 1700000000)
    for (const bad of [undefined, "", "-5", "1.5", "1e9", "abc", "1".repeat(13)]) assert.isUndefined(parseTimestamp(bad), String(bad))
    const now = 1700000000_000
    assert.isTrue(withinTolerance(1700000000, now, 0))
    assert.isTrue(withinTolerance(1700000000 - 300, now, 300_000))
    assert.isTrue(withinTolerance(1700000000 + 300, now, 300_000))
    assert.isFalse(withinTolerance(1700000000 - 301, now, 300_000))
    assert.isFalse(withinTolerance(1700000000 + 301, now, 300_000))
  })
})

describe("verifyDelivery", () => {
  const now = 1700000000_000
  const input = (timestamp: number, payload = body, header = sign(secret, timestamp, payload)) => ({
    secret: Redacted.make(secret),
    timestampHeader: String(timestamp),
    signatureHeader: header,
    body: bytes(payload),
    nowMs: now,
    toleranceMs: 300_000
  })

  it("accepts a fresh, authentic delivery and says when its signature expires", () => {
    const result = verifyDelivery(input(1700000000 - 10))
    assert.isTrue(Either.isRight(result))
    const verified = Either.getOrThrow(result)
    assert.strictEqual(verified.timestamp, 1700000000 - 10)
    assert.strictEqual(verified.expiresAt, (1700000000 - 10) * 1000 + 300_000)
    assert.strictEqual(`sha256=${verified.signature}`, sign(secret, 1700000000 - 10, body))
  })

  it("refuses missing headers, a wrong signature and a stale timestamp with their codes", () => {
    const codes = [
      verifyDelivery({ ...input(1700000000), timestampHeader: undefined }),
      verifyDelivery({ ...input(1700000000), timestampHeader: "yesterday" }),
      verifyDelivery({ ...input(1700000000), signatureHeader: undefined }),
      verifyDelivery(input(1700000000, body, sign("wrong", 1700000000, body))),
      verifyDelivery({ ...input(1700000000), body: bytes(body.replace("42", "43")) }),
      verifyDelivery(input(1700000000 - 301)),
      verifyDelivery(input(1700000000 + 301))
    ].map((r) => Either.match(r, { onLeft: (e) => e.code, onRight: () => "accepted" }))
    assert.deepStrictEqual(codes, [
      "unauthorized",
      "unauthorized",
      "unauthorized",
      "unauthorized",
      "unauthorized",
      "stale_signature",
      "stale_signature"
    ])
  })

  it("says unauthorized, not stale, for an old delivery whose signature does not match", () => {
    const result = verifyDelivery(input(1700000000 - 10_000, body, sign("wrong", 1700000000 - 10_000, body)))
    assert.strictEqual(Either.isLeft(result) && result.left.code, "unauthorized")
  })
})

describe("ReplayGuard", () => {
  it("accepts a signature once until it expires, then again", () => {
    const guard = makeReplayGuard(10)
    assert.isTrue(guard.accept("a", 1_000, 0))
    assert.isFalse(guard.accept("a", 1_000, 500))
    assert.isFalse(guard.accept("a", 1_000, 999))
    assert.isTrue(guard.accept("b", 2_000, 999), "another signature")
    assert.isTrue(guard.accept("a", 3_000, 1_000), "expired: the timestamp check guards it from now on")
    assert.isFalse(guard.accept("a", 3_000, 1_001))
  })

  it("stays within its capacity, forgetting the oldest first, and drops expired entries", () => {
    const guard = makeReplayGuard(3)
    for (const s of ["a", "b", "c", "d"]) assert.isTrue(guard.accept(s, 10_000, 0))
    assert.strictEqual(guard.size(), 3)
    assert.isTrue(guard.accept("a", 10_000, 1), "the oldest was forgotten")
    assert.isFalse(guard.accept("d", 10_000, 1))
    assert.isTrue(guard.accept("e", 20_000, 10_000))
    assert.strictEqual(guard.size(), 1, "every entry expiring at 10 000 is gone")
    assert.throws(() => makeReplayGuard(0))
  })
})

describe("events", () => {
  const decode = (json: string) => decodeEvent(bytes(json))
  const field = (json: string) => Either.match(decode(json), { onLeft: (e) => e.field, onRight: () => "accepted" })

  it("decodes the three events and ignores unknown fields", () => {
    for (const event of ["content.created", "content.updated", "content.deleted"] as const) {
      assert.deepStrictEqual(Either.getOrThrow(decode(JSON.stringify({ event, ids: [1, 2], entity_type: "node" }))), { event, ids: [1, 2] })
    }
  })

  it("refuses bad bodies naming the field, without echoing the input", () => {
    assert.strictEqual(field(`{"event":"content.exploded","ids":[1]}`), "event")
    assert.strictEqual(field(`{"ids":[1]}`), "event")
    assert.strictEqual(field(`{"event":"content.updated"}`), "ids")
    assert.strictEqual(field(`{"event":"content.updated","ids":"1"}`), "ids")
    assert.strictEqual(field(`{"event":"content.updated","ids":[1,-2]}`), "ids.1")
    assert.strictEqual(field(`{"event":"content.updated","ids":[1.5]}`), "ids.0")
    assert.strictEqual(field(`not json`), "body")
    assert.strictEqual(field(`[]`), "body")
    const tooMany = decode(JSON.stringify({ event: "content.updated", ids: Array.from({ length: MAX_EVENT_IDS + 1 }, (_, i) => i + 1) }))
    assert.isTrue(Either.isLeft(tooMany))
    if (Either.isLeft(tooMany)) {
      assert.strictEqual(tooMany.left.field, "ids")
      assert.isBelow(tooMany.left.message.length, 100)
    }
    const invalidUtf8 = decodeEvent(new Uint8Array([0x7b, 0xff, 0x7d]))
    assert.strictEqual(Either.isLeft(invalidUtf8) && invalidUtf8.left.field, "body")
  })

  it("updated and deleted invalidate the items' tags; created also every search page", () => {
    const event = (name: WebhookEvent["event"], ids: Array<number>): WebhookEvent => ({ event: name, ids })
    assert.deepStrictEqual(tagsForEvent(event("content.updated", [7, 8, 7])), [itemTag(7), itemTag(8)])
    assert.deepStrictEqual(tagsForEvent(event("content.deleted", [9])), [itemTag(9)])
    assert.deepStrictEqual(tagsForEvent(event("content.created", [10])), [SEARCH_TAG, itemTag(10)])
    assert.deepStrictEqual(tagsForEvent(event("content.updated", [])), [])
  })
})
