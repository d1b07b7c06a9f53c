/**
 * The invalidation operations of the tiered cache (`delete`, `invalidateTags`, `clear`) and the
 * handling of what the bus brings from other instances (`applyRemote`, and `dropMemory` after a
 * bus outage).
 *
 * Invalidation runs on every tier and then, once the tiers are done, is published on the
 * {@link CacheBus} so other instances drop their memory copies (publishing first would let
 * another instance refill its memory from a remote tier not yet invalidated). It runs through
 * the invalidation guard (`InvalidationGuard.ts`): a value read or loaded before an invalidation
 * of its key, tags or namespace (or while one runs) is answered to its caller but not stored:
 * not in memory, not by the writer (checked again when the writer takes it, and a write that
 * raced with an invalidation is deleted again from that tier). A caller that joins a shared
 * read or load which an invalidation overtook before the caller joined runs its own instead.
 * So once `delete`, `invalidateTags` or `clear` has returned, this instance never answers the
 * old value again, provided every tier applied it.
 *
 * Failure: the operations never fail (but `clear` dies on an invalid namespace, see
 * `CacheTier.clear`). A tier that fails keeps its copy until its TTL; the failure is logged
 * (a warning per tier) and the other tiers and the publication go on. Other instances stop
 * answering the old value once they have heard the message (the bus's propagation delay); a
 * write of the old value by another instance racing with the invalidation can survive in a
 * remote tier until its TTL (the remote tiers do not order writes; see `CacheTier.ts`).
 * `applyRemote` and `dropMemory` touch only this instance's memory tier, skip invalid
 * namespaces and log what fails.
 *
 * Concurrency: the tiers of one operation run in parallel (at most three fibers).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { type CacheTier, checkNamespace } from "./CacheTier.js"
import { type InvalidationGuard, keyIds, namespaceId, tagIds } from "./InvalidationGuard.js"
import type { MemoryTier } from "./MemoryTier.js"
import type { CacheBus, InvalidationMessage, TieredCacheHooks } from "./TieredModel.js"

/** Options of {@link make}. */
export interface TieredInvalidationOptions {
  readonly memory: MemoryTier
  /** Every remote tier, in order. */
  readonly remotes: ReadonlyArray<CacheTier>
  readonly guard: InvalidationGuard
  readonly bus?: CacheBus | undefined
  readonly hooks: TieredCacheHooks
  /** Namespaces the cache has stored in memory (for `dropMemory`). */
  readonly namespaces: ReadonlySet<string>
}

/** The invalidation operations; see the module documentation for what they guarantee. */
export interface TieredInvalidation {
  /** Removes keys on every tier and every instance. */
  readonly deleteKeys: (keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** Removes every entry carrying one of the tags, on every tier and every instance. */
  readonly invalidateTags: (tags: ReadonlyArray<string>) => Effect.Effect<void>
  /** Removes a namespace on every tier and every instance. Dies on an invalid namespace. */
  readonly clear: (namespace: string) => Effect.Effect<void>
  /** Applies an invalidation heard from another instance to this instance's memory tier. Never fails. */
  readonly applyRemote: (message: InvalidationMessage) => Effect.Effect<void>
  /** Drops the given namespaces and every namespace stored in memory from the memory tier. Never fails. */
  readonly dropMemory: (namespaces: ReadonlyArray<string>) => Effect.Effect<void>
}

/** Creates the invalidation operations. */
export const make = (options: TieredInvalidationOptions): TieredInvalidation => {
  const { guard, hooks, memory, namespaces, remotes } = options
  const { invalidating } = guard

  const everywhere = (op: string, run: (tier: CacheTier) => Effect.Effect<void, unknown>) =>
    Effect.forEach([memory as CacheTier, ...remotes], (tier) =>
      run(tier).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning(`cache: ${op} failed on a tier`).pipe(
            Effect.annotateLogs({ tier: tier.name, error: String((error as Error)?.message ?? error) })
          )
        )
      ), { concurrency: "unbounded", discard: true }) // one fiber per tier: at most three

  const publish = (message: InvalidationMessage) => options.bus === undefined ? Effect.void : options.bus.publish(message)

  const deleteKeys = (keys: ReadonlyArray<string>) =>
    keys.length === 0 ? Effect.void : Effect.zipRight(
      invalidating(keyIds(keys), everywhere("delete", (tier) => tier.delete(keys))),
      publish({ keys })
    )

  const invalidateTags = (tags: ReadonlyArray<string>) =>
    tags.length === 0 ? Effect.void : Effect.zipRight(
      invalidating(tagIds(tags), everywhere("invalidateTags", (tier) => tier.invalidateTags(tags))),
      publish({ tags })
    )

  const clear = (namespace: string) =>
    Effect.zipRight(
      checkNamespace(namespace),
      Effect.zipRight(
        invalidating([namespaceId(namespace)], everywhere("clear", (tier) => tier.clear(namespace))),
        publish({ namespace })
      )
    )

  const validNamespace = (namespace: string) => namespace !== "" && !namespace.includes(":")

  const applyRemote = (message: InvalidationMessage) => {
    const keys = message.keys ?? []
    const tags = message.tags ?? []
    const namespace = message.namespace !== undefined && validNamespace(message.namespace) ? message.namespace : undefined
    const ids = [...keyIds(keys), ...tagIds(tags), ...(namespace === undefined ? [] : [namespaceId(namespace)])]
    if (ids.length === 0) return Effect.void
    return invalidating(
      ids,
      Effect.all([
        keys.length === 0 ? Effect.void : Effect.ignore(memory.delete(keys)),
        tags.length === 0 ? Effect.void : Effect.ignore(memory.invalidateTags(tags)),
        namespace === undefined ? Effect.void : Effect.ignore(memory.clear(namespace))
      ], { discard: true })
    ).pipe(
      Effect.zipRight(Effect.sync(() => hooks.onRemoteApplied?.(message))),
      Effect.catchAllCause((cause) => Effect.logWarning("cache: could not apply a remote invalidation", cause))
    )
  }

  const dropMemory = (given: ReadonlyArray<string>) =>
    Effect.suspend(() => {
      const all = new Set([...given.filter(validNamespace), ...namespaces])
      return Effect.forEach(all, (ns) => Effect.ignore(memory.clear(ns)), { discard: true })
    }).pipe(
      Effect.zipRight(Effect.sync(() => hooks.onMemoryDropped?.())),
      Effect.catchAllCause((cause) => Effect.logWarning("cache: could not drop the memory tier", cause))
    )

  // Every public operation is a span (`TieredCache.<op>`); the hit path never comes here.

  return { deleteKeys, invalidateTags, clear, applyRemote, dropMemory }
}
