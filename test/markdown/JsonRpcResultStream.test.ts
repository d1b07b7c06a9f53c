import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Option, Stream } from "effect"
import fc from "fast-check"
import { htmlToMarkdown } from "../../src/markdown/HtmlToMarkdown.js"
import {
  contentToMarkdown,
  JsonRpcDecodeError,
  JsonRpcReplyError,
  type JsonRpcResultStreamOptions,
  readResult,
  type ResultEvent,
  resultEvents,
  wholeResult
} from "../../src/markdown/JsonRpcResultStream.js"
import { drupalJsonEscape, jsonRpcReplyPieces } from "./generate.js"
import { makeHeapProbe } from "../support/heap.js"
import { cutRanges } from "../support/cuts.js"

/** The body as UTF-8 bytes cut every `size` bytes, one piece per Effect chunk. */
const body = (text: string, size = Number.POSITIVE_INFINITY) => {
  const bytes = new TextEncoder().encode(text)
  const pieces: Array<Uint8Array> = []
  const step = Math.min(size, Math.max(1, bytes.length))
  for (let i = 0; i < bytes.length; i += step) pieces.push(bytes.subarray(i, i + step))
  return Stream.fromIterable(pieces).pipe(Stream.rechunk(1))
}

const events = (text: string, size?: number, options?: JsonRpcResultStreamOptions) =>
  body(text, size).pipe(resultEvents(options), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

const content = (es: ReadonlyArray<ResultEvent>) =>
  es.flatMap((e) => (e._tag === "ContentChunk" ? [e.chunk] : [])).join("")

/** The events without the content chunks, to check order. */
const shape = (es: ReadonlyArray<ResultEvent>) =>
  es.flatMap((e) =>
    e._tag === "Field"
      ? [`Field ${e.path.join(".")}=${JSON.stringify(e.value)}`]
      : e._tag === "ContentChunk"
      ? []
      : [`${e._tag} ${e.path.join(".")}`]
  )

const failure = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.either(effect), (either) =>
    Either.isLeft(either) ? Effect.succeed(either.left) : Effect.dieMessage("expected a failure"))

const HTML = "<p class=\"intro\">Tom & Jerry's <b>\"quotes\"</b> \\ back\nslash</p>\n<pre>a\tb</pre> 🚀 café"

const reply = (contentJson: string) =>
  `{"jsonrpc":"2.0","id":7,"result":{"id":42,"title":"Forms \\"101\\"","url":"https:\\/\\/d.example\\/t\\/42",` +
  `"metadata":{"drupal_version":"10","tags":["forms","fapi"],"updated":null},"content":${contentJson},` +
  `"summary":"after the content","weight":-1.5e2}}`

