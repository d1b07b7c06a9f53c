import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bearer, call, getRpc, json, post, start } from "./support.js"

describe("Simulator protocol: the error table", () => {
  it.scopedLive("unknown method: -32601 at parse stage, HTTP 400, whole batch, one non-array object", () =>
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
    }))

  it.scopedLive("missing required param: -32602 with data 'Missing required parameter: <name>', HTTP 400", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "x" }, 1), call("content.search", { sort: "date" }, 7)])
      assert.strictEqual(reply.status, 400)
      assert.deepStrictEqual(json(reply), {
        jsonrpc: "2.0",
        id: 7,
        error: { code: -32602, message: "Invalid Params", data: "Missing required parameter: query" }
      })
    }))

  it.scopedLive("a null required param counts as missing", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, call("content.get_tutorial", { id: null }, 3))
      assert.strictEqual(reply.status, 400)
      assert.strictEqual(json(reply).error.data, "Missing required parameter: id")
    }))

  it.scopedLive("invalid param (schema violation): -32602, HTTP 400, names the parameter", () =>
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
        assert.strictEqual(body.id, item.id)
        assert.strictEqual(body.error.code, -32602)
        assert.strictEqual(body.error.message, "Invalid Params")
        const name = Object.keys(item.params ?? {}).find((k) => k !== "query") ?? "query"
        assert.include(body.error.data, `The ${item.id === 1 ? "query" : name} parameter does not conform to the parameter schema.`)
      }
    }))

  it.scopedLive("batch item without jsonrpc: -32600 Invalid Request, HTTP 400", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "views" }, 1), { method: "content.search", id: 2 }])
      assert.strictEqual(reply.status, 400)
      assert.deepStrictEqual(json(reply), {
        jsonrpc: "2.0",
        id: 2,
        error: {
          code: -32600,
          message: "Invalid Request",
          data: "Every request must include a 'jsonrpc' member with a value of 2.0."
        }
      })
    }))

  it.scopedLive("other envelope errors are -32600 at parse stage", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      for (const item of [
        { jsonrpc: "2.0", method: 42, id: 1 },
        { jsonrpc: "2.0", method: "content.search", params: "x", id: 1 },
        { jsonrpc: "1.0", method: "content.search", id: 1 }
      ]) {
        const reply = yield* post(sim, item)
        assert.strictEqual(reply.status, 400)
        assert.strictEqual(json(reply).error.code, -32600)
      }
      const badId = yield* post(sim, { jsonrpc: "2.0", method: "cache.rebuild", id: { a: 1 } })
      assert.strictEqual(badId.status, 400)
      assert.deepStrictEqual(json(badId).id, null)
    }))

  it.scopedLive("user lacks the method's permission: per item -32600 'Access Denied' at HTTP 200, neighbours run", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("cache.rebuild", undefined, 1), call("content.search", { query: "views" }, 2)], bearer("free"))
      assert.strictEqual(reply.status, 200)
      const [denied, ok] = json(reply)
      assert.deepStrictEqual(denied, {
        jsonrpc: "2.0",
        id: 1,
        error: { code: -32600, message: "Invalid Request", data: "Access Denied" }
      })
      assert.strictEqual(ok.id, 2)
      assert.isNumber(ok.result.total)
      const admin = yield* post(sim, call("cache.rebuild", undefined, 1), bearer("admin"))
      assert.deepStrictEqual(json(admin), { jsonrpc: "2.0", id: 1, result: true })
    }))

  it.scopedLive("exception inside the method: per item -32603 'Internal Error' with the message as data, HTTP 200", () =>
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
      assert.deepStrictEqual(failed.error, { code: -32603, message: "Internal Error", data: "Kaboom in the method" })
      assert.property(ok, "result")
    }))

  it.scopedLive("only notifications: HTTP 204 with an empty body; id null is a notification", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [
        call("content.search", { query: "views" }, null),
        { jsonrpc: "2.0", method: "content.search", params: { query: "views" }, id: null }
      ])
      assert.strictEqual(reply.status, 204)
      assert.strictEqual(reply.text, "")
      const mixed = yield* post(sim, [
        { jsonrpc: "2.0", method: "user.access_context", id: null },
        call("user.access_context", undefined, "x")
      ])
      assert.strictEqual(mixed.status, 200)
      const body = json(mixed)
      assert.strictEqual(body.length, 1)
      assert.strictEqual(body[0].id, "x")
    }))

  it.scopedLive("a notification still fails the request at parse stage", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [call("content.search", { query: "views" }, 1), call("no.such", undefined, null)])
      assert.strictEqual(reply.status, 400)
      assert.deepStrictEqual(json(reply).id, null)
      assert.strictEqual(json(reply).error.code, -32601)
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

  it.scopedLive("an empty batch yields no response item: HTTP 204", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, [])
      assert.strictEqual(reply.status, 204)
      assert.strictEqual(reply.text, "")
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

