/**
 * Incremental decoding of one JSON-RPC 2.0 reply whose `result` carries a huge string (the
 * tutorial body), on top of stream-json's token-level parser.
 *
 * The reply body arrives as bytes; the small members of `result` (`id`, `title`, `url`,
 * `metadata`, …) come out as assembled values and the designated content string as chunks, in
 * the order they appear in the reply. Nothing holds the content: memory is bounded by the input
 * chunk size plus `maxFieldBytes` per small field.
 *
 * Where fields sit after the content (JSON objects are unordered: the upstream may put
 * `metadata` last), they are emitted after the content too. A caller that needs them before the
 * content (e.g. for front matter) must either buffer the content (unbounded: do not) or emit those
 * fields as a trailer; {@link readResult} makes the split explicit (`head` / `content` / `rest`).
 *
 * @since 0.1.0
 */
import { Chunk, Data, Effect, Either, Option, Stream } from "effect"
import { isAscii, isUtf8 } from "node:buffer"
import type * as Scope from "effect/Scope"
import { dual } from "effect/Function"
import { jsonParser, type Token } from "stream-json/core/parser.js"
import { getManyValues, isMany, none } from "stream-chain/defs.js"
import { type HtmlMarkdownConverter, type HtmlToMarkdownOptions, makeConverter } from "./HtmlToMarkdown.js"

/** A JSON value as assembled from the reply. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | ReadonlyArray<JsonValue>
  | { readonly [key: string]: JsonValue }

/** A small member of `result`, assembled; `path` is relative to `result` (`[]`: `result` itself). */
export interface FieldEvent {
  readonly _tag: "Field"
  readonly path: ReadonlyArray<string>
  readonly value: JsonValue
}

/** The content string starts (it may be empty: then `ContentEnd` follows directly). */
export interface ContentStartEvent {
  readonly _tag: "ContentStart"
  readonly path: ReadonlyArray<string>
}

/** A piece of the content string, unescaped. Never empty; never splits a UTF-16 surrogate pair. */
export interface ContentChunkEvent {
  readonly _tag: "ContentChunk"
  readonly chunk: string
}

/** The content string ended. */
export interface ContentEndEvent {
  readonly _tag: "ContentEnd"
  readonly path: ReadonlyArray<string>
}

/** What {@link resultEvents} yields, in reply order. */
export type ResultEvent = FieldEvent | ContentStartEvent | ContentChunkEvent | ContentEndEvent

/** Options of {@link resultEvents} and {@link readResult}. */
export interface JsonRpcResultStreamOptions {
  /**
   * Path of the big string inside `result`, default `["content"]` (`["body", "value"]` for a
   * raw Drupal body field). When the value at that path is not a string (e.g. `null` when the
   * content was not requested) it is emitted as a `Field` like any other member.
   */
  readonly contentPath?: ReadonlyArray<string> | undefined
  /**
   * Bound of one small field (and of one envelope member or key) in JSON characters, roughly
   * bytes. A field over it fails with `JsonRpcDecodeError` reason `field_too_large`. Default
   * {@link DEFAULT_MAX_FIELD_BYTES}.
   */
  readonly maxFieldBytes?: number | undefined
}

/** Default of {@link JsonRpcResultStreamOptions.maxFieldBytes}: 64 KiB. */
export const DEFAULT_MAX_FIELD_BYTES = 64 * 1024

/**
 * The reply is a JSON-RPC error object (`{"error": {code, message, data}}`). Raised as soon as
 * the error member is complete. `id` is the reply's id when it came before the error member.
 */
export class JsonRpcReplyError extends Data.TaggedError("JsonRpcReplyError")<{
  readonly code: number
  readonly message: string
  readonly data: unknown
  readonly id: string | number | null
}> {}

/** Why a reply body could not be decoded. */
export type JsonRpcDecodeReason =
  /** Not JSON (a syntax error, or invalid UTF-8). */
  | "malformed"
  /** The body ended before the JSON value did (including an empty body). */
  | "truncated"
  /** A small field, envelope member or key is larger than `maxFieldBytes`. */
  | "field_too_large"
  /** JSON, but not one JSON-RPC 2.0 response object with a `result` (or a well-formed `error`). */
  | "invalid_envelope"

/**
 * The reply body is not a usable JSON-RPC reply. Events already emitted by the stream must be
 * discarded by the consumer: a failed stream is never a partial success.
 */
export class JsonRpcDecodeError extends Data.TaggedError("JsonRpcDecodeError")<{
  readonly reason: JsonRpcDecodeReason
  /** Short human detail; never a piece of the body. */
  readonly detail: string
  /** The `result`-relative path of the offending field, when there is one. */
  readonly path?: ReadonlyArray<string>
  readonly cause?: unknown
}> {
  override get message(): string {
    return `Undecodable JSON-RPC reply (${this.reason}): ${this.detail}`
  }
}

/** The failures added by this module. */
export type JsonRpcResultError = JsonRpcReplyError | JsonRpcDecodeError

