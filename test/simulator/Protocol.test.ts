import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bearer, call, get, getRpc, json, post, start } from "./support.js"

// One spec per row of the error table in drupal-jsonrpc.md ("Request handling").
describe("Simulator protocol: the error table", () => {
  it.scopedLive("row 1, unknown method: -32601 at parse stage, the item's id, HTTP 400, whole batch, one non-array object", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "views" }, 1), call("no.such", {}, 2)])
      assert.strictEqual(reply.status, 400)
      const body = json(reply)
      assert.isFalse(Array.isArray(body))
      assert.deepStrictEqual(body, {
        jsonrpc: "2.0",
        id: 2,
        error: { code: -32601, message: "Method Not Found", data: "The method 'no.such' does not exist/is not available." }
      })
      // A notification has no id to name.
      const notification = yield* post(sim, [call("content.search", { query: "views" }, 1), call("no.such", undefined, null)])
      assert.strictEqual(notification.status, 400)
      assert.strictEqual(json(notification).id, null)
      assert.strictEqual(json(notification).error.code, -32601)
    }))

  it.scopedLive("row 2, missing required param: -32602 'Missing required parameter: <name>', the item's id, HTTP 400", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "x" }, 1), call("content.search", { sort: "date" }, 7)])
      assert.strictEqual(reply.status, 400)
      assert.deepStrictEqual(json(reply), {
        jsonrpc: "2.0",
        id: 7,
        error: { code: -32602, message: "Invalid Params", data: "Missing required parameter: query" }
      })
      const nullParam = yield* post(sim, call("content.get_tutorial", { id: null }, 3))
      assert.strictEqual(nullParam.status, 400)
      assert.strictEqual(json(nullParam).id, 3)
      assert.strictEqual(json(nullParam).error.data, "Missing required parameter: id")
    }))

  it.scopedLive("row 3, a param failing its schema or an entity param not found: -32602 with id null, HTTP 400, whole batch", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const bad = [
        call("content.search", { query: "" }, 1),
        call("content.search", { query: "views", drupal_version: "8" }, 2),
        call("content.search", { query: "views", page: { limit: -1 } }, 3),
        call("content.search", { query: "views", tags: ["ok", 3] }, 4),
        call("content.get_tutorial", { id: "12" }, 5)
      ]
      for (const item of bad) {
        const reply = yield* post(sim, [call("content.search", { query: "views" }, 99), item])
        assert.strictEqual(reply.status, 400)
        const body = json(reply)
        assert.strictEqual(body.id, null)
        assert.strictEqual(body.error.code, -32602)
        assert.strictEqual(body.error.message, "Invalid Params")
        const name = Object.keys(item.params ?? {}).find((k) => k !== "query") ?? "query"
        assert.include(body.error.data, `The ${item.id === 1 ? "query" : name} parameter does not conform to the parameter schema.`)
      }
      const entity = yield* post(sim, [
        call("cache.rebuild", undefined, 1),
        call("user_permissions.add_permission_to_role", { permission: "access content", role: { type: "user_role", uuid: "nope" } }, 2)
      ], bearer("admin"))
      assert.strictEqual(entity.status, 400)
      assert.deepStrictEqual(json(entity), {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32602, message: "Invalid Params", data: "The requested entity could not be found." }
      })
    }))

  it.scopedLive("row 4, envelope invalid or malformed JSON, 2.0.5 (default): HTTP 400, -32603 'Internal Error', id null, data naming the input", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ jsonrpc: "2.0", method: "cache.rebuild", id: null }, "id"],
        [[call("content.search", { query: "views" }, 1), { method: "content.search", id: 2 }], "jsonrpc"],
        [{ jsonrpc: "1.0", method: "content.search", id: 1 }, "jsonrpc"],
        [{ jsonrpc: "2.0", method: 42, id: 1 }, "method"],
        [{ jsonrpc: "2.0", method: "content.search", params: "x", id: 1 }, "params"],
        [{ jsonrpc: "2.0", method: "cache.rebuild", id: { a: 1 } }, "id"],
        [{ jsonrpc: "2.0", method: "cache.rebuild", id: true }, "id"],
        ["42", "object"],
        ["{\"jsonrpc\": \"2.0\", \"method\": ", "JSON"]
      ]
      for (const [body, named] of cases) {
        const reply = yield* post(sim, body)
        assert.strictEqual(reply.status, 400, JSON.stringify(body))
        const error = json(reply)
        assert.strictEqual(error.id, null)
        assert.strictEqual(error.error.code, -32603)
        assert.strictEqual(error.error.message, "Internal Error")
        assert.include(error.error.data, named)
      }
      // No 2.x version answers -32700.
      const getMalformed = yield* get(sim, "/jsonrpc?query=%7Boops")
      assert.strictEqual(json(getMalformed).error.code, -32603)
    }))

  it.scopedLive("row 4, envelope invalid or malformed JSON, 2.0.0–2.0.4: Drupal's generic HTML 500 page", () =>
    Effect.gen(function*() {
      for (const moduleVersion of ["2.0.0", "2.0.4"] as const) {
        const sim = yield* start({ switches: { moduleVersion } })
        for (const body of [{ jsonrpc: "2.0", method: "cache.rebuild", id: null }, "{\"jsonrpc\": ", "42", [{ method: "x", id: 1 }]]) {
          const reply = yield* post(sim, body)
          assert.strictEqual(reply.status, 500)
          assert.include(reply.headers.get("content-type") ?? "", "text/html")
          assert.include(reply.text, "The website encountered an unexpected error.")
          assert.throws(() => JSON.parse(reply.text))
        }
        // The rest of the table does not depend on the version.
        assert.strictEqual((yield* post(sim, call("no.such", {}, 1))).status, 400)
      }
    }))

  it.scopedLive("row 5, the user lacks the method's permission: per item -32600 'Access Denied: <reason>', id null, HTTP 200", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("cache.rebuild", undefined, 1), call("content.search", { query: "views" }, 2)], bearer("free"))
      assert.strictEqual(reply.status, 200)
      const [denied, ok] = json(reply)
      assert.deepStrictEqual(denied, {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32600, message: "Invalid Request", data: "Access Denied: The 'administer site configuration' permission is required." }
      })
      assert.strictEqual(ok.id, 2)
      assert.isNumber(ok.result.total)
      const admin = yield* post(sim, call("cache.rebuild", undefined, 1), bearer("admin"))
      assert.deepStrictEqual(json(admin), { jsonrpc: "2.0", id: 1, result: true })
    }))

  it.scopedLive("row 6, the method raises a JSON-RPC error itself: its code and data, id null, HTTP 200", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [
        call("plugins.list", { service: "plugin.manager.nope" }, 1),
        call("content.get_tutorial", { id: 99_999, include_content: false }, 2),
        call("cache.rebuild", undefined, 3)
      ], bearer("admin"))
      assert.strictEqual(reply.status, 200)
      const [service, missing, ok] = json(reply)
      assert.deepStrictEqual(service, {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32602, message: "Invalid Params", data: "You have requested a non-existent service \"plugin.manager.nope\"." }
      })
      assert.deepStrictEqual(missing, {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32602, message: "Invalid Params", data: "The requested entity could not be found." }
      })
      assert.deepStrictEqual(ok, { jsonrpc: "2.0", id: 3, result: true })
    }))

  it.scopedLive("row 7, another exception inside the method: per item -32603 with the message as data and the request's id", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* sim.addMethod({
        id: "test.explode",
        usage: "Always throws.",
        execute: () => {
          throw new Error("Kaboom in the method")
        }
      })
      const reply = yield* post(sim, [call("test.explode", undefined, 1), call("content.search", { query: "views" }, 2)])
      assert.strictEqual(reply.status, 200)
      const [failed, ok] = json(reply)
      assert.deepStrictEqual(failed, {
        jsonrpc: "2.0",
        id: 1,
        error: { code: -32603, message: "Internal Error", data: "Kaboom in the method" }
      })
      assert.property(ok, "result")
    }))

  it.scopedLive("row 8, only notifications, or []: HTTP 204 with an empty body", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "views" }, null), call("user.access_context", undefined, null)])
      assert.strictEqual(reply.status, 204)
      assert.strictEqual(reply.text, "")
      const empty = yield* post(sim, [])
      assert.strictEqual(empty.status, 204)
      assert.strictEqual(empty.text, "")
      const mixed = yield* post(sim, [call("user.access_context", undefined, null), call("user.access_context", undefined, "x")])
      assert.strictEqual(mixed.status, 200)
      const body = json(mixed)
      assert.strictEqual(body.length, 1)
      assert.strictEqual(body[0].id, "x")
      const stats = yield* sim.stats
      assert.strictEqual(stats.notifications, 3)
    }))

  it.scopedLive("\"id\": null is not a notification: it fails the envelope (2.0.5: 400, -32603)", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "views" }, 1), { jsonrpc: "2.0", method: "user.access_context", id: null }])
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(json(reply).error.code, -32603)
      assert.strictEqual(json(reply).id, null)
    }))
})

