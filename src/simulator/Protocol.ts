/**
 * The jsonrpc module's request handling, without HTTP: parse everything first, then run the
 * calls in order.
 *
 * Parse stage ({@link parseRequest}): the `jsonrpc` member of every item, then item by item the
 * envelope (string `method`, `id` number/string/null, `params` object/array), method lookup,
 * required params (absent or `null` is missing), param schemas (the effective one), and
 * parse-time upcasting (entity loads). The first failure rejects the whole HTTP request: one
 * error object, never an array, HTTP 400.
 *
 * Run stage ({@link execute}): per item, access check (-32600 `Access Denied`), an optional
 * injected backend failure, the method; failures are per item at HTTP 200. Items without id (or
 * with id `null`) are notifications: they run, but give no reply item.
 *
 * @since 0.1.0
 */
import { validate } from "./JsonSchema.js"
import {
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
  /** The body is JSON but neither an object nor an array (the module fails with a PHP TypeError). */
  | { readonly _tag: "NotARequest" }
  /** A parse-stage failure: answer HTTP 400 with this single error object. */
  | { readonly _tag: "Rejected"; readonly reply: ReplyItem }
  /** Every item parsed; `batch` tells whether to answer an array. May be empty (`[]`). */
  | { readonly _tag: "Accepted"; readonly batch: boolean; readonly calls: ReadonlyArray<Call> }

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const validId = (item: unknown): RpcId | null => {
  if (!isRecord(item)) return null
  const id = item.id
  return typeof id === "number" || typeof id === "string" ? id : null
}

/** An error reply item. */
export const errorReply = (id: RpcId | null, error: RpcError): ReplyItem => ({ jsonrpc: "2.0", id, error })

/**
 * Parses a decoded JSON body against the site's methods. Pure apart from upcasts reading the
 * site. Never throws.
 */
export const parseRequest = (body: unknown, site: Site): ParseResult => {
  if (!Array.isArray(body) && !isRecord(body)) return { _tag: "NotARequest" }
  const batch = Array.isArray(body)
  const items: ReadonlyArray<unknown> = batch ? body : [body]
  const moduleIds = site.switches.parseErrorId === "module"
  // Failures the module raises without an id (envelope, schema, entity) vs. with the item's id.
  const reject = (item: unknown, error: RpcError, carriesId: boolean): ParseResult => ({
    _tag: "Rejected",
    reply: errorReply(moduleIds && !carriesId ? null : validId(item), error)
  })

  for (const item of items) {
    if (!isRecord(item) || item.jsonrpc !== "2.0") {
      return reject(item, RpcErrors.invalidRequest("Every request must include a 'jsonrpc' member with a value of 2.0."), false)
    }
  }

  const calls: Array<Call> = []
  for (const raw of items) {
    const item = raw as Record<string, unknown>
    const id = item.id
    if (id !== undefined && id !== null && typeof id !== "number" && typeof id !== "string") {
      return reject(item, RpcErrors.invalidRequest("The 'id' member must be a number, a string or null."), false)
    }
    if (typeof item.method !== "string") {
      return reject(item, RpcErrors.invalidRequest("The 'method' member must be a string."), false)
    }
    const params = item.params
    if (params !== undefined && params !== null && typeof params !== "object") {
      return reject(item, RpcErrors.invalidRequest("The 'params' member must be an object or an array."), false)
    }
    const method = site.registry.get(item.method)
    if (method === undefined) return reject(item, RpcErrors.methodNotFound(item.method), true)

    const values: Record<string, unknown> = {}
    const declared = method.params === undefined ? [] : Object.entries(method.params)
    if (declared.length === 0) {
      if (params !== undefined && params !== null && site.switches.paramsOnParamless === "reject") {
        return reject(item, RpcErrors.invalidParams(`The ${method.id} method does not accept parameters.`), true)
      }
    }
    for (const [name, param] of declared) {
      // Named lookup only: positional (array) params never match a named parameter.
      const value = isRecord(params) ? params[name] : undefined
      if (value === undefined || value === null) {
        if (param.required === true) {
          return reject(item, RpcErrors.invalidParams(`Missing required parameter: ${name}`), true)
        }
        continue
      }
      const violation = validate(effectiveSchema(param), value, name)
      if (violation !== undefined) {
        return reject(
          item,
          RpcErrors.invalidParams(`The ${name} parameter does not conform to the parameter schema. ${violation}`),
          false
        )
      }
      let converted: unknown = value
      if (param.upcast !== undefined) {
        const up = param.upcast(value, site)
        if (up._tag === "Invalid") return reject(item, RpcErrors.invalidParams(up.data), false)
        converted = up.value
      } else if (param.factory === ENTITY_FACTORY) {
        return reject(item, RpcErrors.invalidParams("The requested entity could not be found."), false)
      }
      values[name] = converted
    }
    calls.push({ id: id === null || id === undefined ? undefined : id, method, params: values })
  }
  return { _tag: "Accepted", batch, calls }
}

/** Whether the user holds every permission the method asks for. */
export const canExecute = (site: Site, user: SiteUser, method: MethodDefinition): boolean =>
  (method.access ?? []).every((p) => site.roles.has(user, p))

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
  if (!canExecute(site, user, call.method)) return errorReply(id, RpcErrors.accessDenied())
  const injected = inject(call.method)
  if (injected !== undefined) return errorReply(id, injected)
  try {
    const ctx: CallContext = { user, site, params: call.params }
    const outcome = call.method.execute !== undefined
      ? call.method.execute(ctx)
      : { _tag: "Result" as const, value: call.method.result ?? null }
    return outcome._tag === "Result"
      ? { jsonrpc: "2.0", id, result: outcome.value }
      : errorReply(id, outcome.error)
  } catch (e) {
    return errorReply(id, RpcErrors.internal(e instanceof Error ? e.message : String(e)))
  }
}
