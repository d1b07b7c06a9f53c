/**
 * Validation of tool/method call arguments against a method's translated `inputSchema`
 * ({@link McpTools.inputSchema}) before anything is sent upstream, so a bad call is answered
 * at once with a message that names the field and the rule, e.g.
 * `page.limit: must be >= 0 (minimum)` or `query: is required`.
 *
 * Discovery schemas are draft-04 era (boolean `exclusiveMinimum`, `id`), so the validator is
 * Ajv's draft-04 dialect (`ajv-draft-04`) with `ajv-formats`. Validators are compiled once per
 * (method-set fingerprint, method id) and kept in a bounded LRU map; evicted ones are also
 * removed from Ajv's own schema cache, so memory stays bounded however often discovery changes.
 *
 * Undeclared arguments are allowed (Drupal ignores them) unless `strict` is set.
 *
 * @since 0.1.0
 */
import AjvDraft04 from "ajv-draft-04"
import type { ErrorObject, ValidateFunction } from "ajv-draft-04"
import addFormats from "ajv-formats"
import { Context, Data, Effect, Layer } from "effect"
import type { MethodInfo } from "./DiscoveryDocument.js"
import { inputSchema, type ObjectSchema } from "./McpTools.js"

/** One problem with the arguments: where (dotted path, `arguments` for the root) and which rule. */
export interface ArgumentIssue {
  /** Dotted path of the offending value, array items as `[i]`: `page.limit`, `tags[1]`. */
  readonly path: string
  /** The JSON Schema keyword that failed: `required`, `type`, `minimum`, `enum`, … */
  readonly rule: string
  /** The rendered issue: `<path>: <what is wrong>` plus ` (<rule>)` except for `required`. */
  readonly message: string
}

/**
 * The call arguments do not satisfy the method's input schema. `message` lists the issues
 * (at most {@link MAX_ISSUES}, joined with `; `, with a count of the rest); `issues` has the
 * same ones, structured.
 */
export class InvalidArguments extends Data.TaggedError("InvalidArguments")<{
  readonly method: string
  readonly issues: ReadonlyArray<ArgumentIssue>
  /** How many issues there were in all (may exceed `issues.length`). */
  readonly total: number
}> {
  override get message(): string {
    const rest = this.total - this.issues.length
    return this.issues.map((issue) => issue.message).join("; ") + (rest > 0 ? `; and ${rest} more` : "")
  }
}

/** Most issues kept on one {@link InvalidArguments}. */
export const MAX_ISSUES = 10

/** Options of {@link make}. */
export interface ArgumentValidatorOptions {
  /** Compiled validators kept (LRU). Default 1024: a few hundred methods across a few sets. */
  readonly maxEntries?: number
  /** Refuse arguments that the method does not declare. Default `false` (Drupal ignores them). */
  readonly strict?: boolean
}

/** The validator service. */
export interface ArgumentValidator {
  /**
   * Validates `args` (a tool call's `arguments`; `undefined` and `null` mean none, i.e. `{}`)
   * against `method`'s input schema. `version` is the fingerprint of the method set `method`
   * came from: it keys the compiled-validator cache, so pass the set's current fingerprint.
   * Fails with {@link InvalidArguments}; never fails otherwise. A schema Ajv cannot compile is
   * logged once (warning) and the method's arguments are then not checked here (Drupal still
   * validates them). Synchronous work only; safe to call from any number of fibers.
   */
  readonly validate: (version: string, method: MethodInfo, args: unknown) => Effect.Effect<void, InvalidArguments>
  /** Compiled validators currently cached (at most `maxEntries`). */
  readonly size: Effect.Effect<number>
}

/** Tag of the {@link ArgumentValidator} service. */
export const ArgumentValidator = Context.GenericTag<ArgumentValidator>("accelerator/ArgumentValidator")

interface Entry {
  /** `undefined` when the schema did not compile: such a method is not checked. */
  readonly validate: ValidateFunction | undefined
  readonly schema: object
}

const escapeSegment = (segment: string): string => segment.replace(/~1/g, "/").replace(/~0/g, "~")

const isIdentifier = (segment: string): boolean => /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)

/**
 * Renders an Ajv instance path (JSON pointer) as a dotted path, walking `data` to tell array
 * indices (`[1]`) from object keys; keys that are not identifiers are quoted (`["a.b"]`).
 */
const dottedPath = (pointer: string, data: unknown, extra?: string): string => {
  const segments = pointer === "" ? [] : pointer.slice(1).split("/").map(escapeSegment)
  if (extra !== undefined) segments.push(extra)
  let path = ""
  let current: unknown = data
  for (const segment of segments) {
    if (Array.isArray(current)) {
      path += `[${segment}]`
      current = current[Number(segment)]
    } else {
      path += isIdentifier(segment) ? (path === "" ? segment : `.${segment}`) : `[${JSON.stringify(segment)}]`
      current = typeof current === "object" && current !== null ? (current as Record<string, unknown>)[segment] : undefined
    }
  }
  return path === "" ? "arguments" : path
}

