import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { normalizeSearch, searchKey, toRpcParams } from "../../src/content/SearchQuery.js"

const ok = (input: Parameters<typeof normalizeSearch>[0]) => {
  const result = normalizeSearch(input)
  if (Either.isLeft(result)) throw new Error(`unexpected refusal: ${result.left.message}`)
  return result.right
}

const refused = (input: Parameters<typeof normalizeSearch>[0]) => {
  const result = normalizeSearch(input)
  if (Either.isRight(result)) throw new Error("expected a refusal")
  return result.left
}

describe("normalizeSearch", () => {
  it("equal questions written differently share one key", () => {
    const a = ok({ q: "  Views   CACHING ", tags: "Caching, views,caching", limit: "20" })
    const b = ok({ q: "views caching", tags: ["views", "caching"] })
    assert.strictEqual(searchKey(a), searchKey(b))
    assert.strictEqual(a.query, "views caching")
    assert.deepStrictEqual(a.tags, ["caching", "views"])
  })

  it("fills the defaults", () => {
    const q = ok({ q: "forms" })
    assert.deepStrictEqual(toRpcParams(q), {
      query: "forms",
      content_type: "all",
      sort: "relevance",
      page: { limit: 20, offset: 0 }
    })
  })

  it("keeps filters that change the answer in the key", () => {
    const base = searchKey(ok({ q: "forms" }))
    assert.notStrictEqual(searchKey(ok({ q: "forms", drupal_version: "10" })), base)
    assert.notStrictEqual(searchKey(ok({ q: "forms", sort: "date" })), base)
    assert.notStrictEqual(searchKey(ok({ q: "forms", offset: 20 })), base)
    assert.notStrictEqual(searchKey(ok({ q: "forms", tags: "php" })), base)
  })

  it("full-width and composed characters normalise (NFKC)", () => {
    assert.strictEqual(ok({ q: "ＦＯＲＭＳ" }).query, "forms")
  })

  it("refuses bad input naming the field", () => {
    assert.strictEqual(refused({ q: "   " }).field, "q")
    assert.strictEqual(refused({}).field, "q")
    assert.strictEqual(refused({ q: "x", limit: "0" }).field, "limit")
    assert.strictEqual(refused({ q: "x", limit: "101" }).field, "limit")
    assert.strictEqual(refused({ q: "x", limit: "ten" }).field, "limit")
    assert.strictEqual(refused({ q: "x", offset: "-1" }).field, "offset")
    assert.strictEqual(refused({ q: "x", drupal_version: "8" }).field, "drupal_version")
    assert.strictEqual(refused({ q: "x", sort: "random" }).field, "sort")
    assert.strictEqual(refused({ q: "x".repeat(300) }).field, "q")
    assert.strictEqual(refused({ q: "x", tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }).field, "tags")
  })
})
