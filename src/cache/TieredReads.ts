/**
 * The read path of the tiered cache: memory first, then each remote tier in order, with
 * backfill and batched remote reads.
 *
 * A remote tier is asked only for the keys the tiers above missed; a remote failure is a
 * fall-through (counted as an `error` lookup), never a failed read, and a tier that just failed
 * is not a backfill target. A hit in a lower tier backfills the tiers above it that answered:
 * memory at once, a remote tier through the writer, unless an invalidation overtook the read
 * (see `InvalidationGuard.ts`): an overtaken value is answered but not stored.
 *
 * Concurrency: concurrent single-key reads of the same key that miss memory share one remote
 * read (single-flight; a caller that joins a read an invalidation overtook before it joined
 * runs its own), and the remote reads of single keys asked in the same tick are coalesced into
 * one `getMany` per tier (one Redis MGET, one PostgreSQL `= ANY($1)`, at most 256 keys).
 * Never fails.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Either, Option, Request, RequestResolver, type Scope } from "effect"
import * as ExperimentalResolver from "@effect/experimental/RequestResolver"
import type { NonEmptyArray } from "effect/Array"
import type * as SingleFlight from "../concurrency/SingleFlight.js"
import type { CacheItem, CacheTier, TierName } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"
import type { InvalidationGuard } from "./InvalidationGuard.js"
import type { MemoryTier } from "./MemoryTier.js"
import type { RemoteWriter } from "./RemoteWriter.js"
import type { CacheHit, CacheStatus, TieredCacheHooks } from "./TieredModel.js"

const hitStatus: Record<TierName, CacheStatus> = {
  memory: "HIT-MEMORY",
  redis: "HIT-REDIS",
  postgres: "HIT-POSTGRES"
}

/** One key read from the remote tiers named in `tiers` (comma-separated), batched with others. */
class RemoteRead extends Request.Class<Option.Option<CacheHit>, never, {
  readonly key: string
  readonly tiers: string
  readonly since: number
}> {}

/** The entry if it may still be answered at `now` (before `staleUntil`). */
const usable = (entry: Option.Option<CacheEntry>, now: number): Option.Option<CacheEntry> =>
  Option.filter(entry, (e) => now < e.staleUntil)

/** Options of {@link make}. */
export interface TieredReadsOptions {
  readonly memory: MemoryTier
  /** Every remote tier, in order. */
  readonly remotes: ReadonlyArray<CacheTier>
  readonly guard: InvalidationGuard
  /** Backfills of remote tiers go through it. */
  readonly enqueue: RemoteWriter["enqueue"]
  /** Stores items in the memory tier (and remembers their namespaces). */
  readonly writeMemory: (items: ReadonlyArray<CacheItem>) => Effect.Effect<void>
  readonly hooks: TieredCacheHooks
  /** Shares the remote read of a key among concurrent callers (owned by the cache's scope). */
  readonly reads: SingleFlight.SingleFlight
}

/** The read path. Every read reports each tier's outcome to `hooks.onLookup`. */
export interface TieredReads {
  /**
   * Reads `keys` from the `remote` tiers, tier by tier, backfilling the tiers above, unless an
   * invalidation overtook the read (guard epoch `since`). Never fails.
   */
  readonly readRemote: (
    keys: ReadonlyArray<string>,
    remote: ReadonlyArray<CacheTier>,
    since: number
  ) => Effect.Effect<Array<Option.Option<CacheHit>>>
  /** Memory, then the `remote` tiers for the keys memory missed (one batch per tier). Never fails. */
  readonly readTiers: (keys: ReadonlyArray<string>, remote: ReadonlyArray<CacheTier>) => Effect.Effect<Array<Option.Option<CacheHit>>>
  /** One key: memory, then one remote read shared by every concurrent caller of the key. Never fails. */
  readonly readOne: (key: string, remote: ReadonlyArray<CacheTier>) => Effect.Effect<Option.Option<CacheHit>>
}