describe("Simulator protocol: Drupal's encoding and core methods", () => {
  it.scopedLive("replies are encoded like Json::encode: <>'\"& as \\u00XX, / as \\/, non-ASCII as \\uXXXX, with a Content-Length", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* sim.addMethod({ id: "test.echo", usage: "Echo.", result: { text: "<a href=\"/x\">it's & ok</a> café 😀" } })
      const reply = yield* post(sim, call("test.echo", undefined, 1))
      assert.strictEqual(
        reply.text,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"text\":\"\\u003Ca href=\\u0022\\/x\\u0022\\u003Eit\\u0027s \\u0026 ok\\u003C\\/a\\u003E caf\\u00e9 \\ud83d\\ude00\"}}"
      )
      assert.strictEqual(reply.headers.get("content-length"), String(reply.text.length))
      assert.deepStrictEqual(json(reply).result, { text: "<a href=\"/x\">it's & ok</a> café 😀" })
      const search = yield* post(sim, call("content.search", { query: "views" }))
      assert.match(search.text, /^[\x20-\x7e]*$/, "pure ASCII")
      assert.include(search.text, "http:\\/\\/")
      assert.strictEqual(search.headers.get("content-length"), String(search.text.length))
      for (const page of [yield* post(sim, "{oops"), yield* get(sim, "/jsonrpc/methods"), yield* get(sim, "/jsonrpc/methods/no.such")]) {
        assert.isNotNull(page.headers.get("content-length"))
      }
    }))

  it.scopedLive("maintenance_mode.isEnabled: without `enabled` reads the state, with it sets and returns it; needs 'administer site configuration'", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const read = json(yield* post(sim, call("maintenance_mode.isEnabled", undefined, 1), bearer("admin")))
      assert.deepStrictEqual(read, { jsonrpc: "2.0", id: 1, result: false })
      const denied = json(yield* post(sim, call("maintenance_mode.isEnabled", { enabled: true }, 1), bearer("free")))
      assert.strictEqual(denied.error.data, "Access Denied: The 'administer site configuration' permission is required.")
      const invalid = yield* post(sim, call("maintenance_mode.isEnabled", { enabled: "yes" }, 1), bearer("admin"))
      assert.strictEqual(invalid.status, 400)
      const set = json(yield* post(sim, call("maintenance_mode.isEnabled", { enabled: true }, 1), bearer("admin")))
      assert.strictEqual(set.result, true)
      // The site is now in maintenance mode: callers without the bypass get Drupal's 503 page.
      const blocked = yield* post(sim, call("user.access_context", undefined, 1), bearer("free"))
      assert.strictEqual(blocked.status, 503)
      assert.strictEqual(json(yield* post(sim, call("maintenance_mode.isEnabled", undefined, 2), bearer("admin"))).result, true)
      const unset = json(yield* post(sim, call("maintenance_mode.isEnabled", { enabled: false }, 3), bearer("admin")))
      assert.strictEqual(unset.result, false)
      assert.strictEqual((yield* post(sim, call("user.access_context", undefined, 1), bearer("free"))).status, 200)
    }))
})

