/**
 * The discovery format of the Drupal `jsonrpc_discovery` module (JSON:API-like) as `effect/Schema`
 * values, and its decoded form {@link MethodInfo}.
 *
 * Wire quirks handled here:
 * - `GET /jsonrpc/methods` wraps method objects in `data`; `GET /jsonrpc/methods/{id}` returns
 *   one method object unwrapped.
 * - Drupal drops empty, false and null attributes: `params` is absent for a method without
 *   params, `required` appears only when true, `usage` and `description` may be absent. PHP also
 *   serialises an empty map as `[]`, so an empty `attributes`, `params` or `schema` may arrive as
 *   an empty array; all of these decode as "nothing".
 * - A param's effective schema is its **top-level** `schema` (computed from a factory when there
 *   is one), not `attributes.schema`; a param without one accepts anything (`{}`).
 * - Unknown members (`links`, `attributes.factory`, …) are ignored.
 *
 * @since 0.1.0
 */
import { Effect, ParseResult, Schema } from "effect"
import { DrupalDecodeError } from "../drupal/DrupalError.js"

/** A JSON Schema (draft-04 era) object, kept as data. */
export const JsonSchema = Schema.Record({ key: Schema.String, value: Schema.Unknown })
/** A JSON Schema object. */
export type JsonSchema = typeof JsonSchema.Type

/** PHP's empty array, which is what an empty map becomes on the wire. */
const EmptyPhpArray = Schema.Tuple()

/** A wire param definition (`JsonRpcParameterDefinition`); only the members we read. */
export const ParamResource = Schema.Struct({
  type: Schema.optional(Schema.String),
  id: Schema.optional(Schema.String),
  attributes: Schema.optional(
    Schema.Union(
      Schema.Struct({
        description: Schema.optional(Schema.String),
        required: Schema.optional(Schema.Boolean)
      }),
      EmptyPhpArray
    )
  ),
  schema: Schema.optional(Schema.Union(JsonSchema, EmptyPhpArray))
})
/** A wire param definition. */
export type ParamResource = typeof ParamResource.Type

/** A wire method object (`JsonRpcMethod`); only the members we read. */
export const MethodResource = Schema.Struct({
  type: Schema.optional(Schema.String),
  id: Schema.String,
  attributes: Schema.optional(
    Schema.Union(
      Schema.Struct({
        usage: Schema.optional(Schema.String),
        params: Schema.optional(
          Schema.Union(Schema.Record({ key: Schema.String, value: ParamResource }), EmptyPhpArray)
        )
      }),
      EmptyPhpArray
    )
  )
})
/** A wire method object. */
export type MethodResource = typeof MethodResource.Type

/** One declared param of a method, decoded. */
export const ParamInfo = Schema.Struct({
  /** The param's name (the key in `params`). */
  name: Schema.String,
  description: Schema.optional(Schema.String),
  /** `true` only when discovery said so. */
  required: Schema.Boolean,
  /** The effective (top-level) schema; `{}` when discovery gave none. */
  schema: JsonSchema
})
/** One declared param of a method. */
export type ParamInfo = typeof ParamInfo.Type

/** A method as the gateway uses it: id, usage text (may be empty) and params in discovery order. */
export const MethodInfo = Schema.Struct({
  id: Schema.String,
  usage: Schema.String,
  params: Schema.Array(ParamInfo)
})
/** A method as the gateway uses it. */
export type MethodInfo = typeof MethodInfo.Type

const isEmptyArray = (u: unknown): u is readonly [] => Array.isArray(u)

const paramFromResource = (name: string, param: ParamResource): ParamInfo => {
  const attributes = param.attributes === undefined || isEmptyArray(param.attributes) ? {} : param.attributes
  const schema = param.schema === undefined || isEmptyArray(param.schema) ? {} : param.schema
  return attributes.description === undefined
    ? { name, required: attributes.required === true, schema }
    : { name, description: attributes.description, required: attributes.required === true, schema }
}

const paramToResource = (param: ParamInfo): ParamResource => {
  const attributes: { description?: string; required?: boolean } = {}
  if (param.description !== undefined) attributes.description = param.description
  if (param.required) attributes.required = true
  return { type: "JsonRpcParameterDefinition", id: param.name, attributes, schema: param.schema }
}

/**
 * Decodes one wire method object into a {@link MethodInfo} (and encodes one back into the wire
 * shape, dropping empty attributes as Drupal does). Fails with a `ParseError` when `id` is
 * missing or a member has the wrong type.
 */
export const MethodInfoFromResource = Schema.transform(MethodResource, MethodInfo, {
  strict: true,
  decode: (resource) => {
    const attributes = resource.attributes === undefined || isEmptyArray(resource.attributes) ? {} : resource.attributes
    const params = attributes.params === undefined || isEmptyArray(attributes.params) ? {} : attributes.params
    return {
      id: resource.id,
      usage: attributes.usage ?? "",
      params: Object.entries(params).map(([name, param]) => paramFromResource(name, param))
    }
  },
  encode: (method) => {
    const attributes: { usage?: string; params?: Record<string, ParamResource> } = {}
    if (method.usage !== "") attributes.usage = method.usage
    if (method.params.length > 0) {
      attributes.params = Object.fromEntries(method.params.map((param) => [param.name, paramToResource(param)]))
    }
    return { type: "JsonRpcMethod", id: method.id, attributes }
  }
})

/**
 * The `GET /jsonrpc/methods` document decoded straight to its methods, in document order. An
 * empty list (a caller allowed to run nothing) is valid.
 */
export const MethodsFromDocument = Schema.transform(
  Schema.Struct({ data: Schema.Array(MethodInfoFromResource) }),
  Schema.typeSchema(Schema.Array(MethodInfo)),
  {
    strict: true,
    decode: (document) => document.data,
    encode: (data) => ({ data })
  }
)

const MAX_DETAIL = 300

const decodeFailure = (method: string) => (error: ParseResult.ParseError): DrupalDecodeError => {
  const detail = ParseResult.ArrayFormatter.formatErrorSync(error)
    .slice(0, 3)
    .map((issue) => `${issue.path.length === 0 ? "(root)" : issue.path.join(".")}: ${issue.message}`)
    .join("; ")
  return new DrupalDecodeError({
    reason: "unexpected_result",
    detail: detail.length > MAX_DETAIL ? `${detail.slice(0, MAX_DETAIL - 1)}…` : detail,
    method,
    cause: error
  })
}

/**
 * Decodes a parsed `GET /jsonrpc/methods` body. Fails with a `DrupalDecodeError`
 * (`unexpected_result`, method `discovery`; `detail` names the paths and problems of up to 3
 * issues, at most 300 characters) when it is not a
 * discovery document.
 */
export const decodeMethodList = (body: unknown): Effect.Effect<ReadonlyArray<MethodInfo>, DrupalDecodeError> =>
  Effect.mapError(Schema.decodeUnknown(MethodsFromDocument)(body), decodeFailure("discovery"))

/**
 * Decodes a parsed `GET /jsonrpc/methods/{id}` body (a method object, not wrapped in `data`).
 * Fails like {@link decodeMethodList}.
 */
export const decodeMethod = (body: unknown): Effect.Effect<MethodInfo, DrupalDecodeError> =>
  Effect.mapError(Schema.decodeUnknown(MethodInfoFromResource)(body), decodeFailure("discovery"))
