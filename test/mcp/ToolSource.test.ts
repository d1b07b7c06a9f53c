/**
 * The `jsonrpc_mcp` tool source: the simulator's `GET /mcp/tools/list` per user, and `/mcp`
 * listing and calling from it when `MCP_TOOLS_SOURCE=jsonrpc_mcp`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { startGateway } from "../http/fixtures.js"
import { legacyClient } from "./clients.js"

const names = (tools: Array<{ name: string }>) => tools.map((t) => t.name)

describe("jsonrpc_mcp tool source", () => {
  it.scopedLive("the simulator lists the caller's marked methods as MCP tools, in pages", () =>
    Effect.gen(function*() {
      const { sim } = yield* startGateway()
      const get = (path: string, token?: string) =>
        Effect.promise(() =>
          fetch(sim.url + path, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json() as Promise<any>)
        )
      const anonymous = yield* get("/mcp/tools/list")
      const admin = yield* get("/mcp/tools/list", "demo-admin-token")
      assert.include(names(anonymous.tools), "content.search")
      assert.notInclude(names(anonymous.tools), "user.access_context", "the access probe is not a tool")
      assert.notInclude(names(anonymous.tools), "cache.rebuild")
      assert.include(names(admin.tools), "cache.rebuild")
      const search = anonymous.tools.find((t: { name: string }) => t.name === "content.search")
      assert.strictEqual(search.inputSchema.type, "object")
      assert.include(search.inputSchema.required, "query")
      for (let i = 0; i < 60; i++) {
        yield* sim.addMethod({ id: `bulk.m${String(i).padStart(2, "0")}`, usage: "Bulk.", result: {} })
      }
      const first = yield* get("/mcp/tools/list")
      assert.isString(first.nextCursor)
      const second = yield* get(`/mcp/tools/list?cursor=${first.nextCursor}`)
      assert.isAbove(second.tools.length, 0)
      assert.notInclude(names(second.tools), first.tools[0].name)
    }))

  it.scopedLive("/mcp lists and calls from the site's jsonrpc_mcp list, per caller", () =>
    Effect.gen(function*() {
      const { base } = yield* startGateway({ MCP_TOOLS_SOURCE: "jsonrpc_mcp" })
      const anonymous = yield* legacyClient(base)
      const admin = yield* legacyClient(base, "demo-admin-token")
      const anonymousTools = names((yield* Effect.promise(() => anonymous.listTools())).tools)
      const adminTools = names((yield* Effect.promise(() => admin.listTools())).tools)
      assert.include(anonymousTools, "content.search")
      assert.notInclude(anonymousTools, "user.access_context", "only what jsonrpc_mcp lists")
      assert.include(adminTools, "cache.rebuild")
      assert.notInclude(anonymousTools, "cache.rebuild")
      const found: any = yield* Effect.promise(() => anonymous.callTool({ name: "content.search", arguments: { query: "views" } }))
      assert.notStrictEqual(found.isError, true)
      assert.isArray(found.structuredContent.results)
      const notListed = yield* Effect.promise(() =>
        anonymous.callTool({ name: "user.access_context", arguments: {} }).then(() => undefined, (e: { code?: number }) => e)
      )
      assert.strictEqual(notListed?.code, -32602)
    }))
})