describe("Simulator protocol: malformed JSON and other switches", () => {
  it.scopedLive("malformed JSON, SIM_MALFORMED_JSON=html500 (default): a generic non-JSON HTTP 500 page", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const reply = yield* post(sim, "{\"jsonrpc\": \"2.0\", \"method\": ")
      assert.strictEqual(reply.status, 500)
      assert.include(reply.headers.get("content-type") ?? "", "text/html")
      assert.throws(() => JSON.parse(reply.text))
      const scalar = yield* post(sim, "42")
      assert.strictEqual(scalar.status, 500)
    }))

  it.scopedLive("malformed JSON, SIM_MALFORMED_JSON=jsonrpc: -32700 'Parse Error' with id null", () =>
    Effect.gen(function*() {
      const sim = yield* start({ switches: { malformedJson: "jsonrpc" } })
      const reply = yield* post(sim, "[{\"jsonrpc\": ")
      assert.strictEqual(reply.status, 400)
      const body = json(reply)
      assert.strictEqual(body.id, null)
      assert.strictEqual(body.error.code, -32700)
      assert.strictEqual(body.error.message, "Parse Error")
      assert.isString(body.error.data)
    }))

  it.scopedLive("SIM_PARSE_ERROR_ID=module: schema failures carry id null, unknown methods the item's id", () =>
    Effect.gen(function*() {
      const sim = yield* start({ switches: { parseErrorId: "module" } })
      const schema = json(yield* post(sim, [call("content.search", { query: "" }, 4)]))
      assert.strictEqual(schema.id, null)
      assert.strictEqual(schema.error.code, -32602)
      const missing = json(yield* post(sim, [call("content.search", {}, 5)]))
      assert.strictEqual(missing.id, 5)
      const unknown = json(yield* post(sim, [call("no.such", {}, 6)]))
      assert.strictEqual(unknown.id, 6)
    }))

  it.scopedLive("SIM_PARAMS_ON_PARAMLESS=reject: even params {} on a method without params is -32602", () =>
    Effect.gen(function*() {
      const sim = yield* start({ switches: { paramsOnParamless: "reject" } })
      const reply = yield* post(sim, call("user.access_context", {}, 1))
      assert.strictEqual(reply.status, 400)
      assert.deepStrictEqual(json(reply).error, {
        code: -32602,
        message: "Invalid Params",
        data: "The user.access_context method does not accept parameters."
      })
      const without = yield* post(sim, call("user.access_context", undefined, 1))
      assert.strictEqual(without.status, 200)
    }))

  it.scopedLive("missing tutorial id: parse-stage -32602 (default) or per item (SIM_MISSING_ITEM=execute)", () =>
    Effect.gen(function*() {
      const parse = yield* start()
      const rejected = yield* post(parse, [call("content.get_tutorial", { id: 1 }, 1), call("content.get_tutorial", { id: 9999 }, 2)])
      assert.strictEqual(rejected.status, 400)
      assert.deepStrictEqual(json(rejected), {
        jsonrpc: "2.0",
        id: 2,
        error: { code: -32602, message: "Invalid Params", data: "The requested entity could not be found." }
      })
      const exec = yield* start({ switches: { missingItem: "execute" } })
      const perItem = yield* post(exec, [call("content.get_tutorial", { id: 1 }, 1), call("content.get_tutorial", { id: 9999 }, 2)])
      assert.strictEqual(perItem.status, 200)
      const [first, second] = json(perItem)
      assert.strictEqual(first.result.id, 1)
      assert.deepStrictEqual(second.error, {
        code: -32602,
        message: "Invalid Params",
        data: "The requested entity could not be found."
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
