/**
 * The two official MCP clients against a gateway's `/mcp`, opened in the current scope:
 * `@modelcontextprotocol/sdk` 1.x (legacy handshake, 2025-11-25) and
 * `@modelcontextprotocol/client` 2.x pinned to 2026-07-28 (stateless).
 */
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from "@modelcontextprotocol/client"
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport as LegacyTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect } from "effect"

const headersOf = (token: string | undefined): Record<string, string> => token === undefined ? {} : { authorization: `Bearer ${token}` }

/** A connected legacy (1.x) client; closed with the scope. */
export const legacyClient = (base: string, token?: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new LegacyClient({ name: "legacy-spec", version: "1.0.0" })
      await client.connect(new LegacyTransport(new URL(`${base}/mcp`), { requestInit: { headers: headersOf(token) } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

/** A connected 2026-07-28 (2.x) client; closed with the scope. */
export const modernClient = (base: string, token?: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new ModernClient(
        { name: "modern-spec", version: "2.0.0" },
        { versionNegotiation: { mode: { pin: "2026-07-28" } } }
      )
      await client.connect(new ModernTransport(new URL(`${base}/mcp`), { requestInit: { headers: headersOf(token) } }))
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )
