import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Fiber } from "effect"
import { makeFaultInjector, noFaults } from "../../src/simulator/Faults.js"
import { bearer, call, fetchReply, json, post, start, tryFetch } from "./support.js"

describe("Simulator fault injection", () => {
  it.scopedLive("error rate 1.0 on a method, kind rpc: every call of it fails with -32603 naming a backend", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { errorRates: { "content.search": 1 }, errorKind: "rpc" } })
      for (let i = 0; i < 20; i++) {
        const reply = yield* post(sim, [call("content.search", { query: "views" }, 1), call("user.access_context", undefined, 2)])
        assert.strictEqual(reply.status, 200)
        const [failed, ok] = json(reply)
        assert.strictEqual(failed.error.code, -32603)
        assert.strictEqual(failed.error.message, "Internal Error")
        assert.match(failed.error.data, /^Backend failure: the search_api_solr backend/)
        assert.strictEqual(ok.result.uid, 0)
      }
      assert.strictEqual((yield* sim.stats).faults.rpc_errors, 20)
    }))

  it.scopedLive("error rate 1.0, kind http503: the whole request gets HTTP 503", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      yield* sim.setFaults({ errorRates: { "*": 1 }, errorKind: "http503" })
      for (let i = 0; i < 10; i++) {
        const reply = yield* post(sim, [call("user.access_context", undefined, 1), call("content.search", { query: "x" }, 2)])
        assert.strictEqual(reply.status, 503)
        assert.strictEqual(reply.headers.get("retry-after"), "1")
      }
      // Parse-stage failures are still decided first: a bad request is 400, not 503.
      assert.strictEqual((yield* post(sim, call("no.such"))).status, 400)
    }))

  it.scopedLive("error rate 0.0: no call fails", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { errorRates: { "*": 0, "content.search": 0 }, errorKind: "rpc" } })
      const batch = Array.from({ length: 50 }, (_, i) => call("content.search", { query: "views" }, i))
      const replies = json(yield* post(sim, batch))
      assert.strictEqual(replies.filter((r: { error?: unknown }) => r.error !== undefined).length, 0)
    }))

  it.scopedLive("a fractional rate is reproducible from the fault seed", () =>
    Effect.gen(function*() {
      const faults = { errorRates: { "user.access_context": 0.5 }, errorKind: "rpc" as const, seed: 99 }
      const pattern = (replies: Array<{ error?: unknown }>) => replies.map((r) => (r.error === undefined ? "." : "x")).join("")
      const batch = Array.from({ length: 200 }, (_, i) => call("user.access_context", undefined, i))
      const a = pattern(json(yield* post(yield* start({ faults }), batch)))
      const b = pattern(json(yield* post(yield* start({ faults }), batch)))
      assert.strictEqual(a, b)
      const failures = a.split("").filter((c) => c === "x").length
      assert.isAbove(failures, 60)
      assert.isBelow(failures, 140)
    }))

  it.scopedLive("reset rate 1.0: the connection is destroyed mid-request", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { resetRate: 1 } })
      const result = yield* Effect.either(tryFetch(`${sim.url}/jsonrpc`, {
        method: "POST",
        body: JSON.stringify(call("user.access_context"))
      }))
      assert.isTrue(Either.isLeft(result))
      assert.strictEqual((yield* sim.stats).faults.resets, 1)
      yield* sim.setFaults({ resetRate: 0 })
      assert.strictEqual((yield* post(sim, call("user.access_context"))).status, 200)
    }))

  it.scopedLive("hang rate 1.0: no answer until the client gives up", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { hangRate: 1 } })
      const started = Date.now()
      const result = yield* Effect.either(tryFetch(`${sim.url}/jsonrpc`, {
        method: "POST",
        body: JSON.stringify(call("user.access_context")),
        signal: AbortSignal.timeout(300)
      }))
      assert.isTrue(Either.isLeft(result))
      assert.isAtLeast(Date.now() - started, 290)
      assert.strictEqual((yield* sim.stats).faults.hangs, 1)
      yield* sim.setFaults({ hangRate: 0 })
      assert.strictEqual((yield* post(sim, call("user.access_context"))).status, 200)
    }))

  it.live("a hung request does not hold up shutdown: the socket is cut at once", () =>
    Effect.gen(function*() {
      const [elapsed, pending] = yield* Effect.timed(Effect.scoped(Effect.gen(function*() {
        const sim = yield* start({ faults: { hangRate: 1 }, shutdownTimeoutMs: 5_000 })
        const pending = yield* Effect.fork(Effect.either(tryFetch(`${sim.url}/jsonrpc`, { method: "POST", body: "{}" })))
        yield* Effect.sleep(Duration.millis(150))
        assert.strictEqual((yield* sim.stats).faults.hangs, 1)
        return pending
      })))
      assert.isBelow(Duration.toMillis(elapsed), 2_000)
      const outcome = yield* Fiber.join(pending)
      assert.isTrue(Either.isLeft(outcome))
    }))

  it.scopedLive("fixed latency adds at least the delay", () =>
    Effect.gen(function*() {
      const sim = yield* start({ faults: { latency: { kind: "fixed", ms: 200 } } })
      const started = Date.now()
      const reply = yield* post(sim, call("user.access_context"))
      assert.strictEqual(reply.status, 200)
      assert.isAtLeast(Date.now() - started, 195)
      yield* sim.setFaults({ latency: { kind: "none" } })
      const fast = Date.now()
      yield* post(sim, call("user.access_context"))
      assert.isBelow(Date.now() - fast, 150)
    }))

  it.scopedLive("slow streaming paces large bodies at the configured bytes per second", () =>
    Effect.gen(function*() {
      const sim = yield* start({
        streamThresholdBytes: 1024,
        faults: { slowStreamRate: 1, streamBytesPerSecond: 100_000 }
      })
      const item = sim.corpus.items.find((i) => i.access === "free" && i.targetChars > 30_000 && i.targetChars < 60_000)!
      const started = Date.now()
      const reply = yield* post(sim, call("content.get_tutorial", { id: item.id }))
      const elapsed = Date.now() - started
      const bytes = Buffer.byteLength(reply.text)
      assert.isAtLeast(elapsed, (bytes / 100_000) * 1000 * 0.8)
      assert.strictEqual(json(reply).result.content, sim.corpus.bodyText(item, "html"))
      assert.strictEqual((yield* sim.stats).faults.slow_streams, 1)
    }))

  it.scopedLive("POST /__sim/faults changes the configuration; GET shows it; bad input is a 400", () =>
    Effect.gen(function*() {
      const sim = yield* start()
      const set = yield* fetchReply(`${sim.url}/__sim/faults`, {
        method: "POST",
        body: JSON.stringify({ errorRates: { "user.access_context": 1 }, errorKind: "rpc" })
      })
      assert.strictEqual(set.status, 200)
      const shown = json(yield* fetchReply(`${sim.url}/__sim/faults`))
      assert.deepStrictEqual(shown.errorRates, { "user.access_context": 1 })
      assert.strictEqual(json(yield* post(sim, call("user.access_context"), bearer("free"))).error.code, -32603)
      const bad = yield* fetchReply(`${sim.url}/__sim/faults`, { method: "POST", body: JSON.stringify({ hangRate: 2 }) })
      assert.strictEqual(bad.status, 400)
      assert.deepStrictEqual((yield* sim.faults).hangRate, 0)
    }))
})

describe("Fault injector", () => {
  it("log-normal latency has about the configured mean and 99th percentile", () => {
    const faults = makeFaultInjector({ ...noFaults, latency: { kind: "lognormal", meanMs: 30, p99Ms: 200 }, seed: 5 })
    const samples = Array.from({ length: 20_000 }, () => faults.latencyMs()).sort((a, b) => a - b)
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length
    const p99 = samples[Math.floor(samples.length * 0.99)]!
    assert.isAbove(mean, 25)
    assert.isBelow(mean, 35)
    assert.isAbove(p99, 160)
    assert.isBelow(p99, 240)
  })

  it("uniform latency stays within its bounds; rates 0 and 1 are exact", () => {
    const faults = makeFaultInjector({ ...noFaults, latency: { kind: "uniform", minMs: 10, maxMs: 20 }, errorRates: { a: 1, b: 0 } })
    for (let i = 0; i < 1000; i++) {
      const ms = faults.latencyMs()
      assert.isTrue(ms >= 10 && ms <= 20)
      assert.isTrue(faults.shouldFail("a"))
      assert.isFalse(faults.shouldFail("b"))
      assert.isFalse(faults.shouldFail("c"))
    }
  })
})