/**
 * Decodes a JSON-RPC reply body (bytes, any split) into {@link ResultEvent}s, in reply order:
 * `Field` for every member of `result` not on the content path (and for `result` itself when it
 * is not an object), `ContentStart`, `ContentChunk`s, `ContentEnd` around the content string.
 * At most one `ContentChunk` per 64 KiB of an upstream chunk (a chunk is at most 64 Ki UTF-16
 * code units).
 *
 * Failures: `JsonRpcReplyError` when the reply is an error object; `JsonRpcDecodeError` when the
 * body is malformed, truncated, has a field over `maxFieldBytes`, or is not a single JSON-RPC
 * 2.0 response with a `result` (a batch array included; `"jsonrpc": "2.0"` is checked at the end
 * of the body). The stream fails instead of completing, after any events already emitted.
 *
 * Bounds: one input chunk (decoded text and tokens) plus `maxFieldBytes` per small field.
 */
export const resultEvents: {
  (options?: JsonRpcResultStreamOptions): <E, R>(
    body: Stream.Stream<Uint8Array, E, R>
  ) => Stream.Stream<ResultEvent, E | JsonRpcResultError, R>
  <E, R>(
    body: Stream.Stream<Uint8Array, E, R>,
    options?: JsonRpcResultStreamOptions
  ): Stream.Stream<ResultEvent, E | JsonRpcResultError, R>
} = dual(
  (args) => Stream.StreamTypeId in Object(args[0]),
  <E, R>(
    body: Stream.Stream<Uint8Array, E, R>,
    options?: JsonRpcResultStreamOptions
  ): Stream.Stream<ResultEvent, E | JsonRpcResultError, R> =>
    Stream.suspend(() => {
      const decoder = new ReplyDecoder(
        options?.contentPath ?? ["content"],
        Math.max(1, options?.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES)
      )
      return body.pipe(
        Stream.mapChunksEffect((chunk) =>
          Effect.suspend(() => {
            const events: Array<ResultEvent> = []
            try {
              for (const bytes of chunk) decoder.push(bytes, events)
            } catch (error) {
              return failWith(error)
            }
            return Effect.succeed(Chunk.unsafeFromArray(events))
          })
        ),
        Stream.concat(Stream.suspend(() => {
          const events: Array<ResultEvent> = []
          try {
            decoder.end(events)
          } catch (error) {
            return Stream.fromEffect(failWith(error))
          }
          return Stream.fromIterable(events)
        }))
      )
    })
)

/** A reply read whole by {@link wholeResult}. */
export interface WholeResult {
  /** The `result` member, the content string in place. */
  readonly result: JsonValue
  /** The content string (what the `ContentChunk`s join to); `undefined` when absent or not a string. */
  readonly content: string | undefined
}

/**
 * A reply already read whole (its chunks, any split): its `result` and content string, or the
 * failure {@link resultEvents} gives on the same bytes (`Left`).
 *
 * The common reply (valid UTF-8, one JSON-RPC 2.0 response object with a `result` and no `error`,
 * small fields that cannot pass `maxFieldBytes`) is read with `JSON.parse`; any other goes
 * through the incremental decoder, so every failure is exactly that of `resultEvents`. One
 * difference remains: of duplicate keys, `JSON.parse` keeps the last. For replies small enough to
 * decode in one step.
 */
export const wholeResult = (
  chunks: ReadonlyArray<Uint8Array>,
  options?: JsonRpcResultStreamOptions
): Either.Either<WholeResult, JsonRpcResultError> => {
  const contentPath = options?.contentPath ?? ["content"]
  const max = Math.max(1, options?.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES)
  const fast = parsedResult(chunks, contentPath, max)
  if (fast !== undefined) return Either.right(fast)
  const decoder = new ReplyDecoder(contentPath, max)
  const events: Array<ResultEvent> = []
  try {
    for (const bytes of chunks) decoder.push(bytes, events)
    decoder.end(events)
  } catch (error) {
    if (error instanceof JsonRpcReplyError || error instanceof JsonRpcDecodeError) return Either.left(error)
    throw error
  }
  // The result rebuilt from its members, in reply order.
  let result: JsonValue = {}
  let content: string | undefined
  const place = (path: ReadonlyArray<string>, value: JsonValue) => {
    if (path.length === 0) {
      result = value
      return
    }
    let at = result as Record<string, JsonValue>
    for (const key of path.slice(0, -1)) {
      const next = Object.hasOwn(at, key) ? at[key] : undefined
      if (typeof next !== "object" || next === null || Array.isArray(next)) {
        const created: Record<string, JsonValue> = {}
        Object.defineProperty(at, key, { value: created, enumerable: true, writable: true, configurable: true })
        at = created
      } else at = next as Record<string, JsonValue>
    }
    Object.defineProperty(at, path[path.length - 1]!, { value, enumerable: true, writable: true, configurable: true })
  }
  for (const event of events) {
    if (event._tag === "Field") place(event.path, event.value)
    else if (event._tag === "ContentStart") content = ""
    else if (event._tag === "ContentChunk") content += event.chunk
    else place(event.path, content ?? "")
  }
  return Either.right({ result, content })
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } => typeof u === "object" && u !== null && !Array.isArray(u)

