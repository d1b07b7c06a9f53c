/**
 * The hit path's memo of resolved request targets: it only spares the parsing, it never changes
 * an answer. Per partition, per target, and always read through the memory tier (an entry gone
 * is gone for the hit path too), also once the memo has turned over.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type * as Http from "node:http"
import type { AccessScope } from "../../src/access/AccessScope.js"
import * as MemoryTier from "../../src/cache/MemoryTier.js"
import { contentCacheKey, searchCacheKey } from "../../src/content/CacheKeys.js"
import { normalizeSearch } from "../../src/content/SearchQuery.js"
import { anonymous, bearer } from "../../src/drupal/Credentials.js"
import * as HitPath from "../../src/http/HitPath.js"

interface Written {
  status?: number
  headers?: Http.OutgoingHttpHeaders
  body?: Uint8Array | undefined
}

const entryOf = (text: string) => {
  const now = Date.now()
  return { value: new TextEncoder().encode(text), contentType: "application/json", createdAt: now, freshUntil: now + 60_000, staleUntil: now + 120_000, tags: [] }
}

// Two partitions: the anonymous one and one token's.
const access = {
  credentials: (header: string | undefined) => header === undefined ? anonymous : bearer(header.replace(/^Bearer /, "")),
  partitionSync: (credentials: { readonly fingerprint: string }) =>
    credentials.fingerprint === "anonymous" ? { id: "anon", level: "anonymous" } : { id: "sub", level: "token" }
} as unknown as AccessScope

const ask = (fastPath: ReturnType<typeof HitPath.make>, url: string, authorization?: string) => {
  const written: Written = {}
  const req = { method: "GET", url, headers: authorization === undefined ? {} : { authorization } } as unknown as Http.IncomingMessage
  const res = {
    writeHead: (status: number, headers: Http.OutgoingHttpHeaders) => {
      written.status = status
      written.headers = headers
    },
    end: (body?: Uint8Array) => {
      written.body = body
    }
  } as unknown as Http.ServerResponse
  const answered = fastPath(req, res)
  return answered ? new TextDecoder().decode(written.body) : undefined
}

describe("HitPath request resolution", () => {
  it.effect("a remembered target answers per partition, and never an entry the memory tier no longer holds", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryTier.make({})
      const fastPath = HitPath.make({ memory, access })
      yield* memory.set(contentCacheKey("anon", 1, true, "html"), entryOf("anon-1"))
      const query = normalizeSearch({ q: "Views Caching" })
      assert.isTrue(query._tag === "Right")
      if (query._tag !== "Right") return
      yield* memory.set(searchCacheKey("sub", query.right), entryOf("sub-search"))

      for (let round = 0; round < 2; round++) {
        assert.strictEqual(ask(fastPath, "/content/1"), "anon-1")
        assert.strictEqual(ask(fastPath, "/content/1", "Bearer t"), undefined, "the other partition's key is not the anonymous one")
        // Different spellings of the same question resolve to the same key.
        assert.strictEqual(ask(fastPath, "/search?q=views%20caching", "Bearer t"), "sub-search")
        assert.strictEqual(ask(fastPath, "/search?q=VIEWS++Caching", "Bearer t"), "sub-search")
        assert.strictEqual(ask(fastPath, "/search?q=views%20caching"), undefined)
        // Refused the same way every time: a repeated single parameter, a malformed id.
        assert.strictEqual(ask(fastPath, "/content/1?format=html&format=html"), undefined)
        assert.strictEqual(ask(fastPath, "/content/01"), undefined)
      }

      yield* memory.delete([contentCacheKey("anon", 1, true, "html")])
      assert.strictEqual(ask(fastPath, "/content/1"), undefined, "a remembered target is still looked up in memory")
      yield* memory.set(contentCacheKey("anon", 1, true, "html"), entryOf("anon-1 again"))
      assert.strictEqual(ask(fastPath, "/content/1"), "anon-1 again")
    }))

  it.effect("after more distinct targets than the memo holds, every target still answers what it resolves to", () =>
    Effect.gen(function*() {
      const memory = yield* MemoryTier.make({})
      const fastPath = HitPath.make({ memory, access })
      const ids = HitPath.MAX_RESOLVED + 100
      for (let id = 1; id <= ids; id += 997) yield* memory.set(contentCacheKey("anon", id, false, "html"), entryOf(`item-${id}`))
      for (let pass = 0; pass < 2; pass++) {
        for (let id = 1; id <= ids; id++) {
          const answer = ask(fastPath, `/content/${id}?include_content=false`)
          assert.strictEqual(answer, (id - 1) % 997 === 0 ? `item-${id}` : undefined)
        }
      }
      // A target longer than the memo takes is resolved every time, with the same answer.
      const long = `/content/1?include_content=false&pad=${"x".repeat(HitPath.MAX_RESOLVED_TARGET_LENGTH)}`
      assert.strictEqual(ask(fastPath, long), "item-1")
    }))
})
