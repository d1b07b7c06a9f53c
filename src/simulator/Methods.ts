/**
 * The method model of the jsonrpc module as the simulator needs it: method and parameter
 * definitions (what `@JsonRpcMethod` / `@JsonRpcParameterDefinition` annotations declare), the
 * JSON-RPC error objects with the module's Title Case messages, the live registry of methods of
 * one simulator instance, and the `Site` its methods run against (here, beside the registry it
 * holds, so that the two types need no import circle; `Site.ts` builds it).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { JsonSchema } from "./JsonSchema.js"
import type { Corpus } from "./Corpus.js"
import type { SearchIndex } from "./Search.js"
import type { RoleTable, SiteUser } from "./Users.js"

/** Class name of the module's pagination parameter factory (`{limit, offset}`). */
export const PAGINATION_FACTORY = "\\Drupal\\jsonrpc\\ParameterFactory\\PaginationParameterFactory"
/** Class name of the module's entity parameter factory (`{type, uuid}`, upcast to the entity). */
export const ENTITY_FACTORY = "\\Drupal\\jsonrpc\\ParameterFactory\\EntityParameterFactory"

/** The schema a factory imposes on its parameter, as the module's factories declare it. */
export const FACTORY_SCHEMAS: Readonly<Record<string, JsonSchema>> = {
  [PAGINATION_FACTORY]: {
    type: "object",
    properties: { limit: { type: "integer", minimum: 0 }, offset: { type: "integer", minimum: 0 } }
  },
  [ENTITY_FACTORY]: { type: "object", properties: { type: { type: "string" }, uuid: { type: "string" } } }
}

/** Result of upcasting a raw parameter value at parse time (like an entity load). */
export type Upcast =
  | { readonly _tag: "Value"; readonly value: unknown }
  | { readonly _tag: "Invalid"; readonly data: string }

/** One declared parameter. */
export interface ParameterDefinition {
  readonly description?: string | undefined
  /** Missing (absent or null) required params fail the whole request with -32602. */
  readonly required?: boolean | undefined
  /** The declared schema (`attributes.schema` in discovery). */
  readonly schema?: JsonSchema | undefined
  /** Factory class; its schema is the effective one when it has one. */
  readonly factory?: string | undefined
  /** Parse-time conversion (simulated entity upcasting); a failure is a parse-stage -32602. */
  readonly upcast?: ((value: unknown, site: Site) => Upcast) | undefined
}

/** A JSON-RPC error object. `data` is always present, as the module always sends it. */
export interface RpcError {
  readonly code: number
  readonly message: string
  readonly data: unknown
}

/** What running a method gives. */
export type MethodOutcome =
  | { readonly _tag: "Result"; readonly value: unknown }
  | { readonly _tag: "Error"; readonly error: RpcError }

/** What a method runs with: the caller, the site, and its validated params (given ones only). */
export interface CallContext {
  readonly user: SiteUser
  readonly site: Site
  readonly params: Readonly<Record<string, unknown>>
}

/**
 * A method. `execute` runs it; a method without `execute` (e.g. one added at run time over
 * `/__sim/methods`) answers `result` (default `null`).
 */
export interface MethodDefinition {
  readonly id: string
  readonly usage: string
  /** Permissions the caller needs, all of them; empty or absent: any caller of the route. */
  readonly access?: ReadonlyArray<string> | undefined
  readonly params?: Readonly<Record<string, ParameterDefinition>> | undefined
  readonly result?: unknown
  readonly execute?: ((ctx: CallContext) => MethodOutcome) | undefined
  /** The backend the method depends on, named in simulated backend failures. */
  readonly backend?: string | undefined
}

/** The effective schema of a parameter: the factory's when it has one, else the declared one. */
export const effectiveSchema = (param: ParameterDefinition): JsonSchema =>
  (param.factory !== undefined ? FACTORY_SCHEMAS[param.factory] : undefined) ?? param.schema ?? {}

/**
 * Constructors of the module's error objects (codes, Title Case messages, data). There is no
 * -32700: no 2.x version answers it (malformed JSON fails like an invalid envelope).
 */
export const RpcErrors = {
  invalidRequest: (data: unknown = "The JSON sent is not a valid Request object."): RpcError => ({ code: -32600, message: "Invalid Request", data }),
  methodNotFound: (method: string): RpcError => ({
    code: -32601,
    message: "Method Not Found",
    data: `The method '${method}' does not exist/is not available.`
  }),
  invalidParams: (data: unknown = "Invalid method parameter(s)."): RpcError => ({ code: -32602, message: "Invalid Params", data }),
  internal: (data: unknown = "Internal JSON-RPC error."): RpcError => ({ code: -32603, message: "Internal Error", data }),
  /** Data `Access Denied`, or `Access Denied: <reason>` when the access result has one. */
  accessDenied: (reason?: string): RpcError => ({
    code: -32600,
    message: "Invalid Request",
    data: reason === undefined || reason === "" ? "Access Denied" : `Access Denied: ${reason}`
  })
} as const

