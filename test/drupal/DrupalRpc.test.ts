import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Stream } from "effect"
import { anonymous, bearer } from "../../src/drupal/Credentials.js"
import { DrupalRpc } from "../../src/drupal/DrupalRpc.js"
import * as Simulator from "../../src/simulator/Simulator.js"
import { ClientTest } from "./fixtures.js"

const admin = bearer("demo-admin-token")
const subscriber = bearer("demo-subscriber-token")

const withClient = <A, E>(
  effect: Effect.Effect<A, E, DrupalRpc | Simulator.Simulator>,
  options: Parameters<typeof ClientTest> = []
) => Effect.provide(effect, ClientTest(...options) as Layer.Layer<DrupalRpc | Simulator.Simulator>)

const ids = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from)

describe("DrupalRpc", () => {
  it.live("50 concurrent calls for 50 different items cost at most 3 upstream HTTP requests", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const results = yield* Effect.forEach(
        ids(50),
        (id) => rpc.call("content.get_tutorial", { id, include_content: false }, admin),
        { concurrency: "unbounded" }
      )
      const stats = yield* sim.stats
      assert.deepStrictEqual(results.map((r) => (r as { id: number }).id), ids(50))
      assert.isAtMost(stats.http_requests, 3)
      assert.strictEqual(stats.rpc_calls, 50)
      assert.isAtLeast(stats.max_batch_size, 17)
    })))

  it.live("100 concurrent identical searches cost one upstream call", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const params = { query: "views", page: { limit: 5, offset: 0 } }
      const results = yield* Effect.forEach(
        ids(100),
        (i) => rpc.call("content.search", i % 2 === 0 ? params : { page: { offset: 0, limit: 5 }, query: "views" }, anonymous),
        { concurrency: "unbounded" }
      )
      const stats = yield* sim.stats
      assert.strictEqual(stats.rpc_calls, 1)
      assert.strictEqual(stats.http_requests, 1)
      assert.strictEqual(new Set(results.map((r) => JSON.stringify(r))).size, 1)
    })))

  it.live("identical calls arriving in later windows join the call still in flight", () =>
    withClient(
      Effect.gen(function*() {
        const rpc = yield* DrupalRpc
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ latency: { kind: "fixed", ms: 150 } })
        yield* sim.reset
        const first = yield* Effect.fork(rpc.call("content.search", { query: "forms" }, anonymous))
        yield* Effect.sleep("50 millis") // well past the 5 ms batch window
        const second = yield* rpc.call("content.search", { query: "forms" }, anonymous)
        const firstResult = yield* first.await
        assert.strictEqual((yield* sim.stats).rpc_calls, 1)
        assert.deepStrictEqual(firstResult._tag === "Success" ? firstResult.value : undefined, second)
      })
    ))

  const invalidItemBatch = Effect.gen(function*() {
    const rpc = yield* DrupalRpc
    const sim = yield* Simulator.Simulator
    yield* sim.reset
    const calls = [
      ...ids(10).map((id) => rpc.call("content.get_tutorial", { id, include_content: false }, admin)),
      rpc.call("content.get_tutorial", { id: 999_999, include_content: false }, admin),
      rpc.call("no.such_method", {}, admin),
      rpc.call("content.search", {}, admin) // missing the required query
    ]
    const results = yield* Effect.all(calls.map(Effect.either), { concurrency: "unbounded" })
    const ok = results.slice(0, 10)
    assert.isTrue(ok.every(Either.isRight))
    assert.deepStrictEqual(ok.map((r) => Either.isRight(r) ? (r.right as { id: number }).id : 0), ids(10))
    const [missing, unknown, invalid] = results.slice(10)
    for (const [result, code] of [[unknown, -32601], [invalid, -32602]] as const) {
      assert.isTrue(result !== undefined && Either.isLeft(result))
      if (result !== undefined && Either.isLeft(result)) {
        assert.strictEqual(result.left._tag, "DrupalHttpError")
        if (result.left._tag === "DrupalHttpError") {
          assert.strictEqual(result.left.status, 400)
          assert.strictEqual(result.left.rpcError?.code, code)
        }
      }
    }
    return { missing, stats: yield* sim.stats }
  })

  it.live("a batch holding an invalid item still answers every valid item", () =>
    withClient(Effect.gen(function*() {
      const { missing, stats } = yield* invalidItemBatch
      // The module's default: a missing tutorial is the method's own per-item error (id null).
      assert.isTrue(missing !== undefined && Either.isLeft(missing) && missing.left._tag === "DrupalRpcError" && missing.left.code === -32602)
      // Both parse-stage 400s name their item: one batch, then one resend per bad item at most.
      assert.isAtMost(stats.http_requests, 4)
    })))

  it.live("a batch whose parse-stage 400 names no item (id null) is bisected, not sent item by item", () =>
    withClient(
      Effect.gen(function*() {
        const { missing, stats } = yield* invalidItemBatch
        assert.isTrue(missing !== undefined && Either.isLeft(missing) && missing.left._tag === "DrupalHttpError" && missing.left.status === 400)
        // 13 → 7 (ok) + 6 → 3 (ok) + 3 → 3 singles: 9 requests, where one per item would be 14.
        assert.isAtMost(stats.http_requests, 9)
      }),
      [{}, { switches: { missingItem: "parse" } }]
    ))

  it.live("a batch whose reply is over maxReplyBytes (one large item) answers its other calls: each is resent on its own", () =>
    withClient(
      Effect.gen(function*() {
        const rpc = yield* DrupalRpc
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const [large, ...small] = yield* Effect.all(
          [
            Effect.either(rpc.call("content.get_tutorial", { id: 1, include_content: true }, admin)),
            ...ids(5, 2).map((id) => Effect.either(rpc.call("content.get_tutorial", { id, include_content: false }, admin)))
          ],
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(small.map((r) => Either.isRight(r) && (r.right as { id: number }).id), ids(5, 2))
        assert.isTrue(
          Either.isLeft(large!) && large.left._tag === "DrupalDecodeError" && /reply larger than 4096 bytes/.test(large.left.message),
          "the large item alone fails, as too large"
        )
        const stats = yield* sim.stats
        // One batch of six (too large), then six calls on their own.
        assert.strictEqual(stats.max_batch_size, 6)
        assert.strictEqual(stats.http_requests, 7)
      }),
      [{ maxReplyBytes: 4096 }]
    ))

  it.live("calls with different credentials never share a batch", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      const item = sim.corpus.items.find((i) => i.access === "subscriber")!
      yield* sim.reset
      const [asSubscriber, asAnonymous] = yield* Effect.all([
        Effect.either(rpc.call("content.get_tutorial", { id: item.id, include_content: false }, subscriber)),
        Effect.either(rpc.call("content.get_tutorial", { id: item.id, include_content: false }, anonymous))
      ], { concurrency: "unbounded" })
      assert.isTrue(Either.isRight(asSubscriber))
      assert.isTrue(Either.isLeft(asAnonymous))
      if (Either.isLeft(asAnonymous)) {
        assert.strictEqual(asAnonymous.left._tag, "DrupalRpcError")
        if (asAnonymous.left._tag === "DrupalRpcError") {
          assert.strictEqual(asAnonymous.left.data, "Access Denied: The 'access subscriber content' permission is required.")
          assert.strictEqual(asAnonymous.left.id, null)
        }
      }
      assert.strictEqual((yield* sim.stats).http_requests, 2)
    })))

  it.live("with half of the upstream requests failing transiently, every call succeeds within the retry budget", () =>
    withClient(
      Effect.gen(function*() {
        const rpc = yield* DrupalRpc
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ errorRates: { "*": 0.5 }, errorKind: "rpc", seed: 11 })
        yield* sim.reset
        const results = yield* Effect.forEach(
          ids(20),
          (id) => rpc.call("content.get_tutorial", { id, include_content: false }, admin),
          { concurrency: 5 }
        )
        const stats = yield* sim.stats
        assert.deepStrictEqual(results.map((r) => (r as { id: number }).id), ids(20))
        assert.isAbove(stats.faults.rpc_errors, 0, "faults were injected")
        assert.isAbove(stats.rpc_calls, 20 + stats.faults.rpc_errors - 1, "and retried past")
      }),
      [{
        retry: { maxAttempts: 16, base: Duration.millis(1), cap: Duration.millis(20), maxElapsed: Duration.seconds(20) },
        breaker: { failureRatio: 0.9, minimumCalls: 50, consecutiveFailures: 30, cooldown: Duration.seconds(1) }
      }]
    ))

  it.live("with the upstream failing permanently, the circuit opens and calls fail fast without upstream requests", () =>
    withClient(
      Effect.gen(function*() {
        const rpc = yield* DrupalRpc
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ errorRates: { "*": 1 }, errorKind: "http503" })
        // Sequential calls: each one fails after its retries and feeds the breaker.
        const early = yield* Effect.forEach(ids(5), (id) => Effect.either(rpc.call("content.get_tutorial", { id }, admin)))
        assert.isTrue(early.every(Either.isLeft))
        assert.strictEqual(yield* rpc.breakerState, "open")
        const before = (yield* sim.stats).http_requests
        const later = yield* Effect.forEach(ids(20), (id) => Effect.either(rpc.call("content.get_tutorial", { id }, admin)))
        const after = (yield* sim.stats).http_requests
        assert.strictEqual(after, before, "no upstream request while the circuit is open")
        assert.isTrue(later.every((r) => Either.isLeft(r) && r.left._tag === "CircuitOpenError"))
      }),
      [{ breaker: { consecutiveFailures: 5, cooldown: Duration.minutes(1) } }]
    ))

  it.live("a single read goes out as GET, a batch and writes as POST", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* rpc.call("content.search", { query: "theming" }, anonymous)
      yield* Effect.either(rpc.call("cache.rebuild", undefined, admin))
      const stats = yield* sim.stats
      assert.strictEqual(stats.get_requests, 1)
      assert.strictEqual(stats.post_requests, 1)
    })))

  it.live("a long read falls back to POST", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* rpc.call("content.search", { query: "views ".repeat(400).trim() }, anonymous)
      const stats = yield* sim.stats
      assert.strictEqual(stats.post_requests, 1)
      assert.strictEqual(stats.get_requests, 0)
    })))

  it.live("a streamed call yields the reply bytes", () =>
    withClient(Effect.gen(function*() {
      const rpc = yield* DrupalRpc
      const chunks = yield* Stream.runCollect(rpc.stream("content.get_tutorial", { id: 1, include_content: true }, admin))
      const reply = JSON.parse(Buffer.concat([...chunks]).toString("utf8"))
      assert.strictEqual(reply.result.id, 1)
      assert.isString(reply.result.content)
    })))
})