/** {@link wholeResult}'s `JSON.parse` path: `undefined` when the reply is not the common one. */
const parsedResult = (
  chunks: ReadonlyArray<Uint8Array>,
  contentPath: ReadonlyArray<string>,
  max: number
): WholeResult | undefined => {
  let text: string
  let reply: unknown
  try {
    text = chunks.length === 1 ? fatalUtf8.decode(chunks[0]) : fatalUtf8.decode(Buffer.concat(chunks))
    reply = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isRecord(reply) || reply["jsonrpc"] !== "2.0" || !("result" in reply) || "error" in reply) return undefined
  const result = reply["result"] as JsonValue
  let at: unknown = result
  for (const key of contentPath) at = isRecord(at) && Object.hasOwn(at, key) ? at[key] : undefined
  const content = typeof at === "string" ? at : undefined
  // Every member but the content fits in what is left: none can pass the bound of a small field.
  if (text.length - (content?.length ?? 0) > max) return undefined
  return { result, content }
}

const failWith = (error: unknown): Effect.Effect<never, JsonRpcResultError> =>
  error instanceof JsonRpcReplyError || error instanceof JsonRpcDecodeError ? Effect.fail(error) : Effect.die(error)

/**
 * Pipes the content chunks of a {@link resultEvents} stream through a fresh
 * {@link makeConverter HtmlToMarkdown converter}: `ContentChunk`s then carry Markdown, and the
 * converter's last output comes right before `ContentEnd`. Other events pass through. Same
 * bounds and failures as the upstream; the conversion does not fail.
 */
export const contentToMarkdown = (options?: HtmlToMarkdownOptions) =>
<E, R>(events: Stream.Stream<ResultEvent, E, R>): Stream.Stream<ResultEvent, E, R> =>
  Stream.suspend(() => {
    let converter: HtmlMarkdownConverter | null = null
    return Stream.mapChunks(events, (chunk) => {
      const out: Array<ResultEvent> = []
      let pending = ""
      const flush = () => {
        if (pending !== "") out.push({ _tag: "ContentChunk", chunk: pending })
        pending = ""
      }
      for (const event of chunk) {
        switch (event._tag) {
          case "ContentStart":
            converter = makeConverter(options)
            out.push(event)
            break
          case "ContentChunk":
            if (converter !== null) pending += converter.write(event.chunk)
            break
          case "ContentEnd":
            if (converter !== null) pending += converter.end()
            converter = null
            flush()
            out.push(event)
            break
          default:
            flush()
            out.push(event)
        }
      }
      flush()
      return Chunk.unsafeFromArray(out)
    })
  })

/** The reply split at its content, see {@link readResult}. */
export interface ResultParts<E, R> {
  /** The fields before the content, in reply order (all of them when there is no content). */
  readonly head: ReadonlyArray<FieldEvent>
  /** The content path when its value is a string; `None` when it is absent or not a string. */
  readonly contentPath: Option.Option<ReadonlyArray<string>>
  /**
   * The content chunks (HTML as sent). Consume it at most once, before `rest`, within the
   * scope of {@link readResult}; it is empty when there is no content.
   */
  readonly content: Stream.Stream<string, E, R>
  /**
   * Reads the reply to its end and yields the fields after the content; content left
   * unconsumed is skipped (read, not kept). Fails like {@link resultEvents}.
   */
  readonly rest: Effect.Effect<ReadonlyArray<FieldEvent>, E, R>
}

/**
 * Starts decoding a reply and reads it up to its content: the fields that precede the content
 * are in `head`, the content streams from `content`, and `rest` gives the fields after it.
 * Errors before the content fail this effect; later ones fail `content` or `rest`. Reading is
 * pull-based: the body is consumed only as fast as `content` is. Needs a `Scope` (the open
 * body); the parts are unusable once it closes.
 */
export const readResult = <E, R>(
  body: Stream.Stream<Uint8Array, E, R>,
  options?: JsonRpcResultStreamOptions
): Effect.Effect<
  ResultParts<E | JsonRpcResultError, R>,
  E | JsonRpcResultError,
  R | Scope.Scope
