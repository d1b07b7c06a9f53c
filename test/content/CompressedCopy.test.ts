/**
 * The copy of a streamed document kept for the cache: exact bytes back, small documents held as
 * they are, large ones held compressed (the bytes held while streaming stay far below the
 * document's size), nothing kept past the bound.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as CompressedCopy from "../../src/content/CompressedCopy.js"

const encoder = new TextEncoder()
const markdown = (bytes: number) => {
  const line = "## Caching in Drupal 10\n\nUse `#cache` tags: render arrays carry **max-age** and contexts.\n\n"
  return encoder.encode(line.repeat(Math.ceil(bytes / line.length)).slice(0, bytes))
}
const chunksOf = (bytes: Uint8Array, size: number) => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < bytes.byteLength; i += size) out.push(bytes.subarray(i, i + size))
  return out
}

describe("CompressedCopy", () => {
  it.effect("a small document is held as it is and given back exactly", () =>
    Effect.gen(function*() {
      const doc = markdown(10_000)
      const copy = CompressedCopy.make(1024 * 1024)
      for (const chunk of chunksOf(doc, 1000)) yield* copy.add(chunk)
      assert.strictEqual(copy.heldBytes(), doc.byteLength)
      assert.deepStrictEqual(Buffer.from((yield* copy.finish)!), Buffer.from(doc))
    }))

  it.effect("a 4 MB document is held compressed while it streams and given back exactly", () =>
    Effect.gen(function*() {
      const doc = markdown(4 * 1024 * 1024)
      const copy = CompressedCopy.make(32 * 1024 * 1024)
      let most = 0
      for (const chunk of chunksOf(doc, 64 * 1024)) {
        yield* copy.add(chunk)
        most = Math.max(most, copy.heldBytes())
      }
      assert.isBelow(most, doc.byteLength / 4, "held compressed, not whole")
      assert.deepStrictEqual(Buffer.from((yield* copy.finish)!), Buffer.from(doc))
    }))

  it.effect("a chunk compresses while the next is made: add resumes at once unless two chunks are with zlib", () =>
    Effect.gen(function*() {
      const doc = markdown(2 * 1024 * 1024)
      const copy = CompressedCopy.make(32 * 1024 * 1024)
      const [first, second, ...rest] = chunksOf(doc, 512 * 1024)
      // Past RAW_BELOW: zlib starts with this chunk, and `add` does not wait for it.
      assert.isTrue(Effect.runSyncExit(copy.add(first!))._tag === "Success", "the first chunk with zlib: no wait")
      // A second chunk while the first is still with zlib: this `add` waits for the first.
      const waited = Effect.runSyncExit(copy.add(second!))
      assert.isTrue(waited._tag === "Failure", "two chunks with zlib: the add waits")
      // The waiting add went on in the background: let zlib take both before the rest.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 200)))
      for (const chunk of rest) yield* copy.add(chunk)
      assert.deepStrictEqual(Buffer.from((yield* copy.finish)!), Buffer.from(doc))
    }))

  it.effect("a document past the bound is dropped: nothing held, nothing given back", () =>
    Effect.gen(function*() {
      const copy = CompressedCopy.make(512 * 1024)
      for (const chunk of chunksOf(markdown(1024 * 1024), 64 * 1024)) yield* copy.add(chunk)
      assert.strictEqual(copy.heldBytes(), 0)
      assert.isUndefined(yield* copy.finish)
    }))
})
