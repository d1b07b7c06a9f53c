import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { decodeCursor, encodeCursor } from "../../src/mcp/Catalog.js"
import { originAllowed } from "../../src/mcp/Protocol.js"
import * as ResultPager from "../../src/mcp/ResultPager.js"

const document = Array.from({ length: 120 }, (_, i) =>
  i % 10 === 0 ? `## Section ${i / 10}\n\n` : `Paragraph ${i} with ünïcödé and 😀 emoji, ${"lorem ipsum ".repeat(i % 7 + 3)}\n\n`).join("")

const readAll = (read: (offset: number) => Effect.Effect<ResultPager.Piece>) =>
  Effect.gen(function*() {
    const pieces: Array<ResultPager.Piece> = []
    let offset: number | undefined = 0
    while (offset !== undefined && pieces.length < 1000) {
      const piece: ResultPager.Piece = yield* read(offset)
      pieces.push(piece)
      offset = piece.next
    }
    return pieces
  })

describe("ResultPager", () => {
  it.effect("pieces stay within the budget, end at boundaries, and join to the document (string and stream agree)", () =>
    Effect.gen(function*() {
      const budget = 700
      const fromString = yield* readAll((offset) => Effect.succeed(ResultPager.fromString(document, offset, budget)))
      // Chunks of odd sizes, so pieces start and end inside chunks.
      const chunks = document.match(/[^]{1,97}/g)!
      const fromStream = yield* readAll((offset) => ResultPager.fromStream(Stream.fromChunk(Chunk.fromIterable(chunks)), offset, budget))
      assert.deepStrictEqual(fromStream, fromString)
      assert.strictEqual(fromString.map((p) => p.text).join(""), document)
      for (const piece of fromString) {
        assert.isAtMost(Buffer.byteLength(piece.text), budget)
        assert.isFalse(piece.text.includes("\uFFFD"))
      }
      for (const piece of fromString.slice(0, -1)) assert.isTrue(piece.text.endsWith("\n\n"), JSON.stringify(piece.text.slice(-20)))
      assert.isUndefined(fromString.at(-1)!.next)
    }))

  it.effect("a stream is read only up to the piece asked for", () =>
    Effect.gen(function*() {
      let pulled = 0
      const stream = Stream.fromIterable(Array.from({ length: 1000 }, (_, i) => `line ${i}\n`)).pipe(Stream.tap(() => Effect.sync(() => pulled++)))
      const piece = yield* ResultPager.fromStream(stream, 0, 100)
      assert.isDefined(piece.next)
      assert.isBelow(pulled, 20)
    }))

  it.effect("a heading in the second half of the window is where a piece ends", () =>
    Effect.sync(() => {
      const text = "a".repeat(60) + "\n\n# Title\n" + "b".repeat(200)
      const piece = ResultPager.fromString(text, 0, 100)
      assert.strictEqual(piece.text, "a".repeat(60) + "\n\n")
    }))
})

describe("MCP protocol helpers", () => {
  it.effect("origins: none, loopback and listed pass; others, null and malformed do not", () =>
    Effect.sync(() => {
      assert.isTrue(originAllowed(undefined, []))
      assert.isTrue(originAllowed("http://localhost:5173", []))
      assert.isTrue(originAllowed("http://127.0.0.1", []))
      assert.isTrue(originAllowed("http://[::1]:8080", []))
      assert.isTrue(originAllowed("https://app.example.com", ["https://app.example.com"]))
      assert.isFalse(originAllowed("http://evil.example.com", ["https://app.example.com"]))
      assert.isFalse(originAllowed("http://localhost.evil.com", []))
      assert.isFalse(originAllowed("null", []))
      assert.isFalse(originAllowed("not a url", []))
    }))

  it.effect("tools/list cursors: round trip, refused when cut from another list or forged", () =>
    Effect.sync(() => {
      const fingerprint = "0123456789abcdef0123"
      assert.strictEqual(decodeCursor(encodeCursor(40, fingerprint), fingerprint), 40)
      assert.isUndefined(decodeCursor(encodeCursor(40, fingerprint), "fedcba9876543210"))
      assert.isUndefined(decodeCursor("garbage", fingerprint))
    }))
})
