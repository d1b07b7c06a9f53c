import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bearer, call, fetchReply, get, json, post, start } from "./support.js"

const ids = (doc: { data: ReadonlyArray<{ id: string }> }) => doc.data.map((m) => m.id)

describe("Simulator discovery", () => {
  it.scopedLive("lists only what the caller may execute: anonymous vs admin differ", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const anonymous = json(yield* get(sim, "/jsonrpc/methods"))
      const admin = json(yield* get(sim, "/jsonrpc/methods", bearer("admin")))
      assert.deepStrictEqual(ids(anonymous), ["content.search", "content.get_tutorial", "user.access_context"])
      assert.deepStrictEqual(ids(admin), [
        "cache.rebuild",
        "route_builder.rebuild",
        "maintenance_mode.isEnabled",
        "plugins.list",
        "user_permissions.list",
        "user_permissions.add_permission_to_role",
        "content.search",
        "content.get_tutorial",
        "user.access_context"
      ])
      assert.strictEqual(anonymous.links.self, `${sim.url}/jsonrpc/methods`)
    }))

  it.scopedLive("method objects follow the JSON:API-like format", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const doc = json(yield* get(sim, "/jsonrpc/methods"))
      const search = doc.data.find((m: { id: string }) => m.id === "content.search")
      assert.strictEqual(search.type, "JsonRpcMethod")
      assert.strictEqual(search.attributes.usage, "Search tutorials.")
      assert.deepStrictEqual(search.links, {
        self: `${sim.url}/jsonrpc/methods/content.search`,
        collection: `${sim.url}/jsonrpc/methods`
      })
      assert.deepStrictEqual(search.attributes.params.query, {
        type: "JsonRpcParameterDefinition",
        id: "query",
        attributes: { description: "Search terms", required: true, schema: { type: "string", minLength: 1 } },
        schema: { type: "string", minLength: 1 }
      })
      // `required` appears only when true.
      assert.notProperty(search.attributes.params.sort.attributes, "required")
      // No params: no `params` attribute at all. Permissions are not exposed.
      const ctx = doc.data.find((m: { id: string }) => m.id === "user.access_context")
      assert.notProperty(ctx.attributes, "params")
      assert.notProperty(ctx.attributes, "access")
    }))

  it.scopedLive("a factory parameter's top-level schema is the factory's", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const method = json(yield* get(sim, "/jsonrpc/methods/content.search"))
      const page = method.attributes.params.page
      assert.deepStrictEqual(page.attributes, {
        description: "Pagination (default limit 20)",
        factory: "\\Drupal\\jsonrpc\\ParameterFactory\\PaginationParameterFactory"
      })
      assert.deepStrictEqual(page.schema, {
        type: "object",
        properties: { limit: { type: "integer", minimum: 0 }, offset: { type: "integer", minimum: 0 } }
      })
    }))

  it.scopedLive("/jsonrpc/methods/{id}: one object, not wrapped; 404 for unknown and for not allowed", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const one = yield* get(sim, "/jsonrpc/methods/content.get_tutorial")
      assert.strictEqual(one.status, 200)
      const body = json(one)
      assert.notProperty(body, "data")
      assert.strictEqual(body.id, "content.get_tutorial")
      const unknown = yield* get(sim, "/jsonrpc/methods/no.such")
      assert.strictEqual(unknown.status, 404)
      const notAllowed = yield* get(sim, "/jsonrpc/methods/cache.rebuild")
      assert.strictEqual(notAllowed.status, 404)
      // Drupal's own 404 page, not JSON.
      for (const page of [unknown, notAllowed]) {
        assert.include(page.headers.get("content-type") ?? "", "text/html")
        assert.throws(() => JSON.parse(page.text))
      }
      const allowed = yield* get(sim, "/jsonrpc/methods/cache.rebuild", bearer("admin"))
      assert.strictEqual(allowed.status, 200)
    }))

  it.scopedLive("addMethod / removeMethod are visible in discovery and callable", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* sim.addMethod({
        id: "site.version",
        usage: "Drupal version of the site.",
        params: { verbose: { description: "More detail", schema: { type: "boolean" } } },
        result: "11.1.0"
      })
      assert.include(ids(json(yield* get(sim, "/jsonrpc/methods"))), "site.version")
      const called = json(yield* post(sim, call("site.version", { verbose: true })))
      assert.strictEqual(called.result, "11.1.0")
      yield* sim.removeMethod("site.version")
      assert.notInclude(ids(json(yield* get(sim, "/jsonrpc/methods"))), "site.version")
      assert.strictEqual((yield* post(sim, call("site.version"))).status, 400)
    }))

  it.scopedLive("POST /__sim/methods and DELETE /__sim/methods/{id} do the same over HTTP", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const added = yield* fetchReply(`${sim.url}/__sim/methods`, {
        method: "POST",
        body: JSON.stringify({
          id: "site.ping",
          usage: "Ping.",
          access: ["administer site configuration"],
          params: { n: { required: true, schema: { type: "integer" } } },
          result: "pong"
        })
      })
      assert.strictEqual(added.status, 201)
      assert.notInclude(ids(json(yield* get(sim, "/jsonrpc/methods"))), "site.ping")
      assert.include(ids(json(yield* get(sim, "/jsonrpc/methods", bearer("admin")))), "site.ping")
      const missing = yield* post(sim, call("site.ping", {}), bearer("admin"))
      assert.strictEqual(json(missing).error.data, "Missing required parameter: n")
      assert.strictEqual(json(yield* post(sim, call("site.ping", { n: 1 }), bearer("admin"))).result, "pong")
      const invalid = yield* fetchReply(`${sim.url}/__sim/methods`, { method: "POST", body: JSON.stringify({ usage: 1 }) })
      assert.strictEqual(invalid.status, 400)
      const removed = yield* fetchReply(`${sim.url}/__sim/methods/site.ping`, { method: "DELETE" })
      assert.strictEqual(removed.status, 204)
      assert.notInclude(ids(json(yield* get(sim, "/jsonrpc/methods", bearer("admin")))), "site.ping")
      const again = yield* fetchReply(`${sim.url}/__sim/methods/site.ping`, { method: "DELETE" })
      assert.strictEqual(again.status, 404)
    }))
})
