import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeMethodList, type MethodInfo } from "../../src/discovery/DiscoveryDocument.js"
import { inputSchema, outputSchema, toTool, toTools, wrapResult } from "../../src/discovery/McpTools.js"
import { docExample } from "./fixtures.js"

describe("McpTools", () => {
  it.effect("translates the example of the upstream notes", () =>
    Effect.gen(function*() {
      const [method] = yield* decodeMethodList(JSON.parse(docExample))
      assert.deepStrictEqual(toTool(method!), {
        name: "content.search",
        description: "Search tutorials.",
        inputSchema: {
          type: "object",
          properties: {
            query: { type: "string", minLength: 1, description: "Search terms" },
            page: {
              type: "object",
              properties: { limit: { type: "integer", minimum: 0 }, offset: { type: "integer", minimum: 0 } }
            }
          },
          required: ["query"]
        }
      })
    }))

  it("a method without params gets {type: \"object\"}", () => {
    assert.deepStrictEqual(toTool({ id: "cache.rebuild", usage: "Rebuilds the system cache.", params: [] }), {
      name: "cache.rebuild",
      description: "Rebuilds the system cache.",
      inputSchema: { type: "object" }
    })
  })

  it("a method with optional params only has no required member", () => {
    const method: MethodInfo = {
      id: "user_permissions.list",
      usage: "List permissions.",
      params: [{ name: "page", required: false, schema: { type: "object" } }]
    }
    const schema = inputSchema(method)
    assert.deepStrictEqual(schema, { type: "object", properties: { page: { type: "object" } } })
    assert.isFalse("required" in schema)
  })

  it("the param description wins over the schema's; $schema is dropped; the input is not mutated", () => {
    const paramSchemaIn = {
      $schema: "http://json-schema.org/draft-04/schema#",
      type: "string",
      description: "from schema"
    }
    const method: MethodInfo = {
      id: "x",
      usage: "",
      params: [
        { name: "a", description: "from param", required: true, schema: paramSchemaIn },
        { name: "b", required: false, schema: { type: "integer", description: "kept" } }
      ]
    }
    const tool = toTool(method)
    assert.deepStrictEqual(tool, {
      name: "x",
      inputSchema: {
        type: "object",
        properties: { a: { type: "string", description: "from param" }, b: { type: "integer", description: "kept" } },
        required: ["a"]
      }
    })
    assert.isFalse("description" in tool)
    assert.strictEqual(paramSchemaIn.$schema, "http://json-schema.org/draft-04/schema#")
  })

  it("toTools sorts by name", () => {
    const tools = toTools([
      { id: "content.search", usage: "", params: [] },
      { id: "cache.rebuild", usage: "", params: [] }
    ])
    assert.deepStrictEqual(tools.map((tool) => tool.name), ["cache.rebuild", "content.search"])
  })

  it("wraps a non-object output schema, and the result likewise", () => {
    const scalar = outputSchema({ type: "boolean" })
    assert.deepStrictEqual(scalar, {
      outputSchema: { type: "object", properties: { result: { type: "boolean" } }, required: ["result"] },
      wrapped: true
    })
    assert.deepStrictEqual(wrapResult(scalar, false), { result: false })

    const list = outputSchema({ type: "array", items: { type: "string" } })
    assert.isTrue(list.wrapped)
    assert.deepStrictEqual(wrapResult(list, ["a", "b"]), { result: ["a", "b"] })

    const union = outputSchema({ type: ["object", "null"] })
    assert.isTrue(union.wrapped)
    assert.deepStrictEqual(wrapResult(union, null), { result: null })
  })

  it("keeps an object output schema and an object result as they are", () => {
    const schema = { type: "object", properties: { total: { type: "integer" } }, required: ["total"] }
    const translation = outputSchema(schema)
    assert.deepStrictEqual(translation, {
      outputSchema: { type: "object", properties: { total: { type: "integer" } }, required: ["total"] },
      wrapped: false
    })
    const result = { total: 3 }
    assert.strictEqual(wrapResult(translation, result), result)
    // A result that breaks an unwrapped object schema still goes out as an object.
    assert.deepStrictEqual(wrapResult(translation, 3), { result: 3 })
  })
})
