/**
 * The MCP server of `/mcp`: one HTTP exchange in, one {@link Reply} out, for the stateless
 * 2026-07-28 revision and the legacy 2025-11-25 / 2025-06-18 ones, tools only.
 *
 * Stateless by construction: nothing is kept between requests. A legacy `initialize` hands out
 * an `Mcp-Session-Id`, but any instance accepts any well-formed id, so a client needs no session
 * affinity. Who the caller is comes from each request's `Authorization` header: `tools/list` is
 * the caller's discovered method set (`Discovery.methodSet`, per access partition; a change found
 * by discovery shows in the next list), `tools/call` runs as the caller through the gateway's
 * cached, batched, deduplicated paths (`content.search` and `content.get_tutorial` from the
 * caller's cache partition, like the content routes; other methods through the client, like
 * `/rpc/{method}`).
 *
 * Results are sized for a model's context: `content.get_tutorial` answers Markdown by default,
 * in pieces of at most `maxResultBytes` (serialized) cut at a heading or paragraph boundary, each
 * naming the `cursor` of the next; any other result over the bound is refused with advice
 * instead of being cut mid-JSON.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Either, Option } from "effect"
import { randomUUID } from "node:crypto"
import { CachedContent, type Served } from "../content/CachedContent.js"
import { normalizeSearch, type SearchInput, type SearchQuery } from "../content/SearchQuery.js"
import { McpConfig } from "../Config.js"
import { Discovery } from "../discovery/Discovery.js"
import type { DrupalError } from "../drupal/DrupalError.js"
import { AccessScope } from "../access/AccessScope.js"
import { type Credentials, MAX_AUTHORIZATION_LENGTH } from "../drupal/Credentials.js"
import { DrupalEndpoint } from "../drupal/DrupalEndpoint.js"
import { DrupalRpc } from "../drupal/DrupalRpc.js"
import { toApiError, type HandlerFailure } from "../http/ErrorMapping.js"
import * as Catalog from "./Catalog.js"
import {
  acceptsJson,
  decodeHeaderValue,
  envelopeOf,
  ErrorCode,
  errorReply,
  LEGACY_HEADER_VERSIONS,
  LEGACY_VERSIONS,
  type Message,
  META,
  MODERN_VERSION,
  originAllowed,
  parseMessage,
  type Reply,
  type RequestId,
  resultOf,
  type RpcError,
  SUPPORTED_VERSIONS,
  validSessionId
} from "./Protocol.js"
import * as ResultPager from "./ResultPager.js"
import * as ToolSource from "./ToolSource.js"
import * as Traced from "../telemetry/Traced.js"

/** One HTTP exchange as the route hands it over. */
export interface Exchange {
  readonly method: string
  /** Lower-case header names. */
  readonly headers: { readonly [name: string]: string | undefined }
  /** The body text (already bounded by the listener's body limit). */
  readonly body: string
}

/** Name and version the server announces. */
export const SERVER_INFO = { name: "drupal-accelerator", version: "0.1.0" } as const

const JSON_HEADERS = { "content-type": "application/json" }

/** A tool-level outcome: the JSON-RPC error of the request, or a result (possibly `isError`). */
export type Outcome = { readonly _tag: "Error"; readonly error: RpcError; readonly status?: number } | {
  readonly _tag: "Result"
  readonly result: { readonly [key: string]: unknown }
}

const ok = (result: { readonly [key: string]: unknown }): Outcome => ({ _tag: "Result", result })
const fail = (code: number, message: string, status?: number): Outcome => ({
  _tag: "Error",
  error: { code, message },
  ...(status === undefined ? {} : { status })
})

/** A tool execution failure, as MCP wants it: a result the model can read and act on. */
const toolError = (message: string): Outcome => ok({ content: [{ type: "text", text: message }], isError: true })

const isObject = (u: unknown): u is { readonly [key: string]: unknown } => typeof u === "object" && u !== null && !Array.isArray(u)

const decoder = new TextDecoder()

/**
 * A JSON answer of the cache (search page, item; its body and HTTP status) as a structured tool
 * result within `maxResultBytes`, or the tool error a model can act on. Pure: the MCP fast path
 * builds its answers with it too, so both paths answer the same bytes.
 */
