/**
 * Counts event-loop turns (macrotasks) while an effect runs: a `setImmediate` ticker that
 * reschedules itself. A step-by-step computation that yields to the event loop lets it tick
 * between steps; one synchronous call does not let it tick at all.
 */
import { Effect } from "effect"

/** Runs `self` and gives its result with the number of event-loop turns taken meanwhile. */
export const countingTurns = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<readonly [A, number], E, R> =>
  Effect.suspend(() => {
    let turns = 0
    let ticking = true
    const tick = () => {
      if (!ticking) return
      turns++
      setImmediate(tick)
    }
    setImmediate(tick)
    return self.pipe(
      Effect.ensuring(Effect.sync(() => {
        ticking = false
      })),
      Effect.map((a) => [a, turns] as const)
    )
  })
