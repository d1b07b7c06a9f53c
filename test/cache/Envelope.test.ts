import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { syncBuiltinESMExports } from "node:module"
import * as zlib from "node:zlib"
import zlibModule from "node:zlib"
import { vi } from "vitest"
import * as BodyHash from "../../src/cache/BodyHash.js"
import * as Envelope from "../../src/cache/Envelope.js"
import { assertEntry, entryAt } from "./conformance.js"

const NOW = 1_700_000_000_000

const json = (n: number) =>
  new TextEncoder().encode(JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: i, title: `item ${i}` }))))

const isNone = (bytes: Uint8Array) => Effect.map(Envelope.decode(bytes), Option.isNone)

describe("Envelope", () => {
  it.effect("round-trips an uncompressed entry with every field", () =>
    Effect.gen(function*() {
      const value = new Uint8Array(256).map((_, i) => i)
      const entry = entryAt(NOW, value, { tags: ["node:1", "ümlaut", ""], contentType: "application/octet-stream" })
      const bytes = yield* Envelope.encode(entry)
      assert.strictEqual(bytes[0], Envelope.MAGIC)
      assert.strictEqual(bytes[1], Envelope.FORMAT_VERSION)
      assert.strictEqual(bytes[2], 0)
      assertEntry(yield* Envelope.decode(bytes), entry)
    }))

  it.effect("compresses above the threshold only, and only when it saves bytes", () =>
    Effect.gen(function*() {
      const big = entryAt(NOW, json(2_000))
      const compressed = yield* Envelope.encode(big, { compressAbove: 1024 })
      assert.strictEqual(compressed[2], Envelope.FLAG_GZIP)
      assert.isBelow(compressed.byteLength, big.value.byteLength / 3)
      assertEntry(yield* Envelope.decode(compressed), big, "compressed")

      const atThreshold = entryAt(NOW, json(2_000))
      const notAbove = yield* Envelope.encode(atThreshold, { compressAbove: atThreshold.value.byteLength })
      assert.strictEqual(notAbove[2], 0, "a body of exactly the threshold is not compressed")

      const disabled = yield* Envelope.encode(big, { compressAbove: Infinity })
      assert.strictEqual(disabled[2], 0)

      // Random bytes do not compress: kept as they are.
      const random = entryAt(NOW, new Uint8Array(randomBytes(64 * 1024)))
      const stored = yield* Envelope.encode(random, { compressAbove: 1024 })
      assert.strictEqual(stored[2], 0)
      assertEntry(yield* Envelope.decode(stored), random, "random")
    }))

  it.effect("encodeAll frames a batch in order, each entry as encode would, whichever of them compress", () =>
    Effect.gen(function*() {
      const options = { compressAbove: 1024, site: "s1" }
      const sizes = [[], [10], [2_000], [10, 2_000], [2_000, 10, 3_000, 5, 4_000], [5, 6, 7]]
      for (const batch of sizes) {
        const entries = batch.map((n, i) => entryAt(NOW, n === 5 ? new Uint8Array(0) : json(n), { tags: [`t${i}`] }))
        const all = yield* Envelope.encodeAll(entries, options)
        assert.strictEqual(all.length, entries.length)
        for (let i = 0; i < entries.length; i++) {
          const one = yield* Envelope.encode(entries[i]!, options)
          assert.deepStrictEqual(all[i], one, `batch ${JSON.stringify(batch)}, entry ${i}`)
          assertEntry(yield* Envelope.decode(all[i]!, "s1"), entries[i]!, `batch ${JSON.stringify(batch)}, entry ${i}`)
        }
      }
    }))

  it.effect("a value written to several tiers at once is compressed once", () =>
    Effect.gen(function*() {
      const spy = vi.spyOn(zlibModule, "gzip")
      syncBuiltinESMExports()
      try {
        const value = json(2_000)
        const entry = entryAt(NOW, value)
        // Both remote tiers encode the same entry (the same value), at the same time.
        const [a, b] = yield* Effect.all([Envelope.encode(entry), Envelope.encode({ ...entry, tags: ["other"] })], {
          concurrency: "unbounded"
        })
        assert.strictEqual(spy.mock.calls.length, 1)
        assert.strictEqual(a[2], Envelope.FLAG_GZIP)
        assertEntry(yield* Envelope.decode(a), entry, "first")
        assertEntry(yield* Envelope.decode(b), { ...entry, tags: ["other"] }, "second")
        // Later writes of it too; an equal value in another array is compressed on its own.
        yield* Envelope.encode(entry)
        assert.strictEqual(spy.mock.calls.length, 1)
        yield* Envelope.encode(entryAt(NOW, value.slice()))
        assert.strictEqual(spy.mock.calls.length, 2)
      } finally {
        spy.mockRestore()
        syncBuiltinESMExports()
      }
    }))

  it.effect("encodeAll hands a batch's small bodies to zlib at once up to a byte bound, and its large ones two at a time", () =>
    Effect.gen(function*() {
      // Each compression's callback notes how many had been started by then: started one after
      // another (two at a time), the first callback would see two.
      const original = zlibModule.gzip
      const startedAtFirstDone: Array<number> = []
      let started = 0
      const spy = vi.spyOn(zlibModule, "gzip").mockImplementation(((buf: zlib.InputType, options: zlib.ZlibOptions, callback: zlib.CompressCallback) => {
        started++
        return original(buf, options, (error, result) => {
          startedAtFirstDone.push(started)
          callback(error, result)
        })
      }) as typeof zlibModule.gzip)
      syncBuiltinESMExports()
      try {
        const options = { compressAbove: 1024 }
        const small = Array.from({ length: 12 }, (_, i) => entryAt(NOW, json(1_000 + i)))
        const all = yield* Envelope.encodeAll(small, options)
        assert.strictEqual(spy.mock.calls.length, 12)
        assert.strictEqual(startedAtFirstDone[0], 12, "every small body was handed over before the first came back")
        for (let i = 0; i < small.length; i++) {
          assert.strictEqual(all[i]![2], Envelope.FLAG_GZIP)
          assertEntry(yield* Envelope.decode(all[i]!), small[i]!, `small ${i}`)
        }

        // Small bodies worth more than COMPRESS_IN_FLIGHT_BYTES together: no more than that at once.
        started = 0
        startedAtFirstDone.length = 0
        spy.mockClear()
        const medium = Array.from({ length: 5 }, (_, i) => entryAt(NOW, json(26_000 + i)))
        const each = medium[0]!.value.byteLength
        assert.isAtMost(each, Envelope.COMPRESS_TOGETHER_MAX)
        assert.isAbove(each * 3, Envelope.COMPRESS_IN_FLIGHT_BYTES)
        assert.isAtMost(each * 2, Envelope.COMPRESS_IN_FLIGHT_BYTES)
        const mediumAll = yield* Envelope.encodeAll(medium, options)
        assert.strictEqual(spy.mock.calls.length, 5)
        assert.strictEqual(startedAtFirstDone[0], 2, "two bodies fit the bound, the third waited")
        for (let i = 0; i < medium.length; i++) assertEntry(yield* Envelope.decode(mediumAll[i]!), medium[i]!, `medium ${i}`)

        // Bodies over COMPRESS_TOGETHER_MAX: at most two in the pool at once.
        started = 0
        startedAtFirstDone.length = 0
        spy.mockClear()
        const large = Array.from({ length: 3 }, (_, i) => json(Math.ceil(Envelope.COMPRESS_TOGETHER_MAX / 20) + i))
        for (const value of large) assert.isAbove(value.byteLength, Envelope.COMPRESS_TOGETHER_MAX)
        const mixed = [entryAt(NOW, json(1_500)), ...large.map((value) => entryAt(NOW, value)), entryAt(NOW, json(3))]
        const encoded = yield* Envelope.encodeAll(mixed, options)
        assert.strictEqual(spy.mock.calls.length, 4)
        assert.isAtMost(startedAtFirstDone[1]!, 3, "when the first large body came back: the small body and at most two large ones")
        for (let i = 0; i < mixed.length; i++) assertEntry(yield* Envelope.decode(encoded[i]!), mixed[i]!, `mixed ${i}`)
      } finally {
        spy.mockRestore()
        syncBuiltinESMExports()
      }
    }))

  it.effect("a compressed body over the inline bound round-trips through the threaded inflate, exactly", () =>
    Effect.gen(function*() {
      const value = json(200_000)
      assert.isAbove(value.byteLength, Envelope.INFLATE_INLINE_MAX * 4)
      const big = entryAt(NOW, value)
      const bytes = yield* Envelope.encode(big)
      assert.strictEqual(bytes[2], Envelope.FLAG_GZIP)
      assert.isUndefined(Envelope.decodeSync(bytes), "too large to inflate inline")
      const decoded = yield* Envelope.decode(bytes)
      assertEntry(decoded, big, "inflated off the event loop")
      assert.strictEqual(Option.getOrThrow(decoded).value.byteLength, value.byteLength)
    }))

  it.effect("uses a 16 KiB default threshold", () =>
    Effect.gen(function*() {
      const below = entryAt(NOW, new Uint8Array(16 * 1024).fill(97))
      const above = entryAt(NOW, new Uint8Array(16 * 1024 + 1).fill(97))
      assert.strictEqual((yield* Envelope.encode(below))[2], 0)
      assert.strictEqual((yield* Envelope.encode(above))[2], Envelope.FLAG_GZIP)
    }))

  it.effect("the decoded value does not share memory with the input", () =>
    Effect.gen(function*() {
      const bytes = Envelope.encodeUncompressed(entryAt(NOW, "abc"))
      const decoded = Option.getOrThrow(yield* Envelope.decode(bytes))
      bytes.fill(0)
      assert.strictEqual(new TextDecoder().decode(decoded.value), "abc")
    }))

  it.effect("unknown version, bad magic, unknown flags → none", () =>
    Effect.gen(function*() {
      const good = Envelope.encodeUncompressed(entryAt(NOW, "payload"))
      const patch = (offset: number, value: number) => {
        const copy = good.slice()
        copy[offset] = value
        return copy
      }
      assert.isFalse(yield* isNone(good))
      assert.isTrue(yield* isNone(patch(1, Envelope.FORMAT_VERSION + 1)), "newer version")
      assert.isTrue(yield* isNone(patch(1, 0)), "version 0")
      assert.isTrue(yield* isNone(patch(0, 0x00)), "bad magic")
      assert.isTrue(yield* isNone(patch(2, 0b10)), "unknown flag")
    }))

  it.effect("every truncation, trailing garbage and empty input → none", () =>
    Effect.gen(function*() {
      const good = Envelope.encodeUncompressed(entryAt(NOW, "some payload", { tags: ["a", "b"] }))
      for (let length = 0; length < good.byteLength; length++) {
        assert.isTrue(yield* isNone(good.subarray(0, length)), `truncated to ${length}`)
      }
      const padded = new Uint8Array(good.byteLength + 1)
      padded.set(good)
      assert.isTrue(yield* isNone(padded), "trailing byte")

      const compressed = yield* Envelope.encode(entryAt(NOW, json(500)), { compressAbove: 0 })
      assert.strictEqual(compressed[2], Envelope.FLAG_GZIP)
      for (const cut of [1, 8, Math.floor(compressed.byteLength / 2)]) {
        assert.isTrue(yield* isNone(compressed.subarray(0, compressed.byteLength - cut)), `compressed minus ${cut}`)
      }
    }))

  it.effect("corrupt header or compressed body → none", () =>
    Effect.gen(function*() {
      const entry = entryAt(NOW, "payload")
      const frameWith = (header: string, body: Uint8Array, flags = 0) => {
        const h = new TextEncoder().encode(header)
        const out = new Uint8Array(Envelope.FIXED_HEADER_BYTES + h.byteLength + body.byteLength)
        const view = new DataView(out.buffer)
        out[0] = Envelope.MAGIC
        out[1] = Envelope.FORMAT_VERSION
        out[2] = flags
        view.setUint32(3, h.byteLength)
        view.setUint32(7, body.byteLength)
        out.set(h, Envelope.FIXED_HEADER_BYTES)
        out.set(body, Envelope.FIXED_HEADER_BYTES + h.byteLength)
        return out
      }
      const body = entry.value
      const valid = `{"ct":"a","c":1,"f":2,"s":3,"g":[],"n":${body.byteLength}}`
      assert.isFalse(yield* isNone(frameWith(valid, body)), "the hand-built frame is valid")
      assert.isTrue(yield* isNone(frameWith(valid.slice(0, -1), body)), "broken JSON")
      assert.isTrue(yield* isNone(frameWith(`{"ct":"a","c":"1","f":2,"s":3,"g":[],"n":7}`, body)), "string time")
      assert.isTrue(yield* isNone(frameWith(`{"ct":"a","c":1,"f":2,"s":3,"g":[1],"n":7}`, body)), "numeric tag")
      assert.isTrue(yield* isNone(frameWith(`{"ct":"a","c":1,"f":2,"s":3,"g":[],"n":8}`, body)), "length mismatch")
      assert.isTrue(yield* isNone(frameWith(`null`, body)), "null header")
      const invalidUtf8 = frameWith(valid, body)
      invalidUtf8[Envelope.FIXED_HEADER_BYTES + 8] = 0xff
      assert.isTrue(yield* isNone(invalidUtf8), "invalid UTF-8 in the header")

      // A gzip body whose bytes are flipped fails its CRC; one that inflates to another length too.
      const raw = json(300)
      const gz = new Uint8Array(zlib.gzipSync(raw))
      const header = `{"ct":"a","c":1,"f":2,"s":3,"g":[],"n":${raw.byteLength}}`
      assert.isFalse(yield* isNone(frameWith(header, gz, Envelope.FLAG_GZIP)), "valid compressed frame")
      const flipped = gz.slice()
      flipped[Math.floor(flipped.byteLength / 2)]! ^= 0xff
      assert.isTrue(yield* isNone(frameWith(header, flipped, Envelope.FLAG_GZIP)), "flipped compressed byte")
      const wrongLength = `{"ct":"a","c":1,"f":2,"s":3,"g":[],"n":${raw.byteLength - 1}}`
      assert.isTrue(yield* isNone(frameWith(wrongLength, gz, Envelope.FLAG_GZIP)), "inflates past n")
      assert.isTrue(yield* isNone(frameWith(header, body, Envelope.FLAG_GZIP)), "not gzip at all")
    }))

  it("decodeHeader reads tags from a prefix; headerBytesNeeded says how long it must be", () => {
    const entry = entryAt(NOW, new Uint8Array(10_000), { tags: ["x", "y"] })
    const bytes = Envelope.encodeUncompressed(entry)
    const needed = Option.getOrThrow(Envelope.headerBytesNeeded(bytes.subarray(0, Envelope.FIXED_HEADER_BYTES)))
    assert.isBelow(needed, 200)
    const header = Option.getOrThrow(Envelope.decodeHeader(bytes.subarray(0, needed)))
    assert.deepStrictEqual([...header.tags], ["x", "y"])
    assert.strictEqual(header.bodyLength, 10_000)
    assert.isTrue(Option.isNone(Envelope.decodeHeader(bytes.subarray(0, needed - 1))))
    assert.isTrue(Option.isNone(Envelope.decodeHeader(bytes.subarray(0, needed), { complete: true })))
  })

  it.effect("carries the body's hash when known (large bodies hashed in steps): a decoded body has it without being hashed again, stored plain, inflated inline or in the pool", () =>
    Effect.gen(function*() {
      const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("base64url").slice(0, BodyHash.HASH_LENGTH)
      const cases = [
        ["plain", new Uint8Array(300).map((_, i) => i % 7)],
        ["inflated inline", json(2_000)],
        ["inflated in the pool", json(Envelope.INFLATE_INLINE_MAX / 8)],
        // Over a hash step: `encode` hashes it in steps before framing.
        ["over a hash step", new Uint8Array(BodyHash.HASH_STEP_BYTES * 2 + 3).map((_, i) => (i * 31) % 253)]
      ] as const
      for (const [name, value] of cases) {
        // A small body carries the hash it has (the load's answer hashed it); a large one is hashed by `encode`.
        if (value.byteLength <= BodyHash.HASH_STEP_BYTES) BodyHash.hashOf(value)
        else assert.isUndefined(BodyHash.known(value))
        const entry = entryAt(NOW, value)
        const bytes = yield* Envelope.encode(entry, { compressAbove: 1024 })
        const header = Option.getOrThrow(Envelope.decodeHeader(bytes))
        assert.strictEqual(header.hash, sha(value), name)
        const decoded = Option.getOrThrow(yield* Envelope.decode(bytes))
        assert.notStrictEqual(decoded.value, value, name)
        // `known` never computes: the hash came with the envelope.
        assert.strictEqual(BodyHash.known(decoded.value), sha(value), name)
        const copy = value.slice()
        if (copy.byteLength <= BodyHash.HASH_STEP_BYTES) BodyHash.hashOf(copy)
        const [batch] = yield* Envelope.encodeAll([entryAt(NOW, copy)], { compressAbove: 1024 })
        assert.strictEqual(Option.getOrThrow(Envelope.decodeHeader(batch!)).hash, sha(value), `${name}, in a batch`)
      }
      // Encoding never hashes a small body: one not hashed yet is stored without the hash.
      const unhashed = json(100)
      const plain = yield* Envelope.encode(entryAt(NOW, unhashed), { compressAbove: 1024 })
      assert.isUndefined(Option.getOrThrow(Envelope.decodeHeader(plain)).hash)
      assert.isUndefined(BodyHash.known(unhashed))
    }))

  it.effect("an envelope without the hash, or with a value that is not a hash, decodes; its body is hashed when asked", () =>
    Effect.gen(function*() {
      const value = json(50)
      const reframed = (e: unknown) => {
        const header = JSON.stringify({ ct: "application/json", c: NOW, f: NOW + 1_000, s: NOW + 5_000, g: ["node:1"], n: value.byteLength, ...(e === undefined ? {} : { e }) })
        const headerBytes = new TextEncoder().encode(header)
        const out = new Uint8Array(Envelope.FIXED_HEADER_BYTES + headerBytes.byteLength + value.byteLength)
        const view = new DataView(out.buffer)
        out[0] = Envelope.MAGIC
        out[1] = Envelope.FORMAT_VERSION
        view.setUint32(3, headerBytes.byteLength)
        view.setUint32(7, value.byteLength)
        out.set(headerBytes, Envelope.FIXED_HEADER_BYTES)
        out.set(value, Envelope.FIXED_HEADER_BYTES + headerBytes.byteLength)
        return out
      }
      for (const e of [undefined, "short", 42, "x".repeat(26) + "!"]) {
        const decoded = Option.getOrThrow(yield* Envelope.decode(reframed(e)))
        assert.deepStrictEqual(decoded.value, value)
        assert.isUndefined(BodyHash.known(decoded.value), String(e))
        assert.strictEqual(BodyHash.hashOf(decoded.value), createHash("sha256").update(value).digest("base64url").slice(0, 27))
      }
    }))

  it("isFresh / isUsable boundaries", () => {
    const entry = entryAt(NOW, "v", { freshMs: 1_000, ttlMs: 5_000 })
    assert.isTrue(Envelope.isFresh(entry, NOW + 999))
    assert.isFalse(Envelope.isFresh(entry, NOW + 1_000))
    assert.isTrue(Envelope.isUsable(entry, NOW + 4_999))
    assert.isFalse(Envelope.isUsable(entry, NOW + 5_000))
  })
})