> =>
  Effect.gen(function*() {
    const pull = yield* Stream.toPull(resultEvents(body, options))
    let buffer: ReadonlyArray<ResultEvent> = []
    let index = 0
    let done = false
    const next: Effect.Effect<ResultEvent | undefined, E | JsonRpcResultError, R> = Effect.suspend(() => {
      if (index < buffer.length) return Effect.succeed(buffer[index++])
      if (done) return Effect.succeed(undefined)
      return pull.pipe(
        Effect.catchAll(Option.match({
          onNone: () => {
            done = true
            return Effect.succeed(Chunk.empty<ResultEvent>())
          },
          onSome: (error) => Effect.fail(error)
        })),
        Effect.flatMap((chunk) => {
          buffer = Chunk.toReadonlyArray(chunk)
          index = 0
          return next
        })
      )
    })

    const head: Array<FieldEvent> = []
    let contentPath: Option.Option<ReadonlyArray<string>> = Option.none()
    for (;;) {
      const event = yield* next
      if (event === undefined) break
      if (event._tag === "Field") head.push(event)
      else if (event._tag === "ContentStart") {
        contentPath = Option.some(event.path)
        break
      }
    }
    let inContent = Option.isSome(contentPath)
    const content: Stream.Stream<string, E | JsonRpcResultError, R> = Stream.repeatEffectOption(
      Effect.suspend(() => inContent ? next : Effect.succeed(undefined)).pipe(
        Effect.mapError(Option.some),
        Effect.flatMap((event) => {
          if (event !== undefined && event._tag === "ContentChunk") return Effect.succeed(event.chunk)
          inContent = false
          return Effect.fail(Option.none())
        })
      )
    )
    const rest: Effect.Effect<ReadonlyArray<FieldEvent>, E | JsonRpcResultError, R> = Effect.gen(function*() {
      const fields: Array<FieldEvent> = []
      for (;;) {
        const event = yield* next
        if (event === undefined) return fields
        if (event._tag === "Field") fields.push(event)
      }
    })
    return { head, contentPath, content, rest }
  })

// ---------------------------------------------------------------------------------------------
// The decoder: bytes → tokens → events
// ---------------------------------------------------------------------------------------------

/** Builds one JSON value from tokens, counting its size. */
class Assembler {
  private readonly stack: Array<{ readonly node: Array<JsonValue> | Record<string, JsonValue>; key: string | null }> = []
  private parts: Array<string> = []
  private size = 0
  value: JsonValue | undefined = undefined
  done = false

  constructor(private readonly max: number, private readonly path: ReadonlyArray<string>) {}

  consume(token: Token): void {
    // One per token, but the text of a string or number counts by its characters alone: how the
    // parser cut it into chunks (it depends on the pieces the reply came in) must not count.
    if (token.name !== "stringChunk" && token.name !== "numberChunk") this.size++
    switch (token.name) {
      case "startObject":
        this.open({})
        return
      case "startArray":
        this.open([])
        return
      case "endObject":
      case "endArray":
        this.close()
        return
      case "startKey":
      case "startString":
      case "startNumber":
        this.parts = []
        return
      case "stringChunk":
      case "numberChunk":
        this.size += token.value.length
        if (this.size > this.max) {
          throw new JsonRpcDecodeError({
            reason: "field_too_large",
            detail: `a field is larger than ${this.max} characters`,
            path: this.path
          })
        }
        this.parts.push(token.value)
        return
      case "endKey":
        this.top().key = this.parts.join("")
        return
      case "endString":
        this.add(this.parts.join(""))
        return
      case "endNumber":
        this.add(Number(this.parts.join("")))
        return
      case "nullValue":
        this.add(null)
        return
      case "trueValue":
        this.add(true)
        return
      case "falseValue":
        this.add(false)
        return
      default:
        return
    }
  }

  private top() {
    return this.stack[this.stack.length - 1]!
  }

  private open(node: Array<JsonValue> | Record<string, JsonValue>): void {
    this.add(node)
    this.stack.push({ node, key: null })
  }

  private close(): void {
    const frame = this.stack.pop()!
    if (this.stack.length === 0) {
      this.value = frame.node
      this.done = true
    }
  }

  private add(value: JsonValue): void {
    if (this.size > this.max) {
      throw new JsonRpcDecodeError({
        reason: "field_too_large",
        detail: `a field is larger than ${this.max} characters`,
        path: this.path
      })
    }
    const frame = this.stack[this.stack.length - 1]
    if (frame === undefined) {
      // A container's own value is final only at its end token (see `close`).
      if (typeof value !== "object" || value === null) {
        this.value = value
        this.done = true
      }
      return
    }
    if (Array.isArray(frame.node)) {
      frame.node.push(value)
    } else {
      // `__proto__` from the wire must stay data, never become the prototype.
      Object.defineProperty(frame.node, frame.key ?? "", { value, enumerable: true, writable: true, configurable: true })
    }
  }
}

/** What the next value in the reply is for. */
type Target =
  | { readonly kind: "root" }
  | { readonly kind: "envelope"; readonly key: string }
  | { readonly kind: "result"; readonly path: ReadonlyArray<string> }

/** An object the decoder walks through (rather than assembles). */
type Walk =
  | { readonly kind: "envelope" }
  | { readonly kind: "result"; readonly path: ReadonlyArray<string> }

/**
 * The decoder reads the body in pieces of at most this many bytes (64 KiB). A string of more than
 * 128 KiB is allocated by V8 in its large-object space, page by page: making one from bytes costs
 * about 60 times more than making two of half the size (≈ 0.7 s against 0.01 s per 100 MB, node
 * 20), and upstream chunks are often 128–256 KiB.
 */
const PIECE_BYTES = 64 * 1024

