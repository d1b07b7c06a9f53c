/**
 * Translation of discovered methods into MCP tool definitions, and MCP's "root must be an
 * object" rule for output schemas and results.
 *
 * Rules (from the upstream notes): `name` = method id (dots are valid in MCP tool names),
 * `description` = usage, `inputSchema = {type: "object", properties: {<param>: schema +
 * description}, required: [...]}` with `required` left out when no param is required, and
 * `{type: "object"}` for a method without params. A non-object output schema is wrapped as
 * `{type: "object", properties: {result: <schema>}, required: ["result"]}`, and the result
 * likewise as `{result}`.
 *
 * All functions are pure and never mutate their input.
 *
 * @since 0.1.0
 */
import type { JsonSchema, MethodInfo, ParamInfo } from "./DiscoveryDocument.js"

/** A JSON Schema whose root is `type: "object"`, as MCP requires for input and output schemas. */
export interface ObjectSchema {
  readonly type: "object"
  readonly properties?: { readonly [name: string]: JsonSchema }
  readonly required?: ReadonlyArray<string>
  readonly [keyword: string]: unknown
}

/** An MCP tool definition (the members this gateway fills). */
export interface McpTool {
  readonly name: string
  /** The method's usage text; left out when discovery gave none. */
  readonly description?: string
  readonly inputSchema: ObjectSchema
}

/**
 * The property schema of one param: its effective schema with the param's description (the
 * param's own description wins over one inside the schema). A `$schema` member is dropped: it is
 * meaningless below the root and makes validators that do not know draft-04 refuse the schema.
 */
export const paramSchema = (param: ParamInfo): JsonSchema => {
  const { $schema: _dialect, ...schema } = param.schema
  return param.description === undefined ? schema : { ...schema, description: param.description }
}

/**
 * The `inputSchema` of a method: `{type: "object"}` without params; otherwise `properties` with
 * every param (discovery order) and `required` listing the required ones, left out when none is.
 */
export const inputSchema = (method: MethodInfo): ObjectSchema => {
  if (method.params.length === 0) return { type: "object" }
  const properties = Object.fromEntries(method.params.map((param) => [param.name, paramSchema(param)]))
  const required = method.params.filter((param) => param.required).map((param) => param.name)
  return required.length === 0 ? { type: "object", properties } : { type: "object", properties, required }
}

/** The MCP tool of a method (see the module documentation for the rules). */
export const toTool = (method: MethodInfo): McpTool =>
  method.usage === ""
    ? { name: method.id, inputSchema: inputSchema(method) }
    : { name: method.id, description: method.usage, inputSchema: inputSchema(method) }

/** {@link toTool} over a method set, sorted by name so `tools/list` is stable across discoveries. */
export const toTools = (methods: ReadonlyArray<MethodInfo>): ReadonlyArray<McpTool> =>
  methods.map(toTool).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

/** An output schema as MCP will see it, and whether results must be wrapped to match it. */
export interface OutputTranslation {
  readonly outputSchema: ObjectSchema
  /** `true` when results are sent as `{result: <value>}`. */
  readonly wrapped: boolean
}

/**
 * Translates a method's output schema: one whose root `type` is exactly `"object"` is kept
 * (`wrapped: false`); anything else (a scalar, an array, a type union, no `type`) becomes
 * `{type: "object", properties: {result: <schema>}, required: ["result"]}` (`wrapped: true`).
 */
export const outputSchema = (schema: JsonSchema): OutputTranslation =>
  schema["type"] === "object"
    ? { outputSchema: { ...schema, type: "object" }, wrapped: false }
    : { outputSchema: { type: "object", properties: { result: schema }, required: ["result"] }, wrapped: true }

const isPlainObject = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * A result as MCP `structuredContent` for a translated output schema: `{result: value}` when the
 * schema was wrapped, the value itself when it was not. A value that does not fit an unwrapped
 * object schema (not a plain object) is also sent as `{result: value}` rather than breaking the
 * "object" rule; output validation then reports the mismatch.
 */
export const wrapResult = (translation: OutputTranslation, result: unknown): { readonly [key: string]: unknown } =>
  !translation.wrapped && isPlainObject(result) ? result : { result }