/** Creates the read path; its remote-read batcher lives in the current scope. */
export const make = (options: TieredReadsOptions): Effect.Effect<TieredReads, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { enqueue, guard, hooks, memory, reads, remotes, writeMemory } = options
    const { overtaken, sharedRun } = guard

    /**
     * Reads `keys` from the remote tiers, tier by tier (a tier is asked only for the keys the
     * tiers above missed), and backfills what it finds into memory and into the remote tiers
     * above that answered, unless an invalidation overtook the read (`since`).
     */
    const readRemote = (keys: ReadonlyArray<string>, remote: ReadonlyArray<CacheTier>, since: number) =>
      Effect.gen(function*() {
        const found: Array<Option.Option<CacheHit>> = keys.map(() => Option.none())
        let missing: Array<number> = keys.map((_, i) => i)
        const above: Array<CacheTier> = []
        for (const tier of remote) {
          if (missing.length === 0) break
          const result = yield* Effect.either(tier.getMany(missing.map((i) => keys[i]!)))
          if (Either.isLeft(result)) {
            // Not a backfill target either: a write to a tier that just failed would fail too.
            hooks.onLookup?.(tier.name, "error")
            continue
          }
          const now = yield* Clock.currentTimeMillis
          const stillMissing: Array<number> = []
          const backfill: Array<CacheItem> = []
          missing.forEach((index, j) => {
            const entry = usable(result.right[j] ?? Option.none(), now)
            if (Option.isSome(entry)) {
              found[index] = Option.some({ entry: entry.value, status: hitStatus[tier.name] })
              hooks.onLookup?.(tier.name, now < entry.value.freshUntil ? "hit" : "stale")
              if (!overtaken(keys[index]!, entry.value.tags, since)) backfill.push({ key: keys[index]!, entry: entry.value })
            } else {
              stillMissing.push(index)
              hooks.onLookup?.(tier.name, "miss")
            }
          })
          if (backfill.length > 0) {
            yield* writeMemory(backfill)
            yield* enqueue(backfill, above, since)
          }
          above.push(tier)
          missing = stillMissing
        }
        return found
      })

    const readMemory = (keys: ReadonlyArray<string>, now: number) =>
      Effect.map(
        Effect.orElseSucceed(memory.getMany(keys), () => keys.map(() => Option.none<CacheEntry>())),
        (entries) =>
          entries.map((found): Option.Option<CacheHit> => {
            const entry = usable(found, now)
            if (Option.isNone(entry)) {
              hooks.onLookup?.("memory", "miss")
              return Option.none()
            }
            hooks.onLookup?.("memory", now < entry.value.freshUntil ? "hit" : "stale")
            return Option.some({ entry: entry.value, status: "HIT-MEMORY" })
          })
      )

    /** Memory, then the remote tiers for the keys memory missed (one batch per tier). */
    const readTiers = (keys: ReadonlyArray<string>, remote: ReadonlyArray<CacheTier>) =>
      Effect.gen(function*() {
        if (keys.length === 0) return []
        const since = guard.epoch()
        const found = yield* readMemory(keys, yield* Clock.currentTimeMillis)
        const missing = keys.flatMap((_, i) => (Option.isNone(found[i]!) ? [i] : []))
        if (missing.length === 0 || remote.length === 0) return found
        const lower = yield* readRemote(missing.map((i) => keys[i]!), remote, since)
        missing.forEach((index, j) => (found[index] = lower[j]!))
        return found
      })

    const isOvertakenHit = (key: string) => (hit: Option.Option<CacheHit>, since: number) =>
      Option.isSome(hit) && overtaken(key, hit.value.entry.tags, since)

    // Remote reads of single keys from concurrent callers are coalesced: one `getMany` per tier
    // (one Redis MGET, one PostgreSQL `= ANY($1)`) for all the keys asked in the same tick.
    const remoteReads = yield* ExperimentalResolver.dataLoader(
      RequestResolver.makeBatched((requests: NonEmptyArray<RemoteRead>) => {
        const groups = new Map<string, Array<RemoteRead>>()
        for (const request of requests) {
          const group = groups.get(request.tiers)
          if (group === undefined) groups.set(request.tiers, [request])
          else group.push(request)
        }
        return Effect.forEach(groups.values(), (group) => {
          // The earliest start of the group: invalidations after it count against the backfill.
          const since = Math.min(...group.map((r) => r.since))
          const tiers = remotes.filter((tier) => group[0]!.tiers.split(",").includes(tier.name))
          return Effect.flatMap(readRemote(group.map((r) => r.key), tiers, since), (found) =>
            Effect.forEach(group, (request, i) => Request.succeed(request, found[i] ?? Option.none()), { discard: true }))
        }, { discard: true })
      }),
      { window: Duration.zero, maxBatchSize: 256 }
    )

    /** One key: memory, then one remote read shared by every concurrent caller of the key. */
    const readOne = (key: string, remote: ReadonlyArray<CacheTier>) =>
      Effect.gen(function*() {
        const [inMemory] = yield* readMemory([key], yield* Clock.currentTimeMillis)
        if (Option.isSome(inMemory!) || remote.length === 0) return inMemory!
        const tiers = remote.map((t) => t.name).join(",")
        const read = Effect.suspend(() => {
          const since = guard.epoch()
          return Effect.map(Effect.request(new RemoteRead({ key, tiers, since }), remoteReads), (found) => ({ value: found, since }))
        })
        return yield* sharedRun(reads, `${remote.map((t) => t.name).join(",")}|${key}`, read, isOvertakenHit(key))
      })

    return { readRemote, readTiers, readOne }
  })