class ReplyDecoder {
  private readonly text = new Utf8Decoder()
  private readonly parse = jsonParser({ packKeys: false, packStrings: false, packNumbers: false })
  private readonly walks: Array<Walk> = []
  private target: Target | null = { kind: "root" }
  private keyParts: Array<string> = []
  private keySize = 0
  private assembler: Assembler | null = null
  private onAssembled: ((value: JsonValue) => void) | null = null
  private contentPath: ReadonlyArray<string> | null = null
  private contentParts: Array<string> = []
  private jsonrpc: JsonValue | undefined = undefined
  private id: string | number | null = null
  private sawResult = false
  private finished = false
  /** Where the events of the current `push`/`end` go (a field may complete in a later push). */
  private events: Array<ResultEvent> = []
  /** The last characters of the body, to tell a cut-off escape or literal from a wrong one. */
  private tail = ""
  /**
   * The content string is scanned here rather than by the parser (see `enterRaw`): the parser
   * then sits right after the string's closing quote, and gets the text after the real one.
   */
  private raw = false
  /** An escape cut by the end of the previous piece (`\\`, `\\u00`), in raw mode. */
  private rawPending = ""
  /** A high surrogate held back so that no content chunk ends inside a pair, in raw mode. */
  private rawSurrogate = ""
  /** Where {@link parsedBytes} builds a piece's JSON string literal (grown to the largest piece). */
  private scratch = Buffer.allocUnsafe(64 * 1024)

  constructor(private readonly contentTarget: ReadonlyArray<string>, private readonly max: number) {}

  push(input: Uint8Array, events: Array<ResultEvent>): void {
    // Pieces of at most PIECE_BYTES: every string made from one (and every content chunk) stays
    // under V8's large-object size (see PIECE_BYTES).
    if (input.length <= PIECE_BYTES) return this.pushPiece(input, events)
    for (let at = 0; at < input.length; at += PIECE_BYTES) {
      this.pushPiece(input.subarray(at, Math.min(input.length, at + PIECE_BYTES)), events)
    }
  }

  private pushPiece(input: Uint8Array, events: Array<ResultEvent>): void {
    let bytes = input
    if (this.raw && this.rawSurrogate === "" && this.text.idle()) {
      const used = this.parsedBytes(bytes, events)
      if (used > 0) {
        const tail = Buffer.from(bytes.buffer, bytes.byteOffset + Math.max(0, used - 16), Math.min(16, used)).toString("latin1")
        this.tail = (this.tail + tail).slice(-16)
      }
      if (used === bytes.length) {
        if (this.raw && this.contentParts.length > 0) this.flushContent(events)
        return
      }
      bytes = bytes.subarray(used)
    }
    const text = this.text.decode(bytes)
    if (text === undefined) {
      throw new JsonRpcDecodeError({ reason: "malformed", detail: "the body is not valid UTF-8" })
    }
    this.tail = text.length >= 16 ? text.slice(-16) : (this.tail + text).slice(-16)
    if (text.length > 0) this.feed(text, events, "malformed")
  }

  end(events: Array<ResultEvent>): void {
    if (!this.text.end()) {
      throw new JsonRpcDecodeError({ reason: "truncated", detail: "the body ends inside a UTF-8 sequence" })
    }
    if (this.raw) {
      throw new JsonRpcDecodeError({ reason: "truncated", detail: "the body ends inside the content string" })
    }
    this.feed(none, events, "truncated")
    if (!this.finished) throw new JsonRpcDecodeError({ reason: "truncated", detail: "the body ended early" })
    if (this.jsonrpc !== "2.0") {
      throw new JsonRpcDecodeError({ reason: "invalid_envelope", detail: "\"jsonrpc\" is not \"2.0\"" })
    }
    if (!this.sawResult) throw new JsonRpcDecodeError({ reason: "invalid_envelope", detail: "no \"result\" member" })
  }

  private feed(input: string | typeof none, events: Array<ResultEvent>, reason: JsonRpcDecodeReason): void {
    this.events = events
    if (this.raw && typeof input === "string") {
      const after = this.rawContent(input, events)
      if (after === undefined) {
        if (this.contentParts.length > 0) this.flushContent(events)
        return
      }
      if (after === "") return
      input = after
    }
    this.parseText(input, events, reason)
    // The content started and goes on past this piece: scan the rest of it here.
    if (this.contentPath !== null && typeof input === "string") this.enterRaw(events)
  }

  private parseText(input: string | typeof none, events: Array<ResultEvent>, reason: JsonRpcDecodeReason): void {
    let output: ReturnType<typeof this.parse>
    try {
      // stream-json's flushable stages take stream-chain's `none` as their end-of-input mark.
      output = this.parse(input as string)
    } catch (cause) {
      const detail = cause instanceof Error ? cause.message : "the body is not JSON"
      throw new JsonRpcDecodeError({
        reason: reason === "truncated" && !this.cutOff(detail) ? "malformed" : reason,
        detail,
        cause
      })
    }
    if (isMany(output)) {
      for (const token of getManyValues(output)) this.token(token, events)
    }
    if (this.contentParts.length > 0) this.flushContent(events)
  }

