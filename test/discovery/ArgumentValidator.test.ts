import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as ArgumentValidator from "../../src/discovery/ArgumentValidator.js"
import type { MethodInfo } from "../../src/discovery/DiscoveryDocument.js"

const search: MethodInfo = {
  id: "content.search",
  usage: "Search tutorials.",
  params: [
    { name: "query", description: "Search terms", required: true, schema: { type: "string", minLength: 1 } },
    { name: "drupal_version", required: false, schema: { type: "string", enum: ["9", "10", "11"] } },
    { name: "tags", required: false, schema: { type: "array", items: { type: "string" } } },
    { name: "sort", required: false, schema: { type: "string", enum: ["relevance", "date", "title"] } },
    {
      name: "page",
      required: false,
      schema: {
        type: "object",
        properties: { limit: { type: "integer", minimum: 0 }, offset: { type: "integer", minimum: 0 } }
      }
    }
  ]
}
const VERSION = "f".repeat(64)

const failureOf = (validator: ArgumentValidator.ArgumentValidator, method: MethodInfo, args: unknown) =>
  Effect.flip(validator.validate(VERSION, method, args))

describe("ArgumentValidator", () => {
  it.effect("accepts valid arguments, undeclared ones included (lenient by default)", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const ok = {
        query: "views",
        drupal_version: "10",
        tags: ["a"],
        sort: "date",
        page: { limit: 0, offset: 20 },
        unknown_extra: true
      }
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(validator.validate(VERSION, search, ok))))
    }))

  it.effect("missing required: `query: is required`", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const error = yield* failureOf(validator, search, {})
      assert.strictEqual(error._tag, "InvalidArguments")
      assert.strictEqual(error.method, "content.search")
      assert.strictEqual(error.message, "query: is required")
      assert.deepStrictEqual(error.issues, [{ path: "query", rule: "required", message: "query: is required" }])
      // No arguments at all means {}.
      assert.strictEqual((yield* failureOf(validator, search, undefined)).message, "query: is required")
      assert.strictEqual((yield* failureOf(validator, search, null)).message, "query: is required")
    }))

  it.effect("wrong type, minLength, enum, nested page.limit minimum, array item", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      assert.strictEqual((yield* failureOf(validator, search, { query: 42 })).message, "query: must be string (type)")
      assert.strictEqual(
        (yield* failureOf(validator, search, { query: "" })).message,
        "query: must NOT have fewer than 1 characters (minLength)"
      )
      assert.strictEqual(
        (yield* failureOf(validator, search, { query: "x", sort: "popular" })).message,
        `sort: must be one of "relevance", "date", "title" (enum)`
      )
      assert.strictEqual(
        (yield* failureOf(validator, search, { query: "x", page: { limit: -1 } })).message,
        "page.limit: must be >= 0 (minimum)"
      )
      assert.strictEqual(
        (yield* failureOf(validator, search, { query: "x", page: { limit: 1.5 } })).message,
        "page.limit: must be integer (type)"
      )
      assert.strictEqual(
        (yield* failureOf(validator, search, { query: "x", tags: ["ok", 7] })).message,
        "tags[1]: must be string (type)"
      )
      assert.strictEqual(
        (yield* failureOf(validator, search, ["x"])).message,
        "arguments: must be object (type)"
      )
    }))

  it.effect("reports every issue at once, structured", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const error = yield* failureOf(validator, search, { drupal_version: 10, page: { offset: -5 } })
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.rule]),
        [["query", "required"], ["drupal_version", "type"], ["drupal_version", "enum"], ["page.offset", "minimum"]]
      )
      assert.strictEqual(error.total, 4)
    }))

  it.effect("nested required and draft-04 boolean exclusiveMinimum", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const method: MethodInfo = {
        id: "entity.get",
        usage: "",
        params: [{
          name: "entity",
          required: true,
          schema: {
            type: "object",
            properties: { type: { type: "string" }, uuid: { type: "string" }, rev: { type: "number", minimum: 0, exclusiveMinimum: true } },
            required: ["type", "uuid"]
          }
        }]
      }
      assert.strictEqual(
        (yield* failureOf(validator, method, { entity: { type: "node", rev: 0 } })).message,
        "entity.uuid: is required; entity.rev: must be > 0 (minimum)"
      )
    }))

  it.effect("strict mode refuses undeclared arguments, including for a method without params", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make({ strict: true })
      assert.strictEqual(
        (yield* failureOf(validator, search, { query: "x", limt: 3 })).message,
        "limt: is not allowed (additionalProperties)"
      )
      const none: MethodInfo = { id: "cache.rebuild", usage: "", params: [] }
      assert.strictEqual(
        (yield* failureOf(validator, none, { force: true })).message,
        "force: is not allowed (additionalProperties)"
      )
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(validator.validate(VERSION, none, {}))))
    }))

  it.effect("caps the issues kept and says how many more there were", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const params = Array.from({ length: 15 }, (_, i) => ({ name: `p${i}`, required: true, schema: { type: "string" } }))
      const error = yield* failureOf(validator, { id: "many", usage: "", params }, {})
      assert.strictEqual(error.issues.length, ArgumentValidator.MAX_ISSUES)
      assert.strictEqual(error.total, 15)
      assert.isTrue(error.message.endsWith("; and 5 more"))
    }))

  it.effect("compiles once per (fingerprint, method) and keeps the cache bounded", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make({ maxEntries: 2 })
      const a: MethodInfo = { id: "a", usage: "", params: [{ name: "x", required: true, schema: { type: "string" } }] }
      const b: MethodInfo = { id: "b", usage: "", params: [] }
      const c: MethodInfo = { id: "c", usage: "", params: [] }
      yield* validator.validate("v1", a, { x: "1" })
      yield* validator.validate("v1", a, { x: "2" })
      assert.strictEqual(yield* validator.size, 1)
      // Same method id under a new method-set version: a new entry, compiled from the new schema.
      const a2: MethodInfo = { ...a, params: [{ name: "x", required: true, schema: { type: "integer" } }] }
      assert.strictEqual((yield* Effect.flip(validator.validate("v2", a2, { x: "1" }))).message, "x: must be integer (type)")
      assert.strictEqual(yield* validator.size, 2)
      yield* validator.validate("v1", b, {})
      yield* validator.validate("v1", c, {})
      assert.strictEqual(yield* validator.size, 2)
      // The old version's validator still answers by its own schema (recompiled after eviction).
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(validator.validate("v1", a, { x: "1" }))))
      assert.strictEqual(yield* validator.size, 2)
    }))

  it.effect("a schema that does not compile is not checked here (fails open), and does not break others", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const broken: MethodInfo = { id: "broken", usage: "", params: [{ name: "x", required: true, schema: { type: "strin" } }] }
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(validator.validate(VERSION, broken, {}))))
      assert.strictEqual((yield* failureOf(validator, search, {})).message, "query: is required")
    }))

  it.effect("two methods whose param schemas carry the same draft-04 id each validate by their own schema", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.make()
      const withId = (id: string, type: string): MethodInfo => ({
        id,
        usage: "",
        params: [{ name: "x", required: true, schema: { id: "http://example.com/x#", type } }]
      })
      assert.strictEqual((yield* failureOf(validator, withId("one", "integer"), { x: "a" })).message, "x: must be integer (type)")
      assert.strictEqual((yield* failureOf(validator, withId("two", "string"), { x: 1 })).message, "x: must be string (type)")
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(validator.validate(VERSION, withId("two", "string"), { x: "a" }))))
    }))

  it.effect("is available as a layer", () =>
    Effect.gen(function*() {
      const validator = yield* ArgumentValidator.ArgumentValidator
      assert.strictEqual((yield* failureOf(validator, search, {})).message, "query: is required")
    }).pipe(Effect.provide(ArgumentValidator.Default)))
})
