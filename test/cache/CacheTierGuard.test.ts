/**
 * The guard every remote tier puts around its operations (`CacheTier.guarded`, and
 * `guardedPromise` for one command): how a timeout
 * is judged (busy or down) and what the breaker makes of it; the fail-safe call past an open
 * breaker. The tiers' own specs hold the wiring to real servers (RedisTier, PostgresTier,
 * TieredCacheOutage).
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either } from "effect"
import * as CacheTier from "../../src/cache/CacheTier.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"

const BOUND = Duration.millis(20)

/** An operation that outlives the bound while `progress` grows (or not), every 2 ms. */
const slowOp = (grow: boolean, counter: { n: number }) =>
  Effect.gen(function*() {
    for (let i = 0; i < 50; i++) {
      yield* Effect.sleep("2 millis")
      if (grow) counter.n++
    }
    return "late"
  })

/** The same kind of operation as a promise: settles after ~100 ms, `progress` growing every 2 ms (or not). */
const slowPromise = (grow: boolean, counter: { n: number }) => () =>
  new Promise<string>((resolve) => {
    let ticks = 0
    const timer = setInterval(() => {
      if (grow) counter.n++
      if (++ticks >= 50) {
        clearInterval(timer)
        resolve("late")
      }
    }, 2)
  })

/**
 * Both guards, each with its kind of operation: `guarded` over effects, `guardedPromise` over
 * promises (a command), each run as `run(op, kind of operation)`.
 */
type Op = "slow-growing" | "slow-silent" | "ok" | "never"
const kinds = [
  {
    name: "guarded",
    make: (breaker: CircuitBreaker.CircuitBreaker, progress?: () => number) => {
      const guard = CacheTier.guarded("redis", breaker, progress === undefined ? {} : { progress })
      return (op: Op, counter: { n: number }, call?: CacheTier.GuardCall) =>
        guard("getMany", BOUND, op === "ok" ? Effect.succeed("ok") : op === "never" ? Effect.never : slowOp(op === "slow-growing", counter), call)
    }
  },
  {
    name: "guardedPromise",
    make: (breaker: CircuitBreaker.CircuitBreaker, progress?: () => number) => {
      const guard = CacheTier.guardedPromise("redis", breaker, progress === undefined ? {} : { progress })
      return (op: Op, counter: { n: number }, call?: CacheTier.GuardCall) =>
        guard(
          "getMany",
          BOUND,
          op === "ok" ? () => Promise.resolve("ok") : op === "never" ? () => new Promise<string>(() => {}) : slowPromise(op === "slow-growing", counter),
          call
        )
    }
  }
] as const

const setup = (kind: (typeof kinds)[number], consecutiveFailures = 3, withProgress = true) =>
  Effect.gen(function*() {
    const counter = { n: 0 }
    const breaker = yield* CircuitBreaker.make({ name: "redis", consecutiveFailures, cooldown: "1 minute", isFailure: CacheTier.countsAgainstTier })
    const run = kind.make(breaker, withProgress ? () => counter.n : undefined)
    return { counter, run: (op: Op, call?: CacheTier.GuardCall) => run(op, counter, call) }
  })

for (const kind of kinds) {
  describe(`CacheTier.${kind.name}`, () => {
    it.live("a timeout while the tier made progress is busy and does not count against the breaker", () =>
      Effect.gen(function*() {
        const { run } = yield* setup(kind)
        for (let i = 0; i < 5; i++) {
          const result = yield* Effect.either(run("slow-growing"))
          assert.isTrue(Either.isLeft(result) && result.left.busy === true, `timeout ${i} is busy`)
          assert.isTrue(Either.isLeft(result) && result.left.tier === "redis" && result.left.op === "getMany")
        }
        // Five busy timeouts in a row, the breaker (3 in a row) is still closed.
        assert.strictEqual(yield* run("ok"), "ok")
      }))

    it.live("a timeout with no progress counts: the breaker opens; a fail-safe call still runs", () =>
      Effect.gen(function*() {
        const { run } = yield* setup(kind)
        for (let i = 0; i < 3; i++) {
          const result = yield* Effect.either(run("slow-silent"))
          assert.isTrue(Either.isLeft(result) && result.left.busy === false, `timeout ${i} is not busy`)
        }
        const open = yield* Effect.either(run("ok"))
        assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError")
        assert.strictEqual(yield* run("ok", { failSafe: true }), "ok")
      }))

    it.live("without a progress counter, every timeout counts", () =>
      Effect.gen(function*() {
        const { run } = yield* setup(kind, 2, false)
        for (let i = 0; i < 2; i++) {
          const result = yield* Effect.either(run("never"))
          assert.isTrue(Either.isLeft(result) && result.left.busy === false)
        }
        const open = yield* Effect.either(run("ok"))
        assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError")
      }))
  })
}

describe("CacheTier.guardedPromise", () => {
  it.live("a rejected or throwing command is a TierError of the tier and operation, its cause kept", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "redis", consecutiveFailures: 10, cooldown: "1 minute", isFailure: CacheTier.countsAgainstTier })
      const guard = CacheTier.guardedPromise("redis", breaker)
      const cause = new Error("Connection is closed.")
      const rejected = yield* Effect.either(guard("getMany", BOUND, () => Promise.reject(cause)))
      assert.isTrue(Either.isLeft(rejected) && rejected.left.cause === cause && rejected.left.op === "getMany")
      const thrown = yield* Effect.either(guard("getMany", BOUND, () => {
        throw cause
      }))
      assert.isTrue(Either.isLeft(thrown) && thrown.left.cause === cause)
      assert.include(Either.isLeft(thrown) ? thrown.left.message : "", "cache tier redis getMany failed: Connection is closed.")
    }))
})