  /**
   * Takes the content string over from the parser, which walks it one token per 256 characters
   * and per escape (Drupal escapes every `<`, `>`, `&` and `/` of the HTML). Only when the parser
   * holds nothing back: the body so far must not end with a possible escape or a control
   * character. The parser is then told the string ended (a `"`), so that it expects what follows
   * the content; the text after the real closing quote goes to it.
   */
  private enterRaw(events: Array<ResultEvent>): void {
    const tail = this.tail.slice(-6)
    for (let i = 0; i < tail.length; i++) {
      const c = tail.charCodeAt(i)
      if (c === 92 || c < 32) return
    }
    const before = events.length
    this.parseText("\"", events, "malformed")
    const last = events[events.length - 1]
    if (this.contentPath !== null || last === undefined || last._tag !== "ContentEnd" || events.length > before + 2) {
      throw new JsonRpcDecodeError({ reason: "malformed", detail: "the content string could not be resumed" })
    }
    // The parser's own end of the content is dropped: the content goes on in raw mode.
    events.pop()
    const held = events.length > before ? events.pop()! : undefined
    if (held !== undefined && held._tag === "ContentChunk") this.rawSurrogate = held.chunk
    this.contentPath = last.path
    this.raw = true
  }

  /**
   * The content string decoded by `JSON.parse` (native: two to three times the byte loop's rate
   * on Drupal's escape-dense HTML), on the whole piece at once: up to the closing quote, or up to
   * the last complete escape (the cut one waits in `rawPending`). Only for ASCII bytes, and only
   * when `JSON.parse` takes the text: otherwise it takes nothing (returns 0) and the text path
   * ({@link rawContent}) decodes the piece, and refuses what is wrong. Returns how many bytes it took: the piece, or up to and including the closing quote.
   */
  private parsedBytes(bytes: Uint8Array, events: Array<ResultEvent>): number {
    const n = bytes.length
    const pending = this.rawPending
    // Backslashes at the end of `pending` escape what starts this piece.
    let pendingRun = 0
    while (pendingRun < pending.length && pending.charCodeAt(pending.length - 1 - pendingRun) === 92) pendingRun++
    /** Backslashes right before `at` (into `pending` when the run reaches the piece's start). */
    const runBefore = (at: number): number => {
      let k = at - 1
      while (k >= 0 && bytes[k] === 92) k--
      return at - 1 - k + (k < 0 ? pendingRun : 0)
    }
    // The closing quote: the first `"` after an even run of backslashes.
    let end = -1
    for (let from = 0; ;) {
      const q = bytes.indexOf(34, from)
      if (q < 0) break
      if (runBefore(q) % 2 === 0) {
        end = q
        break
      }
      from = q + 1
    }
    let cut = end >= 0 ? end : n
    if (end < 0) {
      // An escape cut by the end of the piece: a lone backslash, or `\u` with under four digits.
      if (runBefore(n) % 2 === 1) {
        cut = n - 1
      } else {
        for (let j = Math.max(0, n - 5); j < n - 1; j++) {
          if (bytes[j] === 92 && bytes[j + 1] === 117 && runBefore(j) % 2 === 0) {
            cut = j
            break
          }
        }
      }
    }
    const segment = Buffer.from(bytes.buffer, bytes.byteOffset, cut)
    if (!isAscii(segment)) return 0
    // The JSON string literal, quotes included, made in one flat string (one copy of the bytes).
    const length = pending.length + cut + 2
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(Math.max(length, this.scratch.length * 2))
    const literal = this.scratch
    literal[0] = 34
    literal.write(pending, 1, "latin1")
    literal.set(segment, 1 + pending.length)
    literal[length - 1] = 34
    let decoded: string
    try {
      decoded = JSON.parse(literal.toString("latin1", 0, length)) as string
    } catch {
      return 0
    }
    this.rawPending = ""
    if (end >= 0) {
      if (decoded.length > 0) this.contentParts.push(decoded)
      this.flushContent(events)
      events.push({ _tag: "ContentEnd", path: this.contentPath! })
      this.contentPath = null
      this.raw = false
      return end + 1
    }
    // No chunk ends inside a surrogate pair: a high surrogate at the end waits for the next piece.
    const last = decoded.charCodeAt(decoded.length - 1)
    if (last >= 0xd800 && last <= 0xdbff) {
      this.rawSurrogate = decoded.slice(-1)
      decoded = decoded.slice(0, -1)
    }
    if (decoded.length > 0) this.contentParts.push(decoded)
    if (cut < n) this.rawPending = Buffer.from(bytes.buffer, bytes.byteOffset + cut, n - cut).toString("latin1")
    return n
  }

