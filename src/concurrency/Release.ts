/**
 * Time-boxed releases, in the stock form: the release is `Effect.interruptible` and bounded by
 * `Effect.timeoutOption`. That holds in a finalizer of an interrupted fiber too (SIGTERM
 * interrupts the main fiber): an interruptible wait there is not cut short, it gets its time up
 * to the bound (`test/concurrency/Release.test.ts` proves it).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option } from "effect"

/**
 * Runs `run` and waits for it to settle at most `within`; a rejection or a timeout is swallowed
 * (a release must not fail). Returns whether it settled in time. The promise is not cancelled
 * when the bound passes: it is left to settle in the background.
 */
export const settleWithin = (
  within: Duration.DurationInput,
  run: () => Promise<unknown>
): Effect.Effect<boolean> =>
  Effect.tryPromise(run).pipe(
    Effect.ignore,
    Effect.interruptible,
    Effect.timeoutOption(within),
    Effect.map(Option.isSome)
  )

/**
 * Waits until `done()` holds, checking every `every`, for at most `within`; returns whether it
 * held. Time comes from the fiber's `Clock`.
 */
export const waitUntil = (
  done: () => boolean,
  within: Duration.DurationInput,
  every: Duration.DurationInput = Duration.millis(10)
): Effect.Effect<boolean> => {
  const poll: Effect.Effect<void> = Effect.suspend(() => (done() ? Effect.void : Effect.zipRight(Effect.sleep(every), poll)))
  return poll.pipe(Effect.interruptible, Effect.timeoutOption(within), Effect.map(Option.isSome))
}
