/**
 * The invalidation guard of the tiered cache: it decides whether a value read or loaded at some
 * moment may still be stored, given the invalidations that ran since (see `TieredCache.ts`).
 *
 * Time is counted in **epochs**: the number of invalidations finished so far. A read or load
 * notes the epoch it starts in (`since`); it is **overtaken** when an invalidation of its key,
 * of its key's namespace or of one of its tags finished after that epoch, or is still running.
 * An overtaken value is answered to its caller but never stored.
 *
 * Bounded: the guard remembers the last `memory` invalidated keys / tags / namespaces; a value
 * read or loaded before the oldest one it still remembers counts as overtaken, so the bound
 * costs cache fills, never correctness. Synchronous and single-threaded (JavaScript): every
 * method is safe to call from any fiber.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type * as SingleFlight from "../concurrency/SingleFlight.js"
import { namespaceOf } from "./CacheTier.js"

/** A shared read or load: its result and the guard epoch it started in. */
export interface Stamped<A> {
  readonly value: A
  readonly since: number
}

/** The guard. */
export interface InvalidationGuard {
  /** The current epoch: note it when a read or load starts. */
  readonly epoch: () => number
  /** Runs `effect` as an invalidation of `ids`: values read or loaded before or during it are not stored. */
  readonly invalidating: <A, E>(ids: ReadonlyArray<string>, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Whether an invalidation of `key`, its namespace or one of `tags` finished after epoch `since` or is running. */
  readonly overtaken: (key: string, tags: ReadonlyArray<string>, since: number) => boolean
  /**
   * Runs `effect` (which reads the epoch it starts in) through `flight`; a caller that joined
   * a run an invalidation overtook before the caller joined, runs again: any run in flight by
   * then started after the caller joined.
   */
  readonly sharedRun: <A, E>(
    flight: SingleFlight.SingleFlight,
    key: string,
    effect: Effect.Effect<Stamped<A>, E>,
    isOvertaken: (value: A, since: number) => boolean
  ) => Effect.Effect<A, E>
}

/** The guard ids of invalidated keys. */
export const keyIds = (keys: ReadonlyArray<string>): Array<string> => keys.map((k) => `k:${k}`)
/** The guard ids of invalidated tags. */
export const tagIds = (tags: ReadonlyArray<string>): Array<string> => tags.map((t) => `t:${t}`)
/** The guard id of a cleared namespace. */
export const namespaceId = (namespace: string): string => `n:${namespace}`

/** A guard remembering at most `memory` (>= 1) invalidated ids. */
export const make = (memory: number): InvalidationGuard => {
  // `epoch` counts finished invalidations. `invalidatedAt` holds, per key (`k:`), tag (`t:`) and
  // namespace (`n:`), the epoch its last invalidation finished in, oldest first, bounded;
  // `forgotten` is the newest epoch dropped from it. `running` counts invalidations in progress.
  let epoch = 0
  let forgotten = 0
  const invalidatedAt = new Map<string, number>()
  const running = new Map<string, number>()
  const bound = Math.max(1, memory)

  const begin = (ids: ReadonlyArray<string>) =>
    Effect.sync(() => {
      for (const id of ids) running.set(id, (running.get(id) ?? 0) + 1)
    })
  const end = (ids: ReadonlyArray<string>) =>
    Effect.sync(() => {
      epoch++
      for (const id of ids) {
        invalidatedAt.delete(id)
        invalidatedAt.set(id, epoch)
        const left = (running.get(id) ?? 1) - 1
        if (left > 0) running.set(id, left)
        else running.delete(id)
      }
      while (invalidatedAt.size > bound) {
        const [id, at] = invalidatedAt.entries().next().value!
        invalidatedAt.delete(id)
        forgotten = Math.max(forgotten, at)
      }
    })

  const hitSince = (id: string, since: number) => running.has(id) || (invalidatedAt.get(id) ?? -1) > since

  const overtaken = (key: string, tags: ReadonlyArray<string>, since: number): boolean => {
    if (since < forgotten) return true
    if (invalidatedAt.size === 0 && running.size === 0) return false
    if (hitSince(`k:${key}`, since)) return true
    const namespace = namespaceOf(key)
    if (namespace !== undefined && hitSince(namespaceId(namespace), since)) return true
    for (const tag of tags) if (hitSince(`t:${tag}`, since)) return true
    return false
  }

  return {
    epoch: () => epoch,
    invalidating: (ids, effect) => Effect.acquireUseRelease(begin(ids), () => effect, () => end(ids)),
    overtaken,
    sharedRun: (flight, key, effect, isOvertaken) =>
      Effect.suspend(() => {
        const joinedAt = epoch
        return Effect.flatMap(flight.run(key, effect), (result) =>
          result.since < joinedAt && isOvertaken(result.value, result.since)
            ? Effect.map(flight.run(key, effect), (again) => again.value)
            : Effect.succeed(result.value))
      })
  }
}