export const structuredOutcome = (body: Uint8Array, httpStatus: number, maxResultBytes: number): Outcome => {
  if (httpStatus !== 200) {
    const refusal = JSON.parse(decoder.decode(body)) as { error?: { code?: string; message?: string } }
    return toolError(`${refusal.error?.code ?? "error"}: ${refusal.error?.message ?? "the call failed"}`)
  }
  const text = decoder.decode(body)
  if (body.byteLength * 2 + 64 > maxResultBytes) {
    return toolError(
      `The result is ${body.byteLength} bytes, more than this server sends at once (${maxResultBytes}); ask for less (e.g. a smaller page.limit).`
    )
  }
  return ok({ content: [{ type: "text", text }], structuredContent: JSON.parse(text) })
}

/** Serialized size of a tutorial result: text block plus structured copy. */
const sizeOf = (result: unknown): number => Buffer.byteLength(JSON.stringify(result), "utf8")

const tutorialResult = (
  item: { readonly [key: string]: unknown },
  format: "markdown" | "html",
  piece: ResultPager.Piece
) => {
  const structuredContent = {
    ...item,
    format,
    content: piece.text,
    cursor: String(piece.offset),
    ...(piece.next === undefined ? {} : { next_cursor: String(piece.next) })
  }
  const note = piece.next === undefined
    ? ""
    : `\n\n[This is part of a longer document. To read on, call ${Catalog.GET_TUTORIAL} with {"id": ${
      JSON.stringify(item["id"])
    }, "cursor": "${piece.next}"}.]`
  return { content: [{ type: "text", text: piece.text + note }], structuredContent }
}

/** Smallest text budget of a piece: the budget shrinks no further. */
const MIN_BUDGET = 256

/** The first text budget: less than half the bound (the text travels twice, as text and as structured content). */
const firstBudget = (maxResultBytes: number): number => Math.max(MIN_BUDGET, Math.floor(maxResultBytes * 0.45) - 2048)

/**
 * The piece of a whole document (`item`'s body) starting at `offset` as a tool result within
 * `maxResultBytes`: the budget for the text shrinks until the serialized result fits. Pure: the
 * MCP fast path answers with it too.
 */
export const tutorialFromString = (
  item: { readonly [key: string]: unknown },
  format: "markdown" | "html",
  document: string,
  offset: number,
  maxResultBytes: number
): Outcome => {
  let budget = firstBudget(maxResultBytes)
  for (;;) {
    const result = tutorialResult(item, format, ResultPager.fromString(document, offset, budget))
    if (sizeOf(result) <= maxResultBytes || budget <= MIN_BUDGET) return ok(result)
    budget = Math.floor(budget * 0.8)
  }
}

/** The `result` member of a successful reply: 2026-07-28 results say they are complete. */
export const resultPayload = (result: { readonly [key: string]: unknown }, modern: boolean): { readonly [key: string]: unknown } =>
  modern ? { resultType: "complete", ...result } : result

/** Calls remembered as validated at most (the MCP fast path's memo). */
export const MAX_VALIDATED_CALLS = 4096
/** Longest serialized arguments remembered; longer ones are validated on every call. */
export const MAX_VALIDATED_ARGUMENTS_LENGTH = 1024

/** What a validated call of a cached tool asks for, as the Effect path read its arguments. */
export type ValidatedCall =
  | { readonly tool: typeof Catalog.SEARCH; readonly query: SearchQuery }
  | {
    readonly tool: typeof Catalog.GET_TUTORIAL
    readonly id: number
    readonly format: "markdown" | "html"
    readonly includeContent: boolean
    readonly offset: number
  }

/**
 * Calls of the cached tools whose arguments passed validation against a method set (by its
 * fingerprint), with what they ask for: the fast path answers only calls the Effect path has
 * validated against the caller's current set, and reads them as it did. Bounded (least recently
 * added dropped first).
 */
export interface ValidatedCalls {
  readonly add: (fingerprint: string, name: string, argumentsJson: string, call: ValidatedCall) => void
  readonly get: (fingerprint: string, name: string, argumentsJson: string) => ValidatedCall | undefined
}

