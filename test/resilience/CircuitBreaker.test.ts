import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Ref, TestClock } from "effect"
import { DrupalHttpError, DrupalTransportError, isDrupalError, isTransient } from "../../src/drupal/DrupalError.js"
import { CircuitOpenError } from "../../src/resilience/CircuitBreaker.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"

const refused = new DrupalTransportError({ reason: "connection_refused", cause: null })
const notFound = new DrupalHttpError({ status: 404, bodyExcerpt: "" })

/** A breaker with a run counter and a transition log. */
const setup = (options: Partial<CircuitBreaker.CircuitBreakerOptions> = {}) =>
  Effect.gen(function*() {
    const runs = yield* Ref.make(0)
    const changes = yield* Ref.make<ReadonlyArray<string>>([])
    const breaker = yield* CircuitBreaker.make({
      name: "drupal",
      // The Drupal client's rule, as it passes it to its breaker.
      isFailure: (error) => !isDrupalError(error) || isTransient(error),
      consecutiveFailures: 3,
      cooldown: "5 seconds",
      ...options,
      onStateChange: (change) => Ref.update(changes, (xs) => [...xs, `${change.from}->${change.to}@${change.at}`])
    })
    /** One call whose body counts its runs and then does `outcome`. */
    const call = <A, E>(outcome: Effect.Effect<A, E>) =>
      breaker.withBreaker(Effect.zipRight(Ref.update(runs, (n) => n + 1), outcome))
    const succeed = Effect.exit(call(Effect.succeed("ok")))
    const fail = Effect.exit(call(Effect.fail(refused)))
    return { breaker, runs, changes, call, succeed, fail }
  })

/** Yields until `condition` holds (at most 1000 times): lets forked fibers reach their blocking point. */
const waitUntil = (condition: Effect.Effect<boolean>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (yield* condition) return
      yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage("condition never held")
  })

const isOpenError = <A, E>(exit: Exit.Exit<A, E | CircuitOpenError>): boolean =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error instanceof CircuitOpenError

