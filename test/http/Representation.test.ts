/**
 * The HTTP semantics shared by the hit path and the Effect routes: negotiation, validators and
 * caching headers, on their own.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { createHash } from "node:crypto"
import { brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib"
import zlib from "node:zlib"
import { vi } from "vitest"
import * as Envelope from "../../src/cache/Envelope.js"
import * as Representation from "../../src/http/Representation.js"
import { countingTurns } from "../support/turns.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const large = () => bytes(JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, title: `Item ${i}` })) }))

describe("Representation", () => {
  it.effect("a body over the step is hashed for its ETag in steps, the event loop running between them; the tag is the one-shot hash", () =>
    Effect.gen(function*() {
      const body = new Uint8Array(Representation.HASH_STEP_BYTES * 5 + 17).map((_, i) => i % 251)
      const [, turns] = yield* countingTurns(Representation.prepare(body))
      assert.isAtLeast(turns, 5, "the event loop ran between the steps")
      const expected = createHash("sha256").update(body).digest("base64url").slice(0, 27)
      assert.strictEqual(Representation.etagOf(body, "identity"), `"${expected}"`)
      // A small body is left to the synchronous hash: no step, no turn.
      const small = new Uint8Array(1024).fill(7)
      const [, smallTurns] = yield* countingTurns(Representation.prepare(small))
      assert.strictEqual(smallTurns, 0)
      assert.strictEqual(Representation.hashOf(small), createHash("sha256").update(small).digest("base64url").slice(0, 27))
    }))

  it("negotiates br, gzip and identity from Accept-Encoding with q-values", () => {
    const cases: ReadonlyArray<readonly [string | undefined, Representation.Coding]> = [
      [undefined, "identity"],
      ["", "identity"],
      ["gzip", "gzip"],
      ["gzip, deflate, br", "br"],
      ["br;q=0.5, gzip", "gzip"],
      ["gzip;q=0.5, br;q=0.1", "gzip"],
      ["GZIP;Q=0.8, identity;q=0.9", "identity"],
      ["br;q=0, gzip;q=0", "identity"],
      ["*", "br"],
      ["*;q=0.5, br;q=0", "gzip"],
      ["deflate", "identity"],
      ["identity;q=0, *;q=0", "identity"],
      ["gzip;q=abc", "identity"]
    ]
    for (const [header, coding] of cases) assert.strictEqual(Representation.negotiate(header), coding, String(header))
  })

  it("keeps bodies under the threshold identity and honours the switch", () => {
    assert.strictEqual(Representation.codingFor(Representation.defaults, "gzip", 1023), "identity")
    assert.strictEqual(Representation.codingFor(Representation.defaults, "gzip", 1024), "gzip")
    assert.strictEqual(Representation.codingFor({ compression: false, minBytes: 0 }, "gzip", 5000), "identity")
  })

  it("gives a strong ETag that is a hash of the bytes, the same for equal bytes, one per coding", () => {
    const a = Representation.etagOf(bytes("hello"), "identity")
    assert.strictEqual(a, Representation.etagOf(bytes("hello"), "identity"))
    assert.notStrictEqual(a, Representation.etagOf(bytes("hello!"), "identity"))
    assert.match(a, /^"[A-Za-z0-9_-]{27}"$/)
    assert.strictEqual(Representation.etagOf(bytes("hello"), "gzip"), a.replace(/"$/, "-gz\""))
    assert.strictEqual(Representation.etagOf(bytes("hello"), "br"), a.replace(/"$/, "-br\""))
  })

  it("matches If-None-Match against any representation of the same bytes, weak or strong, in a list, or *", () => {
    const body = bytes("hello")
    const tag = Representation.etagOf(body, "identity")
    const gz = Representation.etagOf(body, "gzip")
    assert.isTrue(Representation.ifNoneMatchHits(tag, body))
    assert.isTrue(Representation.ifNoneMatchHits(`W/${tag}`, body))
    assert.isTrue(Representation.ifNoneMatchHits(`"other", ${gz}`, body))
    assert.isTrue(Representation.ifNoneMatchHits("*", body))
    assert.isFalse(Representation.ifNoneMatchHits(undefined, body))
    assert.isFalse(Representation.ifNoneMatchHits(`"other"`, body))
    assert.isFalse(Representation.ifNoneMatchHits(Representation.etagOf(bytes("bye"), "identity"), body))
    assert.isFalse(Representation.ifNoneMatchHits(`"unterminated`, body))
  })

  it("public Cache-Control with the remaining fresh time and the grace; private no-store when signed in", () => {
    const timing = { createdAt: 0, freshUntil: 60_000, staleUntil: 360_000 }
    assert.strictEqual(Representation.cacheControl(true, timing, 10_500), "public, max-age=49, stale-while-revalidate=300, stale-if-error=300")
    assert.strictEqual(Representation.cacheControl(true, timing, 70_000), "public, max-age=0, stale-while-revalidate=300, stale-if-error=300")
    assert.strictEqual(Representation.cacheControl(false, timing, 10_000), "private, no-store")
    assert.strictEqual(Representation.ageOf(timing, 10_999), "10")
    assert.strictEqual(Representation.ageOf(timing, -5), "0")
  })

  it.effect("makes each coding once per body, off the event loop, and keeps it for the synchronous path", () =>
    Effect.gen(function*() {
      const body = large()
      assert.isUndefined(Representation.encodedSync(body, "gzip"))
      const [a, b] = yield* Effect.all([Representation.encode(body, "gzip"), Representation.encode(body, "gzip")], { concurrency: 2 })
      assert.strictEqual(a.coding, "gzip")
      assert.strictEqual(a.bytes, b.bytes)
      assert.strictEqual(Representation.encodedSync(body, "gzip")?.bytes, a.bytes)
      assert.deepStrictEqual(new Uint8Array(gunzipSync(a.bytes)), body)
      const br = yield* Representation.encode(body, "br")
      assert.strictEqual(br.coding, "br")
      assert.deepStrictEqual(new Uint8Array(brotliDecompressSync(br.bytes)), body)
      assert.strictEqual(Representation.encodedSync(body, "identity")?.bytes, body)
    }))

  it.effect("a coding that does not pay is sent identity", () =>
    Effect.gen(function*() {
      const random = new Uint8Array(4096).map(() => Math.floor(Math.random() * 256))
      const sent = yield* Representation.encode(random, "gzip")
      assert.strictEqual(sent.coding, "identity")
      assert.strictEqual(sent.bytes, random)
      assert.deepStrictEqual(Representation.encodedSync(random, "gzip"), { bytes: random, coding: "identity" })
    }))

  it.effect("a body read back from a compressed envelope is sent gzip with the stored bytes: nothing compressed again", () =>
    Effect.gen(function*() {
      const body = large()
      const entry = { value: body, contentType: "application/json", createdAt: 1, freshUntil: 2, staleUntil: 3, tags: [] }
      const envelope = yield* Envelope.encode(entry, { compressAbove: 1024 })
      const stored = Option.getOrThrow(Envelope.decodeHeader(envelope, { complete: true }))
      assert.isTrue(stored.compressed)
      const decoded = Option.getOrThrow(yield* Envelope.decode(envelope)).value
      const gzip = vi.spyOn(zlib, "gzip")
      const brotli = vi.spyOn(zlib, "brotliCompress")
      try {
        const semantics = Representation.defaults
        // br and gzip alike: the stored gzip, not a br to be made; br preferred by q: br.
        assert.strictEqual(Representation.codingFor(semantics, "gzip, deflate, br", decoded.byteLength, decoded), "gzip")
        assert.strictEqual(Representation.codingFor(semantics, "br, gzip;q=0.8", decoded.byteLength, decoded), "br")
        const sent = Representation.encodedSync(decoded, "gzip")
        assert.strictEqual(sent?.coding, "gzip")
        assert.deepStrictEqual(sent!.bytes, envelope.subarray(stored.bodyOffset))
        assert.deepStrictEqual(new Uint8Array(gunzipSync(sent!.bytes)), body)
        // The same bytes the app would have made for the gzip coding: one ETag, one representation.
        assert.deepStrictEqual(new Uint8Array(gzipSync(body, { level: 6 })), sent!.bytes)
        assert.strictEqual((yield* Representation.encode(decoded, "gzip")).bytes, sent!.bytes)
        assert.strictEqual(gzip.mock.calls.length + brotli.mock.calls.length, 0)
        // A body without a stored gzip still negotiates br on the tie.
        const fresh = large()
        assert.strictEqual(Representation.codingFor(semantics, "gzip, deflate, br", fresh.byteLength, fresh), "br")
      } finally {
        gzip.mockRestore()
        brotli.mockRestore()
      }
    }))

  it.effect("a value compressed for the remote tiers keeps that gzip for its answers", () =>
    Effect.gen(function*() {
      const body = large()
      assert.isUndefined(Representation.encodedSync(body, "gzip"))
      yield* Envelope.encode({ value: body, contentType: "application/json", createdAt: 1, freshUntil: 2, staleUntil: 3, tags: [] }, { compressAbove: 1024 })
      const sent = Representation.encodedSync(body, "gzip")
      assert.strictEqual(sent?.coding, "gzip")
      assert.deepStrictEqual(new Uint8Array(gunzipSync(sent!.bytes)), body)
    }))
})