const validatedCalls = (): ValidatedCalls => {
  const known = new Map<string, ValidatedCall>()
  const keyOf = (fingerprint: string, name: string, argumentsJson: string) => `${fingerprint}\u0000${name}\u0000${argumentsJson}`
  return {
    add: (fingerprint, name, argumentsJson, call) => {
      if (argumentsJson.length > MAX_VALIDATED_ARGUMENTS_LENGTH) return
      const key = keyOf(fingerprint, name, argumentsJson)
      known.delete(key)
      known.set(key, call)
      if (known.size > MAX_VALIDATED_CALLS) known.delete(known.keys().next().value!)
    },
    get: (fingerprint, name, argumentsJson) =>
      argumentsJson.length <= MAX_VALIDATED_ARGUMENTS_LENGTH ? known.get(keyOf(fingerprint, name, argumentsJson)) : undefined
  }
}

/** The MCP server. */
export class McpServer extends Effect.Service<McpServer>()("accelerator/McpServer", {
  effect: Effect.gen(function*() {
    const discovery = yield* Discovery
    const content = yield* CachedContent
    const rpc = yield* DrupalRpc
    const config = yield* McpConfig
    const endpoint = yield* DrupalEndpoint
    // Callers' fingerprints under the deployment's key, as every other route makes them.
    const access = yield* AccessScope
    const listTtlMs = Math.round(Duration.toMillis(config.listTtl))
    const validated = validatedCalls()

    /** The failure as text for the model, and the HTTP 401 that lets a client sign in. */
    const failureOutcome = (failure: HandlerFailure): Outcome => {
      const error = toApiError(failure)
      if (error._tag === "Unauthorized") return fail(ErrorCode.Transport, `unauthorized: ${error.message}`, 401)
      return toolError(`${error.code}: ${error.message}`)
    }

    /** The caller's tools from the configured source. */
    const toolsOf = (credentials: Credentials): Effect.Effect<ToolSource.SourcedTools, DrupalError> =>
      config.toolsSource === "jsonrpc_mcp"
        ? ToolSource.fetchTools(endpoint.url, credentials, config.sourceTimeout)
        : discovery.methodSet(credentials)

    const listTools = (credentials: Credentials, params: Message["params"], modern: boolean) =>
      Effect.gen(function*() {
        const cursor = params["cursor"]
        if (cursor !== undefined && typeof cursor !== "string") return fail(ErrorCode.InvalidParams, "cursor must be a string")
        const set = yield* toolsOf(credentials)
        const offset = cursor === undefined ? 0 : Catalog.decodeCursor(cursor, set.fingerprint)
        if (offset === undefined) return fail(ErrorCode.InvalidParams, "Invalid or outdated cursor; list the tools again from the start")
        const listed = Catalog.page(set.tools, set.fingerprint, offset, config.pageSize)
        return ok(
          modern
            ? { ...listed, ttlMs: listTtlMs, cacheScope: Option.isNone(credentials.authorization) ? "public" : "private" }
            : listed
        )
      }).pipe(Effect.catchAll((failure) => Effect.succeed(failureOutcome(failure))))

    const structured = (served: Served): Outcome => structuredOutcome(served.body, served.httpStatus, config.maxResultBytes)

    /** A validated search, remembered for the fast path once it normalises. */
    const search = (credentials: Credentials, args: { readonly [key: string]: unknown }, remember: (call: ValidatedCall) => void) =>
      Effect.gen(function*() {
        const page = isObject(args["page"]) ? args["page"] : {}
        const input: SearchInput = {
          q: args["query"] as string,
          drupal_version: args["drupal_version"] as string | undefined,
          tags: args["tags"] as ReadonlyArray<string> | undefined,
          content_type: args["content_type"] as string | undefined,
          access_level: args["access_level"] as string | undefined,
          sort: args["sort"] as string | undefined,
          limit: page["limit"] as number | undefined,
          offset: page["offset"] as number | undefined
        }
        const query = yield* normalizeSearch(input)
        remember({ tool: Catalog.SEARCH, query })
        return structured(yield* content.search(query, credentials))
      })

    /** One piece of a streamed body within the bound, shrinking the budget as {@link tutorialFromString} does. */
    const tutorialPiece = <E>(
      item: { readonly [key: string]: unknown },
      read: (budget: number) => Effect.Effect<ResultPager.Piece, E>
    ) =>
      Effect.gen(function*() {
        let budget = firstBudget(config.maxResultBytes)
        for (;;) {
          const result = tutorialResult(item, "markdown", yield* read(budget))
          if (sizeOf(result) <= config.maxResultBytes || budget <= MIN_BUDGET) return ok(result)
          budget = Math.floor(budget * 0.8)
        }
      })

    /** A validated `content.get_tutorial` call, remembered for the fast path. */
    const getTutorial = (credentials: Credentials, args: { readonly [key: string]: unknown }, remember: (call: ValidatedCall) => void) =>
      Effect.gen(function*() {
        const id = args["id"] as number
        const format = args["format"] === "html" ? "html" : "markdown"
        const includeContent = args["include_content"] !== false
        const cursor = args[Catalog.CURSOR_ARGUMENT]
        const offset = typeof cursor === "string" ? Number(cursor) : 0
        remember({ tool: Catalog.GET_TUTORIAL, id, format, includeContent, offset })
        const head = yield* content.item(id, credentials, { includeContent: format === "html" && includeContent, format: "html" })
        if (head.httpStatus !== 200) return structured(head)
        const { content: body, ...item } = JSON.parse(decoder.decode(head.body)) as { readonly [key: string]: unknown }
        if (!includeContent) return structured(head)
        if (format === "html") {
          const html = typeof body === "string" ? body : ""
          return tutorialFromString(item, "html", html, offset, config.maxResultBytes)
        }
        const answer = yield* content.markdown(id, credentials)
        if (answer._tag === "Cached") {
          const markdown = decoder.decode(answer.served.body)
          return tutorialFromString(item, "markdown", markdown, offset, config.maxResultBytes)
        }
        // A streamed document (not cached, or too large to cache) is read again for a smaller budget.
        const first = answer.stream
        let used = false
        return yield* tutorialPiece(item, (budget) =>
          Effect.flatMap(
            used ? content.markdown(id, credentials) : Effect.sync(() => {
              used = true
              return { _tag: "Streamed" as const, stream: first }
            }),
            (again) =>
              again._tag === "Cached"
                ? Effect.succeed(ResultPager.fromString(decoder.decode(again.served.body), offset, budget))
                : ResultPager.fromStream(again.stream, offset, budget)
          ))
      })

    const passThrough = (credentials: Credentials, name: string, args: { readonly [key: string]: unknown }) =>
      Effect.map(rpc.call(name, args, credentials), (result): Outcome => {
        const text = JSON.stringify(result) ?? "null"
        const bytes = Buffer.byteLength(text, "utf8")
        if (bytes + 64 > config.maxResultBytes) {
          return toolError(`The result is ${bytes} bytes, more than this server sends at once (${config.maxResultBytes}); ask for less.`)
        }
        return ok({ content: [{ type: "text", text }] })
      })

    const callTool = (credentials: Credentials, params: Message["params"]) =>
      Effect.gen(function*() {
        const name = params["name"]
        if (typeof name !== "string") return fail(ErrorCode.InvalidParams, "params.name must be a string")
        const raw = params["arguments"] ?? {}
        if (!isObject(raw)) return fail(ErrorCode.InvalidParams, "params.arguments must be an object")
        const set = yield* toolsOf(credentials)
        if (!set.tools.some((tool) => tool.name === name)) return fail(ErrorCode.InvalidParams, `Unknown tool: ${name}`)
        // The gateway's own arguments are not the method's: they are checked here, not sent upstream.
        const { [Catalog.CURSOR_ARGUMENT]: cursor, ...args } = name === Catalog.GET_TUTORIAL ? raw : { ...raw, cursor: undefined }
        if (name === Catalog.GET_TUTORIAL && cursor !== undefined && (typeof cursor !== "string" || !/^[0-9]{1,12}$/.test(cursor))) {
          return toolError("cursor: must be the next_cursor of a previous piece (digits)")
        }
        const callArgs = name === Catalog.GET_TUTORIAL ? args : raw
        yield* discovery.validate(credentials, name, callArgs)
        const remember = (call: ValidatedCall) => {
          if (config.toolsSource === "discovery") validated.add(set.fingerprint, name, JSON.stringify(raw), call)
        }
        if (name === Catalog.SEARCH) return yield* search(credentials, callArgs, remember)
        if (name === Catalog.GET_TUTORIAL) {
          return yield* getTutorial(credentials, { ...callArgs, ...(cursor === undefined ? {} : { cursor }) }, remember)
        }
        return yield* passThrough(credentials, name, callArgs)
      }).pipe(
        Effect.catchAll((failure): Effect.Effect<Outcome> => {
          switch (failure._tag) {
            case "UnknownMethod":
              return Effect.succeed(fail(ErrorCode.InvalidParams, `Unknown tool: ${failure.method}`))
            case "InvalidArguments":
              return Effect.succeed(toolError(`Invalid arguments for ${failure.method}: ${failure.message}`))
            case "InvalidSearch":
              return Effect.succeed(toolError(`Invalid arguments: ${failure.message}`))
            default:
              return Effect.succeed(failureOutcome(failure))
          }
        })
      )

    /** Runs one request of either era; `modern` adds what 2026-07-28 results carry. */
    const dispatch = (credentials: Credentials, message: Message, modern: boolean): Effect.Effect<Outcome> => {
      switch (message.method) {
        case "ping":
          return Effect.succeed(ok({}))
        case "tools/list":
          return listTools(credentials, message.params, modern)
        case "tools/call":
          return callTool(credentials, message.params)
        case "server/discover":
          return Effect.succeed(
            modern
              ? ok({
                supportedVersions: SUPPORTED_VERSIONS,
                capabilities: { tools: { listChanged: false } },
                ttlMs: listTtlMs,
                cacheScope: "public",
                _meta: { [META.serverInfo]: SERVER_INFO }
              })
              : fail(ErrorCode.MethodNotFound, "Method not found: server/discover")
          )
        default:
          return Effect.succeed(fail(ErrorCode.MethodNotFound, `Method not found: ${message.method}`))
      }
    }

    const answer = (id: RequestId, outcome: Outcome, modern: boolean, headers: Reply["headers"] = {}): Reply =>
      outcome._tag === "Error"
        ? errorReply(outcome.status ?? 200, id, outcome.error, { ...JSON_HEADERS, ...headers })
        : {
          status: 200,
          headers: { ...JSON_HEADERS, ...headers },
          body: resultOf(id, resultPayload(outcome.result, modern))
        }

    const modernExchange = (exchange: Exchange, message: Message, credentials: Credentials): Effect.Effect<Reply> =>
      Effect.suspend(() => {
        const id = message.id ?? null
        const envelope = envelopeOf(message)
        if (envelope === undefined) {
          return Effect.succeed(errorReply(400, id, {
            code: ErrorCode.InvalidParams,
            message: `Missing _meta envelope (${META.protocolVersion}, ${META.clientCapabilities}) for protocol ${MODERN_VERSION}`
          }, JSON_HEADERS))
        }
        const version = envelope[META.protocolVersion] as string
        if (version !== MODERN_VERSION) {
          return Effect.succeed(errorReply(400, id, {
            code: ErrorCode.UnsupportedProtocolVersion,
            message: `Unsupported protocol version: ${version}`,
            data: { supported: SUPPORTED_VERSIONS, requested: version }
          }, JSON_HEADERS))
        }
        const header = exchange.headers["mcp-protocol-version"]
        const mismatch = (message_: string) =>
          Effect.succeed(errorReply(400, id, { code: ErrorCode.HeaderMismatch, message: message_ }, JSON_HEADERS))
        if (header !== undefined && header !== version) {
          return mismatch(`MCP-Protocol-Version header (${header}) does not match the request's _meta (${version})`)
        }
        if (message.id === undefined) return Effect.succeed({ status: 202, headers: {} })
        if (header === undefined) return mismatch("The MCP-Protocol-Version header is required")
        const methodHeader = exchange.headers["mcp-method"]
        if (methodHeader === undefined) return mismatch("The Mcp-Method header is required")
        if (methodHeader !== message.method) return mismatch(`Mcp-Method header (${methodHeader}) does not match the body (${message.method})`)
        if (message.method === "tools/call") {
          const nameHeader = exchange.headers["mcp-name"]
          if (nameHeader === undefined) return mismatch("The Mcp-Name header is required for tools/call")
          if (decodeHeaderValue(nameHeader) !== message.params["name"]) return mismatch("Mcp-Name header does not match params.name")
        }
        if (!isObject(envelope[META.clientCapabilities])) {
          return Effect.succeed(errorReply(400, id, {
            code: ErrorCode.InvalidParams,
            message: `_meta.${META.clientCapabilities} is required`
          }, JSON_HEADERS))
        }
        return Effect.map(dispatch(credentials, message, true), (outcome) => answer(message.id!, outcome, true))
      })

    const legacyExchange = (exchange: Exchange, message: Message, credentials: Credentials): Effect.Effect<Reply> =>
      Effect.suspend(() => {
        const id = message.id ?? null
        const session = exchange.headers["mcp-session-id"]
        if (session !== undefined && !validSessionId(session)) {
          return Effect.succeed(errorReply(400, id, { code: ErrorCode.Transport, message: "Malformed Mcp-Session-Id" }, JSON_HEADERS))
        }
        const header = exchange.headers["mcp-protocol-version"]
        if (message.method !== "initialize" && header !== undefined && !LEGACY_HEADER_VERSIONS.includes(header)) {
          return Effect.succeed(errorReply(400, id, {
            code: ErrorCode.Transport,
            message: `Unsupported protocol version: ${header} (supported: ${SUPPORTED_VERSIONS.join(", ")})`
          }, JSON_HEADERS))
        }
        if (message.id === undefined) return Effect.succeed({ status: 202, headers: {} })
        if (message.method === "initialize") {
          const asked = message.params["protocolVersion"]
          const protocolVersion = typeof asked === "string" && (LEGACY_VERSIONS as ReadonlyArray<string>).includes(asked)
            ? asked
            : LEGACY_VERSIONS[0]
          return Effect.succeed(answer(message.id, ok({
            protocolVersion,
            capabilities: { tools: { listChanged: false } },
            serverInfo: SERVER_INFO,
            instructions:
              "Tools are the Drupal site's JSON-RPC methods that your credentials may call. content.search finds tutorials; content.get_tutorial reads one as Markdown, in pieces for long ones (pass next_cursor as cursor)."
          }), false, { "mcp-session-id": session ?? randomUUID() }))
        }
        return Effect.map(dispatch(credentials, message, false), (outcome) => answer(message.id!, outcome, false))
      })

    const post = (exchange: Exchange): Effect.Effect<Reply> =>
      Effect.suspend(() => {
        const contentType = exchange.headers["content-type"]
        if (contentType === undefined || !/^application\/json\s*(;|$)/i.test(contentType.trim())) {
          return Effect.succeed(errorReply(415, null, { code: ErrorCode.Transport, message: "Content-Type must be application/json" }, JSON_HEADERS))
        }
        if (!acceptsJson(exchange.headers["accept"])) {
          return Effect.succeed(errorReply(406, null, { code: ErrorCode.Transport, message: "The client must accept application/json" }, JSON_HEADERS))
        }
        const authorization = exchange.headers["authorization"]
        if (authorization !== undefined && authorization.length > MAX_AUTHORIZATION_LENGTH) {
          return Effect.succeed(errorReply(400, null, { code: ErrorCode.Transport, message: "The Authorization header is too long" }, JSON_HEADERS))
        }
        const parsed = Either.try(() => JSON.parse(exchange.body) as unknown)
        if (Either.isLeft(parsed)) return Effect.succeed(errorReply(400, null, { code: ErrorCode.ParseError, message: "Parse error" }, JSON_HEADERS))
        const read = parseMessage(parsed.right)
        if (read._tag === "Response") return Effect.succeed({ status: 202, headers: {} })
        if (read._tag === "Invalid") {
          return Effect.succeed(errorReply(400, read.id, { code: ErrorCode.InvalidRequest, message: read.reason }, JSON_HEADERS))
        }
        const credentials = access.credentials(authorization)
        const modern = envelopeOf(read.message) !== undefined || exchange.headers["mcp-protocol-version"] === MODERN_VERSION
        return modern ? modernExchange(exchange, read.message, credentials) : legacyExchange(exchange, read.message, credentials)
      })

    const handle = (exchange: Exchange): Effect.Effect<Reply> =>
      Effect.suspend(() => {
        if (!originAllowed(exchange.headers["origin"], config.allowedOrigins)) {
          return Effect.succeed(errorReply(403, null, { code: ErrorCode.Transport, message: "Forbidden origin" }, JSON_HEADERS))
        }
        // No server-to-client stream is offered: the endpoint is POST only.
        if (exchange.method !== "POST") return Effect.succeed({ status: 405, headers: { allow: "POST" } })
        return post(exchange)
      })

    return {
      /** Answers one exchange; never fails (every failure is a reply). */
      handle: Traced.fn("McpServer.handle")(handle),
      /** Calls validated by this server (for the fast path). */
      validated: validated as Pick<ValidatedCalls, "get">
    }
  })
}) {}
