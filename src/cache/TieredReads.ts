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
 * runs its own), and the remote reads of single keys asked in the same turn of the event loop
 * are coalesced into one `getMany` per tier (one Redis MGET, one PostgreSQL `= ANY($1)`, at most
 * 256 keys). Never fails.
 *
 * Why a hand-made batcher and not `dataLoader` + `SingleFlight`: a Redis hit is a few
 * microseconds of client work, and every fiber, request and span around it costs as much. The
 * earlier path (a span, a single-flight fiber per key, two `Effect.request` rounds through a
 * `dataLoader` whose zero window is a timer, then a fiber per decoded entry) spent ~4 ms of CPU
 * per get on a loaded 2-core machine and served 1/30 of bentocache's Redis gets. Here a read that
 * misses memory registers itself in a map (the single flight) and in the current batch and
 * waits for it (`Effect.async`); the batch is read by one fiber, started from `setImmediate` (after every
 * fiber woken in this turn has asked) or at once when it reaches 256 keys.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Either, Exit, FiberId, FiberSet, Option, type Scope } from "effect"
import { errorText, throttledWarning } from "../telemetry/ThrottledLog.js"
import type { CacheItem, CacheTier, LeaseRead, ReadOptions, TierName } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"
import type { InvalidationGuard } from "./InvalidationGuard.js"
import type { MemoryTier } from "./MemoryTier.js"
import type { RemoteWriter } from "./RemoteWriter.js"
import type { CacheHit, CacheStatus, TieredCacheHooks } from "./TieredModel.js"
import * as Traced from "../telemetry/Traced.js"

const hitStatus: Record<TierName, CacheStatus> = {
  memory: "HIT-MEMORY",
  redis: "HIT-REDIS",
  postgres: "HIT-POSTGRES"
}

/** Most keys one coalesced remote read carries (one MGET, one `= ANY($1)`). */
const MAX_BATCH = 256

/** Most fail-safe reads at once (each waits at most its tiers' fail-safe bounds); others queue. */
export const MAX_FAIL_SAFE_READS = 32

/**
 * Bound on one fail-safe read, the wait for its turn included (the tiers' own fail-safe bounds,
 * 2 s for Redis and 4 s for PostgreSQL by default, sum to 6 s): past it the caller gets the
 * origin's error.
 */
export const FAIL_SAFE_MAX = Duration.seconds(10)

/** Most single-key remote reads shared at once; past it a read is batched but not shared. */
const MAX_SHARED = 100_000

/** One key read from the `remote` tiers, waiting in a batch or being read. */
interface PendingRead {
  readonly key: string
  readonly remote: ReadonlyArray<CacheTier>
  /** The names of the tiers, comma-separated: reads with the same tiers share a batch. */
  readonly tiers: string
  /** The single-flight key: `<tiers>|<key>`. */
  readonly flight: string
  /** The guard epoch the read started in. */
  readonly since: number
  /** Its outcome, once read. */
  exit: Exit.Exit<Option.Option<CacheHit>> | undefined
  /** The callers waiting for it (resumed by {@link settle}; an interrupted one is resumed in vain). */
  readonly waiters: Array<(exit: Exit.Exit<Option.Option<CacheHit>>) => void>
}

/** Waits for `read` (a `Deferred` costs twice as much for this one-shot use). */
const awaitRead = (read: PendingRead): Effect.Effect<Option.Option<CacheHit>> =>
  read.exit !== undefined ? read.exit : Effect.async((resume) => {
    if (read.exit !== undefined) resume(read.exit)
    else read.waiters.push(resume)
  })

/** The entry if it may still be answered at `now` (before `staleUntil`). */
const usable = (entry: Option.Option<CacheEntry>, now: number): Option.Option<CacheEntry> =>
  Option.filter(entry, (e) => now < e.staleUntil)

