import { OpenApi } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { contentCacheKey, discoveryCacheKey, itemTag, markdownCacheKey, SEARCH_TAG } from "../../src/content/CacheKeys.js"
import { MAX_INVALIDATE_ITEMS } from "../../src/http/AdminApi.js"
import { GatewayApi } from "../../src/http/Api.js"
import { serveAdmin } from "./support.js"

const TOKEN = "s3cret-admin-token"

const post = (payload: unknown, token: string | null = TOKEN): RequestInit => ({
  headers: {
    "content-type": "application/json",
    ...(token === null ? {} : { authorization: `Bearer ${token}` })
  },
  body: typeof payload === "string" ? payload : JSON.stringify(payload)
})

const json1 = contentCacheKey("anonymous", 1, true, "html")
const md1 = markdownCacheKey("anonymous", 1)
const page = "search:anonymous:views"
const json2 = contentCacheKey("anonymous", 2, true, "html")
const tools = discoveryCacheKey("anonymous", "tools")

describe("POST /admin/invalidate", () => {
  it.scopedLive("with the right token: drops tagged entries, keys and namespaces, and says how many", () =>
    Effect.gen(function*() {
      const admin = yield* serveAdmin({ ADMIN_TOKEN: TOKEN })
      yield* admin.seed(json1, [itemTag(1)])
      yield* admin.seed(md1, [itemTag(1)])
      yield* admin.seed(page, [SEARCH_TAG, itemTag(1), itemTag(2)])
      yield* admin.seed(json2, [itemTag(2)])
      yield* admin.seed(tools, ["discovery"])
      const cached = () => Effect.all([json1, md1, page, json2, tools].map(admin.has))

      const byTag = yield* admin.request("/admin/invalidate", post({ tags: [itemTag(1), itemTag(1)] }))
      assert.strictEqual(byTag.status, 200)
      assert.deepStrictEqual(byTag.body, { invalidated: { keys: 0, tags: 1, namespace: null } })
      assert.deepStrictEqual(yield* cached(), [false, false, false, true, true])

      const byKey = yield* admin.request("/admin/invalidate", post({ keys: [json2, "content:nobody:9:1:html"] }))
      assert.deepStrictEqual([byKey.status, byKey.body], [200, { invalidated: { keys: 2, tags: 0, namespace: null } }])
      assert.deepStrictEqual(yield* cached(), [false, false, false, false, true])

      yield* admin.seed(json2, [itemTag(2)])
      const byNamespace = yield* admin.request("/admin/invalidate", post({ namespace: "discovery" }))
      assert.deepStrictEqual([byNamespace.status, byNamespace.body], [200, { invalidated: { keys: 0, tags: 0, namespace: "discovery" } }])
      assert.deepStrictEqual(yield* cached(), [false, false, false, true, false], "only the discovery namespace is cleared")
    }))

  it.scopedLive("logs one line per call with counts only, never the token", () =>
    Effect.gen(function*() {
      const admin = yield* serveAdmin({ ADMIN_TOKEN: TOKEN })
      yield* admin.request("/admin/invalidate", post({ keys: ["a", "b"], tags: ["t"], namespace: "search" }))
      yield* admin.request("/admin/invalidate", post({ keys: ["a"] }, "wrong-token"))
      const lines = admin.logs.filter((l) => String(l.annotations["route"]) === "admin/invalidate")
      assert.strictEqual(lines.length, 2)
      assert.deepStrictEqual(lines[0]!.annotations, { route: "admin/invalidate", keys: 2, tags: 1, namespace: "search" })
      assert.deepStrictEqual(lines[1]!.annotations, { route: "admin/invalidate", code: "unauthorized" })
      const everything = JSON.stringify(admin.logs)
      assert.notInclude(everything, TOKEN)
      assert.notInclude(everything, "wrong-token")
    }))

  it.scopedLive("a missing or wrong token is 401 unauthorized with WWW-Authenticate: Bearer, and nothing is dropped", () =>
    Effect.gen(function*() {
      const admin = yield* serveAdmin({ ADMIN_TOKEN: TOKEN })
      yield* admin.seed(json1, [itemTag(1)])
      const answers = yield* Effect.all([
        admin.request("/admin/invalidate", post({ tags: [itemTag(1)] }, null)),
        admin.request("/admin/invalidate", post({ tags: [itemTag(1)] }, "wrong-token")),
        admin.request("/admin/invalidate", post({ tags: [itemTag(1)] }, TOKEN.slice(0, -1))),
        admin.request("/admin/invalidate", post({ tags: [itemTag(1)] }, `${TOKEN}x`)),
        admin.request("/admin/invalidate", { headers: { authorization: `Basic ${TOKEN}` }, body: JSON.stringify({ tags: [itemTag(1)] }) })
      ])
      for (const answer of answers) {
        assert.strictEqual(answer.status, 401, JSON.stringify(answers.map((a) => [a.status, a.body])))
        assert.strictEqual(answer.body.error.code, "unauthorized")
        assert.strictEqual(answer.headers.get("www-authenticate"), "Bearer")
      }
      assert.isTrue(yield* admin.has(json1))
    }))

  it.scopedLive("is 404 not_found while ADMIN_TOKEN is unset (or blank)", () =>
    Effect.gen(function*() {
      for (const config of [{}, { ADMIN_TOKEN: "  " }]) {
        const admin = yield* serveAdmin(config)
        yield* admin.seed(json1, [itemTag(1)])
        const answer = yield* admin.request("/admin/invalidate", post({ tags: [itemTag(1)] }, "  "))
        assert.deepStrictEqual([answer.status, answer.body.error.code], [404, "not_found"])
        assert.isTrue(yield* admin.has(json1))
      }
    }))

  it.scopedLive("a malformed body is 400 bad_request naming the field", () =>
    Effect.gen(function*() {
      const admin = yield* serveAdmin({ ADMIN_TOKEN: TOKEN })
      const cases: Array<[unknown, string]> = [
        [{ keys: "content:1" }, "keys"],
        [{ keys: [1] }, "keys.0"],
        [{ tags: ["x".repeat(513)] }, "tags.0"],
        [{ tags: [""] }, "tags.0"],
        [{ keys: Array.from({ length: MAX_INVALIDATE_ITEMS + 1 }, (_, i) => `k${i}`) }, "keys"],
        [{ namespace: "everything" }, "namespace"],
        [{ tag: ["item:1"] }, "tag"],
        [{}, "body"],
        [{ keys: [], tags: [] }, "body"],
        ["{not json", "body"],
        [[], "body"]
      ]
      for (const [payload, field] of cases) {
        const answer = yield* admin.request("/admin/invalidate", post(payload))
        assert.strictEqual(answer.status, 400, JSON.stringify(payload).slice(0, 80))
        assert.strictEqual(answer.body.error.code, "bad_request")
        assert.isTrue(answer.body.error.message.startsWith(`${field}: `), `${answer.body.error.message} names ${field}`)
        assert.isBelow(answer.body.error.message.length, 200, answer.body.error.message)
      }
      const atTheBound = yield* admin.request(
        "/admin/invalidate",
        post({ keys: Array.from({ length: MAX_INVALIDATE_ITEMS }, (_, i) => `k${i}`.padEnd(512, "x")) })
      )
      assert.deepStrictEqual([atTheBound.status, atTheBound.body.invalidated.keys], [200, MAX_INVALIDATE_ITEMS])
    }))

  it.scopedLive("a body above 2 MiB is 413 payload_too_large, refused from its Content-Length", () =>
    Effect.gen(function*() {
      const admin = yield* serveAdmin({ ADMIN_TOKEN: TOKEN })
      const answer = yield* admin.request("/admin/invalidate", post({ keys: ["k"], padding: "x".repeat(2 * 1024 * 1024) }))
      assert.deepStrictEqual([answer.status, answer.body.error.code], [413, "payload_too_large"])
    }))

  it("documents both routes, their statuses and the payloads in the OpenAPI document", () => {
    const spec = OpenApi.fromApi(GatewayApi)
    const invalidate = spec.paths["/admin/invalidate"]?.post
    const webhook = spec.paths["/webhooks/drupal"]?.post
    assert.isDefined(invalidate)
    assert.isDefined(webhook)
    assert.includeMembers(Object.keys(invalidate!.responses), ["200", "400", "401", "404", "413"])
    assert.includeMembers(Object.keys(webhook!.responses), ["202", "400", "401", "404", "413"])
    assert.notInclude(Object.keys(webhook!.responses), "409", "a duplicate delivery is a success, not a conflict")
    assert.isDefined(invalidate!.requestBody)
    assert.isDefined(webhook!.requestBody)
  })
})
