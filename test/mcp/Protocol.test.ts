/**
 * `/mcp` on the wire: the transport rules both revisions share and those of each, driven with
 * plain HTTP so every header and status is visible.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"

const MODERN = "2026-07-28"
const envelope = { "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {} }

type Post = (body: unknown, headers?: Record<string, string>) => Promise<{ status: number; headers: Headers; body: any }>

const poster = (base: string): Post => async (body, headers = {}) => {
  const res = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === "" ? undefined : JSON.parse(text) }
}

/** A 2026-07-28 request with its standard headers. */
const modern = (post: Post, id: unknown, method: string, params: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  post(
    { jsonrpc: "2.0", id, method, params: { ...params, _meta: envelope } },
    {
      "mcp-protocol-version": MODERN,
      "mcp-method": method,
      ...(typeof params["name"] === "string" ? { "mcp-name": params["name"] } : {}),
      ...headers
    }
  )

describe("/mcp transport", () => {
  it.scopedLive("both revisions: string and numeric ids, ping, 405 for GET, 202 for notifications, batches and bad envelopes refused", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway()
      const post = poster(base)
      const init = yield* Effect.promise(() =>
        post({ jsonrpc: "2.0", id: "init-1", method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } } })
      )
      assert.strictEqual(init.status, 200)
      assert.strictEqual(init.body.id, "init-1")
      assert.strictEqual(init.body.result.protocolVersion, "2025-06-18")
      assert.deepStrictEqual(init.body.result.capabilities, { tools: { listChanged: false } })
      const session = init.headers.get("mcp-session-id")
      assert.isString(session)
      const initialized = yield* Effect.promise(() =>
        post({ jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": session!, "mcp-protocol-version": "2025-06-18" })
      )
      assert.strictEqual(initialized.status, 202)
      // Any instance accepts any session id: nothing is kept per session.
      const elsewhere = yield* Effect.promise(() =>
        post({ jsonrpc: "2.0", id: 7, method: "ping" }, { "mcp-session-id": "issued-by-another-instance", "mcp-protocol-version": "2025-11-25" })
      )
      assert.deepStrictEqual(elsewhere.body, { jsonrpc: "2.0", id: 7, result: {} })
      const stringId = yield* Effect.promise(() => modern(post, "abc", "ping"))
      assert.deepStrictEqual(stringId.body, { jsonrpc: "2.0", id: "abc", result: { resultType: "complete" } })
      const numericId = yield* Effect.promise(() => modern(post, 42, "tools/list"))
      assert.strictEqual(numericId.body.id, 42)
      const get = yield* Effect.promise(() => fetch(`${base}/mcp`, { headers: { accept: "text/event-stream" } }))
      assert.strictEqual(get.status, 405)
      const batch = yield* Effect.promise(() => post([{ jsonrpc: "2.0", id: 1, method: "ping" }]))
      assert.deepStrictEqual([batch.status, batch.body.error.code], [400, -32600])
      const unparsable = yield* Effect.promise(() => post("{nope"))
      assert.deepStrictEqual([unparsable.status, unparsable.body.error.code], [400, -32700])
      const unknownMethod = yield* Effect.promise(() => post({ jsonrpc: "2.0", id: 3, method: "resources/list" }))
      assert.strictEqual(unknownMethod.body.error.code, -32601)
      const badVersion = yield* Effect.promise(() =>
        post({ jsonrpc: "2.0", id: 4, method: "ping" }, { "mcp-protocol-version": "1999-01-01" })
      )
      assert.strictEqual(badVersion.status, 400)
    }))

  it.scopedLive("2026-07-28: server/discover; headers checked against the body; unsupported versions named; cursor pages", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway({ MCP_PAGE_SIZE: "2" })
      const post = poster(base)
      const discover = yield* Effect.promise(() => modern(post, 1, "server/discover"))
      assert.strictEqual(discover.status, 200)
      assert.include(discover.body.result.supportedVersions, MODERN)
      assert.include(discover.body.result.supportedVersions, "2025-11-25")
      assert.deepStrictEqual(discover.body.result.capabilities, { tools: { listChanged: false } })
      const methodMismatch = yield* Effect.promise(() => modern(post, 2, "tools/list", {}, { "mcp-method": "ping" }))
      assert.deepStrictEqual([methodMismatch.status, methodMismatch.body.error.code], [400, -32020])
      const nameMismatch = yield* Effect.promise(() =>
        modern(post, 3, "tools/call", { name: "content.search", arguments: { query: "x" } }, { "mcp-name": "content.get_tutorial" })
      )
      assert.deepStrictEqual([nameMismatch.status, nameMismatch.body.error.code], [400, -32020])
      const noHeader = yield* Effect.promise(() => post({ jsonrpc: "2.0", id: 4, method: "ping", params: { _meta: envelope } }))
      assert.deepStrictEqual([noHeader.status, noHeader.body.error.code], [400, -32020])
      const noEnvelope = yield* Effect.promise(() =>
        post({ jsonrpc: "2.0", id: 5, method: "ping" }, { "mcp-protocol-version": MODERN, "mcp-method": "ping" })
      )
      assert.deepStrictEqual([noEnvelope.status, noEnvelope.body.error.code], [400, -32602])
      const future = yield* Effect.promise(() =>
        post(
          { jsonrpc: "2.0", id: 6, method: "ping", params: { _meta: { ...envelope, "io.modelcontextprotocol/protocolVersion": "2099-01-01" } } },
          { "mcp-protocol-version": "2099-01-01", "mcp-method": "ping" }
        )
      )
      assert.deepStrictEqual([future.status, future.body.error.code], [400, -32022])
      assert.include(future.body.error.data.supported, MODERN)
      const encodedName = yield* Effect.promise(() =>
        modern(post, 7, "tools/call", { name: "content.search", arguments: { query: "views" } }, {
          "mcp-name": `=?base64?${Buffer.from("content.search").toString("base64")}?=`
        })
      )
      assert.strictEqual(encodedName.status, 200)
      assert.strictEqual(encodedName.body.result.resultType, "complete")
      const pages = yield* Effect.promise(() => modern(post, 8, "tools/list", {}))
      const stale = yield* Effect.promise(() => modern(post, 9, "tools/list", { cursor: "bm90LWEtY3Vyc29y" }))
      assert.strictEqual(stale.body.error.code, -32602)
      assert.strictEqual(pages.body.result.tools.length, 2)
      const next = yield* Effect.promise(() => modern(post, 10, "tools/list", { cursor: pages.body.result.nextCursor }))
      assert.strictEqual(next.body.result.resultType, "complete")
      assert.strictEqual(next.body.result.cacheScope, "public")
      assert.notDeepEqual(next.body.result.tools, pages.body.result.tools)
    }))

  it.scopedLive("Origin: loopback and allow-listed origins pass, others get 403 (DNS rebinding)", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway({ MCP_ALLOWED_ORIGINS: "https://app.example.com" })
      const post = poster(base)
      const ping = { jsonrpc: "2.0", id: 1, method: "ping" }
      const evil = yield* Effect.promise(() => post(ping, { origin: "http://evil.example.com" }))
      assert.strictEqual(evil.status, 403)
      const local = yield* Effect.promise(() => post(ping, { origin: "http://localhost:3000" }))
      assert.strictEqual(local.status, 200)
      const listed = yield* Effect.promise(() => post(ping, { origin: "https://app.example.com" }))
      assert.strictEqual(listed.status, 200)
      const none = yield* Effect.promise(() => post(ping))
      assert.strictEqual(none.status, 200)
    }))

  it.scopedLive("a method added upstream is listed by the next tools/list after discovery sees it", () =>
    Effect.gen(function*() {
      const { base, sim } = yield* startGateway({ DISCOVERY_REFRESH_MS: "200" })
      const post = poster(base)
      const names = () =>
        Effect.promise(() => modern(post, 1, "tools/list")).pipe(
          Effect.map((reply) => (reply.body.result.tools as Array<{ name: string }>).map((t) => t.name))
        )
      assert.notInclude(yield* names(), "content.featured")
      yield* sim.addMethod({ id: "content.featured", usage: "Featured tutorials of the week.", result: { results: [] } })
      yield* Effect.sleep("700 millis")
      assert.include(yield* names(), "content.featured")
      const called = yield* Effect.promise(() => modern(post, 2, "tools/call", { name: "content.featured", arguments: {} }))
      assert.deepStrictEqual(JSON.parse(called.body.result.content[0].text), { results: [] })
      yield* sim.removeMethod("content.featured")
      yield* Effect.sleep("700 millis")
      assert.notInclude(yield* names(), "content.featured")
    }))
})
