/**
 * The subset of JSON Schema (draft-04) the jsonrpc module's parameter schemas use: `type`
 * (one or a list), `enum`, `minLength`/`maxLength`/`pattern`, `minimum`/`maximum` (with the
 * draft-04 boolean `exclusiveMinimum`/`exclusiveMaximum`), `items`, `minItems`/`maxItems`,
 * `properties`, `required`, `additionalProperties`. Unknown keywords are ignored, as validators do.
 *
 * @since 0.1.0
 */

/** A JSON Schema object (draft-04). */
export type JsonSchema = { readonly [keyword: string]: unknown }

const typeOf = (value: unknown): string => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "array"
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number"
  return typeof value
}

const matchesType = (value: unknown, type: string): boolean => {
  const actual = typeOf(value)
  return actual === type || (type === "number" && actual === "integer")
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const show = (value: unknown): string => {
  const s = JSON.stringify(value) ?? String(value)
  return s.length > 60 ? s.slice(0, 57) + "..." : s
}

/**
 * Validates `value` against `schema`. Returns `undefined` when valid, or a one-line message
 * naming the first violation and where it is (`path` is the JSON path prefix, e.g. `page`).
 */
export const validate = (schema: JsonSchema, value: unknown, path: string): string | undefined => {
  const at = path === "" ? "the value" : path
  const type = schema.type
  if (typeof type === "string" || Array.isArray(type)) {
    const types = (Array.isArray(type) ? type : [type]) as ReadonlyArray<string>
    if (!types.some((t) => matchesType(value, t))) {
      return `${at}: ${typeOf(value)} value found, but ${types.length === 1 ? `a ${types[0]}` : `one of ${types.join(", ")}`} is required`
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    return `${at}: does not have a value in the enumeration ${show(schema.enum)}`
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) {
      return `${at}: must be at least ${schema.minLength} characters long`
    }
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) {
      return `${at}: must be at most ${schema.maxLength} characters long`
    }
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
      return `${at}: does not match the regex pattern ${schema.pattern}`
    }
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number") {
      const bad = schema.exclusiveMinimum === true ? value <= schema.minimum : value < schema.minimum
      if (bad) return `${at}: must have a minimum value of ${schema.minimum}`
    }
    if (typeof schema.maximum === "number") {
      const bad = schema.exclusiveMaximum === true ? value >= schema.maximum : value > schema.maximum
      if (bad) return `${at}: must have a maximum value of ${schema.maximum}`
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) {
      return `${at}: there must be a minimum of ${schema.minItems} items in the array`
    }
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) {
      return `${at}: there must be a maximum of ${schema.maxItems} items in the array`
    }
    if (isRecord(schema.items)) {
      for (let i = 0; i < value.length; i++) {
        const err = validate(schema.items, value[i], `${path}[${i}]`)
        if (err !== undefined) return err
      }
    }
  }
  if (isRecord(value)) {
    if (Array.isArray(schema.required)) {
      for (const name of schema.required) {
        if (typeof name === "string" && !(name in value)) return `${path === "" ? "" : path + "."}${name}: the property ${name} is required`
      }
    }
    const props = isRecord(schema.properties) ? schema.properties : {}
    for (const [name, sub] of Object.entries(props)) {
      if (name in value && isRecord(sub)) {
        const err = validate(sub, value[name], path === "" ? name : `${path}.${name}`)
        if (err !== undefined) return err
      }
    }
    if (schema.additionalProperties === false) {
      const extra = Object.keys(value).find((k) => !(k in props))
      if (extra !== undefined) return `${at}: the property ${extra} is not defined and the definition does not allow additional properties`
    } else if (isRecord(schema.additionalProperties)) {
      for (const [name, v] of Object.entries(value)) {
        if (name in props) continue
        const err = validate(schema.additionalProperties, v, path === "" ? name : `${path}.${name}`)
        if (err !== undefined) return err
      }
    }
  }
  return undefined
}