  /**
   * Decodes a piece of the content string (JSON escapes, no control characters); at its closing
   * quote ends the content and returns the text after the quote. `undefined`: the content goes on.
   */
  private rawContent(input: string, events: Array<ResultEvent>): string | undefined {
    const text = this.rawPending === "" ? input : this.rawPending + input
    this.rawPending = ""
    const n = text.length
    // Pieces joined once: one flat string per chunk for the HTML tokenizer.
    const parts: Array<string> = []
    if (this.rawSurrogate !== "") parts.push(this.rawSurrogate)
    this.rawSurrogate = ""
    let start = 0
    let i = 0
    let end = -1
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c !== 92 && c !== 34 && c >= 32) {
        i++
        continue
      }
      if (i > start) parts.push(text.slice(start, i))
      if (c === 34) {
        end = i
        break
      }
      if (c < 32) throw new JsonRpcDecodeError({ reason: "malformed", detail: "a control character in the content string" })
      // A backslash: a short escape or \uXXXX, possibly cut by the end of the piece.
      if (i + 1 >= n) {
        this.rawPending = text.slice(i)
        start = i = n
        break
      }
      const e = text.charCodeAt(i + 1)
      if (e === 117) {
        if (i + 6 > n) {
          for (let k = i + 2; k < n; k++) if (hexValue(text.charCodeAt(k)) < 0) throw badEscape()
          this.rawPending = text.slice(i)
          start = i = n
          break
        }
        const h1 = hexValue(text.charCodeAt(i + 2))
        const h2 = hexValue(text.charCodeAt(i + 3))
        const h3 = hexValue(text.charCodeAt(i + 4))
        const h4 = hexValue(text.charCodeAt(i + 5))
        if ((h1 | h2 | h3 | h4) < 0) throw badEscape()
        const unit = (h1 << 12) | (h2 << 8) | (h3 << 4) | h4
        parts.push(unit < 128 ? ASCII_CHARS[unit]! : String.fromCharCode(unit))
        i += 6
      } else {
        const decoded = SHORT_ESCAPES[e]
        if (decoded === undefined) throw badEscape()
        parts.push(decoded)
        i += 2
      }
      start = i
    }
    if (end < 0 && start < n) parts.push(text.slice(start))
    let out = parts.length === 1 ? parts[0]! : parts.join("")
    if (end < 0) {
      const last = out.charCodeAt(out.length - 1)
      if (last >= 0xd800 && last <= 0xdbff) {
        this.rawSurrogate = out.slice(-1)
        out = out.slice(0, -1)
      }
    }
    if (out.length > 0) this.contentParts.push(out)
    if (end < 0) return undefined
    this.flushContent(events)
    events.push({ _tag: "ContentEnd", path: this.contentPath! })
    this.contentPath = null
    this.raw = false
    return text.slice(end + 1)
  }

  /**
   * At the end of the body the parser also reports syntax errors it had to defer (it waits for
   * up to 6 characters after a `\\` and 16 after a literal's first letter): those are malformed
   * unless the body stops inside a valid escape or literal.
   */
  private cutOff(detail: string): boolean {
    if (detail.includes("escaped characters")) return /\\(u[0-9a-fA-F]{0,3})?$/.test(this.tail)
    if (detail === "Parser cannot parse input: expected a value") {
      return /(?:^|[^A-Za-z])(?:t|tr|tru|f|fa|fal|fals|n|nu|nul)$/.test(this.tail)
    }
    return true
  }

  private flushContent(events: Array<ResultEvent>): void {
    const parts = this.contentParts
    this.contentParts = []
    const chunk = parts.length === 1 ? parts[0]! : parts.join("")
    if (chunk.length > 0) events.push({ _tag: "ContentChunk", chunk })
  }

  private token(token: Token, events: Array<ResultEvent>): void {
    if (this.assembler !== null) {
      this.assembler.consume(token)
      if (this.assembler.done) {
        const value = this.assembler.value as JsonValue
        const done = this.onAssembled!
        this.assembler = null
        this.onAssembled = null
        done(value)
      }
      return
    }
    if (this.contentPath !== null) {
      if (token.name === "stringChunk") {
        this.contentParts.push(token.value)
      } else if (token.name === "endString") {
        this.flushContent(events)
        events.push({ _tag: "ContentEnd", path: this.contentPath })
        this.contentPath = null
      }
      return
    }
    const target = this.target
    if (target !== null) {
      this.target = null
      this.startValue(target, token, events)
      return
    }
    // Inside a walked object, between members.
    switch (token.name) {
      case "startKey":
        this.keyParts = []
        this.keySize = 0
        return
      case "stringChunk":
        this.keySize += token.value.length
        if (this.keySize > this.max) {
          throw new JsonRpcDecodeError({ reason: "field_too_large", detail: `a key is larger than ${this.max} characters` })
        }
        this.keyParts.push(token.value)
        return
      case "endKey": {
        const key = this.keyParts.join("")
        const walk = this.walks[this.walks.length - 1]!
        this.target = walk.kind === "envelope" ? { kind: "envelope", key } : { kind: "result", path: [...walk.path, key] }
        return
      }
      case "endObject":
        this.walks.pop()
        if (this.walks.length === 0) this.finished = true
        return
      default:
        return
    }
  }

  private startValue(target: Target, token: Token, events: Array<ResultEvent>): void {
    switch (target.kind) {
      case "root":
        if (token.name !== "startObject") {
          throw new JsonRpcDecodeError({
            reason: "invalid_envelope",
            detail: token.name === "startArray" ? "a batch reply (array) is not supported here" : "the reply is not an object"
          })
        }
        this.walks.push({ kind: "envelope" })
        return
      case "envelope":
        switch (target.key) {
          case "result":
            this.sawResult = true
            this.startValue({ kind: "result", path: [] }, token, events)
            return
          case "error":
            this.assemble(token, [], (value) => {
              throw this.replyError(value)
            })
            return
          case "jsonrpc":
            this.assemble(token, [], (value) => {
              this.jsonrpc = value
            })
            return
          case "id":
            this.assemble(token, [], (value) => {
              if (typeof value === "string" || typeof value === "number") this.id = value
            })
            return
          default:
            this.assemble(token, [], () => {})
            return
        }
      case "result": {
        const path = target.path
        const onContentPath = path.length <= this.contentTarget.length && path.every((k, i) => k === this.contentTarget[i])
        if (onContentPath && path.length === this.contentTarget.length && token.name === "startString") {
          this.contentPath = path
          events.push({ _tag: "ContentStart", path })
          return
        }
        if (onContentPath && path.length < this.contentTarget.length && token.name === "startObject") {
          this.walks.push({ kind: "result", path })
          return
        }
        this.assemble(token, path, (value) => {
          this.events.push({ _tag: "Field", path, value })
        })
        return
      }
    }
  }

  private assemble(token: Token, path: ReadonlyArray<string>, onDone: (value: JsonValue) => void): void {
    const assembler = new Assembler(this.max, path)
    assembler.consume(token)
    if (assembler.done) {
      onDone(assembler.value as JsonValue)
      return
    }
    this.assembler = assembler
    this.onAssembled = onDone
  }

  private replyError(value: JsonValue): JsonRpcReplyError | JsonRpcDecodeError {
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      const object = value as { readonly [key: string]: JsonValue }
      const code = object["code"]
      const message = object["message"]
      if (typeof code === "number" && Number.isInteger(code) && typeof message === "string") {
        return new JsonRpcReplyError({ code, message, data: object["data"] ?? null, id: this.id })
      }
    }
    return new JsonRpcDecodeError({ reason: "invalid_envelope", detail: "the \"error\" member is not a JSON-RPC error object" })
  }
}

const badEscape = () => new JsonRpcDecodeError({ reason: "malformed", detail: "Parser cannot parse input: escaped characters" })

const ASCII_CHARS = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c))

const hexValue = (c: number): number =>
  c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1

/** JSON's short escapes by the code of the character after the backslash. */
const SHORT_ESCAPES: Array<string | undefined> = []
for (const [c, v] of [["b", "\b"], ["f", "\f"], ["n", "\n"], ["r", "\r"], ["t", "\t"], ["\"", "\""], ["\\", "\\"], ["/", "/"]]) {
  SHORT_ESCAPES[c!.charCodeAt(0)] = v
}

/**
 * Streaming UTF-8 → UTF-16, strict: a sequence cut by the end of a piece waits for the next one;
 * invalid bytes are refused. Validation (`isUtf8`) and decoding (`Buffer#toString`) run natively,
 * several times faster than a fatal streaming `TextDecoder` on large bodies.
 */
class Utf8Decoder {
  /** Bytes of a sequence cut by the end of the previous piece (at most 3). */
  private held: Uint8Array | undefined = undefined
  private first = true

  /** The text of `bytes` (without a trailing cut sequence); `undefined` when they are not UTF-8. */
  decode(input: Uint8Array): string | undefined {
    let bytes = input
    if (this.held !== undefined) {
      const joined = new Uint8Array(this.held.length + input.length)
      joined.set(this.held)
      joined.set(input, this.held.length)
      bytes = joined
      this.held = undefined
    }
    const end = completeLength(bytes)
    if (end < bytes.length) this.held = bytes.slice(end)
    const body = end === bytes.length ? bytes : bytes.subarray(0, end)
    if (!isUtf8(body)) return undefined
    const buffer = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    // Drupal's JSON is ASCII (it escapes the rest): a one-byte copy, no UTF-8 decoding.
    const text = buffer.toString(isAscii(buffer) ? "latin1" : "utf8")
    if (!this.first || text.length === 0) return text
    this.first = false
    // A byte order mark is not part of the text (as `TextDecoder` has it).
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  }

  /** Whether no bytes of a cut sequence are held. */
  idle(): boolean {
    return this.held === undefined
  }

  /** Whether the body ended between sequences. */
  end(): boolean {
    return this.held === undefined
  }
}

/** Length of `bytes` without a trailing multi-byte sequence that is not complete yet. */
const completeLength = (bytes: Uint8Array): number => {
  const n = bytes.length
  for (let k = 1; k <= 3 && k <= n; k++) {
    const b = bytes[n - k]!
    if ((b & 0xc0) === 0x80) continue
    // A lead byte: cut when its sequence needs more than the k bytes present.
    const need = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xc0 && b < 0xe0 ? 2 : 1
    return need > k ? n - k : n
  }
  return n
}
