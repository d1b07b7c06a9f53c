/**
 * `LargeJson` parses and serialises like `JSON.parse` / `JSON.stringify`, value for value and
 * byte for byte, however the bytes are split, and does so in bounded synchronous steps with the
 * event loop served between them (the structural proof that a 30 MB reply does not hold the event loop: no
 * step handles more than its slice, and a large body takes many steps).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import * as LargeJson from "../../src/markdown/LargeJson.js"
import { countingTurns } from "../support/turns.js"
import { cutRanges } from "../support/cuts.js"

const encoder = new TextEncoder()

/** Splits bytes at the given cut points. */
const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> =>
  cutRanges(bytes.byteLength, cuts).map(([start, end]) => bytes.subarray(start, end))

// Strings with what makes JSON escaping hard: quotes, backslashes, control characters, lone and
// paired surrogates, multi-byte UTF-8; long enough to be lifted out with a small `largeString`.
const hardChar = fc.constantFrom("\"", "\\", "\n", "\u0000", "\u001f", "é", "€", "😀", "\ud83d", "\ude00", "a", "/", "u", " ")
const hardString = fc.array(fc.oneof(hardChar, fc.string({ maxLength: 5 })), { maxLength: 60 }).map((xs) => xs.join(""))
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    hardString,
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(hardString, fc.constant("__proto__")), tie("value"), { maxKeys: 4 })
  )
})).value

describe("LargeJson", () => {
  it.effect("parse gives JSON.parse's value for any JSON text, split anywhere, with small slices and lifted strings", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(json, fc.array(fc.nat(), { maxLength: 6 }), fc.integer({ min: 16, max: 64 }), fc.integer({ min: 1, max: 12 }), async (value, cuts, sliceBytes, largeString) => {
          const text = JSON.stringify(value)
          const parsed = await Effect.runPromise(LargeJson.parse(split(encoder.encode(text), cuts), { sliceBytes, largeString }))
          assert.strictEqual(JSON.stringify(parsed), text)
          assert.deepStrictEqual(parsed, JSON.parse(text))
        }),
        { numRuns: 400 }
      )
    ))

  it.effect("stringify gives JSON.stringify's UTF-8 bytes", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(json, fc.integer({ min: 16, max: 64 }), fc.integer({ min: 1, max: 12 }), async (value, sliceBytes, largeString) => {
          const bytes = await Effect.runPromise(LargeJson.stringify(value, { sliceBytes, largeString }))
          assert.deepStrictEqual(Buffer.from(bytes), Buffer.from(encoder.encode(JSON.stringify(value))))
        }),
        { numRuns: 400 }
      )
    ))

  it.effect("refuses what JSON.parse refuses: malformed, truncated (inside a lifted string too), trailing data, invalid UTF-8", () =>
    Effect.gen(function*() {
      const long = `{"content":"${"x".repeat(100)}`
      for (const text of ["", "{", "{\"a\":1} {\"b\":2}", "[1,]", long, `${long}"`, `${long}\\q"}`, "\"\u0001\""]) {
        assert.isUndefined(yield* LargeJson.parse([encoder.encode(text)], { largeString: 8, sliceBytes: 16 }), JSON.stringify(text))
      }
      assert.isUndefined(yield* LargeJson.parse([Uint8Array.of(0x22, 0xff, 0x22)]))
    }))

  it.effect("a 4 MB reply is parsed and serialised in steps of at most the slice, with a yield between steps", () =>
    Effect.gen(function*() {
      const html = "<p class=\"x\">Drupal — caché \\ 😀</p>\n".repeat(100_000)
      const reply = { jsonrpc: "2.0", id: 1, result: { id: 7, title: "T", url: "/t", metadata: { tags: ["a"] }, content: html } }
      const bytes = encoder.encode(JSON.stringify(reply))
      const steps: Array<number> = []
      const chunks = split(bytes, Array.from({ length: 64 }, (_, i) => i * 65_536 + 17))
      // Event-loop turns taken while parsing.
      const [parsed, turns] = yield* countingTurns(LargeJson.parse(chunks, { onSlice: (n) => steps.push(n) }))
      assert.deepStrictEqual(parsed, reply)
      const minSteps = Math.floor(bytes.byteLength / LargeJson.DEFAULT_SLICE_BYTES)
      assert.isAtLeast(turns, minSteps, "the event loop ran between steps")
      assert.isTrue(steps.every((n) => n <= LargeJson.DEFAULT_SLICE_BYTES), "no step over its slice")
      assert.isAtLeast(steps.length, minSteps, "the body took many steps")

      const written: Array<number> = []
      const out = yield* LargeJson.stringify((parsed as typeof reply).result, { onSlice: (n) => written.push(n) })
      assert.strictEqual(Buffer.from(out).toString("utf8"), JSON.stringify(reply.result))
      assert.isTrue(written.every((n) => n <= LargeJson.DEFAULT_SLICE_BYTES))
      assert.isAtLeast(written.length, Math.floor(html.length / LargeJson.DEFAULT_SLICE_BYTES))
    }))

  it.effect("stringify takes no steps for a value without a string over largeString, and steps for one with", () =>
    Effect.gen(function*() {
      const steps: Array<number> = []
      const onSlice = (n: number) => steps.push(n)
      // A typical item: a body of 100 KB, under stringify's default 256 KiB.
      const item = { id: 7, title: "t", body: "<p>é</p>".repeat(12_500), tags: ["a", { deep: ["x".repeat(100)] }] }
      const small = yield* LargeJson.stringify(item, { onSlice })
      assert.strictEqual(Buffer.from(small).toString("utf8"), JSON.stringify(item))
      assert.strictEqual(steps.length, 0, "one plain JSON.stringify")
      // A string past the bound, nested deep, is still found and written in steps.
      const nested = { ...item, tags: ["a", { deep: ["x".repeat(LargeJson.DEFAULT_STRINGIFY_LARGE_STRING + 1)] }] }
      const large = yield* LargeJson.stringify(nested, { onSlice })
      assert.strictEqual(Buffer.from(large).toString("utf8"), JSON.stringify(nested))
      assert.isAtLeast(steps.length, Math.floor(LargeJson.DEFAULT_STRINGIFY_LARGE_STRING / LargeJson.DEFAULT_SLICE_BYTES))
    }))
})