describe("JsonRpcResultStream", () => {
  it.effect("yields the fields in reply order around the content", () =>
    Effect.gen(function*() {
      const es = yield* events(reply(JSON.stringify(HTML)))
      assert.deepStrictEqual(shape(es), [
        "Field id=42",
        "Field title=\"Forms \\\"101\\\"\"",
        "Field url=\"https://d.example/t/42\"",
        "Field metadata={\"drupal_version\":\"10\",\"tags\":[\"forms\",\"fapi\"],\"updated\":null}",
        "ContentStart content",
        "ContentEnd content",
        "Field summary=\"after the content\"",
        "Field weight=-150"
      ])
      assert.strictEqual(content(es), HTML)
    }))

  it.effect("streams the content in many chunks; escapes split across chunk boundaries decode exactly", () =>
    Effect.gen(function*() {
      // Drupal-style escaping (\u003C, \u0026, \/, \uD83D\uDE80) plus \" \\ \n \t from JSON.stringify.
      const json = reply(`"${drupalJsonEscape(HTML)}"`)
      assert.isTrue(json.includes("\\u003C") && json.includes("\\\"") && json.includes("\\n"))
      for (const size of [1, 2, 3, 5, 7, 13, 64]) {
        const es = yield* events(json, size)
        assert.strictEqual(content(es), HTML, `${size}-byte chunks`)
        const chunks = es.filter((e) => e._tag === "ContentChunk")
        if (size <= 7) assert.isAbove(chunks.length, 10, `${size}-byte chunks give many content chunks`)
        for (const c of chunks) {
          assert.isAbove(c.chunk.length, 0)
          const last = c.chunk.charCodeAt(c.chunk.length - 1)
          assert.isFalse(last >= 0xd800 && last <= 0xdbff, "no chunk ends inside a surrogate pair")
        }
        assert.deepStrictEqual(shape(es), shape(yield* events(json)))
      }
    }))

  it.effect("a large upstream chunk is decoded in pieces of at most 64 KiB: chunks stay under 64 Ki code units, cuts anywhere", () =>
    Effect.gen(function*() {
      // One body chunk of ~400 KB, read in 64 KiB pieces: the padding moves the cuts across
      // escapes (\u003C, \uD83D\uDE80), raw multi-byte UTF-8 (é, 🚀) and surrogate pairs.
      const unit = `${HTML} ¡ÿ Ā 😀 ${"y".repeat(37)}`
      for (const pad of [0, 1, 2, 3, 4, 5, 6, 7]) {
        const long = "z".repeat(pad) + unit.repeat(2500)
        for (const json of [reply(`"${drupalJsonEscape(long)}"`), reply(JSON.stringify(long))]) {
          assert.isAbove(json.length, 200_000)
          const es = yield* events(json)
          assert.strictEqual(content(es), long, `padding ${pad}`)
          const chunks = es.filter((e) => e._tag === "ContentChunk")
          assert.isAbove(chunks.length, 2)
          for (const c of chunks) {
            assert.isAtMost(c.chunk.length, 65536)
            const last = c.chunk.charCodeAt(c.chunk.length - 1)
            assert.isFalse(last >= 0xd800 && last <= 0xdbff, "no chunk ends inside a surrogate pair")
          }
          assert.deepStrictEqual(shape(es), shape(yield* events(json, 4096)))
        }
      }
    }))

  describe("property: any content, any split", () => {
    // What makes the scanner's work hard: escapes of every width, raw multi-byte UTF-8, surrogate
    // pairs, quotes and backslashes; a long filler puts the 64 KiB piece cuts anywhere.
    const hardPiece = fc.oneof(
      { arbitrary: fc.constantFrom("<", ">", "&", "'", "/", "\"", "\\", "\n", "\t", "é", "ÿ", "Ā", "€", "😀", "🚀", "\u2028", "a", "u", " "), weight: 12 },
      { arbitrary: fc.string({ maxLength: 6 }), weight: 4 },
      { arbitrary: fc.integer({ min: 1, max: 70_000 }).map((n) => "x".repeat(n)), weight: 1 }
    )
    const contentArb = fc.array(hardPiece, { maxLength: 40 })
    // Cut points anywhere, or a cut every 1-9 bytes (every escape cut at every offset).
    type Cuts = ReadonlyArray<number> | { readonly every: number }
    const isPoints = (cuts: Cuts): cuts is ReadonlyArray<number> => Array.isArray(cuts)
    const cutsArb: fc.Arbitrary<Cuts> = fc.oneof(
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.integer({ min: 1, max: 9 }).map((every) => ({ every }))
    )
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(effect)
    const cutBytes = (bytes: Uint8Array, cuts: Cuts) => {
      const points: ReadonlyArray<number> = isPoints(cuts)
        ? cuts
        : Array.from({ length: Math.floor(bytes.length / cuts.every) }, (_, i) => (i + 1) * cuts.every)
      const pieces = cutRanges(bytes.length, points).filter(([start, end]) => end > start).map(([start, end]) => bytes.subarray(start, end))
      return Stream.fromIterable(pieces).pipe(Stream.rechunk(1))
    }
    const decode = (bytes: Uint8Array, cuts: Cuts) =>
      cutBytes(bytes, cuts).pipe(resultEvents(), Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
    const utf8 = (text: string) => new TextEncoder().encode(text)

    it("decodes exactly, in chunks of at most 64 Ki code units that never split a surrogate pair", () =>
      fc.assert(
        fc.asyncProperty(contentArb, fc.boolean(), cutsArb, async (pieces, escaped, cuts) => {
          const text = pieces.join("")
          const json = reply(escaped ? `"${drupalJsonEscape(text)}"` : JSON.stringify(text))
          const es = await run(decode(utf8(json), cuts))
          assert.strictEqual(content(es), text)
          assert.deepStrictEqual(shape(es), shape(await run(decode(utf8(json), []))))
          const chunks = es.flatMap((e) => (e._tag === "ContentChunk" ? [e.chunk] : []))
          for (let i = 0; i < chunks.length; i++) {
            const c = chunks[i]!
            assert.isAbove(c.length, 0)
            assert.isAtMost(c.length, 65536)
            const last = c.charCodeAt(c.length - 1)
            const next = chunks[i + 1]?.charCodeAt(0) ?? -1
            assert.isFalse(last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff, "a pair split")
          }
        }),
        { numRuns: 60 }
      ))

    it("a fault anywhere in the content is malformed, whatever the split", () =>
      fc.assert(
        fc.asyncProperty(
          contentArb,
          fc.nat(),
          fc.constantFrom("\\q", "\t", "\\u12G4", "\\x41", "invalid UTF-8"),
          fc.boolean(),
          cutsArb,
          async (pieces, where, fault, escaped, cuts) => {
            const at = where % (pieces.length + 1)
            const encode = (xs: ReadonlyArray<string>) => escaped ? drupalJsonEscape(xs.join("")) : JSON.stringify(xs.join("")).slice(1, -1)
            const head = `"${encode(pieces.slice(0, at))}`
            const json = reply(`${head}${fault === "invalid UTF-8" ? "" : fault}${encode(pieces.slice(at))}"`)
            let bytes = utf8(json)
            if (fault === "invalid UTF-8") {
              // A byte that is never UTF-8, where the content reached `at`.
              const cut = utf8(reply(`${head}\u0000`).split("\u0000")[0]!).length
              const joined = new Uint8Array(bytes.length + 1)
              joined.set(bytes.subarray(0, cut))
              joined[cut] = 0xff
              joined.set(bytes.subarray(cut), cut + 1)
              bytes = joined
            }
            const error = await run(failure(decode(bytes, cuts)))
            assert.strictEqual(error instanceof JsonRpcDecodeError ? error.reason : String(error), "malformed")
          }
        ),
        { numRuns: 60 }
      ))
  })

  describe("wholeResult: a reply read whole", () => {
    const utf8 = (text: string) => new TextEncoder().encode(text)
    // What resultEvents makes of the same bytes: the joined content (undefined without one), or its failure.
    const viaStream = (bytes: Uint8Array, options?: JsonRpcResultStreamOptions) =>
      Effect.runPromise(Effect.either(Stream.make(bytes).pipe(resultEvents(options), Stream.runCollect, Effect.map((c) => {
        const es = Chunk.toReadonlyArray(c)
        return es.some((e) => e._tag === "ContentStart") ? content(es) : undefined
      }))))
    const summary = (result: Either.Either<string | undefined, unknown>) =>
      Either.isRight(result)
        ? { content: result.right }
        : result.left instanceof JsonRpcDecodeError
        ? { reason: result.left.reason }
        : result.left instanceof JsonRpcReplyError
        ? { reply: [result.left.code, result.left.message, result.left.data, result.left.id] }
        : { other: String(result.left) }
    const envelopes = [
      (c: string) => reply(c),
      (c: string) => `{"jsonrpc":"2.0","id":1,"result":{"content":${c}}}`,
      (c: string) => `{"result":{"content":${c}},"id":"x","jsonrpc":"2.0"}`,
      (c: string) => `{"jsonrpc":"1.0","id":1,"result":{"content":${c}}}`,
      (c: string) => `{"id":1,"result":{"content":${c}}}`,
      (c: string) => `{"jsonrpc":"2.0","id":1,"result":{"content":${c}},"error":{"code":-32000,"message":"Access Denied","data":null}}`,
      (_: string) => `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"Invalid params","data":"Item not found"}}`,
      (_: string) => `{"jsonrpc":"2.0","id":3,"error":{"code":"x"}}`,
      (c: string) => `[{"jsonrpc":"2.0","id":1,"result":{"content":${c}}}]`,
      (c: string) => `{"jsonrpc":"2.0","id":1,"result":{"content":${c},"summary":"${"s".repeat(300)}"}}`,
      (_: string) => `{"jsonrpc":"2.0","id":1,"result":{"content":null,"title":"t"}}`,
      (_: string) => `{"jsonrpc":"2.0","id":1,"result":"plain"}`,
      (c: string) => `\ufeff{"jsonrpc":"2.0","id":1,"result":{"content":${c}}}`,
      (c: string) => `{"jsonrpc":"2.0","id":1,"result":{"content":${c}}} x`
    ]
    it("gives exactly the content or the failure of resultEvents, and the reply's result, for common and odd replies, whole or cut", () =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(fc.constantFrom("<p>", "&amp;", "\"", "\\", "\n", "é", "😀", "\u2028", "x"), fc.string({ maxLength: 8 })), { maxLength: 30 }),
          fc.boolean(),
          fc.nat({ max: envelopes.length - 1 }),
          fc.option(fc.nat(), { nil: undefined }),
          fc.constantFrom(undefined, 256),
          async (pieces, escaped, which, cutAt, maxFieldBytes) => {
            const text = pieces.join("")
            const json = envelopes[which]!(escaped ? `"${drupalJsonEscape(text)}"` : JSON.stringify(text))
            let bytes = utf8(json)
            if (cutAt !== undefined) bytes = bytes.subarray(0, cutAt % (bytes.length + 1))
            const options = maxFieldBytes === undefined ? undefined : { maxFieldBytes }
            // Split in two, as a reply read in two chunks.
            const half = Math.floor(bytes.length / 2)
            const whole = wholeResult([bytes.subarray(0, half), bytes.subarray(half)], options)
            const streamed = await viaStream(bytes, options)
            assert.deepStrictEqual(summary(Either.map(whole, (w) => w.content)), summary(streamed), json.slice(0, 200))
            // The bytes decoded (cut or not) were one reply: the same result as JSON.parse gives.
            if (Either.isRight(whole)) assert.deepStrictEqual(whole.right.result, JSON.parse(new TextDecoder().decode(bytes)).result)
          }
        ),
        { numRuns: 300 }
      ))
  })

  it.effect("a long content decodes exactly whatever the split, and a fault deep inside it keeps its reason", () =>
    Effect.gen(function*() {
      // Many pieces: the content is scanned past the parser (bytes and text paths), escapes of
      // every width (ASCII, latin1, BMP, surrogate pairs) cut at every offset.
      const long = `${HTML} ¡ÿ Ā ${"x".repeat(50)} `.repeat(40)
      const json = reply(`"${drupalJsonEscape(long)}"`)
      for (const size of [5, 6, 7, 11, 64, 1000]) {
        const es = yield* events(json, size)
        assert.strictEqual(content(es), long, `${size}-byte chunks`)
        assert.deepStrictEqual(shape(es), shape(yield* events(json)))
      }
      const at = json.length - 200
      const reasonAt = (text: string, size: number) =>
        Effect.map(failure(events(text, size)), (e) => (e instanceof JsonRpcDecodeError ? e.reason : ""))
      for (const size of [7, 64]) {
        assert.strictEqual(yield* reasonAt(json.slice(0, at) + "\\q" + json.slice(at), size), "malformed", `bad escape, ${size}`)
        assert.strictEqual(yield* reasonAt(json.slice(0, at) + "\t" + json.slice(at), size), "malformed", `control character, ${size}`)
        assert.strictEqual(yield* reasonAt(json.slice(0, at), size), "truncated", `cut inside the content, ${size}`)
        assert.strictEqual(yield* reasonAt(json.slice(0, at) + "\\u00", size), "truncated", `cut inside an escape, ${size}`)
      }
    }))

  it.effect("raw UTF-8 split inside a multi-byte sequence decodes", () =>
    Effect.gen(function*() {
      const es = yield* events(reply(JSON.stringify("café 🚀 日本")), 1)
      assert.strictEqual(content(es), "café 🚀 日本")
    }))

  it.effect("an error reply fails with JsonRpcReplyError carrying code, message, data and id", () =>
    Effect.gen(function*() {
      const error = yield* failure(events(
        `{"jsonrpc":"2.0","id":"abc","error":{"code":-32600,"message":"Invalid Request","data":"Access Denied"}}`,
        4
      ))
      assert.instanceOf(error, JsonRpcReplyError)
      assert.deepStrictEqual(
        error instanceof JsonRpcReplyError ? [error.code, error.message, error.data, error.id] : [],
        [-32600, "Invalid Request", "Access Denied", "abc"]
      )
      const structured = yield* failure(events(
        `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"Invalid Params","data":{"param":"id"}}}`
      ))
      assert.deepStrictEqual(structured instanceof JsonRpcReplyError ? structured.data : undefined, { param: "id" })
      const broken = yield* failure(events(`{"jsonrpc":"2.0","id":1,"error":{"message":"no code"}}`))
      assert.deepStrictEqual(broken instanceof JsonRpcDecodeError ? broken.reason : undefined, "invalid_envelope")
    }))

  it.effect("a truncated body fails with a decode error, never a partial success", () =>
    Effect.gen(function*() {
      const json = reply(JSON.stringify(HTML))
      const escapes = reply(`"${drupalJsonEscape(HTML)}"`)
      const cuts = [0, 1, 20, json.indexOf("\"content\"") + 15, json.length - 30, json.length - 1]
      const inEscape = [escapes.indexOf("\\u003C") + 1, escapes.indexOf("\\u003C") + 4]
      for (const [text, cut] of [...cuts.map((c) => [json, c] as const), ...inEscape.map((c) => [escapes, c] as const)]) {
        const error = yield* failure(events(text.slice(0, cut), 3))
        assert.strictEqual(error instanceof JsonRpcDecodeError ? error.reason : "", "truncated", `cut at ${cut}`)
      }
      for (const literal of [`{"jsonrpc":"2.0","result":{"ok":tr`, `{"jsonrpc":"2.0","result":{"ok":nul`]) {
        const error = yield* failure(events(literal, 4))
        assert.strictEqual(error instanceof JsonRpcDecodeError ? error.reason : "", "truncated", literal)
      }
      const midUtf8 = new TextEncoder().encode(reply(JSON.stringify("é")))
      const cutUtf8 = midUtf8.subarray(0, midUtf8.indexOf(0xc3) + 1)
      const error = yield* failure(
        Stream.make(cutUtf8).pipe(resultEvents(), Stream.runDrain)
      )
      assert.strictEqual(error instanceof JsonRpcDecodeError ? error.reason : "", "truncated")
    }))

  it.effect("malformed JSON, a batch, a missing result or jsonrpc fail with the matching reason", () =>
    Effect.gen(function*() {
      const reasonOf = (text: string) =>
        Effect.map(failure(events(text, 5)), (e) => (e instanceof JsonRpcDecodeError ? e.reason : e._tag))
      assert.strictEqual(yield* reasonOf(`{"jsonrpc":"2.0","id":1,"result":{"content":"x"}}}`), "malformed")
      assert.strictEqual(yield* reasonOf(`{"jsonrpc":"2.0","id":1,"result":{"content":"\\x"}}`), "malformed")
      assert.strictEqual(yield* reasonOf(`<html>Internal Server Error</html>`), "malformed")
      // Errors the parser can only see at the end of the body are still malformed, not truncated.
      assert.strictEqual(yield* reasonOf(`{"jsonrpc":"2.0","result":{"content":"\\q"}}`), "malformed")
      assert.strictEqual(yield* reasonOf(`{"jsonrpc":"2.0","result":{"ok":trux}}`), "malformed")
      assert.strictEqual(yield* reasonOf(`[{"jsonrpc":"2.0","id":1,"result":{}}]`), "invalid_envelope")
      assert.strictEqual(yield* reasonOf(`{"jsonrpc":"2.0","id":1}`), "invalid_envelope")
      assert.strictEqual(yield* reasonOf(`{"id":1,"result":{"content":"x"}}`), "invalid_envelope")
      const invalidUtf8 = yield* failure(Stream.make(new Uint8Array([0x7b, 0xff, 0x7d])).pipe(resultEvents(), Stream.runDrain))
      assert.strictEqual(invalidUtf8 instanceof JsonRpcDecodeError ? invalidUtf8.reason : "", "malformed")
    }))

  it.effect("a small field over maxFieldBytes fails with field_too_large; the content has no bound", () =>
    Effect.gen(function*() {
      const big = "x".repeat(70 * 1024)
      const title = yield* failure(events(reply(JSON.stringify(HTML)).replace("Forms \\\"101\\\"", big), 4096))
      assert.deepStrictEqual(
        title instanceof JsonRpcDecodeError ? [title.reason, title.path] : [],
        ["field_too_large", ["title"]]
      )
      const nested = yield* failure(events(reply("\"\"").replace("\"fapi\"", `"fapi",${JSON.stringify(big.slice(0, 50))}`), 7, {
        maxFieldBytes: 100
      }))
      assert.deepStrictEqual(
        nested instanceof JsonRpcDecodeError ? [nested.reason, nested.path] : [],
        ["field_too_large", ["metadata"]]
      )
      const envelope = yield* failure(events(`{"jsonrpc":"2.0","id":1,"debug":${JSON.stringify(big)},"result":{}}`))
      assert.strictEqual(envelope instanceof JsonRpcDecodeError ? envelope.reason : "", "field_too_large")
      const es = yield* events(reply(JSON.stringify(big + big)), 4096)
      assert.strictEqual(content(es).length, big.length * 2)
    }))

  it.effect("a small field's size does not depend on how the reply is split: at the bound it passes, cut short it is truncated", () =>
    Effect.gen(function*() {
      // A string field counts its characters and its two tokens: 254 characters are 256.
      const json = `{"jsonrpc":"2.0","id":1,"result":{"content":"x","summary":"${"s".repeat(254)}"}}`
      const options = { maxFieldBytes: 256 }
      const reasons = new Set<string>()
      for (let size = 1; size <= 64; size++) {
        const es = yield* events(json, size, options)
        assert.strictEqual(content(es), "x")
        const cutShort = yield* failure(events(json.slice(0, json.length - 10), size, options))
        reasons.add(cutShort instanceof JsonRpcDecodeError ? cutShort.reason : String(cutShort))
      }
      assert.deepStrictEqual([...reasons], ["truncated"])
      const over = yield* failure(events(json.replace("s\"", "ss\""), 7, options))
      assert.strictEqual(over instanceof JsonRpcDecodeError ? over.reason : "", "field_too_large")
    }))

  it.effect("follows a nested content path; a non-string content is a Field", () =>
    Effect.gen(function*() {
      const json =
        `{"jsonrpc":"2.0","id":1,"result":{"nid":5,"body":{"format":"full_html","value":"<p>x</p>","summary":""},"body2":{"value":"y"}}}`
      const es = yield* events(json, 2, { contentPath: ["body", "value"] })
      assert.deepStrictEqual(shape(es), [
        "Field nid=5",
        "Field body.format=\"full_html\"",
        "ContentStart body.value",
        "ContentEnd body.value",
        "Field body.summary=\"\"",
        "Field body2={\"value\":\"y\"}"
      ])
      assert.strictEqual(content(es), "<p>x</p>")
      const noContent = yield* events(`{"jsonrpc":"2.0","id":1,"result":{"id":1,"content":null}}`)
      assert.deepStrictEqual(shape(noContent), ["Field id=1", "Field content=null"])
      const scalar = yield* events(`{"jsonrpc":"2.0","id":1,"result":true}`)
      assert.deepStrictEqual(shape(scalar), ["Field =true"])
      const empty = yield* events(`{"jsonrpc":"2.0","id":1,"result":{"content":""}}`)
      assert.deepStrictEqual(shape(empty), ["ContentStart content", "ContentEnd content"])
    }))

  it.effect("a __proto__ key stays data", () =>
    Effect.gen(function*() {
      const es = yield* events(`{"jsonrpc":"2.0","id":1,"result":{"metadata":{"__proto__":{"polluted":true}}}}`)
      const field = es[0]
      assert.isTrue(field !== undefined && field._tag === "Field")
      const value = field !== undefined && field._tag === "Field" ? field.value as Record<string, unknown> : {}
      assert.isTrue(Object.prototype.hasOwnProperty.call(value, "__proto__"))
      assert.isUndefined((value as { polluted?: unknown }).polluted)
    }))

  it.effect("contentToMarkdown turns the content chunks into Markdown and keeps the other events", () =>
    Effect.gen(function*() {
      const json = reply(`"${drupalJsonEscape("<h2>Title</h2><p>Some <b>bold</b> text &amp; more.</p>")}"`)
      const es = yield* body(json, 3).pipe(
        resultEvents(),
        contentToMarkdown({ baseUrl: "https://d.example/" }),
        Stream.runCollect,
        Effect.map(Chunk.toReadonlyArray)
      )
      assert.deepStrictEqual(shape(es), shape(yield* events(json)))
      assert.strictEqual(content(es), "## Title\n\nSome **bold** text & more.\n")
    }))

  it.scoped("readResult splits the reply into head, content and rest", () =>
    Effect.gen(function*() {
      const parts = yield* readResult(body(reply(`"${drupalJsonEscape(HTML)}"`), 5))
      assert.deepStrictEqual(parts.head.map((f) => f.path.join(".")), ["id", "title", "url", "metadata"])
      assert.deepStrictEqual(parts.contentPath, Option.some(["content"]))
      const markdown = yield* parts.content.pipe(htmlToMarkdown(), Stream.runCollect, Effect.map(Chunk.join("")))
      assert.isTrue(markdown.startsWith("Tom & Jerry's **\"quotes\"** \\\\ back slash"))
      const rest = yield* parts.rest
      assert.deepStrictEqual(rest.map((f) => [f.path.join("."), f.value]), [["summary", "after the content"], [
        "weight",
        -150
      ]])
    }))

  it.scoped("readResult: rest skips unread content; errors before the content fail the effect", () =>
    Effect.gen(function*() {
      const parts = yield* readResult(body(reply(JSON.stringify(HTML)), 3))
      assert.deepStrictEqual((yield* parts.rest).map((f) => f.path.join(".")), ["summary", "weight"])
      const error = yield* failure(readResult(body(`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal Error","data":"boom"}}`)))
      assert.instanceOf(error, JsonRpcReplyError)
      const none = yield* readResult(body(`{"jsonrpc":"2.0","id":1,"result":{"id":3}}`))
      assert.isTrue(Option.isNone(none.contentPath))
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(none.content)), 0)
      const late = yield* readResult(body(reply(JSON.stringify(HTML)).slice(0, -10)))
      const lateError = yield* failure(late.content.pipe(Stream.runDrain, Effect.zipRight(late.rest)))
      assert.strictEqual(lateError instanceof JsonRpcDecodeError ? lateError.reason : "", "truncated")
    }))
})

