/**
 * The MCP fast path (`src/mcp/McpFastPath.ts`) on the wire: a repeated `tools/call
 * content.search` is answered from memory with the bytes and headers the Effect path answered the
 * first time, for both revisions and for anonymous and signed-in callers; every request that
 * fails a check, or that the Effect path has not validated, goes to the Effect path; an entry of
 * one partition never answers another. Which path answered is read from the fast path's counter
 * on `/metrics`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"

const MODERN = "2026-07-28"
const envelope = { "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {} }

interface Answer {
  readonly status: number
  readonly headers: Record<string, string>
  readonly text: string
}

/** Headers that differ between any two answers (per request or per connection). */
const VARYING = new Set(["date", "x-request-id", "keep-alive", "connection"])

const post = async (base: string, body: unknown, headers: Record<string, string>): Promise<Answer> => {
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  const text = await res.text()
  const kept: Record<string, string> = {}
  res.headers.forEach((value, name) => {
    if (!VARYING.has(name)) kept[name] = value
  })
  return { status: res.status, headers: kept, text }
}

type Revision = "modern" | "legacy" | "unversioned"

/** A `tools/call` request of a revision, as each official client sends it. */
const call = (
  base: string,
  revision: Revision,
  id: string | number,
  args: Record<string, unknown>,
  options: { readonly token?: string; readonly name?: string; readonly headers?: Record<string, string> } = {}
) => {
  const name = options.name ?? "content.search"
  const params = { name, arguments: args }
  const auth: Record<string, string> = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }
  const headers: Record<string, string> = revision === "modern"
    ? { "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": name }
    : revision === "legacy"
    ? { "mcp-protocol-version": "2025-11-25", "mcp-session-id": "spec-session" }
    : {}
  return post(
    base,
    { jsonrpc: "2.0", id, method: "tools/call", params: revision === "modern" ? { ...params, _meta: envelope } : params },
    { ...headers, ...auth, ...options.headers }
  )
}

/** Calls the fast path has answered so far (the counter is process-wide: read deltas). */
const fastCalls = (base: string) =>
  Effect.promise(async () => {
    const text = await (await fetch(`${base}/metrics`)).text()
    const line = text.split("\n").find((l) => l.startsWith("accelerator_mcp_fast_path_calls_total"))
    return line === undefined ? 0 : Number(line.split(" ").at(-1))
  })

/** Runs `request` and returns its answer and how many calls the fast path answered meanwhile. */
const counted = (base: string, request: () => Promise<Answer>) =>
  Effect.gen(function*() {
    const before = yield* fastCalls(base)
    const answer = yield* Effect.promise(request)
    return { answer, fast: (yield* fastCalls(base)) - before }
  })

