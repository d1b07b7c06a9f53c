/**
 * Time-boxed releases that also work when the releasing fiber has been interrupted.
 *
 * A finalizer runs uninterruptibly, and when it runs because its fiber was interrupted (SIGTERM
 * interrupts the main fiber), an `Effect.interruptible` region inside it is cut short at once:
 * `Effect.timeoutOption` over an interruptible release would abandon the release immediately
 * instead of giving it its time. These helpers bound a release with a plain timer instead, so
 * the release gets up to its bound whether or not the fiber was interrupted.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"

/**
 * Runs `run` and waits for it to settle at most `within`; a rejection or a timeout is swallowed
 * (a release must not fail). Returns whether it settled in time.
 */
export const settleWithin = (
  within: Duration.DurationInput,
  run: () => Promise<unknown>
): Effect.Effect<boolean> =>
  Effect.promise(() => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Duration.toMillis(within))
    })
    const done = Promise.resolve()
      .then(run)
      .then(() => true, () => true)
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer))
  })

/**
 * Waits until `done()` holds, checking every `every`, for at most `within`; returns whether it
 * held. Needs no interruption, so it also works inside a finalizer of an interrupted fiber.
 */
export const waitUntil = (
  done: () => boolean,
  within: Duration.DurationInput,
  every: Duration.DurationInput = Duration.millis(10)
): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    const deadline = Date.now() + Duration.toMillis(within)
    const loop: Effect.Effect<boolean> = Effect.suspend(() =>
      done() ? Effect.succeed(true) : Date.now() >= deadline ? Effect.succeed(false) : Effect.zipRight(Effect.sleep(every), loop)
    )
    return loop
  })
