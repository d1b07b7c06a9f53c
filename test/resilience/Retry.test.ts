import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Exit, Fiber, Random, Ref, TestClock } from "effect"
import {
  CircuitOpenError,
  type DrupalError,
  DrupalHttpError,
  DrupalRpcError,
  DrupalTimeoutError,
  DrupalTransportError,
  isTransientUnknown
} from "../../src/drupal/DrupalError.js"
import * as Retry from "../../src/resilience/Retry.js"

const refused = new DrupalTransportError({ reason: "connection_refused", cause: null })

interface Run {
  readonly attempts: number
  /** Clock time at the start of each attempt. */
  readonly startedAt: ReadonlyArray<number>
  readonly retries: ReadonlyArray<Retry.RetryInfo<DrupalError>>
  readonly exit: Exit.Exit<string, DrupalError>
}

/**
 * Runs an upstream stand-in under the policy: attempt n (from 0) fails with `failures(n)` or,
 * when that is undefined, succeeds. Each attempt takes `attemptTime`. Forked, then the test
 * clock is moved far enough for every delay.
 */
const run = (
  failures: (attempt: number) => DrupalError | undefined,
  options: Retry.RetryOptions<DrupalError> = {},
  random: Random.Random = Random.make("retry-spec"),
  attemptTime: Duration.DurationInput = Duration.zero
) =>
  Effect.gen(function*() {
    const attempts = yield* Ref.make<ReadonlyArray<number>>([])
    const retries = yield* Ref.make<ReadonlyArray<Retry.RetryInfo<DrupalError>>>([])
    const upstream = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const n = (yield* Ref.getAndUpdate(attempts, (xs) => [...xs, now])).length
      yield* Effect.sleep(attemptTime)
      const failure = failures(n)
      return failure === undefined ? yield* Effect.succeed(`ok after ${n}`) : yield* Effect.fail(failure)
    })
    const fiber = yield* upstream.pipe(
      // The Drupal client's rule, as it passes it to the policy.
      Retry.retry<DrupalError>({
        isRetryable: isTransientUnknown,
        ...options,
        onRetry: (info) => Ref.update(retries, (xs) => [...xs, info])
      }),
      Effect.withRandom(random),
      Effect.exit,
      Effect.fork
    )
    yield* TestClock.adjust("1 hour")
    const exit = yield* Fiber.join(fiber)
    const startedAt = yield* Ref.get(attempts)
    return { attempts: startedAt.length, startedAt, retries: yield* Ref.get(retries), exit } satisfies Run
  })

const always = (error: DrupalError) => () => error

