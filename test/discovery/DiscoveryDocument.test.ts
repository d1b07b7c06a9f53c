import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import {
  decodeMethod,
  decodeMethodList,
  type MethodInfo,
  MethodInfoFromResource,
  MethodsFromDocument
} from "../../src/discovery/DiscoveryDocument.js"
import { docExample } from "./fixtures.js"

const contentSearch: MethodInfo = {
  id: "content.search",
  usage: "Search tutorials.",
  params: [
    { name: "query", description: "Search terms", required: true, schema: { type: "string", minLength: 1 } },
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

describe("DiscoveryDocument", () => {
  it.effect("decodes the example of the upstream notes", () =>
    Effect.gen(function*() {
      const methods = yield* decodeMethodList(JSON.parse(docExample))
      assert.deepStrictEqual(methods, [contentSearch])
    }))

  it.effect("decodes a single method object (GET /jsonrpc/methods/{id}, not wrapped in data)", () =>
    Effect.gen(function*() {
      const document = JSON.parse(docExample) as { data: Array<unknown> }
      const method = yield* decodeMethod(document.data[0])
      assert.deepStrictEqual(method, contentSearch)
    }))

  it.effect("a method without params has no params member, and decodes to none", () =>
    Effect.gen(function*() {
      const method = yield* decodeMethod({
        type: "JsonRpcMethod",
        id: "cache.rebuild",
        attributes: { usage: "Rebuilds the system cache." }
      })
      assert.deepStrictEqual(method, { id: "cache.rebuild", usage: "Rebuilds the system cache.", params: [] })
    }))

  it.effect("dropped attributes: no usage, no attributes at all, PHP's [] for empty maps", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* decodeMethod({ id: "route_builder.rebuild" }), {
        id: "route_builder.rebuild",
        usage: "",
        params: []
      })
      assert.deepStrictEqual(yield* decodeMethod({ id: "a", attributes: [] }), { id: "a", usage: "", params: [] })
      assert.deepStrictEqual(yield* decodeMethod({ id: "b", attributes: { usage: "B", params: [] } }), {
        id: "b",
        usage: "B",
        params: []
      })
      assert.deepStrictEqual(
        yield* decodeMethod({ id: "c", attributes: { params: { x: { id: "x", attributes: [], schema: [] } } } }),
        { id: "c", usage: "", params: [{ name: "x", required: false, schema: {} }] }
      )
    }))

  it.effect("required is true only when present and true", () =>
    Effect.gen(function*() {
      const method = yield* decodeMethod({
        id: "plugins.list",
        attributes: {
          params: {
            service: { attributes: { required: true }, schema: { type: "string" } },
            page: { schema: { type: "object" } },
            other: { attributes: { required: false }, schema: { type: "string" } }
          }
        }
      })
      assert.deepStrictEqual(
        method.params.map((param) => [param.name, param.required]),
        [["service", true], ["page", false], ["other", false]]
      )
    }))

  it.effect("reads the top-level schema of a param, not attributes.schema", () =>
    Effect.gen(function*() {
      const method = yield* decodeMethod({
        id: "content.get_tutorial",
        attributes: {
          params: {
            entity: {
              attributes: { factory: "EntityParameterFactory", schema: { type: "string" } },
              schema: { type: "object", properties: { type: { type: "string" }, uuid: { type: "string" } } }
            },
            loose: { attributes: { schema: { type: "integer" } } }
          }
        }
      })
      assert.deepStrictEqual(method.params[0]?.schema, {
        type: "object",
        properties: { type: { type: "string" }, uuid: { type: "string" } }
      })
      assert.deepStrictEqual(method.params[1]?.schema, {})
    }))

  it.effect("an empty list (a caller allowed nothing) is valid", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* decodeMethodList({ data: [], links: {} }), [])
    }))

  it.effect("a body that is not a discovery document fails with a bounded DrupalDecodeError", () =>
    Effect.gen(function*() {
      const notADocument = yield* Effect.flip(decodeMethodList({ error: "<html>".repeat(500) }))
      assert.strictEqual(notADocument._tag, "DrupalDecodeError")
      assert.strictEqual(notADocument.reason, "unexpected_result")
      assert.strictEqual(notADocument.method, "discovery")
      assert.include(notADocument.detail, "data")
      assert.isAtMost(notADocument.detail.length, 300)

      const badId = yield* Effect.flip(decodeMethod({ id: 42 }))
      assert.include(badId.detail, "id")

      const badRequired = yield* Effect.flip(
        decodeMethod({ id: "x", attributes: { params: { q: { attributes: { required: "yes" } } } } })
      )
      assert.include(badRequired.detail, "required")
    }))

  it("encodes back to the wire shape, dropping empty attributes, and round-trips", () => {
    const encoded = Schema.encodeSync(MethodInfoFromResource)(contentSearch)
    assert.deepStrictEqual(encoded, {
      type: "JsonRpcMethod",
      id: "content.search",
      attributes: {
        usage: "Search tutorials.",
        params: {
          query: {
            type: "JsonRpcParameterDefinition",
            id: "query",
            attributes: { description: "Search terms", required: true },
            schema: { type: "string", minLength: 1 }
          },
          page: {
            type: "JsonRpcParameterDefinition",
            id: "page",
            attributes: {},
            schema: contentSearch.params[1]!.schema
          }
        }
      }
    })
    const list = Schema.encodeSync(MethodsFromDocument)([contentSearch])
    assert.deepStrictEqual(Schema.decodeUnknownSync(MethodsFromDocument)(list), [contentSearch])
  })
})
