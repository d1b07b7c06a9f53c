import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { frontMatter, htmlToMarkdown, type HtmlToMarkdownOptions, makeConverter } from "../../src/markdown/HtmlToMarkdown.js"
import { htmlPieces } from "./generate.js"
import { makeHeapProbe } from "../support/heap.js"

const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url))
const names = readdirSync(fixtures).filter((f) => f.endsWith(".html")).map((f) => f.slice(0, -5)).sort()
const read = (file: string) => readFileSync(fixtures + file, "utf8")
const BASE = { baseUrl: "https://drupalize.example/tutorial/json-rpc/" }

const convert = <E>(html: Stream.Stream<string, E>, options: HtmlToMarkdownOptions = BASE) =>
  html.pipe(htmlToMarkdown(options), Stream.runCollect, Effect.map((c) => Chunk.join(c, "")))

const md = (html: string, options: HtmlToMarkdownOptions = {}) => convert(Stream.make(html), options)

/** The document as UTF-8 bytes cut every `size` bytes, decoded back to text as a stream. */
const byteChunks = (html: string, size: number) => {
  const bytes = new TextEncoder().encode(html)
  const pieces: Array<Uint8Array> = []
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size))
  return Stream.fromIterable(pieces).pipe(Stream.decodeText())
}

/** Cut every `size` UTF-16 code units: splits surrogate pairs too. */
const codeUnitChunks = (html: string, size: number) => {
  const pieces: Array<string> = []
  for (let i = 0; i < html.length; i += size) pieces.push(html.slice(i, i + size))
  return Stream.fromIterable(pieces)
}

describe("HtmlToMarkdown golden files", () => {
  it("has the reviewed fixture set", () => {
    assert.deepStrictEqual(names, ["article", "ckeditor5", "code", "entities", "links", "lists", "structure", "tables"])
  })

  for (const name of names) {
    it.effect(`${name}.html converts to ${name}.md exactly`, () =>
      Effect.gen(function*() {
        const out = yield* convert(Stream.make(read(`${name}.html`)))
        assert.strictEqual(out, read(`${name}.md`))
        assert.isFalse(out.includes("\n\n\n"), "no run of more than one blank line")
        assert.isTrue(out.endsWith("\n") && !out.endsWith("\n\n"), "exactly one final line break")
      }))

    it.effect(`${name}.html: output independent of chunk boundaries (1, 7, 64 bytes, whole)`, () =>
      Effect.gen(function*() {
        const html = read(`${name}.html`)
        const whole = yield* convert(Stream.make(html))
        for (const size of [1, 7, 64]) {
          assert.strictEqual(yield* convert(byteChunks(html, size)), whole, `${size}-byte chunks`)
        }
        assert.strictEqual(yield* convert(codeUnitChunks(html, 1)), whole, "1-code-unit chunks")
        assert.strictEqual(yield* convert(codeUnitChunks(html, 3)), whole, "3-code-unit chunks")
      }))
  }
})