describe("Retry", () => {
  it.effect("non-transient errors are never retried", () =>
    Effect.gen(function*() {
      const nonTransient: ReadonlyArray<DrupalError> = [
        new DrupalHttpError({
          status: 400,
          bodyExcerpt: "",
          rpcError: { code: -32602, message: "Invalid Params", data: "Missing required parameter: query" }
        }),
        new DrupalHttpError({ status: 401, bodyExcerpt: "" }),
        new DrupalHttpError({ status: 403, bodyExcerpt: "" }),
        new DrupalHttpError({ status: 404, bodyExcerpt: "" }),
        new DrupalRpcError({ code: -32600, message: "Invalid Request", data: "Access Denied", method: "m", id: 1 }),
        // A -32603 the method raised itself (id null); one with the request's id is transient.
        new DrupalRpcError({ code: -32603, message: "Internal Error", data: "Division by zero", method: "m", id: null }),
        new CircuitOpenError({ upstream: "drupal", retryAfter: Duration.seconds(1) })
      ]
      for (const error of nonTransient) {
        const result = yield* run(always(error))
        assert.strictEqual(result.attempts, 1, error._tag)
        assert.strictEqual(result.retries.length, 0)
        assert.deepStrictEqual(result.exit, Exit.fail(error))
      }
    }))

  it.effect("transient errors are retried up to maxAttempts (default 4 = 3 retries), last error kept", () =>
    Effect.gen(function*() {
      const result = yield* run(always(refused))
      assert.strictEqual(result.attempts, 4)
      assert.deepStrictEqual(result.retries.map((info) => info.retry), [1, 2, 3])
      assert.deepStrictEqual(result.exit, Exit.fail(refused))

      const two = yield* run(always(new DrupalHttpError({ status: 503, bodyExcerpt: "" })), { maxAttempts: 2 })
      assert.strictEqual(two.attempts, 2)
      const one = yield* run(always(refused), { maxAttempts: 1 })
      assert.strictEqual(one.attempts, 1)
    }))

  it.effect("a transient failure followed by success ends with the success", () =>
    Effect.gen(function*() {
      const timeout = new DrupalTimeoutError({ phase: "headers", timeout: Duration.seconds(1) })
      const backendDown = new DrupalRpcError({
        code: -32603,
        message: "Internal Error",
        data: "SQLSTATE[HY000] [2002] Connection refused",
        method: "content.search",
        id: 1
      })
      const result = yield* run((n) => (n === 0 ? timeout : n === 1 ? backendDown : undefined))
      assert.strictEqual(result.attempts, 3)
      assert.deepStrictEqual(result.exit, Exit.succeed("ok after 2"))
      assert.deepStrictEqual(result.retries.map((info) => [info.retry, info.error]), [[1, timeout], [2, backendDown]])
    }))

  it.effect("delays follow full jitter: integers in [0, min(cap, base*2^n)], slept exactly", () =>
    Effect.gen(function*() {
      const options = { base: "50 millis", cap: "1 second", maxAttempts: 12, maxElapsed: "1 minute" } as const
      const result = yield* run(always(refused), options)
      assert.strictEqual(result.attempts, 12)
      const delays = result.retries.map((info) => Duration.toMillis(info.delay))
      delays.forEach((delay, n) => {
        assert.isTrue(Number.isInteger(delay))
        assert.isAtLeast(delay, 0)
        assert.isAtMost(delay, Math.min(1000, 50 * 2 ** n), `retry ${n + 1}`)
      })
      // The sleeps between attempts are the announced delays.
      const gaps = result.startedAt.slice(1).map((t, i) => t - result.startedAt[i]!)
      assert.deepStrictEqual(gaps, delays)
      // Jitter: not one fixed sequence of ceilings.
      assert.isAbove(new Set(delays).size, 5)
      // The same seed gives the same delays.
      const again = yield* run(always(refused), options)
      assert.deepStrictEqual(again.retries.map((info) => Duration.toMillis(info.delay)), delays)
      const other = yield* run(always(refused), options, Random.make("another seed"))
      assert.notDeepEqual(other.retries.map((info) => Duration.toMillis(info.delay)), delays)
    }))

  it.effect("the ceiling doubles from base and stops at cap (random pinned to its maximum)", () =>
    Effect.gen(function*() {
      const result = yield* run(
        always(refused),
        { base: "50 millis", cap: "1 second", maxAttempts: 8, maxElapsed: "1 minute" },
        Random.fixed([Number.MAX_SAFE_INTEGER])
      )
      assert.deepStrictEqual(result.retries.map((info) => Duration.toMillis(info.delay)), [50, 100, 200, 400, 800, 1000, 1000])
      const low = yield* run(always(refused), { maxAttempts: 4 }, Random.fixed([0]))
      assert.deepStrictEqual(low.retries.map((info) => Duration.toMillis(info.delay)), [0, 0, 0])
      // No backoff at all: every attempt starts at the same instant.
      assert.strictEqual(low.attempts, 4)
      assert.strictEqual(new Set(low.startedAt).size, 1)
    }))

  it.effect("no retry starts later than maxElapsed after the first failure", () =>
    Effect.gen(function*() {
      // Delays pinned at 1 s: retries at +1 s and +2 s; the one at +3 s would pass 2.5 s.
      const pinned = yield* run(
        always(refused),
        { base: "1 second", cap: "1 second", maxAttempts: 10, maxElapsed: "2500 millis" },
        Random.fixed([Number.MAX_SAFE_INTEGER])
      )
      assert.strictEqual(pinned.attempts, 3)
      assert.deepStrictEqual(pinned.startedAt.map((t) => t - pinned.startedAt[0]!), [0, 1000, 2000])

      // Attempt time counts too: each attempt takes 1 s, no backoff; failures at +0, +1, +2, +3 s
      // after the first one, and the fourth is past 2.5 s.
      const slow = yield* run(
        always(refused),
        { maxAttempts: 10, maxElapsed: "2500 millis" },
        Random.fixed([0]),
        "1 second"
      )
      assert.strictEqual(slow.attempts, 4)
    }))

  it.effect("defaults are 50 ms, 1 s, 4 attempts, 5 s", () =>
    Effect.sync(() => {
      assert.strictEqual(Duration.toMillis(Retry.defaults.base), 50)
      assert.strictEqual(Duration.toMillis(Retry.defaults.cap), 1000)
      assert.strictEqual(Retry.defaults.maxAttempts, 4)
      assert.strictEqual(Duration.toMillis(Retry.defaults.maxElapsed), 5000)
    }))

  it.effect("a custom predicate decides for non-Drupal errors; by default they are not retried", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const failing = Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.fail("boom" as const))
      const defaultFiber = yield* Effect.fork(Effect.exit(Effect.retry(failing, Retry.policy())))
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(defaultFiber)
      assert.strictEqual(yield* Ref.get(attempts), 1)

      yield* Ref.set(attempts, 0)
      const customFiber = yield* Effect.fork(
        Effect.exit(Effect.retry(failing, Retry.policy<"boom">({ isRetryable: (e) => e === "boom", maxAttempts: 3 })))
      )
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(customFiber)
      assert.strictEqual(yield* Ref.get(attempts), 3)
    }))

  it.effect("retry() keeps the error type of the effect it wraps", () =>
    Effect.gen(function*() {
      const upstream: Effect.Effect<string, DrupalTransportError> = Effect.fail(refused)
      const retried: Effect.Effect<string, DrupalTransportError> = upstream.pipe(Retry.retry({ maxAttempts: 1 }))
      const error = yield* Effect.flip(retried)
      assert.strictEqual(error.reason, "connection_refused")
    }))

  it("rejects nonsensical options at construction", () => {
    assert.throws(() => Retry.policy({ maxAttempts: 0 }), RangeError)
    assert.throws(() => Retry.policy({ maxAttempts: 1.5 }), RangeError)
    assert.throws(() => Retry.policy({ base: Duration.infinity, cap: "1 second", maxElapsed: Duration.infinity }), RangeError)
  })
})
