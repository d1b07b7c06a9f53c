/**
 * The MCP wire vocabulary the gateway speaks on `/mcp`: protocol versions, JSON-RPC messages
 * and error codes, the standard request headers of 2026-07-28 and the checks of the transport
 * (origin, headers against body). Pure functions, no I/O.
 *
 * @since 0.1.0
 */

/** The stateless revision: every request carries its version and client envelope. */
export const MODERN_VERSION = "2026-07-28"
/** Legacy revisions served with the `initialize` handshake, newest first. */
export const LEGACY_VERSIONS = ["2025-11-25", "2025-06-18"] as const
/**
 * Versions a legacy request's `MCP-Protocol-Version` header may name: the served ones, and
 * 2025-03-26, the version a server is told to assume when the header is absent (clients that
 * have not negotiated send it); its requests are shaped alike for a tools-only server.
 */
export const LEGACY_HEADER_VERSIONS: ReadonlyArray<string> = [...LEGACY_VERSIONS, "2025-03-26"]
/** Every revision served, newest first. */
export const SUPPORTED_VERSIONS: ReadonlyArray<string> = [MODERN_VERSION, ...LEGACY_VERSIONS]

/** `_meta` keys of the 2026-07-28 request envelope. */
export const META = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientInfo: "io.modelcontextprotocol/clientInfo",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  serverInfo: "io.modelcontextprotocol/serverInfo"
} as const

/** JSON-RPC and MCP error codes used here. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** A header disagrees with the body (2026-07-28). */
  HeaderMismatch: -32020,
  /** The request's protocol version is not served (2026-07-28). */
  UnsupportedProtocolVersion: -32022,
  /** Transport-level refusal (forbidden origin, bad session header). */
  Transport: -32000
} as const

/** A JSON-RPC id: string or number (`null` only on errors about an unreadable request). */
export type RequestId = string | number

/** A JSON-RPC request or notification as received (after the envelope checks of {@link parseMessage}). */
export interface Message {
  readonly id?: RequestId
  readonly method: string
  readonly params: { readonly [key: string]: unknown }
}

/** A JSON-RPC error object. */
export interface RpcError {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** An exchange's answer: HTTP status, headers, and a JSON body (none for 202/204/405). */
export interface Reply {
  readonly status: number
  readonly headers: { readonly [name: string]: string }
  readonly body?: unknown
}

/** A success response. */
export const resultOf = (id: RequestId, result: unknown) => ({ jsonrpc: "2.0", id, result })

/** An error response. */
export const errorOf = (id: RequestId | null, error: RpcError) => ({ jsonrpc: "2.0", id, error })

/** An HTTP reply carrying one JSON-RPC error. */
export const errorReply = (status: number, id: RequestId | null, error: RpcError, headers: Reply["headers"] = {}): Reply => ({
  status,
  headers,
  body: errorOf(id, error)
})

const isObject = (u: unknown): u is { readonly [key: string]: unknown } => typeof u === "object" && u !== null && !Array.isArray(u)

const isId = (u: unknown): u is RequestId => typeof u === "string" || (typeof u === "number" && Number.isFinite(u))

/**
 * Checks the JSON-RPC envelope of a parsed body: one object (batches are refused), `"jsonrpc":
 * "2.0"`, a string `method`, an id that is a string or a finite number when present, params an
 * object when present. Responses posted by a client (no `method`) are `"response"`.
 */
export const parseMessage = (
  body: unknown
): { readonly _tag: "Message"; readonly message: Message } | { readonly _tag: "Response" } | {
  readonly _tag: "Invalid"
  readonly id: RequestId | null
  readonly reason: string
} => {
  if (Array.isArray(body)) return { _tag: "Invalid", id: null, reason: "JSON-RPC batches are not supported" }
  if (!isObject(body)) return { _tag: "Invalid", id: null, reason: "The body must be a JSON-RPC request object" }
  const id = isId(body["id"]) ? body["id"] : null
  if (body["jsonrpc"] !== "2.0") return { _tag: "Invalid", id, reason: "jsonrpc must be \"2.0\"" }
  if (!("method" in body) && ("result" in body || "error" in body)) return { _tag: "Response" }
  if (typeof body["method"] !== "string") return { _tag: "Invalid", id, reason: "method must be a string" }
  if ("id" in body && !isId(body["id"])) return { _tag: "Invalid", id: null, reason: "id must be a string or a number" }
  if (body["params"] !== undefined && !isObject(body["params"])) return { _tag: "Invalid", id, reason: "params must be an object" }
  const params = (body["params"] ?? {}) as Message["params"]
  return {
    _tag: "Message",
    message: isId(body["id"]) ? { id: body["id"], method: body["method"], params } : { method: body["method"], params }
  }
}

/** The 2026-07-28 envelope of a request, when it has one (`params._meta` with a protocol version). */
export const envelopeOf = (message: Message): { readonly [key: string]: unknown } | undefined => {
  const meta = message.params["_meta"]
  return isObject(meta) && typeof meta[META.protocolVersion] === "string" ? meta : undefined
}

const BASE64_PREFIX = "=?base64?"
const BASE64_SUFFIX = "?="

/** Decodes a standard header value (`Mcp-Name`): plain, or `=?base64?…?=` for values that are not plain ASCII. */
export const decodeHeaderValue = (value: string): string =>
  value.startsWith(BASE64_PREFIX) && value.endsWith(BASE64_SUFFIX)
    ? Buffer.from(value.slice(BASE64_PREFIX.length, value.length - BASE64_SUFFIX.length), "base64").toString("utf8")
    : value

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"])

/**
 * Whether a browser `Origin` may call the endpoint (DNS-rebinding protection): a request without
 * one (not from a browser) may; otherwise a loopback origin (`localhost`, `127.0.0.1`, `[::1]`,
 * any port) or one of `allowed` (exact, lower-case `scheme://host[:port]`). `null` and malformed
 * origins are refused.
 */
export const originAllowed = (origin: string | undefined, allowed: ReadonlyArray<string>): boolean => {
  if (origin === undefined) return true
  const normalized = origin.trim().toLowerCase()
  if (allowed.includes(normalized) || allowed.includes("*")) return true
  try {
    const url = new URL(normalized)
    return (url.protocol === "http:" || url.protocol === "https:") && LOOPBACK_HOSTS.has(url.hostname)
  } catch {
    return false
  }
}

/** A session id as a client may send it back: visible ASCII, bounded. Any instance accepts any such id. */
export const validSessionId = (value: string): boolean => value.length > 0 && value.length <= 128 && /^[\x21-\x7e]+$/.test(value)

/** Whether an `Accept` header admits a JSON reply (absent, `*\/*`, `application/*` or `application/json`). */
export const acceptsJson = (accept: string | undefined): boolean =>
  accept === undefined || accept.trim() === "" || /(^|,)\s*(\*\/\*|application\/\*|application\/json)\s*(;|,|$)/i.test(accept)