/** Options of {@link make}. */
export interface TieredReadsOptions {
  readonly memory: MemoryTier
  readonly guard: InvalidationGuard
  /** Backfills of remote tiers go through it. */
  readonly enqueue: RemoteWriter["enqueue"]
  /** Stores items in the memory tier (and remembers their namespaces). */
  readonly writeMemory: (items: ReadonlyArray<CacheItem>) => Effect.Effect<void>
  readonly hooks: TieredCacheHooks
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
    since: number,
    /** Taken by the Redis tier in its read (`ReadOptions.lease`; one key). */
    lease?: LeaseRead
  ) => Effect.Effect<Array<Option.Option<CacheHit>>>
  /**
   * The fail-safe read of one key, for when the origin has failed and the answer would be an
   * error: every `remote` tier is asked again, past its circuit breaker and with its longer
   * fail-safe bound (`CacheTier.ReadOptions`), at most {@link MAX_FAIL_SAFE_READS} at a time and
   * {@link FAIL_SAFE_MAX} in all. A copy found is backfilled as by any read. Never fails.
   */
  readonly recheck: (key: string, remote: ReadonlyArray<CacheTier>) => Effect.Effect<Option.Option<CacheHit>>
  /** Memory, then the `remote` tiers for the keys memory missed (one batch per tier). Never fails. */
  readonly readTiers: (keys: ReadonlyArray<string>, remote: ReadonlyArray<CacheTier>) => Effect.Effect<Array<Option.Option<CacheHit>>>
  /**
   * One key: memory, then one remote read shared by every concurrent caller of the key (its
   * batch is traced as `TieredCache.readBatch`). Never fails.
   */
  readonly readOne: (key: string, remote: ReadonlyArray<CacheTier>) => Effect.Effect<Option.Option<CacheHit>>
  /** Memory only, synchronously, for a caller that already runs in a fiber and read the clock. Counts the lookup. */
  readonly readMemoryOne: (key: string, now: number) => Option.Option<CacheHit>
  /** The shared, batched remote read of one key (memory not asked). Never fails. */
  readonly readShared: (key: string, remote: ReadonlyArray<CacheTier>) => Effect.Effect<Option.Option<CacheHit>>
}