describe("Simulator protocol: shapes", () => {
  it.scopedLive("single request → object, batch (even of one) → array, in request order", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const single = json(yield* post(sim, call("user.access_context", undefined, 5)))
      assert.isFalse(Array.isArray(single))
      assert.strictEqual(single.jsonrpc, "2.0")
      assert.strictEqual(single.id, 5)
      const one = json(yield* post(sim, [call("user.access_context", undefined, 5)]))
      assert.isTrue(Array.isArray(one))
      assert.strictEqual(one.length, 1)
      const ids = [3, "b", 1, "a", 2]
      const batch = json(yield* post(sim, ids.map((id) => call("content.search", { query: "form" }, id))))
      assert.deepStrictEqual(batch.map((r: { id: unknown }) => r.id), ids)
    }))

  it.scopedLive("undeclared params are silently ignored", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const withExtra = json(yield* post(sim, call("content.search", { query: "views", color: "blue", page: { limit: 3 } })))
      const without = json(yield* post(sim, call("content.search", { query: "views", page: { limit: 3 } })))
      assert.deepStrictEqual(withExtra, without)
      const paramless = yield* post(sim, call("user.access_context", { anything: 1 }))
      assert.strictEqual(paramless.status, 200)
      assert.strictEqual(json(paramless).result.uid, 0)
    }))

  it.scopedLive("GET ?query= gives the same reply as POST", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const body = [call("content.search", { query: "views", sort: "title" }, 1), call("content.get_tutorial", { id: 5 }, 2)]
      const viaPost = yield* post(sim, body)
      const viaGet = yield* getRpc(sim, body)
      assert.strictEqual(viaGet.status, 200)
      assert.strictEqual(viaGet.text, viaPost.text)
      const errorPost = yield* post(sim, call("no.such"))
      const errorGet = yield* getRpc(sim, call("no.such"))
      assert.strictEqual(errorGet.status, 400)
      assert.strictEqual(errorGet.text, errorPost.text)
    }))

  it.scopedLive("batches larger than the limit are refused with 413", () =>
    Effect.gen(function*() {
      const sim = yield* start({ maxBatchSize: 3 })
      const reply = yield* post(sim, [1, 2, 3, 4].map((id) => call("user.access_context", undefined, id)))
      assert.strictEqual(reply.status, 413)
      const ok = yield* post(sim, [1, 2, 3].map((id) => call("user.access_context", undefined, id)))
      assert.strictEqual(ok.status, 200)
    }))

  it.scopedLive("request bodies larger than the limit are refused with 413", () =>
    Effect.gen(function*() {
      const sim = yield* start({ maxBodyBytes: 2048 })
      const reply = yield* post(sim, call("content.search", { query: "x".repeat(5000) }))
      assert.strictEqual(reply.status, 413)
      assert.include(reply.text, "2048")
    }))
})

