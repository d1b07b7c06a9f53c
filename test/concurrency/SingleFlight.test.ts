import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Scope } from "effect"
import * as SingleFlight from "../../src/concurrency/SingleFlight.js"

describe("SingleFlight", () => {
  it.scoped("concurrent runs of one key share one execution; other keys run on their own", () =>
    Effect.gen(function*() {
      let joins = 0
      const sf = yield* SingleFlight.make({ maxKeys: 100, onJoin: () => joins++ })
      let executions = 0
      const gate = yield* Deferred.make<void>()
      const work = (v: string) => Effect.zipRight(Effect.sync(() => executions++), Deferred.await(gate)).pipe(Effect.as(v))
      const fibers = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => Effect.fork(sf.run("a", work("A"))))
      const other = yield* Effect.fork(sf.run("b", work("B")))
      yield* Effect.yieldNow()
      assert.strictEqual(sf.size(), 2)
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(new Set(results), new Set(["A"]))
      assert.strictEqual(yield* Fiber.join(other), "B")
      assert.strictEqual(executions, 2)
      assert.strictEqual(joins, 49)
      assert.strictEqual(sf.size(), 0)
    }))

  it.live("a failure is shared by every joiner and the key is free again afterwards", () =>
    Effect.gen(function*() {
      const sf = yield* SingleFlight.make({ maxKeys: 10 })
      let executions = 0
      const failing = Effect.suspend(() => {
        executions++
        return Effect.fail("boom" as const)
      }).pipe(Effect.delay("5 millis"))
      const results = yield* Effect.all([sf.run("k", failing), sf.run("k", failing)].map(Effect.either), { concurrency: 2 })
      assert.deepStrictEqual(results.map((r) => r._tag), ["Left", "Left"])
      assert.strictEqual(executions, 1)
      yield* Effect.either(sf.run("k", failing))
      assert.strictEqual(executions, 2)
    }).pipe(Effect.scoped))

  it.scoped("interrupting a caller does not interrupt the shared execution", () =>
    Effect.gen(function*() {
      const sf = yield* SingleFlight.make({ maxKeys: 10 })
      const gate = yield* Deferred.make<void>()
      let completed = false
      const work = Effect.zipRight(Deferred.await(gate), Effect.sync(() => (completed = true)))
      const first = yield* Effect.fork(sf.run("k", work))
      const second = yield* Effect.fork(sf.run("k", work))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(first)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(second)
      assert.isTrue(completed)
    }))

  it.effect("closing the scope interrupts executions and releases their joiners", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const sf = yield* Scope.extend(SingleFlight.make({ maxKeys: 10 }), scope)
      const joiner = yield* Effect.fork(sf.run("k", Effect.never))
      yield* Effect.yieldNow()
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(joiner)
      assert.isTrue(Exit.isInterrupted(exit))
    }))

  it.scoped("past maxKeys callers run on their own", () =>
    Effect.gen(function*() {
      const sf = yield* SingleFlight.make({ maxKeys: 1 })
      const gate = yield* Deferred.make<void>()
      let executions = 0
      const work = Effect.zipRight(Effect.sync(() => executions++), Deferred.await(gate))
      const a = yield* Effect.fork(sf.run("a", work))
      const b1 = yield* Effect.fork(sf.run("b", work))
      const b2 = yield* Effect.fork(sf.run("b", work))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll([a, b1, b2])
      assert.strictEqual(executions, 3)
    }))
})
