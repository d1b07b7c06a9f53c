/**
 * The JSON-RPC 2.0 wire format as Drupal's jsonrpc module speaks it: request items, reply
 * items, and the few helpers every caller needs (stable parameter keys, the GET form).
 *
 * @since 0.1.0
 */

/** One call. `params` is an object (Drupal's methods take named params). */
export interface RpcRequestItem {
  readonly jsonrpc: "2.0"
  readonly method: string
  readonly params?: Record<string, unknown>
  readonly id: number | string
}

/** The `error` member of a failed reply item. Drupal always sends `data`. */
export interface RpcErrorObject {
  readonly code: number
  readonly message: string
  readonly data?: unknown
}

/** One reply item: a result or an error. */
export type RpcReplyItem =
  | { readonly jsonrpc: "2.0"; readonly id: number | string | null; readonly result: unknown }
  | { readonly jsonrpc: "2.0"; readonly id: number | string | null; readonly error: RpcErrorObject }

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Whether `u` has the shape of a reply item (result or error with a numeric code). */
export const isReplyItem = (u: unknown): u is RpcReplyItem =>
  isRecord(u) && ("result" in u || (isRecord(u.error) && typeof u.error.code === "number"))

/** Whether a reply item is an error. */
export const isErrorItem = (item: RpcReplyItem): item is Extract<RpcReplyItem, { error: RpcErrorObject }> =>
  "error" in item

/**
 * Canonical JSON of JSON data: object keys sorted (by UTF-16 code unit), no whitespace, members
 * whose value is `undefined` left out, and otherwise `JSON.stringify`'s rules (`undefined` in an
 * array becomes `null`, non-finite numbers `null`). Arrays keep their order. The input must be
 * acyclic JSON-like data; this is a plain recursion over it, so its cost is linear in its size.
 */
export const canonicalJson = (value: unknown): string => {
  if (value === null || typeof value !== "object") {
    return value === undefined ? "null" : (JSON.stringify(value) ?? "null")
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`
  const record = value as Record<string, unknown>
  const members = Object.keys(record)
    .sort()
    .filter((key) => record[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`)
  return `{${members.join(",")}}`
}

/** The request item for a call. */
export const requestItem = (id: number | string, method: string, params: Record<string, unknown> | undefined): RpcRequestItem =>
  params === undefined ? { jsonrpc: "2.0", method, id } : { jsonrpc: "2.0", method, params, id }

/** The GET form of a request: `<base>/jsonrpc?query=<url-encoded JSON>`. */
export const getUrl = (apiUrl: string, body: string): string => `${apiUrl}?query=${encodeURIComponent(body)}`
