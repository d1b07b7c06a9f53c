/**
 * Releases in the finalizer of an interrupted fiber (what SIGTERM does to the main fiber): the
 * stock form, an `Effect.interruptible` release bounded by `Effect.timeoutOption`, gets its time
 * up to the bound; it is not cut short. `Release.ts` rests on this.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { settleWithin, waitUntil } from "../../src/concurrency/Release.js"

/** Forks a fiber whose finalizer runs `release`, interrupts it, and returns how long the finalizer took. */
const finalizerOfInterrupted = (release: Effect.Effect<unknown>) =>
  Effect.gen(function*() {
    const acquired = yield* Deferred.make<void>()
    let took = -1
    const fiber = yield* Effect.fork(
      Effect.acquireRelease(Deferred.succeed(acquired, undefined), () =>
        Effect.suspend(() => {
          const started = performance.now()
          return Effect.ensuring(release, Effect.sync(() => (took = performance.now() - started)))
        })).pipe(Effect.zipRight(Effect.never), Effect.scoped)
    )
    yield* Deferred.await(acquired)
    yield* Fiber.interrupt(fiber)
    return took
  })

describe("Release: time-boxed releases in the finalizer of an interrupted fiber", () => {
  it.live("an interruptible wait in the finalizer of an interrupted fiber runs to its end under timeoutOption", () =>
    Effect.gen(function*() {
      let finished = false
      const took = yield* finalizerOfInterrupted(
        Effect.sleep("300 millis").pipe(
          Effect.zipRight(Effect.sync(() => (finished = true))),
          Effect.interruptible,
          Effect.timeoutOption("1 second")
        )
      )
      assert.isTrue(finished, "the interruptible release ran to its end")
      assert.isAtLeast(took, 250)
    }))

  it.live("timeoutOption still bounds it there", () =>
    Effect.gen(function*() {
      const took = yield* finalizerOfInterrupted(Effect.never.pipe(Effect.interruptible, Effect.timeoutOption("200 millis")))
      assert.isAtLeast(took, 150)
      assert.isBelow(took, 2_000)
    }))

  it.live("settleWithin reports a release that outlives its bound, and does not wait for it", () =>
    Effect.gen(function*() {
      const settled = yield* settleWithin("100 millis", () => new Promise<void>((resolve) => setTimeout(resolve, 2_000)))
      assert.isFalse(settled)
      assert.isTrue(yield* settleWithin("1 second", () => Promise.reject(new Error("refused"))))
    }))

  it.live("settleWithin gives the release its time in the same place", () =>
    Effect.gen(function*() {
      let finished = false
      const took = yield* finalizerOfInterrupted(
        settleWithin("1 second", () => new Promise<void>((resolve) => setTimeout(() => (finished = true, resolve()), 300)))
      )
      assert.isTrue(finished)
      assert.isAtLeast(took, 250)
    }))

  it.live("waitUntil polls to its condition in the same place", () =>
    Effect.gen(function*() {
      const until = Date.now() + 300
      const took = yield* finalizerOfInterrupted(waitUntil(() => Date.now() >= until, "1 second"))
      assert.isAtLeast(took, 250)
    }))
})
