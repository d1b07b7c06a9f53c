import { assert, describe, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { Effect } from "effect"
import { decodeMethodList, type MethodInfo } from "../../src/discovery/DiscoveryDocument.js"
import { canonicalJson, diff, fingerprint, isEmptyDiff } from "../../src/discovery/Fingerprint.js"
import { docExample } from "./fixtures.js"

const search: MethodInfo = {
  id: "content.search",
  usage: "Search tutorials.",
  params: [
    { name: "query", description: "Search terms", required: true, schema: { type: "string", minLength: 1 } },
    { name: "page", required: false, schema: { type: "object", properties: { limit: { type: "integer", minimum: 0 } } } }
  ]
}
const get: MethodInfo = {
  id: "content.get_tutorial",
  usage: "Get one tutorial.",
  params: [{ name: "id", required: true, schema: { type: "string" } }]
}
const rebuild: MethodInfo = { id: "cache.rebuild", usage: "Rebuilds the system cache.", params: [] }

describe("Fingerprint", () => {
  it("canonical JSON sorts keys at every level, keeps array order, drops undefined members", () => {
    assert.strictEqual(
      canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: "x" }, u: undefined }),
      `{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}`
    )
    assert.strictEqual(canonicalJson([undefined, Number.NaN, "é"]), `[null,null,"é"]`)
  })

  it("is the sha256 hex of the canonical sorted method list", () => {
    const expected = createHash("sha256").update(`[${canonicalJson(rebuild)}]`).digest("hex")
    assert.strictEqual(fingerprint([rebuild]), expected)
    assert.match(fingerprint([search, get]), /^[0-9a-f]{64}$/)
    assert.strictEqual(fingerprint([]), createHash("sha256").update("[]").digest("hex"))
  })

  it.effect("is stable under key order, method order and param order of the discovery answer", () =>
    Effect.gen(function*() {
      const original = yield* decodeMethodList(JSON.parse(docExample))
      // The same document with every object's keys reversed, `page` listed before `query`.
      const reversed = (value: unknown): unknown =>
        Array.isArray(value)
          ? value.map(reversed)
          : typeof value === "object" && value !== null
          ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]))
          : value
      const reordered = yield* decodeMethodList(reversed(JSON.parse(docExample)))
      assert.deepStrictEqual(
        reordered[0]?.params.map((param) => param.name),
        ["page", "query"]
      )
      assert.strictEqual(fingerprint(reordered), fingerprint(original))
      assert.strictEqual(fingerprint([search, get, rebuild]), fingerprint([rebuild, search, get]))
    }))

  it("changes when a method, its usage, a param or a param schema changes", () => {
    const base = fingerprint([search, get])
    const variants: ReadonlyArray<ReadonlyArray<MethodInfo>> = [
      [search, get, rebuild],
      [search],
      [search, { ...get, usage: "Get a tutorial." }],
      [search, { ...get, id: "content.get" }],
      [search, { ...get, params: [{ name: "id", required: false, schema: { type: "string" } }] }],
      [search, { ...get, params: [{ name: "id", required: true, schema: { type: "integer" } }] }],
      [search, { ...get, params: [{ name: "id", required: true, description: "UUID", schema: { type: "string" } }] }],
      [search, { ...get, params: [] }],
      [
        {
          ...search,
          params: [search.params[0]!, {
            ...search.params[1]!,
            schema: { type: "object", properties: { limit: { type: "integer", minimum: 1 } } }
          }]
        },
        get
      ]
    ]
    const prints = variants.map(fingerprint)
    for (const print of prints) assert.notStrictEqual(print, base)
    assert.strictEqual(new Set(prints).size, prints.length)
  })

  it("diff names added, removed and changed ids, sorted, ignoring param order", () => {
    const changedGet: MethodInfo = { ...get, params: [{ name: "id", required: true, schema: { type: "integer" } }] }
    const reorderedSearch: MethodInfo = { ...search, params: [...search.params].reverse() }
    const isEnabled: MethodInfo = { id: "maintenance_mode.isEnabled", usage: "", params: [] }
    const result = diff([search, get, rebuild], [isEnabled, changedGet, reorderedSearch, { ...rebuild, id: "a.first" }])
    assert.deepStrictEqual(result, {
      added: ["a.first", "maintenance_mode.isEnabled"],
      removed: ["cache.rebuild"],
      changed: ["content.get_tutorial"]
    })
    assert.isFalse(isEmptyDiff(result))
    const same = diff([search, get], [get, reorderedSearch])
    assert.deepStrictEqual(same, { added: [], removed: [], changed: [] })
    assert.isTrue(isEmptyDiff(same))
  })
})
