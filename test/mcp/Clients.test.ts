/**
 * `/mcp` driven by both official clients, against the whole gateway and the simulator: the same
 * acceptance specs for the legacy handshake (`@modelcontextprotocol/sdk` 1.x) and the stateless
 * 2026-07-28 revision (`@modelcontextprotocol/client` 2.x).
 */
import { assert, describe, it } from "@effect/vitest"
import AjvDraft04 from "ajv-draft-04"
import { Effect } from "effect"
import { searchOutputSchema, tutorialOutputSchema } from "../../src/mcp/Catalog.js"
import { startGateway } from "../http/fixtures.js"
import { legacyClient, modernClient } from "./clients.js"

type AnyClient = {
  listTools: (params?: { cursor?: string }) => Promise<{ tools: Array<{ name: string; outputSchema?: unknown }>; nextCursor?: string; [k: string]: unknown }>
  callTool: (params: { name: string; arguments?: Record<string, unknown> }) => Promise<any>
}

const clients = {
  legacy: (base: string, token?: string) => Effect.map(legacyClient(base, token), (c) => c as unknown as AnyClient),
  modern: (base: string, token?: string) => Effect.map(modernClient(base, token), (c) => c as unknown as AnyClient)
} as const

const ajv = new AjvDraft04.default({ strict: false })
const validSearch = ajv.compile(searchOutputSchema)
const validTutorial = ajv.compile(tutorialOutputSchema)

/** Every page of the caller's tool list, following `nextCursor`. */
const allTools = (client: AnyClient) =>
  Effect.promise(async () => {
    const names: Array<string> = []
    let cursor: string | undefined = undefined
    let pages = 0
    const first = await client.listTools()
    for (let page = first;;) {
      pages++
      names.push(...page.tools.map((t) => t.name))
      if (page.nextCursor === undefined || pages > 50) break
      cursor = page.nextCursor
      page = await client.listTools({ cursor })
    }
    return { names, pages, first }
  })

const errorOf = (promise: () => Promise<unknown>) =>
  Effect.promise(() => promise().then(() => undefined, (error: { code?: number; message?: string }) => error))

