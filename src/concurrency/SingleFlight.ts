/**
 * Single-flight: concurrent runs of the same key share one execution. The first caller starts
 * the effect in a fiber owned by the single-flight's scope; later callers with the same key
 * join it until it completes. Interrupting a caller never interrupts the shared execution
 * (others may still want the result, and a finished upstream reply is still worth caching);
 * closing the scope does.
 *
 * Bounded: at most `maxKeys` executions are tracked at once; past that, callers run their
 * effect on their own rather than queue (correct, only less deduplicated).
 *
 * @since 0.1.0
 */
import { Deferred, Effect, FiberId, type Scope } from "effect"

/** A keyed single-flight group. */
export interface SingleFlight {
  /** Runs `effect`, or joins the execution already running under `key`. */
  readonly run: <A, E>(key: string, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Executions in flight right now. */
  readonly size: () => number
}

/** Options of {@link make}. */
export interface SingleFlightOptions {
  readonly maxKeys: number
  /** Called each time a caller joins an execution already in flight (for a metric). */
  readonly onJoin?: () => void
}

/** Creates a single-flight group whose executions live in the current scope. */
export const make = (options: SingleFlightOptions): Effect.Effect<SingleFlight, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const inFlight = new Map<string, Deferred.Deferred<any, any>>()
    const run = <A, E>(key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const existing = inFlight.get(key) as Deferred.Deferred<A, E> | undefined
        if (existing !== undefined) {
          options.onJoin?.()
          return Deferred.await(existing)
        }
        if (inFlight.size >= options.maxKeys) return effect
        const deferred = Deferred.unsafeMake<A, E>(FiberId.none)
        inFlight.set(key, deferred)
        return Effect.flatMap(Effect.forkIn(effect, scope), (fiber) => {
          // An observer, not a finalizer inside `effect`: it also fires when the fiber is
          // interrupted before it ever ran, so joiners can never be left waiting.
          fiber.addObserver((exit) => {
            inFlight.delete(key)
            Deferred.unsafeDone(deferred, exit)
          })
          return Deferred.await(deferred)
        })
      })
    return { run, size: () => inFlight.size }
  })