describe("Simulator protocol: what a real site can differ in", () => {
  it.scopedLive("missing tutorial id: per item, id null (default, the method's own error) or parse stage, id null (SIM_MISSING_ITEM=parse)", () =>
    Effect.gen(function*() {
      const item = yield* start()
      const perItem = yield* post(item, [call("content.get_tutorial", { id: 1 }, 1), call("content.get_tutorial", { id: 9999 }, 2)])
      assert.strictEqual(perItem.status, 200)
      const [first, second] = json(perItem)
      assert.strictEqual(first.result.id, 1)
      assert.deepStrictEqual(second, {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32602, message: "Invalid Params", data: "The requested entity could not be found." }
      })
      const parse = yield* start({ switches: { missingItem: "parse" } })
      const rejected = yield* post(parse, [call("content.get_tutorial", { id: 1 }, 1), call("content.get_tutorial", { id: 9999 }, 2)])
      assert.strictEqual(rejected.status, 400)
      assert.deepStrictEqual(json(rejected), {
        jsonrpc: "2.0",
        id: null,
        error: { code: -32602, message: "Invalid Params", data: "The requested entity could not be found." }
      })
    }))

  it.scopedLive("SIM_ACCESS_CONTEXT=off: user.access_context answers -32601 like a site without the plugin", () =>
    Effect.gen(function*() {
      const sim = yield* start({ switches: { accessContext: false } })
      const reply = yield* post(sim, call("user.access_context"))
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(json(reply).error.code, -32601)
    }))
})
