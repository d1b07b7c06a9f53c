import { assert, describe, it } from "@effect/vitest"
import { Either, Redacted } from "effect"
import { itemTag, SEARCH_TAG } from "../../src/content/CacheKeys.js"
import {
  decodeEvent,
  makeReplayMemory,
  MAX_EVENT_IDS,
  parseTimestamp,
  secretProblem,
  sign,
  tagsForEvent,
  verifyDelivery,
  verifySignature,
  type WebhookEvent,
  withinTolerance
} from "../../src/invalidation/Webhook.js"

// The Standard Webhooks reference vector (standard-webhooks' own specs; also `openssl dgst -hmac`).
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
const vector = { id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, body: `{"test": 2432232314}` }
const body = `{"event":"content.updated","ids":[42]}`
const id = "msg_1"
const bytes = (s: string) => new TextEncoder().encode(s)

describe("Webhook signatures (Standard Webhooks)", () => {
  it("sign is v1,<base64 HMAC-SHA256 of 'id.timestamp.body'> keyed with the whsec_ secret's bytes", () => {
    assert.strictEqual(sign(secret, vector.id, vector.timestamp, vector.body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
    assert.strictEqual(sign(Redacted.make(secret), id, "1700000000", bytes(body)), sign(secret, id, 1700000000, body))
  })

  it("verifySignature accepts exactly the signed id, timestamp, body and secret; one matching signature of several is enough", () => {
    const header = sign(secret, id, 1700000000, body)
    assert.isTrue(verifySignature(secret, id, "1700000000", bytes(body), header))
    assert.isTrue(verifySignature(secret, id, "1700000000", bytes(body), `v1,AAAA ${header} v2,zzz`), "rotation: any v1 matches")
    assert.isFalse(verifySignature(secret, id, "1700000000", bytes(body.replace("42", "43")), header), "tampered body")
    assert.isFalse(verifySignature(secret, id, "1700000001", bytes(body), header), "other timestamp")
    assert.isFalse(verifySignature(secret, "msg_2", "1700000000", bytes(body), header), "other id")
    const other = "whsec_" + Buffer.alloc(32, 7).toString("base64")
    assert.isFalse(verifySignature(other, id, "1700000000", bytes(body), header), "other secret")
  })

  it("verifySignature refuses malformed headers without throwing", () => {
    const b64 = sign(secret, id, 1700000000, body).slice("v1,".length)
    for (const header of [undefined, "", b64, `v2,${b64}`, `v1,${b64.slice(4)}`, `v1,${b64}AA`, "v1,!!!!", "v1"]) {
      assert.isFalse(verifySignature(secret, id, "1700000000", bytes(body), header), String(header))
    }
  })

  it("a secret must be whsec_ and base64 of at least 24 bytes; the message never shows it", () => {
    assert.isUndefined(secretProblem(secret))
    for (const bad of ["drupal-shared-secret", "whsec_", "whsec_c2hvcnQ=", "whsec_not base64!"]) {
      const problem = secretProblem(bad)
      assert.isString(problem, bad)
      assert.notInclude(problem!, bad.slice(6) || "§")
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
  const input = (timestamp: number, payload = body, header = sign(secret, id, timestamp, payload)) => ({
    secret: Redacted.make(secret),
    idHeader: id,
    timestampHeader: String(timestamp),
    signatureHeader: header,
    body: bytes(payload),
    nowMs: now,
    toleranceMs: 300_000
  })

  it("accepts a fresh, authentic delivery and says how long its id must be remembered", () => {
    const result = verifyDelivery(input(1700000000 - 10))
    assert.isTrue(Either.isRight(result))
    const verified = Either.getOrThrow(result)
    assert.strictEqual(verified.timestamp, 1700000000 - 10)
    assert.strictEqual(verified.id, id)
    assert.strictEqual(verified.rememberMs, 300_000 - 10_000)
  })

  it("refuses missing or malformed headers, a wrong signature and a stale timestamp with their codes", () => {
    const codes = [
      verifyDelivery({ ...input(1700000000), idHeader: undefined }),
      verifyDelivery({ ...input(1700000000), idHeader: "has space" }),
      verifyDelivery({ ...input(1700000000), idHeader: "x".repeat(129) }),
      verifyDelivery({ ...input(1700000000), timestampHeader: undefined }),
      verifyDelivery({ ...input(1700000000), timestampHeader: "yesterday" }),
      verifyDelivery({ ...input(1700000000), signatureHeader: undefined }),
      verifyDelivery({ ...input(1700000000), idHeader: "msg_other" }),
      verifyDelivery(input(1700000000, body, sign("whsec_" + Buffer.alloc(32, 1).toString("base64"), id, 1700000000, body))),
      verifyDelivery({ ...input(1700000000), body: bytes(body.replace("42", "43")) }),
      verifyDelivery(input(1700000000 - 301)),
      verifyDelivery(input(1700000000 + 301))
    ].map((r) => Either.match(r, { onLeft: (e) => e.code, onRight: () => "accepted" }))
    assert.deepStrictEqual(codes, [...Array(9).fill("unauthorized"), "stale_signature", "stale_signature"])
  })

  it("says unauthorized, not stale, for an old delivery whose signature does not match", () => {
    const result = verifyDelivery(input(1700000000 - 10_000, body, sign(secret, "msg_x", 1700000000 - 10_000, body)))
    assert.strictEqual(Either.isLeft(result) && result.left.code, "unauthorized")
  })
})

describe("ReplayMemory", () => {
  it("accepts an id once until it expires, then again", () => {
    const memory = makeReplayMemory(10)
    assert.isTrue(memory.accept("a", 1_000, 0))
    assert.isFalse(memory.accept("a", 1_000, 500))
    assert.isFalse(memory.accept("a", 1_000, 999))
    assert.isTrue(memory.accept("b", 2_000, 999), "another id")
    assert.isTrue(memory.accept("a", 3_000, 1_000), "expired: the timestamp check guards it from now on")
    assert.isFalse(memory.accept("a", 3_000, 1_001))
  })

  it("stays within its capacity, forgetting the oldest first, and drops expired entries", () => {
    const memory = makeReplayMemory(3)
    for (const s of ["a", "b", "c", "d"]) assert.isTrue(memory.accept(s, 10_000, 0))
    assert.strictEqual(memory.size(), 3)
    assert.isTrue(memory.accept("a", 10_000, 1), "the oldest was forgotten")
    assert.isFalse(memory.accept("d", 10_000, 1))
    assert.isTrue(memory.accept("e", 20_000, 10_000))
    assert.strictEqual(memory.size(), 1, "every entry expiring at 10 000 is gone")
    assert.throws(() => makeReplayMemory(0))
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
