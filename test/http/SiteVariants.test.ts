/**
 * The gateway's integration paths under every combination a real site can show (the simulator's
 * switches): module 2.0.0 (envelope errors are an HTML 500 page) vs 2.0.5 (400 / -32603), the
 * `user.access_context` plugin present or not, and an unknown tutorial id failing per item or
 * at parse stage. Through the Drupal client and through the gateway's content route, the answers
 * a caller sees are the same in every combination.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { bearer } from "../../src/drupal/Credentials.js"
import * as DrupalRpc from "../../src/drupal/DrupalRpc.js"
import type { Switches } from "../../src/simulator/Simulator.js"
import { clientOptions } from "../drupal/fixtures.js"
import { startGateway } from "./fixtures.js"

const combinations: ReadonlyArray<Switches> = (["2.0.0", "2.0.5"] as const).flatMap((moduleVersion) =>
  [true, false].flatMap((accessContext) =>
    (["item", "parse"] as const).map((missingItem) => ({ moduleVersion, accessContext, missingItem }))
  )
)

const MISSING = 999_999

describe("gateway and client under every site variant", () => {
  for (const switches of combinations) {
    const name = `jsonrpc ${switches.moduleVersion}, access context ${switches.accessContext ? "on" : "off"}, missing item ${switches.missingItem === "item" ? "per item" : "at parse stage"}`
    it.scopedLive(name, () =>
      Effect.gen(function*() {
        const { request, sim } = yield* startGateway({}, { switches })
        const locked = sim.corpus.items.find((i) => i.access === "subscriber")!
        const open = sim.corpus.items.filter((i) => i.access === "free").slice(0, 6)

        // The client: one batch with a missing item among good ones.
        const rpc = yield* DrupalRpc.make(clientOptions(sim.url))
        const admin = bearer("demo-admin-token")
        const results = yield* Effect.forEach(
          [...open.map((i) => i.id), MISSING],
          (id) => Effect.either(rpc.call("content.get_tutorial", { id, include_content: false }, admin)),
          { concurrency: "unbounded" }
        )
        results.slice(0, -1).forEach((r, i) => assert.deepStrictEqual(Either.map(r, (v) => (v as { id: number }).id), Either.right(open[i]!.id)))
        const missing = results[results.length - 1]!
        assert.isTrue(Either.isLeft(missing))
        if (Either.isLeft(missing)) {
          if (switches.missingItem === "parse") {
            assert.isTrue(missing.left._tag === "DrupalHttpError" && missing.left.status === 400 && missing.left.rpcError?.code === -32602)
          } else {
            assert.isTrue(missing.left._tag === "DrupalRpcError" && missing.left.code === -32602 && missing.left.id === null)
          }
        }
        const context = yield* Effect.either(rpc.call("user.access_context", undefined, bearer("demo-free-token")))
        assert.strictEqual(Either.isRight(context), switches.accessContext)

        // The gateway: the same answers in every variant, singly and concurrently (batched).
        const free = { headers: { authorization: "Bearer demo-free-token" } }
        const subscriber = { headers: { authorization: "Bearer demo-subscriber-token" } }
        const asked: ReadonlyArray<readonly [string, RequestInit, number, string | number]> = [
          [`/content/${locked.id}?include_content=false`, free, 403, "forbidden"],
          [`/content/${locked.id}?include_content=false`, subscriber, 200, locked.id],
          [`/content/${MISSING}`, free, 404, "not_found"],
          [`/content/${MISSING + 1}`, {}, 404, "not_found"],
          ...open.map((i) => [`/content/${i.id}?include_content=false`, free, 200, i.id] as const)
        ]
        const replies = yield* Effect.promise(() => Promise.all(asked.map(([path, init]) => request(path, init))))
        asked.forEach(([path, , status, expected], i) => {
          const reply = replies[i]!
          assert.strictEqual(reply.status, status, path)
          assert.strictEqual(status === 200 ? reply.body.id : reply.body.error.code, expected, path)
        })
        const single = yield* Effect.promise(() => request(`/content/${locked.id}`, free))
        assert.deepStrictEqual([single.status, single.body.error.code], [403, "forbidden"])
      }), 60_000)
  }
})
