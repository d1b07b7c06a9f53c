/**
 * The `jsonrpc_discovery` output: methods as JSON:API-like resources.
 *
 * Shape (as the module's annotation normalizer gives it): `type`, `id`, `attributes` (`usage`,
 * `params` keyed by name, only when there are params; empty, false and null attributes dropped,
 * so `required` appears only when true), `links` (`self`, `collection`). A parameter carries
 * `attributes` (`description`, `required`, `schema` as declared, `factory`) and a top-level
 * `schema`: the effective one (the factory's when it has one). Permissions, output schema and
 * positional-ness are not exposed.
 *
 * @since 0.1.0
 */
import { effectiveSchema, type MethodDefinition, type ParameterDefinition } from "./Methods.js"

const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || v === false || v === "" || v === 0 ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0)

/** Drops empty attributes as PHP's `array_filter` does. */
const filtered = (attributes: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(attributes).filter(([, v]) => !isEmpty(v)))

const renderParam = (name: string, p: ParameterDefinition) => ({
  type: "JsonRpcParameterDefinition",
  id: name,
  attributes: filtered({ description: p.description, required: p.required === true, schema: p.schema, factory: p.factory }),
  schema: effectiveSchema(p)
})

/** One method resource; `baseUrl` is the site's base (links point to `<base>/jsonrpc/methods…`). */
export const renderMethod = (method: MethodDefinition, baseUrl: string) => {
  const params = method.params === undefined
    ? undefined
    : Object.fromEntries(Object.entries(method.params).map(([name, p]) => [name, renderParam(name, p)]))
  return {
    type: "JsonRpcMethod",
    id: method.id,
    attributes: filtered({ usage: method.usage, params }),
    links: {
      self: `${baseUrl}/jsonrpc/methods/${encodeURIComponent(method.id)}`,
      collection: `${baseUrl}/jsonrpc/methods`
    }
  }
}

/** The collection document for the methods the caller may execute. */
export const renderCollection = (methods: ReadonlyArray<MethodDefinition>, baseUrl: string) => ({
  data: methods.map((m) => renderMethod(m, baseUrl)),
  links: { self: `${baseUrl}/jsonrpc/methods` }
})
