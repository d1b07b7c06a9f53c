/**
 * Deadlines that forgive a busy event loop. When the loop is held (a long synchronous stretch, a
 * major GC), a reply that arrived meanwhile and the deadline timer become ready together, and
 * node runs timers before it reads sockets: a plain timeout then fails an operation whose answer
 * is already in the socket buffer. Here, once the deadline passes, pending I/O gets one poll
 * phase (a `setImmediate` runs after it) before the timeout is declared.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"

/** Resumes after the event loop's next poll phase (I/O callbacks ready now run first). */
export const afterPendingIo: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * `self`, failed with `onTimeout()` when it has not completed `duration` after it started and
 * one poll phase later. Like `Effect.timeoutFail`, the loser is interrupted.
 */
export const timeoutFail = <A, E, R, E2>(
  self: Effect.Effect<A, E, R>,
  options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E2 }
): Effect.Effect<A, E | E2, R> =>
  Effect.raceFirst(
    self,
    Effect.sleep(options.duration).pipe(
      Effect.zipRight(afterPendingIo),
      Effect.zipRight(Effect.failSync(options.onTimeout))
    )
  )
