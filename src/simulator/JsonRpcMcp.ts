/**
 * The contrib module `jsonrpc_mcp` as the simulator offers it: `GET /mcp/tools/list`, the site's
 * JSON-RPC methods marked as MCP tools that the calling user may execute, as MCP tool
 * definitions, paginated with `cursor`. Which methods carry the module's `#[McpTool]` attribute
 * is the site's choice; here every method is marked except the gateway's own
 * `user.access_context` plugin (an access probe, not a tool). The page shape (`{tools,
 * nextCursor}`, MCP's own) is *assumed*.
 *
 * @since 0.1.0
 */
import { effectiveSchema, type MethodDefinition } from "./Methods.js"

/** Tools per page of `/mcp/tools/list`. */
export const TOOLS_PAGE_SIZE = 50

/** Whether a method is marked as an MCP tool. */
export const isMcpTool = (method: MethodDefinition): boolean => method.id !== "user.access_context"

const inputSchema = (method: MethodDefinition) => {
  const params = Object.entries(method.params ?? {})
  if (params.length === 0) return { type: "object" }
  const properties = Object.fromEntries(
    params.map(([name, p]) => [name, p.description === undefined ? effectiveSchema(p) : { ...effectiveSchema(p), description: p.description }])
  )
  const required = params.filter(([, p]) => p.required === true).map(([name]) => name)
  return required.length === 0 ? { type: "object", properties } : { type: "object", properties, required }
}

/**
 * One page of the tool list for `methods` (already filtered to what the caller may execute),
 * sorted by name; `cursor` is the offset as a decimal string. A malformed cursor starts over.
 */
export const renderToolsPage = (methods: ReadonlyArray<MethodDefinition>, cursor: string | null) => {
  const tools = methods.filter(isMcpTool).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const offset = cursor !== null && /^\d{1,6}$/.test(cursor) ? Number(cursor) : 0
  const page = tools.slice(offset, offset + TOOLS_PAGE_SIZE).map((m) => ({
    name: m.id,
    ...(m.usage === undefined || m.usage === "" ? {} : { description: m.usage }),
    inputSchema: inputSchema(m)
  }))
  return offset + TOOLS_PAGE_SIZE < tools.length ? { tools: page, nextCursor: String(offset + TOOLS_PAGE_SIZE) } : { tools: page }
}