describe("/mcp fast path", () => {
  it.scopedLive("a repeated content.search is answered from memory, byte for byte as the Effect path answered it", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway()
      const cases: ReadonlyArray<readonly [Revision, string | undefined, string | number]> = [
        ["modern", undefined, "m-anon"],
        ["modern", "demo-subscriber-token", 11],
        ["legacy", undefined, 12],
        ["legacy", "demo-free-token", "l-free"],
        ["unversioned", "demo-subscriber-token", 13]
      ]
      for (const [revision, token, id] of cases) {
        const args = { query: `drupal ${revision}`, page: { limit: 5 } }
        const first = yield* counted(base, () => call(base, revision, id, args, token === undefined ? {} : { token }))
        const second = yield* counted(base, () => call(base, revision, id, args, token === undefined ? {} : { token }))
        assert.strictEqual(first.fast, 0, `${revision} ${token}: the first call is the Effect path's`)
        assert.strictEqual(second.fast, 1, `${revision} ${token}: the second call is the fast path's`)
        assert.strictEqual(first.answer.status, 200)
        assert.deepStrictEqual(second.answer, first.answer, `${revision} ${token}: same status, headers and bytes`)
        const reply = JSON.parse(second.answer.text)
        assert.strictEqual(reply.id, id)
        assert.isArray(reply.result.structuredContent.results)
        assert.strictEqual(reply.result.resultType, revision === "modern" ? "complete" : undefined)
      }
      // Another id is answered with that id.
      const other = yield* counted(base, () => call(base, "legacy", "another-id", { query: "drupal legacy", page: { limit: 5 } }))
      assert.strictEqual(other.fast, 1)
      assert.strictEqual(JSON.parse(other.answer.text).id, "another-id")
    }))

  it.scopedLive("a repeated content.get_tutorial (Markdown, a piece by cursor, without content) is answered from memory alike; HTML is not", () =>
    Effect.gen(function*() {
      // A small result bound, so that documents come in pieces.
      const { base } = yield* startGateway({ MCP_MAX_RESULT_BYTES: "8192" })
      // Subscribers read every item; item 3 is a subscriber item, denied to anonymous callers.
      const cases: ReadonlyArray<readonly [Revision, string | undefined, Record<string, unknown>]> = [
        ["modern", "demo-subscriber-token", { id: 3 }],
        ["legacy", "demo-subscriber-token", { id: 4 }],
        ["modern", "demo-subscriber-token", { id: 5, include_content: false }],
        ["legacy", undefined, { id: 3 }]
      ]
      for (const [revision, token, args] of cases) {
        const options = token === undefined ? {} : { token }
        // The whole document read once through the Markdown route caches it (a read of one piece
        // leaves the rest of the stream unread, and so uncached), then a first call, then the same call again.
        yield* Effect.promise(() => fetch(`${base}/content/${args["id"]}/markdown`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }).then((r) => r.text()))
        yield* Effect.promise(() => call(base, revision, 1, args, { ...options, name: "content.get_tutorial" }))
        const first = yield* counted(base, () => call(base, revision, 2, args, { ...options, name: "content.get_tutorial" }))
        const second = yield* counted(base, () => call(base, revision, 2, args, { ...options, name: "content.get_tutorial" }))
        assert.strictEqual(second.fast, 1, `${revision} ${JSON.stringify(args)}: the repeat is the fast path's`)
        assert.deepStrictEqual(second.answer, first.answer)
        const result = JSON.parse(second.answer.text).result
        if (token === undefined) {
          assert.deepStrictEqual(result, { content: [{ type: "text", text: "forbidden: Access Denied" }], isError: true })
          continue
        }
        assert.isUndefined(result.isError)
        assert.strictEqual(result.structuredContent.id, args["id"])
        if (args["include_content"] === false) continue
        // The next piece by its cursor: the Effect path first, then the fast path, alike.
        const next = result.structuredContent.next_cursor
        assert.isString(next, "the document comes in pieces")
        const cursorArgs = { ...args, cursor: next }
        const pieceFirst = yield* counted(base, () => call(base, revision, 3, cursorArgs, { ...options, name: "content.get_tutorial" }))
        const pieceSecond = yield* counted(base, () => call(base, revision, 3, cursorArgs, { ...options, name: "content.get_tutorial" }))
        assert.deepStrictEqual([pieceFirst.fast, pieceSecond.fast], [0, 1])
        assert.deepStrictEqual(pieceSecond.answer, pieceFirst.answer)
        assert.strictEqual(JSON.parse(pieceSecond.answer.text).result.structuredContent.cursor, next)
      }
      const html = { id: 6, format: "html" }
      yield* Effect.promise(() => call(base, "modern", 1, html, { name: "content.get_tutorial" }))
      const again = yield* counted(base, () => call(base, "modern", 1, html, { name: "content.get_tutorial" }))
      assert.strictEqual(again.fast, 0, "HTML pieces are the Effect path's")
      assert.strictEqual(JSON.parse(again.answer.text).result.structuredContent.format, "html")
    }))

  it.scopedLive("every doubt goes to the Effect path: failed checks, unvalidated arguments, other tools, notifications", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway({ MCP_ALLOWED_ORIGINS: "https://app.example.com" })
      const args = { query: "drupal views", page: { limit: 3 } }
      yield* Effect.promise(() => call(base, "modern", 1, args))
      const hit = yield* counted(base, () => call(base, "modern", 2, args))
      assert.strictEqual(hit.fast, 1)

      const doubts: ReadonlyArray<readonly [string, () => Promise<Answer>, (answer: Answer) => void]> = [
        ["Mcp-Name mismatch", () => call(base, "modern", 3, args, { headers: { "mcp-name": "content.get_tutorial" } }), (a) => {
          assert.deepStrictEqual([a.status, JSON.parse(a.text).error.code], [400, -32020])
        }],
        ["Mcp-Method mismatch", () => call(base, "modern", 4, args, { headers: { "mcp-method": "tools/list" } }), (a) => {
          assert.deepStrictEqual([a.status, JSON.parse(a.text).error.code], [400, -32020])
        }],
        ["no MCP-Protocol-Version", () =>
          post(base, { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "content.search", arguments: args, _meta: envelope } }, {
            "mcp-method": "tools/call",
            "mcp-name": "content.search"
          }), (a) => {
          assert.deepStrictEqual([a.status, JSON.parse(a.text).error.code], [400, -32020])
        }],
        ["unsupported legacy version", () => call(base, "legacy", 6, args, { headers: { "mcp-protocol-version": "1999-01-01" } }), (a) => {
          assert.strictEqual(a.status, 400)
        }],
        ["malformed session id", () => call(base, "legacy", 7, args, { headers: { "mcp-session-id": "bad id" } }), (a) => {
          assert.deepStrictEqual([a.status, JSON.parse(a.text).error.code], [400, -32000])
        }],
        ["forbidden origin", () => call(base, "modern", 8, args, { headers: { origin: "https://evil.example.com" } }), (a) => {
          assert.strictEqual(a.status, 403)
        }],
        ["wrong content type", () => call(base, "modern", 9, args, { headers: { "content-type": "text/plain" } }), (a) => {
          assert.strictEqual(a.status, 415)
        }],
        ["notification", () =>
          post(base, { jsonrpc: "2.0", method: "tools/call", params: { name: "content.search", arguments: args, _meta: envelope } }, {
            "mcp-protocol-version": MODERN,
            "mcp-method": "tools/call",
            "mcp-name": "content.search"
          }), (a) => {
          assert.strictEqual(a.status, 202)
        }],
        ["invalid arguments", () => call(base, "modern", 10, { query: "drupal views", page: { limit: -1 } }), (a) => {
          assert.isTrue(JSON.parse(a.text).result.isError)
        }],
        ["unknown tool", () => call(base, "modern", 11, args, { name: "content.nope" }), (a) => {
          assert.strictEqual(JSON.parse(a.text).error.code, -32602)
        }],
        ["arguments not validated yet (another key order)", () => call(base, "modern", 12, { page: { limit: 3 }, query: "drupal views" }), (a) => {
          assert.deepStrictEqual(JSON.parse(a.text).result, JSON.parse(hit.answer.text).result)
        }],
        ["an unknown token", () => call(base, "modern", 13, args, { token: "no-such-token" }), (a) => {
          assert.notStrictEqual(a.status, 200, "refused, not served from another partition")
        }],
        ["a body over the read-ahead bound (read by the app)", () => call(base, "modern", 15, { ...args, padding: "x".repeat(20_000) }), (a) => {
          assert.deepStrictEqual(JSON.parse(a.text).result.structuredContent, JSON.parse(hit.answer.text).result.structuredContent)
        }]
      ]
      for (const [label, request, check] of doubts) {
        const { answer, fast } = yield* counted(base, request)
        assert.strictEqual(fast, 0, `${label}: not the fast path`)
        check(answer)
      }
      // Validated now by the Effect path, the other key order is a fast hit too.
      const reordered = yield* counted(base, () => call(base, "modern", 14, { page: { limit: 3 }, query: "drupal views" }))
      assert.strictEqual(reordered.fast, 1)
    }))

  it.scopedLive("an entry of one partition never answers another", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway()
      // Subscribers see subscriber items that anonymous callers do not: the answers differ.
      const args = { query: "drupal", page: { limit: 50 } }
      yield* Effect.promise(() => call(base, "legacy", 1, args))
      const anonymous = yield* counted(base, () => call(base, "legacy", 1, args))
      assert.strictEqual(anonymous.fast, 1)
      const subscriberFirst = yield* counted(base, () => call(base, "legacy", 1, args, { token: "demo-subscriber-token" }))
      assert.strictEqual(subscriberFirst.fast, 0, "a new partition's first call is a miss")
      const subscriber = yield* counted(base, () => call(base, "legacy", 1, args, { token: "demo-subscriber-token" }))
      assert.strictEqual(subscriber.fast, 1)
      assert.strictEqual(subscriber.answer.text, subscriberFirst.answer.text)
      assert.notStrictEqual(subscriber.answer.text, anonymous.answer.text)
      const again = yield* counted(base, () => call(base, "legacy", 1, args))
      assert.strictEqual(again.answer.text, anonymous.answer.text)
    }))
})
