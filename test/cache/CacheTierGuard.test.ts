/**
 * The guard every remote tier puts around its operations (`CacheTier.guarded`): how a timeout
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

const setup = Effect.gen(function*() {
  const counter = { n: 0 }
  const breaker = yield* CircuitBreaker.make({ name: "redis", consecutiveFailures: 3, cooldown: "1 minute", isFailure: CacheTier.countsAgainstTier })
  const guard = CacheTier.guarded("redis", breaker, { progress: () => counter.n })
  return { counter, breaker, guard }
})

describe("CacheTier.guarded", () => {
  it.live("a timeout while the tier made progress is busy and does not count against the breaker", () =>
    Effect.gen(function*() {
      const { counter, guard } = yield* setup
      for (let i = 0; i < 5; i++) {
        const result = yield* Effect.either(guard("getMany", BOUND, slowOp(true, counter)))
        assert.isTrue(Either.isLeft(result) && result.left.busy === true, `timeout ${i} is busy`)
        assert.isTrue(Either.isLeft(result) && result.left.tier === "redis" && result.left.op === "getMany")
      }
      // Five busy timeouts in a row, the breaker (3 in a row) is still closed.
      assert.strictEqual(yield* guard("getMany", BOUND, Effect.succeed("ok")), "ok")
    }))

  it.live("a timeout with no progress counts: the breaker opens; a fail-safe call still runs", () =>
    Effect.gen(function*() {
      const { counter, guard } = yield* setup
      for (let i = 0; i < 3; i++) {
        const result = yield* Effect.either(guard("getMany", BOUND, slowOp(false, counter)))
        assert.isTrue(Either.isLeft(result) && result.left.busy === false, `timeout ${i} is not busy`)
      }
      const open = yield* Effect.either(guard("getMany", BOUND, Effect.succeed("ok")))
      assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError")
      assert.strictEqual(yield* guard("getMany", BOUND, Effect.succeed("ok"), { failSafe: true }), "ok")
    }))

  it.live("without a progress counter, every timeout counts", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "postgres", consecutiveFailures: 2, cooldown: "1 minute", isFailure: CacheTier.countsAgainstTier })
      const guard = CacheTier.guarded("postgres", breaker)
      for (let i = 0; i < 2; i++) {
        const result = yield* Effect.either(guard("getMany", BOUND, Effect.never))
        assert.isTrue(Either.isLeft(result) && result.left.busy === false)
      }
      const open = yield* Effect.either(guard("getMany", BOUND, Effect.succeed("ok")))
      assert.isTrue(Either.isLeft(open) && (open.left.cause as { _tag?: string })._tag === "CircuitOpenError")
    }))
})