/** Creates the read path; its remote-read batcher lives in the current scope. */
export const make = (options: TieredReadsOptions): Effect.Effect<TieredReads, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { enqueue, guard, hooks, memory, writeMemory } = options
    const { overtaken } = guard

    /**
     * Reads `keys` from the remote tiers, tier by tier (a tier is asked only for the keys the
     * tiers above missed), and backfills what it finds into memory and into the remote tiers
     * above that answered, unless an invalidation overtook the read (`since`).
     */
    // A failed remote read is a fall-through, so answers stay right; said at most once per
    // tier per 5 s (the count is in `accelerator_cache_lookups_total{outcome="error"}`).
    const warn = throttledWarning(5_000)
    const warnReadFailed = (tier: TierName, keys: number, error: unknown) =>
      warn(tier, "cache: a remote read failed; its keys fall through to the next tier", { tier, keys, error: errorText(error) })

    const readRemote = (keys: ReadonlyArray<string>, remote: ReadonlyArray<CacheTier>, since: number, failSafe = false, lease?: LeaseRead) =>
      Effect.gen(function*() {
        const found: Array<Option.Option<CacheHit>> = keys.map(() => Option.none())
        let missing: Array<number> = keys.map((_, i) => i)
        const above: Array<CacheTier> = []
        for (const tier of remote) {
          if (missing.length === 0) break
          // The lease goes with the Redis read; a tier that found the lease taken did not read.
          let unread = false
          const read: ReadOptions = {
            ...(failSafe ? { failSafe } : {}),
            ...(lease !== undefined && tier.name === "redis"
              ? { lease: { ...lease, taken: (ours: boolean) => ((unread = !ours), lease.taken(ours)) } }
              : {})
          }
          const result = yield* Effect.either(tier.getMany(missing.map((i) => keys[i]!), read))
          if (Either.isLeft(result)) {
            // Not a backfill target either: a write to a tier that just failed would fail too.
            hooks.onLookup?.(tier.name, "error")
            yield* warnReadFailed(tier.name, missing.length, result.left)
            continue
          }
          if (unread) continue
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

    const failSafeReads = yield* Effect.makeSemaphore(MAX_FAIL_SAFE_READS)
    const recheck = (key: string, remote: ReadonlyArray<CacheTier>) =>
      remote.length === 0
        ? Effect.succeedNone
        : failSafeReads.withPermits(1)(
          Effect.suspend(() => Effect.map(readRemote([key], remote, guard.epoch(), true), (found) => found[0] ?? Option.none()))
        ).pipe(Effect.timeoutTo({ duration: FAIL_SAFE_MAX, onTimeout: Option.none, onSuccess: (found) => found }))

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

    // ---- the batcher: single flight per `<tiers>|<key>`, one `getMany` per tier per batch -----
    const runFork = yield* FiberSet.makeRuntime<never>()
    const shared = new Map<string, PendingRead>()
    let batch: Array<PendingRead> = []
    let timer: ReturnType<typeof setImmediate> | undefined

    const settle = (read: PendingRead, exit: Exit.Exit<Option.Option<CacheHit>>) => {
      if (read.exit !== undefined) return
      read.exit = exit
      if (shared.get(read.flight) === read) shared.delete(read.flight)
      for (const resume of read.waiters) resume(exit)
      read.waiters.length = 0
    }

    /** Reads a batch: one `readRemote` per set of tiers, backfill judged from its earliest start. */
    const readBatch = (reads: ReadonlyArray<PendingRead>) => {
      const groups = new Map<string, Array<PendingRead>>()
      for (const read of reads) {
        const group = groups.get(read.tiers)
        if (group === undefined) groups.set(read.tiers, [read])
        else group.push(read)
      }
      return Effect.forEach(groups.values(), (group) => {
        let since = group[0]!.since
        for (const read of group) since = Math.min(since, read.since)
        return Effect.map(readRemote(group.map((r) => r.key), group[0]!.remote, since), (found) => {
          group.forEach((read, i) => settle(read, Exit.succeed(found[i] ?? Option.none())))
        })
      }, { discard: true })
    }

    const flush = () => {
      if (timer !== undefined) clearImmediate(timer)
      timer = undefined
      const reads = batch
      batch = []
      if (reads.length === 0) return
      // In the cache's scope: closing it interrupts the read, and the observer releases the
      // waiters (an interrupted or failed read is their outcome, as with any shared run). One
      // span per batch (`TieredCache.readBatch`), not one per key: a span costs more than a key.
      runFork(Traced.withSpan(readBatch(reads), "TieredCache.readBatch", { captureStackTrace: false })).addObserver((exit) => {
        if (Exit.isFailure(exit)) for (const read of reads) settle(read, Exit.failCause(exit.cause))
      })
    }

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (timer !== undefined) clearImmediate(timer)
        timer = undefined
        const reads = batch
        batch = []
        for (const read of reads) settle(read, Exit.interrupt(FiberId.none))
      })
    )

    /** Adds a read of `key` to the current batch, shared with later callers unless too many are. */
    const start = (key: string, remote: ReadonlyArray<CacheTier>, tiers: string, flight: string) => {
      const read: PendingRead = { key, remote, tiers, flight, since: guard.epoch(), exit: undefined, waiters: [] }
      if (shared.size < MAX_SHARED) shared.set(flight, read)
      batch.push(read)
      // At the end of this turn of the event loop, once every fiber woken in it has asked.
      if (batch.length >= MAX_BATCH) flush()
      else if (timer === undefined) timer = setImmediate(flush)
      return read
    }

    /**
     * The remote read of `key`: joins the one in flight, or starts one. A caller that joined a
     * read an invalidation overtook before it joined reads again (the rule of
     * `InvalidationGuard.sharedRun`; inlined, as the batcher is the single flight).
     */
    const sharedRead = (key: string, remote: ReadonlyArray<CacheTier>, recheck: boolean): Effect.Effect<Option.Option<CacheHit>> => {
      const tiers = remote.map((t) => t.name).join(",")
      const flight = `${tiers}|${key}`
      const existing = shared.get(flight)
      if (existing === undefined) return awaitRead(start(key, remote, tiers, flight))
      if (!recheck) return awaitRead(existing)
      const joinedAt = guard.epoch()
      return Effect.flatMap(awaitRead(existing), (found) =>
        existing.since < joinedAt && isOvertakenHit(key)(found, existing.since)
          ? Effect.suspend(() => sharedRead(key, remote, false))
          : Effect.succeed(found))
    }

    const readShared = (key: string, remote: ReadonlyArray<CacheTier>) => Effect.suspend(() => sharedRead(key, remote, true))

    const readMemoryOne = (key: string, now: number): Option.Option<CacheHit> => {
      const entry = memory.lookupSync(key, now)
      if (entry === undefined) {
        hooks.onLookup?.("memory", "miss")
        return Option.none()
      }
      hooks.onLookup?.("memory", now < entry.freshUntil ? "hit" : "stale")
      return Option.some({ entry, status: "HIT-MEMORY" })
    }

    /** One key: memory, then one remote read shared by every concurrent caller of the key. */
    const readOne = (key: string, remote: ReadonlyArray<CacheTier>) =>
      Effect.clockWith((clock) => {
        const inMemory = readMemoryOne(key, clock.unsafeCurrentTimeMillis())
        return Option.isSome(inMemory) || remote.length === 0 ? Effect.succeed(inMemory) : sharedRead(key, remote, true)
      })

    return { readRemote: (keys, remote, since, lease) => readRemote(keys, remote, since, false, lease), recheck, readTiers, readOne, readMemoryOne, readShared }
  })