for (const kind of ["legacy", "modern"] as const) {
  const connect = clients[kind]
  describe(`/mcp with the ${kind === "legacy" ? "1.x client (2025-11-25)" : "2.x client (2026-07-28)"}`, () => {
    it.scopedLive("lists the caller's tools, page by page: anonymous and admin get different lists", () =>
      Effect.gen(function*() {
        const { base } = yield* startGateway({ MCP_PAGE_SIZE: "2" })
        const anonymous = yield* allTools(yield* connect(base))
        const admin = yield* allTools(yield* connect(base, "demo-admin-token"))
        assert.include(anonymous.names, "content.search")
        assert.include(anonymous.names, "content.get_tutorial")
        assert.notInclude(anonymous.names, "cache.rebuild")
        assert.include(admin.names, "cache.rebuild")
        assert.isAbove(admin.names.length, anonymous.names.length)
        // The 2.x client follows nextCursor itself; the 1.x client is handed one page at a time.
        if (kind === "legacy") assert.isAbove(anonymous.pages, 1, "the list came in pages")
        assert.strictEqual(new Set(admin.names).size, admin.names.length, "no tool twice across pages")
        if (kind === "modern") {
          assert.strictEqual(anonymous.first["cacheScope"], "public")
          assert.strictEqual(admin.first["cacheScope"], "private")
          assert.isAbove(anonymous.first["ttlMs"] as number, 0)
        }
      }))

    it.scopedLive("calls content.search and content.get_tutorial; structured content fits the output schemas", () =>
      Effect.gen(function*() {
        const { base, request, sim } = yield* startGateway()
        const client = yield* connect(base)
        // The clients check structuredContent against outputSchema themselves once they have the list.
        yield* Effect.promise(() => client.listTools())
        const found = yield* Effect.promise(() =>
          client.callTool({ name: "content.search", arguments: { query: "drupal", page: { limit: 3 } } })
        )
        assert.notStrictEqual(found.isError, true)
        assert.isTrue(validSearch(found.structuredContent), JSON.stringify(validSearch.errors))
        assert.strictEqual(found.structuredContent.results.length, 3)
        assert.deepStrictEqual(JSON.parse(found.content[0].text), found.structuredContent)
        const free = sim.corpus.items.find((i) => i.access === "free")!
        const item = yield* Effect.promise(() => client.callTool({ name: "content.get_tutorial", arguments: { id: free.id } }))
        assert.notStrictEqual(item.isError, true)
        assert.isTrue(validTutorial(item.structuredContent), JSON.stringify(validTutorial.errors))
        assert.strictEqual(item.structuredContent.format, "markdown", "Markdown by default")
        const markdown = yield* Effect.promise(() => request(`/content/${free.id}/markdown`))
        assert.strictEqual(item.structuredContent.content, markdown.text, "the gateway's Markdown, whole")
        assert.isUndefined(item.structuredContent.next_cursor)
        const html = yield* Effect.promise(() =>
          client.callTool({ name: "content.get_tutorial", arguments: { id: free.id, format: "html" } })
        )
        assert.strictEqual(html.structuredContent.format, "html")
        assert.include(html.structuredContent.content, "<")
      }))

    it.scopedLive("an unknown tool is -32602; failures and bad arguments are isError results", () =>
      Effect.gen(function*() {
        const { base, sim } = yield* startGateway()
        const client = yield* connect(base)
        const unknown = yield* errorOf(() => client.callTool({ name: "no.such_tool", arguments: {} }))
        assert.strictEqual(unknown?.code, -32602)
        // A method the caller may not call is unknown to this caller.
        const hidden = yield* errorOf(() => client.callTool({ name: "cache.rebuild", arguments: {} }))
        assert.strictEqual(hidden?.code, -32602)
        const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
        const denied = yield* Effect.promise(() => client.callTool({ name: "content.get_tutorial", arguments: { id: locked.id } }))
        assert.isTrue(denied.isError)
        assert.include(denied.content[0].text, "forbidden")
        const invalid = yield* Effect.promise(() => client.callTool({ name: "content.search", arguments: { page: { limit: -1 } } }))
        assert.isTrue(invalid.isError)
        assert.include(invalid.content[0].text, "query: is required")
        assert.include(invalid.content[0].text, "page.limit")
      }))

    it.scopedLive("reads a huge item in bounded pieces that join to the whole document", () =>
      Effect.gen(function*() {
        const max = 64 * 1024
        const { base, request } = yield* startGateway({ MCP_MAX_RESULT_BYTES: String(max) }, {
          hugeItemId: 5,
          hugeItemBytes: 600_000
        })
        const client = yield* connect(base)
        const whole = yield* Effect.promise(() => request("/content/5/markdown"))
        const pieces: Array<string> = []
        let cursor: string | undefined = undefined
        for (let round = 0; round < 100; round++) {
          const args: Record<string, unknown> = cursor === undefined ? { id: 5 } : { id: 5, cursor }
          const result: any = yield* Effect.promise(() => client.callTool({ name: "content.get_tutorial", arguments: args }))
          assert.notStrictEqual(result.isError, true, result.content?.[0]?.text)
          assert.isAtMost(Buffer.byteLength(JSON.stringify(result)), max, "each result within MCP_MAX_RESULT_BYTES")
          const piece = result.structuredContent.content as string
          pieces.push(piece)
          cursor = result.structuredContent.next_cursor
          if (cursor === undefined) break
          assert.isTrue(piece.endsWith("\n"), "cut at a line boundary at least")
          assert.include(result.content[0].text, `"cursor": "${cursor}"`, "the text says how to read on")
        }
        assert.isAbove(pieces.length, 5)
        assert.strictEqual(pieces.join(""), whole.text)
        const atBoundary = pieces.slice(1).filter((p, i) => p.startsWith("#") || pieces[i]!.endsWith("\n\n")).length
        assert.isAtLeast(atBoundary, Math.floor((pieces.length - 1) * 0.8), "most cuts fall at a heading or paragraph")
      }))
  })
}
