/**
 * The tools `/mcp` lists: the caller's discovered methods translated by `discovery/McpTools.ts`,
 * plus what the gateway itself knows about the site's content methods (discovery exposes no
 * output schemas): an `outputSchema` for `content.search` and `content.get_tutorial`, and the
 * `cursor` argument with which `content.get_tutorial` reads a long document in pieces. Every tool
 * gets a description (MCP clients expect one); pages are cut with opaque cursors.
 *
 * Pure functions over a method set's tools.
 *
 * @since 0.1.0
 */
import type { McpTool, ObjectSchema } from "../discovery/McpTools.js"

/** The content methods the gateway serves itself (through its cache). */
export const SEARCH = "content.search"
export const GET_TUTORIAL = "content.get_tutorial"

/** Argument of `content.get_tutorial` added by the gateway: where the next piece starts. */
export const CURSOR_ARGUMENT = "cursor"

/** A tool as `/mcp` lists it. */
export interface ListedTool extends McpTool {
  readonly description: string
  readonly outputSchema?: ObjectSchema
}

const metadataSchema = {
  type: "object",
  properties: {
    drupal_version: { type: "string" },
    difficulty: { type: "string" },
    tags: { type: "array", items: { type: "string" } },
    updated: { type: "string" }
  }
}

const idSchema = { type: ["integer", "string"] }

/** `outputSchema` of `content.search` (the result `ContentModel.SearchResult` checks). */
export const searchOutputSchema: ObjectSchema = {
  type: "object",
  properties: {
    results: {
      type: "array",
      items: {
        type: "object",
        properties: { id: idSchema, title: { type: "string" }, summary: { type: "string" }, url: { type: "string" }, metadata: metadataSchema },
        required: ["id", "title", "url"]
      }
    },
    total: { type: "number" },
    limit: { type: "number" },
    offset: { type: "number" }
  },
  required: ["results", "total", "limit", "offset"]
}

/** `outputSchema` of `content.get_tutorial` as `/mcp` answers it: one piece of the item's body. */
export const tutorialOutputSchema: ObjectSchema = {
  type: "object",
  properties: {
    id: idSchema,
    title: { type: "string" },
    url: { type: "string" },
    summary: { type: "string" },
    metadata: metadataSchema,
    format: { type: "string", enum: ["markdown", "html"] },
    content: { type: "string", description: "This piece of the body (the whole body when next_cursor is absent)" },
    cursor: { type: "string", description: "Where this piece starts" },
    next_cursor: { type: "string", description: "Pass as `cursor` to read the next piece; absent on the last piece" }
  },
  required: ["id", "title", "url"]
}

const withCursor = (schema: ObjectSchema): ObjectSchema => ({
  ...schema,
  properties: {
    ...schema.properties,
    format: {
      type: "string",
      enum: ["markdown", "html"],
      default: "markdown",
      description: "Format of the body: Markdown (converted by the gateway, the default) or the site's HTML"
    },
    [CURSOR_ARGUMENT]: {
      type: "string",
      pattern: "^[0-9]{1,12}$",
      description: "Where to continue a long body: the `next_cursor` of the previous piece"
    }
  }
})

/** The tool as listed: a description always, and the gateway's additions for the content methods. */
export const listed = (tool: McpTool): ListedTool => {
  const description = tool.description ?? `Calls the site's JSON-RPC method ${tool.name}.`
  switch (tool.name) {
    case SEARCH:
      return { ...tool, description, outputSchema: searchOutputSchema }
    case GET_TUTORIAL:
      return {
        ...tool,
        description: `${description} Long bodies come in pieces; pass next_cursor as cursor to read on.`,
        inputSchema: withCursor(tool.inputSchema),
        outputSchema: tutorialOutputSchema
      }
    default:
      return { ...tool, description }
  }
}

/** An opaque `tools/list` cursor: the offset of the page in the list of the given fingerprint. */
export const encodeCursor = (offset: number, fingerprint: string): string =>
  Buffer.from(`${offset}:${fingerprint.slice(0, 16)}`, "utf8").toString("base64url")

/**
 * The offset a cursor stands for, or `undefined` when it is malformed or was cut from another
 * version of the list (the client should list again from the start).
 */
export const decodeCursor = (cursor: string, fingerprint: string): number | undefined => {
  if (cursor.length > 64) return undefined
  const match = /^(\d{1,9}):([0-9a-f]{1,16})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"))
  if (match === null || match[2] !== fingerprint.slice(0, 16)) return undefined
  return Number(match[1])
}

/** One page of the listed tools and the cursor of the next one. */
export const page = (
  tools: ReadonlyArray<McpTool>,
  fingerprint: string,
  offset: number,
  size: number
): { readonly tools: ReadonlyArray<ListedTool>; readonly nextCursor?: string } => {
  const slice = tools.slice(offset, offset + size).map(listed)
  return offset + size < tools.length ? { tools: slice, nextCursor: encodeCursor(offset + size, fingerprint) } : { tools: slice }
}
