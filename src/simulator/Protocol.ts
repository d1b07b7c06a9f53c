/**
 * The jsonrpc module's request handling, without HTTP: parse everything first, then run the
 * calls in order.
 *
 * Parse stage ({@link parseRequest}): the envelope schema over every item (`"jsonrpc": "2.0"`,
 * string `method`, `id` number/string, `params` object/array), then item by item method lookup,
 * required params (absent or `null` is missing), param schemas (the effective one), and
 * parse-time upcasting (entity loads). The first failure rejects the whole HTTP request: one
 * error object, never an array, HTTP 400 (an envelope failure depends on the module version).
 *
 * Run stage ({@link execute}): per item, access check (-32600 `Access Denied: <reason>`, id
 * null), an optional injected backend failure (-32603 with the item's id, like any exception the
 * method does not handle), the method (an error it raises itself: id null; an exception: -32603
 * with the item's id); failures are per item at HTTP 200. Items without an `id` member are
 * notifications: they run, but give no reply item. `"id": null` is no notification: it fails
 * the envelope schema.
 *
 * @since 0.1.0
 */
import { validate } from "./JsonSchema.js"
import {
  accessReason,
  type CallContext,
  effectiveSchema,
  ENTITY_FACTORY,
  type MethodDefinition,
  type RpcError,
  RpcErrors
} from "./Methods.js"
import type { Site } from "./Site.js"
import type { SiteUser } from "./Users.js"

/** A request id. */
export type RpcId = number | string

/** One reply item. */
export type ReplyItem =
  | { readonly jsonrpc: "2.0"; readonly id: RpcId | null; readonly result: unknown }
  | { readonly jsonrpc: "2.0"; readonly id: RpcId | null; readonly error: RpcError }

/** A parsed call, ready to run. */
export interface Call {
  /** `undefined` for a notification. */
  readonly id: RpcId | undefined
  readonly method: MethodDefinition
  readonly params: Readonly<Record<string, unknown>>
}

/** Outcome of the parse stage. */
export type ParseResult =
  /**
   * The body fails the module's envelope schema (or is not an object or array): in 2.0.0–2.0.4
   * an uncaught `TypeError` (Drupal's HTML 500 page), from 2.0.5 HTTP 400 with -32603 and id
   * null. `data` names the invalid input.
   */
  | { readonly _tag: "EnvelopeInvalid"; readonly data: string }
  /** A parse-stage failure: answer HTTP 400 with this single error object. */
  | { readonly _tag: "Rejected"; readonly reply: ReplyItem }
  /** Every item parsed; `batch` tells whether to answer an array. May be empty (`[]`). */
  | { readonly _tag: "Accepted"; readonly batch: boolean; readonly calls: ReadonlyArray<Call> }

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** An error reply item. */
export const errorReply = (id: RpcId | null, error: RpcError): ReplyItem => ({ jsonrpc: "2.0", id, error })

const phpType = (value: unknown): string =>
  value === null
    ? "NULL"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "object"
    ? "an object"
    : typeof value === "boolean"
    ? "a boolean"
    : typeof value === "number"
    ? Number.isInteger(value) ? "an integer" : "a number"
    : "a string"

/**
 * The first envelope violation of one item, as the module's request schema reports it
 * (`"jsonrpc": "2.0"`, string `method`, `id` number or string when present, `params` object or
 * array when present), or `undefined`.
 */
const envelopeViolation = (item: unknown, at: string): string | undefined => {
  if (!isRecord(item)) return `[${at}] ${phpType(item)} value found, but an object is required`
  if (item.jsonrpc !== "2.0") {
    return item.jsonrpc === undefined
      ? `[${at}.jsonrpc] The property jsonrpc is required`
      : `[${at}.jsonrpc] Does not have a value in the enumeration ["2.0"]`
  }
  if (item.method === undefined) return `[${at}.method] The property method is required`
  if (typeof item.method !== "string") return `[${at}.method] ${phpType(item.method)} value found, but a string is required`
  if ("id" in item && typeof item.id !== "number" && typeof item.id !== "string") {
    return `[${at}.id] ${phpType(item.id)} value found, but a string or a number is required`
  }
  if ("params" in item && (typeof item.params !== "object" || item.params === null)) {
    return `[${at}.params] ${phpType(item.params)} value found, but an object or an array is required`
  }
  return undefined
}