/** The reason Drupal's `AccessResult::allowedIfHasPermissions` gives for missing permissions. */
export const accessReason = (missing: ReadonlyArray<string>): string =>
  missing.length === 1
    ? `The '${missing[0]}' permission is required.`
    : `The following permissions are required: ${missing.map((p) => `'${p}'`).join(" AND ")}.`

/** Shorthand for a successful outcome. */
export const ok = (value: unknown): MethodOutcome => ({ _tag: "Result", value })
/** Shorthand for a failed outcome. */
export const fail = (error: RpcError): MethodOutcome => ({ _tag: "Error", error })

/** The live set of methods of one simulator instance, in registration order. */
export interface MethodRegistry {
  readonly get: (id: string) => MethodDefinition | undefined
  readonly list: () => ReadonlyArray<MethodDefinition>
  /** Adds or replaces (same id) a method. */
  readonly add: (method: MethodDefinition) => void
  /** Removes a method; `false` when there was none. */
  readonly remove: (id: string) => boolean
}

/** A registry holding `initial`. Not thread-shared: one per simulator, used on the event loop. */
export const makeRegistry = (initial: ReadonlyArray<MethodDefinition>): MethodRegistry => {
  const methods = new Map<string, MethodDefinition>(initial.map((m) => [m.id, m]))
  return {
    get: (id) => methods.get(id),
    list: () => [...methods.values()],
    add: (method) => {
      methods.set(method.id, method)
    },
    remove: (id) => methods.delete(id)
  }
}

/**
 * A method as JSON (`POST /__sim/methods`): a fixed-result method for discovery-change tests.
 * Parameters are validated like any other (required, schema, factory).
 */
export const MethodSpec = Schema.Struct({
  id: Schema.NonEmptyString,
  usage: Schema.String,
  access: Schema.optional(Schema.Array(Schema.String)),
  params: Schema.optional(Schema.Record({
    key: Schema.String,
    value: Schema.Struct({
      description: Schema.optional(Schema.String),
      required: Schema.optional(Schema.Boolean),
      schema: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
      factory: Schema.optional(Schema.String)
    })
  })),
  result: Schema.optional(Schema.Unknown)
})
/** A method as JSON. */
export type MethodSpec = typeof MethodSpec.Type

/** The method a spec describes. */
export const fromSpec = (spec: MethodSpec): MethodDefinition => ({
  id: spec.id,
  usage: spec.usage,
  access: spec.access,
  params: spec.params,
  result: spec.result
})

/** The jsonrpc 2.x releases whose wire behaviour differs, as far as the simulator models it. */
export const MODULE_VERSIONS = ["2.0.0", "2.0.1", "2.0.2", "2.0.3", "2.0.4", "2.0.5"] as const
/** A jsonrpc module release. */
export type ModuleVersion = typeof MODULE_VERSIONS[number]

/**
 * What a real site can differ in. Each default follows the jsonrpc module's 2.x source and the
 * site's documented methods (`drupal-jsonrpc.md`).
 */
export interface Switches {
  /**
   * The module release. Envelope failures and malformed JSON: 2.0.0–2.0.4 let the schema's
   * `TypeError` escape (Drupal's HTML 500 page); 2.0.5 catches it (HTTP 400, -32603, id null).
   */
  readonly moduleVersion: ModuleVersion
  /** Whether the site has the `user.access_context` method plugin (else: -32601). */
  readonly accessContext: boolean
  /**
   * A tutorial id that does not exist. `item` (default): `content.get_tutorial` takes a plain
   * integer id (no entity parameter factory, so nothing is loaded at parse stage) and the method
   * itself answers -32602 per item, id null, HTTP 200. `parse`: a site whose `id` parameter is
   * upcast to an entity at parse stage: -32602 with id null fails the whole request, HTTP 400.
   */
  readonly missingItem: "parse" | "item"
}

/** The site: read-mostly, used from the event loop only. */
export interface Site {
  readonly corpus: Corpus
  readonly index: SearchIndex
  readonly roles: RoleTable
  readonly registry: MethodRegistry
  readonly switches: Switches
  readonly streamThresholdChars: number
  readonly streamChunkChars: number
  readonly state: {
    /** Base of tutorial URLs, without trailing slash. */
    siteUrl: string
    maintenanceMode: boolean
  }
}