describe("CircuitBreaker", () => {
  it.effect("opens after N consecutive counted failures", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* t.fail
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "closed")
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "open")
      assert.deepStrictEqual(yield* Ref.get(t.changes), ["closed->open@0"])
    }))

  it.effect("a success, or a failure that does not count, resets the consecutive count", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* t.fail
      yield* t.fail
      yield* Effect.exit(t.call(Effect.fail(notFound)))
      yield* t.fail
      yield* t.fail
      yield* t.succeed
      yield* t.fail
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "closed")
      assert.strictEqual(yield* t.runs, 9 - 1)
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "open")
    }))

  it.effect("while open it fails fast with CircuitOpenError without running the effect", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* Effect.repeatN(t.fail, 2)
      assert.strictEqual(yield* Ref.get(t.runs), 3)
      yield* TestClock.adjust("2 seconds")
      for (let i = 0; i < 5; i++) {
        const exit = yield* t.succeed
        assert.isTrue(isOpenError(exit))
      }
      assert.strictEqual(yield* Ref.get(t.runs), 3)
      const error = yield* Effect.flip(t.call(Effect.succeed("x")))
      assert.instanceOf(error, CircuitOpenError)
      if (error instanceof CircuitOpenError) {
        assert.strictEqual(error.upstream, "drupal")
        assert.strictEqual(Duration.toMillis(error.retryAfter), 3000)
      }
    }))

  it.effect("after the cooldown one call is a trial (half-open); its success closes the breaker", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* Effect.repeatN(t.fail, 2)
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(isOpenError(yield* t.succeed))
      yield* TestClock.adjust("1 millis")
      // Transitions happen on calls: still reported open until one arrives.
      assert.strictEqual(yield* t.breaker.state, "open")

      const gate = yield* Deferred.make<void>()
      const trial = yield* Effect.fork(t.call(Deferred.await(gate)))
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n === 4))
      assert.strictEqual(yield* t.breaker.state, "half_open")
      // The only trial slot is taken: others fail fast, unrun.
      assert.isTrue(isOpenError(yield* t.succeed))
      assert.strictEqual(yield* Ref.get(t.runs), 4)

      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(trial)
      assert.strictEqual(yield* t.breaker.state, "closed")
      assert.deepStrictEqual(yield* Ref.get(t.changes), ["closed->open@0", "open->half_open@5000", "half_open->closed@5000"])
      // Closed again, with fresh counters: two failures do not reopen it.
      yield* t.fail
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "closed")
    }))

  it.effect("a failed trial reopens the breaker for another full cooldown", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      yield* Effect.repeatN(t.fail, 2)
      yield* TestClock.adjust("5 seconds")
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "open")
      assert.deepStrictEqual(yield* Ref.get(t.changes), ["closed->open@0", "open->half_open@5000", "half_open->open@5000"])
      yield* TestClock.adjust("4 seconds")
      const runs = yield* Ref.get(t.runs)
      assert.isTrue(isOpenError(yield* t.succeed))
      assert.strictEqual(yield* Ref.get(t.runs), runs)
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isSuccess(yield* t.succeed))
      assert.strictEqual(yield* t.breaker.state, "closed")
    }))

  it.effect("concurrent trial calls are bounded by halfOpenMaxCalls", () =>
    Effect.gen(function*() {
      const t = yield* setup({ halfOpenMaxCalls: 2 })
      yield* Effect.repeatN(t.fail, 2)
      yield* TestClock.adjust("5 seconds")
      const runsBefore = yield* Ref.get(t.runs)
      const gate = yield* Deferred.make<void>()
      const fibers = yield* Effect.forEach(
        Array.from({ length: 6 }),
        () => Effect.fork(Effect.exit(t.call(Deferred.await(gate)))),
        { concurrency: "unbounded" }
      )
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n - runsBefore >= 2))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      assert.strictEqual((yield* Ref.get(t.runs)) - runsBefore, 2)
      yield* Deferred.succeed(gate, undefined)
      const exits = yield* Effect.forEach(fibers, Fiber.join)
      assert.strictEqual(exits.filter(Exit.isSuccess).length, 2)
      assert.strictEqual(exits.filter(isOpenError).length, 4)
      assert.strictEqual(yield* t.breaker.state, "closed")
    }))

  it.effect("interruptions do not count, and an interrupted trial frees its slot", () =>
    Effect.gen(function*() {
      const t = yield* setup({ consecutiveFailures: 1 })
      const hung = yield* Effect.fork(t.call(Effect.never))
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n === 1))
      yield* Fiber.interrupt(hung)
      assert.strictEqual(yield* t.breaker.state, "closed")

      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "open")
      yield* TestClock.adjust("5 seconds")
      const trial = yield* Effect.fork(t.call(Effect.never))
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n === 3))
      assert.isTrue(isOpenError(yield* t.succeed))
      yield* Fiber.interrupt(trial)
      assert.strictEqual(yield* t.breaker.state, "half_open")
      assert.isTrue(Exit.isSuccess(yield* t.succeed))
      assert.strictEqual(yield* t.breaker.state, "closed")
    }))

  it.effect("defects count as failures", () =>
    Effect.gen(function*() {
      const t = yield* setup({ consecutiveFailures: 2 })
      yield* Effect.exit(t.call(Effect.die("bug")))
      yield* Effect.exit(t.call(Effect.die("bug")))
      assert.strictEqual(yield* t.breaker.state, "open")
    }))

  it.effect("the predicate decides what counts; non-Drupal failures count by default", () =>
    Effect.gen(function*() {
      const byDefault = yield* setup({ consecutiveFailures: 2 })
      yield* Effect.exit(byDefault.call(Effect.fail(notFound)))
      yield* Effect.exit(byDefault.call(Effect.fail(notFound)))
      assert.strictEqual(yield* byDefault.breaker.state, "closed")
      yield* Effect.exit(byDefault.call(Effect.fail("redis down")))
      yield* Effect.exit(byDefault.call(Effect.fail("redis down")))
      assert.strictEqual(yield* byDefault.breaker.state, "open")

      const custom = yield* setup({ consecutiveFailures: 2, isFailure: (e) => e === "counts" })
      yield* Effect.exit(custom.call(Effect.fail(refused)))
      yield* Effect.exit(custom.call(Effect.fail(refused)))
      assert.strictEqual(yield* custom.breaker.state, "closed")
      yield* Effect.exit(custom.call(Effect.fail("counts")))
      yield* Effect.exit(custom.call(Effect.fail("counts")))
      assert.strictEqual(yield* custom.breaker.state, "open")
    }))

  it.effect("opens on the failure ratio once the window holds the minimum number of calls", () =>
    Effect.gen(function*() {
      const t = yield* setup({ consecutiveFailures: 100, failureRatio: 0.5, minimumCalls: 10, window: "10 seconds" })
      // S F S F … : never two failures in a row; 9 calls (4 failures) are below the minimum.
      for (let i = 0; i < 9; i++) yield* (i % 2 === 0 ? t.succeed : t.fail)
      assert.strictEqual(yield* t.breaker.state, "closed")
      yield* t.fail // 10 calls, 5 failures: 50 %
      assert.strictEqual(yield* t.breaker.state, "open")
    }))

  it.effect("calls older than the rolling window no longer count", () =>
    Effect.gen(function*() {
      const t = yield* setup({ consecutiveFailures: 100, failureRatio: 0.5, minimumCalls: 4, window: "10 seconds" })
      yield* t.fail
      yield* t.succeed
      yield* t.fail
      yield* TestClock.adjust("11 seconds")
      yield* t.succeed
      yield* t.fail // within the window: 2 calls, below the minimum
      assert.strictEqual(yield* t.breaker.state, "closed")
      yield* t.succeed
      yield* t.fail // 4 calls, 2 failures
      assert.strictEqual(yield* t.breaker.state, "open")
    }))

  it.effect("a call admitted before the breaker opened does not close it when it ends well", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const gate = yield* Deferred.make<void>()
      const early = yield* Effect.fork(t.call(Deferred.await(gate)))
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n === 1))
      yield* Effect.repeatN(t.fail, 2)
      assert.strictEqual(yield* t.breaker.state, "open")
      yield* Deferred.succeed(gate, undefined)
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(early)))
      assert.strictEqual(yield* t.breaker.state, "open")
    }))

  it.effect("outcomes of calls admitted before a transition are ignored after it", () =>
    Effect.gen(function*() {
      const t = yield* setup()
      const gate = yield* Deferred.make<void>()
      // Admitted while closed (generation 0); fails only after the breaker went open, half-open, closed.
      const early = yield* Effect.fork(t.call(Effect.zipRight(Deferred.await(gate), Effect.fail(refused))))
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n === 1))
      yield* Effect.repeatN(t.fail, 2)
      yield* TestClock.adjust("5 seconds")
      yield* t.succeed
      assert.strictEqual(yield* t.breaker.state, "closed")
      yield* t.fail
      yield* t.fail
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.await(early)
      // Two fresh failures plus the stale one would be three in a row; the stale one does not count.
      assert.strictEqual(yield* t.breaker.state, "closed")
      yield* t.fail
      assert.strictEqual(yield* t.breaker.state, "open")
    }))

  it.effect("defaults: 5 consecutive failures, 5 s cooldown, 1 trial", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "drupal" })
      const fail = Effect.exit(breaker.withBreaker(Effect.fail(refused)))
      yield* Effect.repeatN(fail, 3)
      assert.strictEqual(yield* breaker.state, "closed")
      yield* fail
      assert.strictEqual(yield* breaker.state, "open")
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(isOpenError(yield* Effect.exit(breaker.withBreaker(Effect.void))))
      yield* TestClock.adjust("1 millis")
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(breaker.withBreaker(Effect.void))))
      assert.strictEqual(yield* breaker.state, "closed")
      assert.strictEqual(CircuitBreaker.defaults.halfOpenMaxCalls, 1)
      assert.strictEqual(CircuitBreaker.defaults.minimumCalls, 20)
      assert.strictEqual(CircuitBreaker.defaults.failureRatio, 0.5)
      assert.strictEqual(Duration.toMillis(CircuitBreaker.defaults.window), 10_000)
    }))

  it.effect("many concurrent callers: the hook sees each transition once, in order", () =>
    Effect.gen(function*() {
      const t = yield* setup({ consecutiveFailures: 5 })
      const gate = yield* Deferred.make<void>()
      // 10 calls admitted while closed, all in flight; then 40 more once they have failed.
      const all = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: 50 }),
          () => Effect.exit(t.call(Effect.zipRight(Deferred.await(gate), Effect.fail(refused)))),
          { concurrency: 10 }
        )
      )
      yield* waitUntil(Effect.map(Ref.get(t.runs), (n) => n >= 10))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      assert.strictEqual(yield* Ref.get(t.runs), 10)
      yield* Deferred.succeed(gate, undefined)
      const exits = yield* Fiber.join(all)
      assert.deepStrictEqual(yield* Ref.get(t.changes), ["closed->open@0"])
      assert.strictEqual(yield* Ref.get(t.runs), 10)
      assert.strictEqual(exits.filter(isOpenError).length, 40)
    }))

  it.effect("rejects nonsensical options", () =>
    Effect.gen(function*() {
      for (
        const options of [
          { consecutiveFailures: 0 },
          { minimumCalls: 0 },
          { halfOpenMaxCalls: 0 },
          { failureRatio: 0 },
          { failureRatio: 1.5 },
          { window: Duration.zero }
        ]
      ) {
        const exit = yield* Effect.exit(CircuitBreaker.make({ name: "x", ...options }))
        assert.isTrue(Exit.isFailure(exit) && exit.cause._tag === "Die", JSON.stringify(options))
      }
    }))
})