describe("JsonRpcResultStream memory", () => {
  it.effect("a ~50 MB reply in 64 KB chunks flows into HtmlToMarkdown with bounded heap growth", () =>
    Effect.gen(function*() {
      const total = 50 * 1024 * 1024
      const probe = makeHeapProbe()
      let input = 0
      let pieces = 0
      const source = function*() {
        for (const piece of jsonRpcReplyPieces(total, 64 * 1024)) {
          input += piece.length
          if (++pieces % 64 === 0) probe.collect()
          else probe.sample()
          yield piece
        }
      }
      const started = Date.now()
      const fields: Array<string> = []
      const markdown = yield* Stream.fromIteratorSucceed(source(), 1).pipe(
        resultEvents(),
        contentToMarkdown({ baseUrl: "https://drupalize.example/t/1" }),
        Stream.runFold(0, (n, e) => {
          if (e._tag === "Field") fields.push(e.path.join("."))
          return e._tag === "ContentChunk" ? n + e.chunk.length : n
        })
      )
      probe.collect()
      const seconds = (Date.now() - started) / 1000
      const heap = probe.report()
      console.log(
        `[markdown memory] JSON-RPC body in: ${(input / 1048576).toFixed(1)} MiB, markdown out: ${
          (markdown / 1048576).toFixed(1)
        } MiB, ${seconds.toFixed(1)} s, heap growth retained max ${heap.retainedMaxMB} MiB (after GC), sampled max ${heap.sampledMaxMB} MiB`
      )
      assert.deepStrictEqual(fields, ["id", "title", "url", "metadata", "updated"])
      assert.isAtLeast(input, total)
      assert.isAbove(markdown, total / 2)
      assert.isBelow(heap.retainedMaxMB, 32)
    }), 120_000)
})
