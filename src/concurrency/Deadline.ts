/**
 * Deadlines that forgive a busy event loop. When the loop is held (a long synchronous stretch, a
 * major GC), a reply that arrived meanwhile and the deadline timer become ready together, and
 * node runs timers before it reads sockets: a plain timeout then fails an operation whose answer
 * is already in the socket buffer. Here, once the deadline passes, pending I/O gets one poll
 * phase (a `setImmediate` runs after it) before the timeout is declared.
 *
 * They are also cheap, because they bound every Redis command and every remote tier operation:
 * the deadline is a plain timer, not a fiber. `Effect.timeoutFail` races the operation against a
 * sleeping fiber (two forked fibers and the race's bookkeeping): 52–76 µs of CPU per bounded
 * operation in a micro-run (100,000 resolved operations, 32 at a time), against 32–41 µs here
 * for an effect (one fiber, the operation's) and 9–12 µs for a promise ({@link promiseWithin},
 * no fiber). The deadline runs on the real clock (`setTimeout`), not on Effect's `Clock`: a
 * `TestClock` does not move it.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Exit, Fiber } from "effect"

/** Resumes after the event loop's next poll phase (I/O callbacks ready now run first). */
export const afterPendingIo: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * A timer that calls `fire` once `ms` have passed and the event loop's next poll phase has run
 * (replies already in socket buffers are read first); `cancel` stops it at any point.
 */
const deadline = (ms: number, fire: () => void): { readonly cancel: () => void } => {
  let immediate: ReturnType<typeof setImmediate> | undefined
  const timer = setTimeout(() => {
    immediate = setImmediate(fire)
  }, ms)
  return {
    cancel: () => {
      clearTimeout(timer)
      if (immediate !== undefined) clearImmediate(immediate)
    }
  }
}

/**
 * `self`, failed with `onTimeout()` when it has not completed `duration` after it started and
 * one poll phase later. Like `Effect.timeoutFail`, the loser is interrupted (and awaited), and
 * interrupting the caller interrupts `self`. `self` runs in a fiber of its own, forked from the
 * caller (its context, its supervision).
 */
export const timeoutFail = <A, E, R, E2>(
  self: Effect.Effect<A, E, R>,
  options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E2 }
): Effect.Effect<A, E | E2, R> => {
  const duration = Duration.decode(options.duration)
  if (!Duration.isFinite(duration)) return self
  const ms = Duration.toMillis(duration)
  return Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.fork(restore(self)), (child) =>
      restore(
        Effect.async<A, E | E2>((resume) => {
          const observer = (exit: Exit.Exit<A, E>) => {
            timer.cancel()
            resume(exit)
          }
          const timer = deadline(ms, () => {
            child.removeObserver(observer)
            resume(Effect.zipRight(Fiber.interrupt(child), Effect.failSync(options.onTimeout)))
          })
          child.addObserver(observer)
          return Effect.suspend(() => {
            timer.cancel()
            child.removeObserver(observer)
            return Fiber.interrupt(child)
          })
        })
      ).pipe(
        // Interrupted before the wait began (between the fork and the wait): the child goes too.
        Effect.onInterrupt(() => Fiber.interrupt(child))
      ))
  )
}

/**
 * A promise-returning operation bounded like {@link timeoutFail}, without any fiber: `evaluate`
 * is called when the effect runs; its rejection (or throw) becomes `onError(cause)`, its
 * deadline `onTimeout()`. A promise cannot be cancelled: on a timeout or an interruption the
 * effect stops waiting and the operation's late outcome is ignored.
 */
export const promiseWithin = <A, E>(
  evaluate: () => PromiseLike<A>,
  options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E; readonly onError: (cause: unknown) => E }
): Effect.Effect<A, E> => {
  const duration = Duration.decode(options.duration)
  if (!Duration.isFinite(duration)) return Effect.tryPromise({ try: () => Promise.resolve(evaluate()), catch: options.onError })
  const ms = Duration.toMillis(duration)
  return Effect.async<A, E>((resume) => {
    let settled = false
    const settle = (effect: Effect.Effect<A, E>) => {
      if (settled) return
      settled = true
      timer.cancel()
      resume(effect)
    }
    const timer = deadline(ms, () => settle(Effect.failSync(options.onTimeout)))
    try {
      evaluate().then(
        (value) => settle(Effect.succeed(value)),
        (cause: unknown) => settle(Effect.failSync(() => options.onError(cause)))
      )
    } catch (cause) {
      settle(Effect.failSync(() => options.onError(cause)))
    }
    return Effect.sync(() => {
      settled = true
      timer.cancel()
    })
  })
}