/**
 * Parses a decoded JSON body against the site's methods, as the module's `RpcRequestFactory`
 * does: the envelope schema over the whole body first, then item by item method lookup,
 * required params (absent or `null` is missing), param schemas (the effective one) and
 * parse-time upcasting (entity loads). Ids of parse-stage errors follow the module: the item's
 * id for an unknown method and a missing required param, `null` for a schema failure and a
 * missing entity. Pure apart from upcasts reading the site. Never throws.
 */
export const parseRequest = (body: unknown, site: Site): ParseResult => {
  const batch = Array.isArray(body)
  const items: ReadonlyArray<unknown> = batch ? body : [body]
  for (let i = 0; i < items.length; i++) {
    const violation = envelopeViolation(items[i], batch ? `${i}` : "request")
    if (violation !== undefined) return { _tag: "EnvelopeInvalid", data: violation }
  }
  const reject = (id: RpcId | null, error: RpcError): ParseResult => ({ _tag: "Rejected", reply: errorReply(id, error) })

  const calls: Array<Call> = []
  for (const raw of items) {
    const item = raw as Record<string, unknown> & { readonly method: string }
    const id = typeof item.id === "number" || typeof item.id === "string" ? item.id : undefined
    const params = item.params
    const method = site.registry.get(item.method)
    if (method === undefined) return reject(id ?? null, RpcErrors.methodNotFound(item.method))

    const values: Record<string, unknown> = {}
    // Undeclared params are ignored, also on methods that declare none.
    for (const [name, param] of Object.entries(method.params ?? {})) {
      // Named lookup only: positional (array) params never match a named parameter.
      const value = isRecord(params) ? params[name] : undefined
      if (value === undefined || value === null) {
        if (param.required === true) return reject(id ?? null, RpcErrors.invalidParams(`Missing required parameter: ${name}`))
        continue
      }
      const violation = validate(effectiveSchema(param), value, name)
      if (violation !== undefined) {
        return reject(null, RpcErrors.invalidParams(`The ${name} parameter does not conform to the parameter schema. ${violation}`))
      }
      let converted: unknown = value
      if (param.upcast !== undefined) {
        const up = param.upcast(value, site)
        if (up._tag === "Invalid") return reject(null, RpcErrors.invalidParams(up.data))
        converted = up.value
      } else if (param.factory === ENTITY_FACTORY) {
        return reject(null, RpcErrors.invalidParams("The requested entity could not be found."))
      }
      values[name] = converted
    }
    calls.push({ id, method, params: values })
  }
  return { _tag: "Accepted", batch, calls }
}

/** The permissions of the method the user lacks (empty: the user may execute it). */
export const missingPermissions = (site: Site, user: SiteUser, method: MethodDefinition): ReadonlyArray<string> =>
  (method.access ?? []).filter((p) => !site.roles.has(user, p))

/** Whether the user holds every permission the method asks for. */
export const canExecute = (site: Site, user: SiteUser, method: MethodDefinition): boolean =>
  missingPermissions(site, user, method).length === 0


/**
 * Runs the calls in order and returns the reply items (notifications give none). `inject` may
 * turn a call into a simulated backend failure; it is asked only for calls that pass the
 * access check.
 */
export const execute = (
  calls: ReadonlyArray<Call>,
  user: SiteUser,
  site: Site,
  inject: (method: MethodDefinition) => RpcError | undefined
): Array<ReplyItem> => {
  const replies: Array<ReplyItem> = []
  for (const call of calls) {
    const reply = runOne(call, user, site, inject)
    if (call.id !== undefined) replies.push(reply)
  }
  return replies
}

const runOne = (
  call: Call,
  user: SiteUser,
  site: Site,
  inject: (method: MethodDefinition) => RpcError | undefined
): ReplyItem => {
  const id = call.id ?? null
  const missing = missingPermissions(site, user, call.method)
  if (missing.length > 0) return errorReply(null, RpcErrors.accessDenied(accessReason(missing)))
  // A backend failing under the method is an exception the method does not handle.
  const injected = inject(call.method)
  if (injected !== undefined) return errorReply(id, injected)
  try {
    const ctx: CallContext = { user, site, params: call.params }
    const outcome = call.method.execute !== undefined
      ? call.method.execute(ctx)
      : { _tag: "Result" as const, value: call.method.result ?? null }
    return outcome._tag === "Result"
      ? { jsonrpc: "2.0", id, result: outcome.value }
      : errorReply(null, outcome.error)
  } catch (e) {
    return errorReply(id, RpcErrors.internal(e instanceof Error ? e.message : String(e)))
  }
}