const MAX_ENUM_SHOWN = 10

const issueOf = (error: ErrorObject, data: unknown): ArgumentIssue => {
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case "required": {
      const path = dottedPath(error.instancePath, data, String(params["missingProperty"]))
      return { path, rule: "required", message: `${path}: is required` }
    }
    case "additionalProperties": {
      const path = dottedPath(error.instancePath, data, String(params["additionalProperty"]))
      return { path, rule: "additionalProperties", message: `${path}: is not allowed (additionalProperties)` }
    }
    case "enum": {
      const path = dottedPath(error.instancePath, data)
      const allowed = Array.isArray(params["allowedValues"]) ? (params["allowedValues"] as Array<unknown>) : []
      const shown = allowed.slice(0, MAX_ENUM_SHOWN).map((value) => JSON.stringify(value)).join(", ")
      const more = allowed.length > MAX_ENUM_SHOWN ? ", …" : ""
      return { path, rule: "enum", message: `${path}: must be one of ${shown}${more} (enum)` }
    }
    default: {
      const path = dottedPath(error.instancePath, data)
      return { path, rule: error.keyword, message: `${path}: ${error.message ?? "is invalid"} (${error.keyword})` }
    }
  }
}

const validationSchema = (method: MethodInfo, strict: boolean): object => {
  const root: ObjectSchema = inputSchema(method)
  return strict ? { ...root, additionalProperties: false } : root
}

/**
 * Builds a validator with its own Ajv instance and cache. Dies with a `RangeError` when
 * `maxEntries` is not an integer >= 1.
 */
export const make = (options: ArgumentValidatorOptions = {}): Effect.Effect<ArgumentValidator> =>
  Effect.sync(() => {
    const maxEntries = options.maxEntries ?? 1024
    const strict = options.strict ?? false
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(`ArgumentValidator maxEntries must be an integer >= 1, got ${maxEntries}`)
    }
    // allErrors: report every problem at once (an LLM fixes all of them in one go); no
    // coercion, defaults or removal: arguments are forwarded to Drupal exactly as given.
    const ajv = new AjvDraft04.default({ allErrors: true, strict: false, logger: false })
    addFormats.default(ajv)
    // A Map iterates in insertion order; re-inserting on hit makes the first key the LRU one.
    const cache = new Map<string, Entry>()

    const lookup = (key: string, method: MethodInfo): Effect.Effect<Entry> =>
      Effect.suspend(() => {
        const hit = cache.get(key)
        if (hit !== undefined) {
          cache.delete(key)
          cache.set(key, hit)
          return Effect.succeed(hit)
        }
        const schema = validationSchema(method, strict)
        let entry: Entry
        let failure: unknown = undefined
        try {
          entry = { validate: ajv.compile(schema), schema }
        } catch (error) {
          // Ajv may have cached the half-compiled schema before failing.
          ajv.removeSchema(schema)
          entry = { validate: undefined, schema }
          failure = error
        }
        cache.set(key, entry)
        if (cache.size > maxEntries) {
          const oldest = cache.keys().next()
          if (oldest.done !== true) {
            const evicted = cache.get(oldest.value)
            cache.delete(oldest.value)
            if (evicted?.validate !== undefined) ajv.removeSchema(evicted.schema)
          }
        }
        return failure === undefined
          ? Effect.succeed(entry)
          : Effect.as(
            Effect.logWarning("Input schema does not compile; arguments not validated").pipe(
              Effect.annotateLogs({ method: method.id, error: String(failure) })
            ),
            entry
          )
      })

    const validate = (version: string, method: MethodInfo, args: unknown): Effect.Effect<void, InvalidArguments> =>
      Effect.flatMap(lookup(`${version}\u0000${method.id}`, method), (entry) => {
        if (entry.validate === undefined) return Effect.void
        const data = args === undefined || args === null ? {} : args
        if (entry.validate(data)) return Effect.void
        const errors = entry.validate.errors ?? []
        return Effect.fail(
          new InvalidArguments({
            method: method.id,
            issues: errors.slice(0, MAX_ISSUES).map((error) => issueOf(error, data)),
            total: errors.length
          })
        )
      })

    return { validate, size: Effect.sync(() => cache.size) } satisfies ArgumentValidator
  })

/** A layer of {@link ArgumentValidator} built by {@link make} with `options`. */
export const layer = (options: ArgumentValidatorOptions = {}): Layer.Layer<ArgumentValidator> =>
  Layer.effect(ArgumentValidator, make(options))

/** The validator with default options (lenient, 1024 entries). A module constant: build it once. */
export const Default: Layer.Layer<ArgumentValidator> = layer()
