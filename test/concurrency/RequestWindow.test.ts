/**
 * Time-window batching: requests from independent fibers reach the resolver as one batch; a full
 * window is sent at once; an interrupted caller's request leaves the batch; closing the scope
 * interrupts the requests still waiting.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Request, RequestResolver, Scope } from "effect"
import * as RequestWindow from "../../src/concurrency/RequestWindow.js"

class Double extends Request.Class<number, string, { readonly n: number }> {}

/** A resolver that answers `n * 2` (and fails odd `n` when asked), recording each batch. */
const recording = (failOdd = false) => {
  const batches: Array<ReadonlyArray<number>> = []
  const resolver = RequestResolver.makeBatched((requests: ReadonlyArray<Double>) =>
    Effect.forEach(requests, (r) => Request.complete(r, failOdd && r.n % 2 === 1 ? Exit.fail(`odd ${r.n}`) : Exit.succeed(r.n * 2)), {
      discard: true
    }).pipe(Effect.zipLeft(Effect.sync(() => batches.push(requests.map((r) => r.n)))))
  )
  return { batches, resolver }
}

describe("RequestWindow", () => {
  it.scopedLive("requests from concurrent fibers within the window reach the resolver as one batch; each gets its own answer", () =>
    Effect.gen(function*() {
      const { batches, resolver } = recording(true)
      const run = yield* RequestWindow.make(resolver, { window: "20 millis", maxBatchSize: 100 })
      const answers = yield* Effect.forEach(Array.from({ length: 20 }, (_, n) => n), (n) => Effect.either(run(new Double({ n }))), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(batches.map((b) => b.length), [20])
      answers.forEach((answer, n) => {
        if (n % 2 === 1) assert.deepStrictEqual(answer._tag === "Left" && answer.left, `odd ${n}`)
        else assert.deepStrictEqual(answer._tag === "Right" && answer.right, n * 2)
      })
    }))

  it.scopedLive("a full window is sent at once: 12 requests with a batch bound of 5 are batches of 5, 5 and 2", () =>
    Effect.gen(function*() {
      const { batches, resolver } = recording()
      const run = yield* RequestWindow.make(resolver, { window: "30 millis", maxBatchSize: 5 })
      const answers = yield* Effect.forEach(Array.from({ length: 12 }, (_, n) => n), (n) => run(new Double({ n })), { concurrency: "unbounded" })
      assert.deepStrictEqual(answers, Array.from({ length: 12 }, (_, n) => n * 2))
      assert.deepStrictEqual(batches.map((b) => b.length), [5, 5, 2])
    }))

  it.scopedLive("an interrupted caller's request is taken out of the waiting batch", () =>
    Effect.gen(function*() {
      const { batches, resolver } = recording()
      const run = yield* RequestWindow.make(resolver, { window: "50 millis", maxBatchSize: 100 })
      const fibers = yield* Effect.forEach([1, 2, 3], (n) => Effect.fork(run(new Double({ n }))))
      yield* Effect.sleep("5 millis")
      yield* Fiber.interrupt(fibers[1]!)
      assert.strictEqual(yield* Fiber.join(fibers[0]!), 2)
      assert.strictEqual(yield* Fiber.join(fibers[2]!), 6)
      assert.deepStrictEqual(batches, [[1, 3]])
    }))

  it.scopedLive("closing the scope interrupts the requests still waiting; they are never sent, and later ones are refused", () =>
    Effect.gen(function*() {
      const { batches, resolver } = recording()
      const scope = yield* Scope.make()
      const run = yield* Scope.extend(RequestWindow.make(resolver, { window: "10 seconds", maxBatchSize: 100 }), scope)
      const started = yield* Deferred.make<void>()
      const waiting = yield* Effect.fork(Effect.zipRight(Deferred.succeed(started, undefined), run(new Double({ n: 4 }))))
      yield* Deferred.await(started)
      yield* Effect.sleep("5 millis")
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.isTrue(Exit.isInterrupted(yield* Effect.exit(run(new Double({ n: 5 })))))
      assert.deepStrictEqual(batches, [])
    }))
})
