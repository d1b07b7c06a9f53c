/**
 * Conditional revalidation upstream: an anonymous read sent with the validators of an earlier
 * reply gets a 304 from Drupal's page cache (the simulator's) and no body; a signed-in read is a
 * plain call.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Layer } from "effect"
import { anonymous, bearer } from "../../src/drupal/Credentials.js"
import { DrupalRpc } from "../../src/drupal/DrupalRpc.js"
import * as Simulator from "../../src/simulator/Simulator.js"
import { ClientTest } from "./fixtures.js"

const withClient = <A, E>(effect: Effect.Effect<A, E, DrupalRpc | Simulator.Simulator>) =>
  Effect.provide(effect, ClientTest() as Layer.Layer<DrupalRpc | Simulator.Simulator>)

describe("DrupalRpc.callConditional", () => {
  it.live("an anonymous read revalidated with its ETag (or Last-Modified) is NotModified: a 304, no body", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const params = { id: 1, include_content: false }
      const first = yield* rpc.callConditional!("content.get_tutorial", params, anonymous, undefined)
      assert.strictEqual(first._tag, "Modified")
      assert.strictEqual((first as { result: { id: number } }).result.id, 1)
      const validator = first.validator!
      assert.match(validator.etag!, /^"[0-9a-f]{32}"$/)
      assert.isDefined(validator.lastModified)

      const again = yield* rpc.callConditional!("content.get_tutorial", params, anonymous, validator)
      assert.deepStrictEqual(again, { _tag: "NotModified", validator })
      const byDate = yield* rpc.callConditional!("content.get_tutorial", params, anonymous, { lastModified: validator.lastModified! })
      assert.strictEqual(byDate._tag, "NotModified")
      const stale = yield* rpc.callConditional!("content.get_tutorial", params, anonymous, { etag: "\"0000\"" })
      assert.strictEqual(stale._tag, "Modified")
      const stats = yield* sim.stats
      assert.strictEqual(stats.responses["304"], 2)
      assert.strictEqual(stats.get_requests, 4)
    })))

  it.live("a signed-in read is a plain call (no validators from the page cache); errors fail as with call", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const signedIn = yield* rpc.callConditional!("content.get_tutorial", { id: 1, include_content: false }, bearer("demo-admin-token"), { etag: "\"x\"" })
      assert.strictEqual(signedIn._tag, "Modified")
      assert.isUndefined(signedIn.validator)
      const missing = yield* Effect.flip(rpc.callConditional!("content.get_tutorial", { id: 99_999_999, include_content: false }, anonymous, undefined))
      assert.include(["DrupalHttpError", "DrupalRpcError"], missing._tag)
    })))
})
