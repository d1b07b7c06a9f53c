import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { DEMO_BASIC_AUTH } from "../../src/simulator/Simulator.js"
import { bearer, call, get, json, post, start } from "./support.js"

const basic = (user: string, password: string) => ({
  Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`
})

describe("Simulator auth", () => {
  it.scopedLive("no Authorization header: anonymous (uid 0), may use the API and read free content", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const ctx = json(yield* post(sim, call("user.access_context"))).result
      assert.strictEqual(ctx.uid, 0)
      assert.strictEqual(ctx.access_level, "anonymous")
      assert.deepStrictEqual(ctx.roles, ["anonymous"])
      const expectedHash = createHash("sha256")
        .update(["access comments", "access content", "use jsonrpc services"].join("\n"))
        .digest("hex")
      assert.strictEqual(ctx.permissions_hash, expectedHash)
      const free = sim.corpus.items.find((i) => i.access === "free")!
      const reply = json(yield* post(sim, call("content.get_tutorial", { id: free.id, include_content: false })))
      assert.strictEqual(reply.result.id, free.id)
    }))

  it.scopedLive("each demo bearer token maps to its user and access level", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const expected = {
        free: { uid: 2, access_level: "free" },
        subscriber: { uid: 3, access_level: "subscriber" },
        admin: { uid: 1, access_level: "admin" }
      } as const
      const hashes = new Set<string>()
      for (const who of ["free", "subscriber", "admin"] as const) {
        const ctx = json(yield* post(sim, call("user.access_context"), bearer(who))).result
        assert.strictEqual(ctx.uid, expected[who].uid)
        assert.strictEqual(ctx.access_level, expected[who].access_level)
        assert.match(ctx.permissions_hash, /^[0-9a-f]{64}$/)
        hashes.add(ctx.permissions_hash)
        // Stable: asking again gives the same hash.
        const again = json(yield* post(sim, call("user.access_context"), bearer(who))).result
        assert.strictEqual(again.permissions_hash, ctx.permissions_hash)
      }
      assert.strictEqual(hashes.size, 3)
    }))

  it.scopedLive("basic auth works for the demo users", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      for (const [who, uid] of [["free", 2], ["subscriber", 3], ["admin", 1]] as const) {
        const creds = DEMO_BASIC_AUTH[who]
        const ctx = json(yield* post(sim, call("user.access_context"), basic(creds.user, creds.password))).result
        assert.strictEqual(ctx.uid, uid)
      }
    }))

  it.scopedLive("unknown token: simple_oauth's non-JSON-RPC 401 with its WWW-Authenticate challenge", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const token = yield* post(sim, call("user.access_context"), { Authorization: "Bearer not-a-token" })
      assert.strictEqual(token.status, 401)
      assert.strictEqual(token.headers.get("www-authenticate"), "Bearer realm=\"OAuth\", error=\"invalid_token\"")
      assert.include(token.headers.get("content-type") ?? "", "text/html")
      assert.throws(() => JSON.parse(token.text))
      const discovery = yield* get(sim, "/jsonrpc/methods", { Authorization: "Bearer not-a-token" })
      assert.strictEqual(discovery.status, 401)
    }))

  it.scopedLive("a wrong basic password makes the caller anonymous (core's basic_auth: no 401)", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const wrong = yield* post(sim, call("user.access_context"), basic("free", "wrong"))
      assert.strictEqual(wrong.status, 200)
      assert.isNull(wrong.headers.get("www-authenticate"))
      assert.strictEqual(json(wrong).result.uid, 0)
      assert.strictEqual(json(wrong).result.access_level, "anonymous")
      const item = sim.corpus.items.find((i) => i.access === "subscriber")!
      const denied = json(yield* post(sim, call("content.get_tutorial", { id: item.id }), basic("subscriber", "nope")))
      assert.strictEqual(denied.error.code, -32600)
    }))

  it.scopedLive("user.access_context reports access_hash and the contexts it covers", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const hashes = new Set<string>()
      for (const who of ["free", "subscriber", "admin"] as const) {
        const ctx = json(yield* post(sim, call("user.access_context"), bearer(who))).result
        assert.match(ctx.access_hash, /^[0-9a-f]{64}$/)
        assert.deepStrictEqual([...ctx.contexts].sort(), ["user.node_grants:view", "user.permissions"])
        hashes.add(ctx.access_hash)
      }
      assert.strictEqual(hashes.size, 3)
    }))

  it.scopedLive("a user without 'use jsonrpc services' gets a 403 page on every route", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const rpc = yield* post(sim, call("user.access_context"), bearer("norpc"))
      assert.strictEqual(rpc.status, 403)
      assert.include(rpc.headers.get("content-type") ?? "", "text/html")
      const discovery = yield* get(sim, "/jsonrpc/methods", bearer("norpc"))
      assert.strictEqual(discovery.status, 403)
    }))

  it.scopedLive("granting a permission to a role changes that role's permission hash", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const before = json(yield* post(sim, call("user.access_context"), bearer("free"))).result
      const grant = yield* post(
        sim,
        call("user_permissions.add_permission_to_role", {
          permission: "access subscriber content",
          role: { type: "user_role", uuid: "6f1e8c2a-0b3d-4c1e-9a57-1d2f3a4b5c03" }
        }),
        bearer("admin")
      )
      assert.deepStrictEqual(json(grant).result, 2)
      const after = json(yield* post(sim, call("user.access_context"), bearer("free"))).result
      assert.notStrictEqual(after.permissions_hash, before.permissions_hash)
      assert.strictEqual(after.access_level, "subscriber")
      const unknownRole = yield* post(
        sim,
        call("user_permissions.add_permission_to_role", { permission: "access content", role: { type: "user_role", uuid: "nope" } }),
        bearer("admin")
      )
      assert.strictEqual(unknownRole.status, 400)
      assert.strictEqual(json(unknownRole).error.data, "The requested entity could not be found.")
    }))
})
