/**
 * The typed failures of talking to the Drupal JSON-RPC upstream: one class per category, each
 * with a `reason`/detail field instead of a class per variant, and {@link isTransient} on top
 * (the retry and circuit-breaker rule, straight from the upstream's retry rules, decided by
 * status, code and id, never by wording; the client
 * hands it to the generic breaker and retry of `resilience/`).
 *
 * These errors stay inside the gateway (`Data.TaggedError`); what reaches a client is the
 * `ClientError` that `http/ClientError.ts` derives from them.
 *
 * @since 0.1.0
 */
import { Data, Duration } from "effect"
import { CircuitOpenError } from "../resilience/CircuitBreaker.js"

export { CircuitOpenError }

/** A JSON-RPC 2.0 error object as the upstream sends it (`data` is always present there). */
export interface JsonRpcErrorObject {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** A JSON-RPC request id; `null` when the upstream could not tie the error to a request. */
export type JsonRpcId = string | number | null

/** The closed set of JSON-RPC codes the upstream uses (see the upstream's error table). */
export const JsonRpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603
} as const

// ---------------------------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------------------------

/** Why a connection-level failure happened. `other` covers codes this module does not know. */
export type TransportReason =
  | "connection_refused"
  | "connection_reset"
  | "dns"
  | "tls"
  | "socket_closed"
  | "other"

/**
 * The request never got a complete HTTP reply: refused, reset, DNS failure, TLS failure, socket
 * closed mid-reply. Always transient. `cause` keeps the original error for logs.
 */
export class DrupalTransportError extends Data.TaggedError("DrupalTransportError")<{
  readonly reason: TransportReason
  /** The JSON-RPC method (or `discovery`) the request was for, when known. */
  readonly method?: string
  readonly cause: unknown
}> {
  override get message(): string {
    return `Drupal transport failure (${this.reason})${this.method === undefined ? "" : ` calling ${this.method}`}`
  }

  /** Builds the error from whatever the HTTP client threw, classifying it with {@link transportReason}. */
  static fromCause(cause: unknown, method?: string): DrupalTransportError {
    return new DrupalTransportError(
      method === undefined ? { reason: transportReason(cause), cause } : { reason: transportReason(cause), method, cause }
    )
  }
}

const errorCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  // Node and undici nest the system error one or two `cause`s deep; three levels is enough.
  for (let depth = 0; depth < 3 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

/**
 * Classifies a thrown connection error by its Node/undici `code` (looked up on the error and up
 * to two nested `cause`s). Unknown or missing codes give `other`. Pure, never throws.
 */
export const transportReason = (cause: unknown): TransportReason => {
  const code = errorCode(cause)
  switch (code) {
    case "ECONNREFUSED":
      return "connection_refused"
    case "ECONNRESET":
    case "EPIPE":
    case "ECONNABORTED":
      return "connection_reset"
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return "dns"
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
    case "ERR_STREAM_PREMATURE_CLOSE":
      return "socket_closed"
    default:
      if (code !== undefined && (code.startsWith("ERR_TLS") || code.startsWith("ERR_SSL") || code.includes("CERT"))) {
        return "tls"
      }
      return "other"
  }
}

// ---------------------------------------------------------------------------------------------
// Timeout
// ---------------------------------------------------------------------------------------------

/**
 * Which deadline passed: waiting for a free connection of a bounded pool (every one held by
 * other calls: the gateway's own congestion, not the upstream's), establishing the connection,
 * waiting for the response headers, or the whole call (headers plus body).
 */
export type TimeoutPhase = "pool" | "connect" | "headers" | "call"

/** A deadline passed before the upstream answered. Always transient. */
export class DrupalTimeoutError extends Data.TaggedError("DrupalTimeoutError")<{
  readonly phase: TimeoutPhase
  /** The deadline that passed. */
  readonly timeout: Duration.Duration
  readonly method?: string
}> {
  override get message(): string {
    return `Drupal ${this.phase} timeout after ${Duration.format(this.timeout)}${
      this.method === undefined ? "" : ` calling ${this.method}`
    }`
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP status
// ---------------------------------------------------------------------------------------------

/** Longest body excerpt kept on a {@link DrupalHttpError}, in characters. */
export const BODY_EXCERPT_MAX = 200

/** Only this much of a body is ever scanned (redaction is a regex; bodies can be megabytes). */
const BODY_SCAN_MAX = 4096

const REDACTIONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\b(Bearer|Basic|Digest)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 [redacted]"],
  [
    /\b(access_token|refresh_token|id_token|token|password|passwd|secret|client_secret|api_key|apikey|authorization|session|sid)(["']?\s*[:=]\s*["']?)(?!(?:Bearer|Basic|Digest) \[redacted\])[^"'&\s,;}<]+/gi,
    "$1$2[redacted]"
  ],
  // JWTs, which can appear without a key in front of them.
  [/\beyJ[A-Za-z0-9_-]{8,}(\.[A-Za-z0-9_-]*)*/g, "[redacted]"]
]

/**
 * A bounded, token-free excerpt of an upstream body for logs and errors: scans at most 4 KiB,
 * redacts bearer/basic credentials, `token=`/`password=`-style pairs and JWTs, collapses
 * whitespace, and cuts to at most {@link BODY_EXCERPT_MAX} characters (ending in `…` when cut).
 * Idempotent: an excerpt of an excerpt is the same excerpt.
 */
export const excerpt = (body: string, max: number = BODY_EXCERPT_MAX): string => {
  let text = body.length > BODY_SCAN_MAX ? body.slice(0, BODY_SCAN_MAX) : body
  for (const [pattern, replacement] of REDACTIONS) text = text.replace(pattern, replacement)
  text = text.replace(/\s+/g, " ").trim()
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`
}

/**
 * The upstream answered with an HTTP status that is not a JSON-RPC reply: the non-JSON-RPC
 * 401/403 pages of the route permission, a 404 for an unknown discovery method, 5xx pages, and
 * the parse-stage **400** that fails a whole request (batch included) with one JSON-RPC error
 * object, kept in `rpcError` when the body carried one.
 *
 * The body is never stored whole: the constructor always passes `bodyExcerpt` through
 * {@link excerpt}, so it is at most {@link BODY_EXCERPT_MAX} characters and token-free whatever
 * the caller gives it.
 */
export class DrupalHttpError extends Data.TaggedError("DrupalHttpError")<{
  readonly status: number
  readonly bodyExcerpt: string
  /** The JSON-RPC error object of a parse-stage 400 (or any status whose body had one). */
  readonly rpcError?: JsonRpcErrorObject
  /** The id the upstream's error object named (the failing batch item for a parse-stage 400). */
  readonly id?: JsonRpcId
  readonly method?: string
}> {
  constructor(args: {
    readonly status: number
    readonly bodyExcerpt: string
    readonly rpcError?: JsonRpcErrorObject
    readonly id?: JsonRpcId
    readonly method?: string
  }) {
    super({ ...args, bodyExcerpt: excerpt(args.bodyExcerpt) })
  }

  override get message(): string {
    const rpc = this.rpcError === undefined ? "" : ` (${this.rpcError.code} ${this.rpcError.message})`
    return `Drupal answered HTTP ${this.status}${rpc}${this.method === undefined ? "" : ` calling ${this.method}`}`
  }
}

// ---------------------------------------------------------------------------------------------
// JSON-RPC error (per item, HTTP 200)
// ---------------------------------------------------------------------------------------------

/**
 * A JSON-RPC error for one request item that reached the run stage (HTTP 200): access denied
 * (-32600 with data `Access Denied`), an exception inside the method (-32603, data = message),
 * or an error the method raised. `message` is the JSON-RPC message (Title Case upstream).
 */
export class DrupalRpcError extends Data.TaggedError("DrupalRpcError")<{
  readonly code: number
  readonly message: string
  readonly data: unknown
  readonly method: string
  readonly id: JsonRpcId
}> {}

// ---------------------------------------------------------------------------------------------
// Decode
// ---------------------------------------------------------------------------------------------

/** What was wrong with a reply that arrived but could not be used. */
export type DecodeReason =
  /** The body is not JSON. */
  | "invalid_json"
  /** JSON, but not a JSON-RPC 2.0 response (or batch of them). */
  | "invalid_envelope"
  /** A request item got no response item (or one with an unknown id). */
  | "missing_response"
  /** The `result` (or a discovery document) does not have the expected shape. */
  | "unexpected_result"

/** The upstream answered, but the reply is not what the protocol promises. Not transient. */
export class DrupalDecodeError extends Data.TaggedError("DrupalDecodeError")<{
  readonly reason: DecodeReason
  /** Short human detail, e.g. the schema parse issue; never a body. */
  readonly detail: string
  readonly method?: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `Unexpected Drupal reply (${this.reason})${this.method === undefined ? "" : ` calling ${this.method}`}: ${this.detail}`
  }
}

/** The cause of a `DrupalDecodeError` for a reply over the client's `maxReplyBytes`. */
export class ReplyTooLarge extends Error {}

/** Whether `error` is a reply over the client's `maxReplyBytes` (one call's, or a whole batch's). */
export const isReplyTooLarge = (error: { readonly _tag: string }): boolean =>
  error._tag === "DrupalDecodeError" && (error as DrupalDecodeError).cause instanceof ReplyTooLarge

// ---------------------------------------------------------------------------------------------
// Union and classification
// ---------------------------------------------------------------------------------------------

/** Every way a call to the Drupal upstream can fail. */
export type DrupalError =
  | DrupalTransportError
  | DrupalTimeoutError
  | DrupalHttpError
  | DrupalRpcError
  | DrupalDecodeError
  | CircuitOpenError

const drupalErrorTags: ReadonlySet<string> = new Set([
  "DrupalTransportError",
  "DrupalTimeoutError",
  "DrupalHttpError",
  "DrupalRpcError",
  "DrupalDecodeError",
  "CircuitOpenError"
])

/** Refinement: `u` is one of the {@link DrupalError} classes (by `_tag`). */
export const isDrupalError = (u: unknown): u is DrupalError =>
  typeof u === "object" && u !== null && drupalErrorTags.has((u as { _tag?: unknown })._tag as string)

/**
 * Patterns of the exception messages Drupal and PHP produce when something a method depends on
 * (database, search backend, HTTP service) is down or overloaded, as opposed to a bug or a
 * deterministic refusal. Matched against a -32603's `data` (the exception message).
 */
const BACKEND_FAILURE_PATTERNS: ReadonlyArray<RegExp> = [
  // PDO connection-class SQLSTATEs: 08xxx connection exceptions, HY000 [2002]/[2006]/[2013]
  // (cannot connect / gone away / lost connection), 40001 serialization/deadlock, 57P01 admin shutdown.
  /SQLSTATE\[(08\w{3}|40001|57P0\d)\]/i,
  /SQLSTATE\[HY000\] \[(1040|2002|2003|2006|2013)\]/i,
  /server has gone away|lost connection to (mysql|the) server|too many connections|deadlock found/i,
  // Guzzle/cURL transport failures: 6 resolve, 7 connect, 28 timeout, 35 TLS, 52 empty reply, 56 recv.
  /cURL error (6|7|28|35|52|56)\b/i,
  /connection (refused|reset|timed out)|could not connect|failed to connect|operation timed out/i,
  /\b(502 Bad Gateway|503 Service Unavailable|504 Gateway Time-?out)\b/i,
  // Search API / Solr / Elasticsearch / Redis client failures that name the backend.
  /\b(solr|elasticsearch|opensearch|redis|memcache[d]?|search api)\b.*\b(unavailable|unreachable|down|timed? ?out|connection|refused|failed to connect)\b/i,
  // A site-specific method may say so plainly.
  /\b(backend|upstream|service|dependency)\b.{0,40}\b(unavailable|unreachable|is down|timed? ?out|did not respond|not responding)\b/i
]

/**
 * Whether a -32603's `data` says that a backend the method depends on failed, rather than a bug
 * or a deterministic refusal: a diagnostic for logs. The retry rule ({@link isTransient}) does
 * not use it, because wording varies by backend, driver and language.
 *
 * Detection, in order:
 * 1. Structured data (a site that knows it can say so): an object with `retryable: true` or
 *    `transient: true` is a backend failure; with either set to `false` it is not.
 * 2. A string (the jsonrpc module puts the exception message there): true when it matches one
 *    of a fixed list of connection-class patterns — PDO connection SQLSTATEs (08xxx, HY000
 *    [2002]/[2006]/[2013], 40001 deadlock), cURL 6/7/28/35/52/56, "connection refused/reset/timed
 *    out", 502/503/504 status lines, Solr/Elasticsearch/Redis "unavailable"/"connection" errors,
 *    and "backend|upstream|service|dependency … unavailable|unreachable|is down|timed out|did not
 *    respond|not responding".
 *    Only the first 1 KiB is scanned.
 * 3. Anything else: false.
 *
 * The bias is deliberate: a miss costs one failed call (the client sees the error), a false hit
 * costs at most the retry policy's bounded attempts.
 */
export const isBackendFailure = (data: unknown): boolean => {
  if (typeof data === "object" && data !== null && !Array.isArray(data)) {
    const flags = data as { retryable?: unknown; transient?: unknown; message?: unknown }
    if (typeof flags.retryable === "boolean") return flags.retryable
    if (typeof flags.transient === "boolean") return flags.transient
    return typeof flags.message === "string" && isBackendFailure(flags.message)
  }
  if (typeof data !== "string") return false
  const text = data.length > 1024 ? data.slice(0, 1024) : data
  return BACKEND_FAILURE_PATTERNS.some((pattern) => pattern.test(text))
}

/**
 * Whether structured `data` opts out of (or into) a retry: an object with a boolean `retryable`
 * or `transient` member. `undefined` when the data says nothing.
 */
const retryFlag = (data: unknown): boolean | undefined => {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return undefined
  const flags = data as { retryable?: unknown; transient?: unknown }
  return typeof flags.retryable === "boolean"
    ? flags.retryable
    : typeof flags.transient === "boolean"
    ? flags.transient
    : undefined
}

/**
 * Whether `error` is Drupal's definite refusal of what was asked, as this caller: HTTP 401, 403
 * or 404, an access denied (-32600), a method that is gone (-32601), or a content method's own
 * "not found" (-32602 naming it). The cache never hides one behind a stale copy.
 */
export const isRefusal = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const e = error as DrupalError
  const rpc = e._tag === "DrupalRpcError"
    ? { code: e.code, data: e.data }
    : e._tag === "DrupalHttpError" && e.rpcError !== undefined
    ? { code: e.rpcError.code, data: e.rpcError.data }
    : undefined
  if (e._tag === "DrupalHttpError" && (e.status === 401 || e.status === 403 || e.status === 404)) return true
  if (rpc === undefined) return false
  return rpc.code === JsonRpcCode.InvalidRequest && /access denied/i.test(String(rpc.data)) ||
    rpc.code === JsonRpcCode.MethodNotFound ||
    rpc.code === JsonRpcCode.InvalidParams && /not (be )?found/i.test(String(rpc.data))
}

/**
 * The retry rule of the upstream, decided by the structure of the failure (status, code, id),
 * never by the wording of a message:
 *
 * | error | transient |
 * | --- | --- |
 * | `DrupalTransportError` (refused, reset, DNS, TLS, socket closed) | yes |
 * | `DrupalTimeoutError` (connect, headers, call) | yes |
 * | `DrupalHttpError` 5xx (500 and Drupal's HTML 500 page, 502, 503, 504, …) | yes |
 * | `DrupalHttpError` 400 (parse stage: unknown method, invalid params, invalid envelope) | **never** |
 * | `DrupalHttpError` 401, 403, 404 and every other non-5xx status (incl. 408, 429) | no |
 * | `DrupalRpcError` -32603 **with the request's id** | yes, unless its data is an object with `retryable`/`transient` `false` |
 * | `DrupalRpcError` with `id: null` (access denied, an error the method raised itself) | **never** |
 * | `DrupalRpcError` any other code | no |
 * | `DrupalDecodeError` (a malformed reply is deterministic) | no |
 * | `CircuitOpenError` (retrying defeats fail-fast) | no |
 *
 * Why -32603 with the request's id is retried: in the jsonrpc module that pair means one thing,
 * an exception the method did not handle (the module wraps it with the request's id; errors a
 * method raises on purpose come back with `id: null`). Such an exception is most often a backend
 * the method depends on (database, search server, an HTTP service) failing, and its message
 * varies with the backend, the driver and the site's language, so wording cannot tell a backend
 * outage from a bug. A bug costs at most the retry policy's bounded attempts; a site that knows
 * better can say so with structured data (`{"retryable": false}`). {@link isBackendFailure}
 * remains for logs and diagnostics, not for this decision.
 *
 * Pure and total.
 */
export const isTransient = (error: DrupalError): boolean => {
  switch (error._tag) {
    case "DrupalTransportError":
    case "DrupalTimeoutError":
      return true
    case "DrupalHttpError":
      return error.status >= 500 && error.status <= 599
    case "DrupalRpcError":
      return error.code === JsonRpcCode.InternalError && error.id !== null && retryFlag(error.data) !== false
    case "DrupalDecodeError":
    case "CircuitOpenError":
      return false
  }
}

/**
 * {@link isTransient} for a value of unknown type: false for anything that is not a
 * {@link DrupalError}. The Drupal client's retry predicate (`resilience/Retry.ts` knows no Drupal).
 */
export const isTransientUnknown = (error: unknown): boolean => isDrupalError(error) && isTransient(error)