describe("HtmlToMarkdown rules", () => {
  it.effect("keeps relative URLs when there is no baseUrl", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* md(`<p><a href="/a b">x</a> <img src="i.png" alt="y"></p>`),
        "[x](/a%20b) ![y](i.png)\n"
      )
    }))

  it.effect("escapes only where Markdown would change meaning", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* md(`<p>snake_case _x_ 5 * 3 a&amp;b a &amp; b 1) 2. # x</p><p>3) go</p><p>#tag</p>`),
        "snake_case \\_x\\_ 5 \\* 3 a\\&b a & b 1) 2. # x\n\n3\\) go\n\n\\#tag\n"
      )
    }))

  it.effect("closes emphasis and links around a block break and reopens them after", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* md(`<strong><p>one</p><p>two</p></strong><a href="/x"><div>a</div><div>b</div></a>`),
        "**one**\n\n**two**\n\n[a b](/x)\n"
      )
    }))

  it.effect("a code block over maxBufferBytes streams, and a later fence-like line starts a new block", () =>
    Effect.gen(function*() {
      const pieces = [`<pre><code class="language-txt">${"x\n".repeat(20)}`, "``", "`\nafter\n</code></pre><p>next</p>"]
      const out = yield* convert(Stream.fromIterable(pieces), { maxBufferBytes: 16 })
      assert.strictEqual(
        out,
        "```txt\n" + "x\n".repeat(20) + "```\n````txt\n```\nafter\n````\n\nnext\n"
      )
      // Buffered (the default bound), the fence is simply longer than any run inside.
      assert.strictEqual(
        yield* convert(Stream.fromIterable(pieces)),
        "````txt\n" + "x\n".repeat(20) + "```\nafter\n````\n\nnext\n"
      )
    }))

  it.effect("an inline code span over maxBufferBytes is closed and its rest is escaped text", () =>
    Effect.gen(function*() {
      const out = yield* convert(Stream.make("<p>a <code>", "0123456789abcdefghij", "*k*</code> b</p>"), {
        maxBufferBytes: 16
      })
      assert.strictEqual(out, "a `0123456789abcdefghij`\\*k\\* b\n")
    }))

  it.effect("every run of the stream uses a fresh converter", () =>
    Effect.gen(function*() {
      const stream = Stream.make("<ul><li>a").pipe(htmlToMarkdown())
      const first = yield* Stream.runCollect(stream)
      const second = yield* Stream.runCollect(stream)
      assert.deepStrictEqual(Chunk.toReadonlyArray(first), Chunk.toReadonlyArray(second))
      assert.strictEqual(Chunk.join(first, ""), "- a\n")
    }))

  it("the synchronous converter emits Markdown as it becomes final", () => {
    const converter = makeConverter()
    assert.strictEqual(converter.write("<p>Hello <b>wor"), "Hello **wor")
    assert.strictEqual(converter.write("ld</b></p><p>x"), "ld**\n\nx")
    assert.strictEqual(converter.end(), "\n")
    assert.strictEqual(converter.end(), "")
  })
})

describe("frontMatter", () => {
  it("writes a YAML block with every string double-quoted and escaped", () => {
    assert.strictEqual(
      frontMatter({
        tags: ["forms", "a \"b\""],
        url: "https://drupalize.example/t/1",
        title: "Forms: \"FAPI\" \\ #1\n\u2028",
        drupal_version: "10",
        updated: new Date("2024-05-01T00:00:00Z"),
        empty: [],
        weight: 3,
        draft: false,
        summary: undefined,
        "odd key": null
      }),
      [
        "---",
        "title: \"Forms: \\\"FAPI\\\" \\\\ #1\\n\\L\"",
        "url: \"https://drupalize.example/t/1\"",
        "tags:",
        "  - \"forms\"",
        "  - \"a \\\"b\\\"\"",
        "drupal_version: \"10\"",
        "updated: \"2024-05-01T00:00:00.000Z\"",
        "empty: []",
        "weight: 3",
        "draft: false",
        "\"odd key\": null",
        "---",
        "",
        ""
      ].join("\n")
    )
  })

  it("escapes control characters and replaces lone surrogates", () => {
    assert.strictEqual(
      frontMatter({ title: "a\u0001b\u007f\ud800c🚀", url: "u" }),
      "---\ntitle: \"a\\x01b\\x7F\uFFFDc🚀\"\nurl: \"u\"\n---\n\n"
    )
  })
})

describe("HtmlToMarkdown memory", () => {
  it.effect("converts ~50 MB of generated HTML with bounded heap growth", () =>
    Effect.gen(function*() {
      const total = 50 * 1024 * 1024
      const probe = makeHeapProbe()
      let input = 0
      let pieces = 0
      const source = function*() {
        for (const piece of htmlPieces(total, 64 * 1024)) {
          input += piece.length
          if (++pieces % 64 === 0) probe.collect()
          else probe.sample()
          yield piece
        }
      }
      const started = Date.now()
      // One piece per pull: the document is never materialised, not even as a batch of pieces.
      const output = yield* Stream.fromIteratorSucceed(source(), 1).pipe(
        htmlToMarkdown(BASE),
        Stream.runFold(0, (n, s) => n + s.length)
      )
      probe.collect()
      const seconds = (Date.now() - started) / 1000
      const heap = probe.report()
      console.log(
        `[markdown memory] html in: ${(input / 1048576).toFixed(1)} MiB, markdown out: ${
          (output / 1048576).toFixed(1)
        } MiB, ${seconds.toFixed(1)} s, heap growth retained max ${heap.retainedMaxMB} MiB (after GC), sampled max ${heap.sampledMaxMB} MiB`
      )
      assert.isAtLeast(input, total)
      assert.isAbove(output, total / 2)
      assert.isBelow(heap.retainedMaxMB, 32)
    }), 120_000)
})
