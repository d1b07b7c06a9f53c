/**
 * The `jsonrpc_mcp` tool source: the site's own MCP tool list (`GET <site>/mcp/tools/list`, from
 * the contrib module `jsonrpc_mcp`), fetched as the caller (its `Authorization` header), every
 * page followed by `cursor`. The list varies per user (the module's cache contexts include
 * `user`), so it is asked for each `tools/list`, never shared between callers.
 *
 * Bounded: at most {@link MAX_PAGES} pages of at most {@link MAX_PAGE_BYTES} each, each within
 * the configured timeout. Failures are `DrupalError`s, answered like any upstream failure.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import type { McpTool, ObjectSchema } from "../discovery/McpTools.js"
import type { Credentials } from "../drupal/Credentials.js"
import { endpointUrl } from "../drupal/DrupalEndpoint.js"
import { DrupalDecodeError, type DrupalError, DrupalHttpError, DrupalTransportError } from "../drupal/DrupalError.js"
import * as Traced from "../telemetry/Traced.js"

/** Most pages followed. */
export const MAX_PAGES = 20
/** Largest page read. */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024

const SOURCE = "mcp/tools/list"

/** The caller's tools from the site and the fingerprint of that list (for `tools/list` cursors). */
export interface SourcedTools {
  readonly tools: ReadonlyArray<McpTool>
  readonly fingerprint: string
}

const isObject = (u: unknown): u is { readonly [key: string]: unknown } => typeof u === "object" && u !== null && !Array.isArray(u)

const toTool = (raw: unknown): McpTool | undefined => {
  if (!isObject(raw) || typeof raw["name"] !== "string" || !isObject(raw["inputSchema"])) return undefined
  const inputSchema = { ...raw["inputSchema"], type: "object" } as ObjectSchema
  return typeof raw["description"] === "string" && raw["description"] !== ""
    ? { name: raw["name"], description: raw["description"], inputSchema }
    : { name: raw["name"], inputSchema }
}

const page = (url: string, credentials: Credentials, timeout: Duration.Duration) =>
  Effect.tryPromise({
    try: async (signal) => {
      const headers: Record<string, string> = { accept: "application/json" }
      if (Option.isSome(credentials.authorization)) headers["authorization"] = Redacted.value(credentials.authorization.value)
      const res = await fetch(url, { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(Duration.toMillis(timeout))]) })
      const length = Number(res.headers.get("content-length") ?? "0")
      if (length > MAX_PAGE_BYTES) {
        await res.body?.cancel()
        return { status: res.status, text: undefined }
      }
      const text = await res.text()
      return { status: res.status, text: text.length > MAX_PAGE_BYTES ? undefined : text }
    },
    catch: (cause) => DrupalTransportError.fromCause(cause, SOURCE)
  }).pipe(
    Effect.flatMap(({ status, text }): Effect.Effect<unknown, DrupalError> => {
      if (status !== 200) return Effect.fail(new DrupalHttpError({ status, bodyExcerpt: text ?? "", method: SOURCE }))
      if (text === undefined) {
        return Effect.fail(new DrupalDecodeError({ reason: "unexpected_result", detail: `a page over ${MAX_PAGE_BYTES} bytes`, method: SOURCE }))
      }
      try {
        return Effect.succeed(JSON.parse(text))
      } catch {
        return Effect.fail(new DrupalDecodeError({ reason: "invalid_json", detail: "the tool list is not JSON", method: SOURCE }))
      }
    })
  )

/** Every page of the caller's tool list at `siteUrl`, sorted by name. */
export const fetchTools = (siteUrl: URL, credentials: Credentials, timeout: Duration.Duration): Effect.Effect<SourcedTools, DrupalError> =>
  Effect.gen(function*() {
    const tools: Array<McpTool> = []
    let cursor: string | undefined = undefined
    for (let n = 0; n < MAX_PAGES; n++) {
      const url = endpointUrl(siteUrl, `/mcp/tools/list${cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`}`)
      const body = yield* page(url, credentials, timeout)
      if (!isObject(body) || !Array.isArray(body["tools"])) {
        return yield* Effect.fail(new DrupalDecodeError({ reason: "unexpected_result", detail: "no tools array", method: SOURCE }))
      }
      for (const raw of body["tools"]) {
        const tool = toTool(raw)
        if (tool !== undefined) tools.push(tool)
      }
      cursor = typeof body["nextCursor"] === "string" && body["nextCursor"] !== "" ? body["nextCursor"] : undefined
      if (cursor === undefined) break
    }
    tools.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const fingerprint = createHash("sha256").update(JSON.stringify(tools)).digest("hex")
    return { tools, fingerprint }
  }).pipe(Traced.withSpan("McpToolSource.fetch"))
