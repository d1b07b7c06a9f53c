/**
 * The multi-level cache: memory → Redis → PostgreSQL → origin, behind one service.
 *
 * Read path: the memory tier first, then each configured remote tier (a remote failure is a
 * fall-through, never a failed request); a hit in a lower tier backfills the tiers above it
 * that answered (memory at once, a remote tier through the writer). Concurrent single-key reads
 * of the same key that miss memory share one remote read, and after a miss the origin `lookup`
 * runs once per key per process (single-flight); before calling the origin, a load looks at
 * memory again, so a caller that missed just before another caller's load stored its value does
 * not call the origin a second time. A loaded value goes to memory at once and to the remote
 * tiers through a bounded background writer (one fiber, batches of `writeBatchSize`; when its
 * queue of `writeQueueCapacity` is full, writes are dropped and counted, the reader never waits).
 *
 * Freshness: an entry is fresh until `freshUntil`, then stale until `staleUntil` (`grace`).
 * A stale entry is answered at once and refreshed in the background, one refresh per key at a
 * time (stale-while-revalidate); the refresh first looks for a fresh copy in the remote tiers
 * (another instance may have refreshed it), then asks the origin. With
 * `staleWhileRevalidate: false` the load is awaited up to `softTimeout`. When the origin fails,
 * times out (soft timeout) or its circuit is open, a stale entry is answered instead of the
 * error (fail-safe). Past `staleUntil` an entry is gone. `fresh` is jittered (±`jitter`) so
 * entries written together do not expire together. A not-found answer (`notFound`) lives
 * `negative` (no grace); with `negative` 0 it is not cached, and when it answers the refresh of
 * a stale entry, that entry is removed.
 *
 * Invalidation (`delete`, `invalidateTags`, `clear`) runs on every tier and then, once the tiers
 * are done, is published on the {@link CacheBus} so other instances drop their memory copies
 * (publishing first would let another instance refill its memory from a remote tier not yet
 * invalidated). A value read or loaded before an invalidation of its key, tags or namespace
 * (or while one runs) is answered to its caller but not stored: not in memory, not by the
 * writer (checked again when the writer takes it, and a write that raced with an invalidation
 * is deleted again from that tier). A caller that joins a shared read or load which an
 * invalidation overtook before the caller joined runs its own instead. So once `delete`,
 * `invalidateTags` or `clear` has returned, this instance never answers the old value again,
 * provided every tier applied it (a remote tier that failed keeps its copy until its TTL; the
 * failure is logged).
 * Other instances stop answering it once they have heard the message (the bus's propagation
 * delay); a write of the old value by another instance racing with the invalidation can survive
 * in a remote tier until its TTL (the remote tiers do not order writes; see `CacheTier.ts`).
 * The guard remembers the last `invalidationMemory` invalidated keys / tags / namespaces; a value
 * read or loaded before the oldest one it still remembers is treated as overtaken (never
 * stored), so the bound costs cache fills, never correctness.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Data,
  Duration,
  Effect,
  Either,
  Exit,
  FiberSet,
  Layer,
  Option,
  Request,
  RequestResolver,
  type Scope
} from "effect"
import * as ExperimentalResolver from "@effect/experimental/RequestResolver"
import type { NonEmptyArray } from "effect/Array"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import { type CacheItem, type CacheTier, checkNamespace, make as makeTier, namespaceOf, type TierName } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"
import type { CacheLease } from "./CacheLease.js"
import * as InvalidationGuard from "./InvalidationGuard.js"
import { keyIds, namespaceId, tagIds } from "./InvalidationGuard.js"
import type { MemoryTier } from "./MemoryTier.js"
import * as RemoteWriter from "./RemoteWriter.js"

/** How an answer was found; the `X-Cache` header value. */
export type CacheStatus = "HIT-MEMORY" | "HIT-REDIS" | "HIT-POSTGRES" | "MISS" | "STALE"

const hitStatus: Record<TierName, CacheStatus> = {
  memory: "HIT-MEMORY",
  redis: "HIT-REDIS",
  postgres: "HIT-POSTGRES"
}

/** How long entries of one namespace live, and how loads are bounded. */
export interface CachePolicy {
  /** Time an entry is fresh. */
  readonly fresh: Duration.DurationInput
  /** Time after `fresh` during which a stale entry may still be served. */
  readonly grace: Duration.DurationInput
  /** Relative jitter applied to `fresh` (0.1 = ±10 %). */
  readonly jitter: number
  /** Time a not-found answer is kept (0 = not cached). */
  readonly negative: Duration.DurationInput
  /** After this long, an origin load answers a stale entry if there is one and goes on in the background. */
  readonly softTimeout: Duration.DurationInput
  /** An origin load taking longer fails. */
  readonly hardTimeout: Duration.DurationInput
  /**
   * `true` (default): a stale entry is answered at once and refreshed in the background.
   * `false`: a stale entry triggers a load that is awaited up to `softTimeout`; the stale entry is
   * answered only when the load fails or takes longer (it then goes on in the background).
   */
  readonly staleWhileRevalidate?: boolean
  /** Remote tiers to use for this namespace (default: all configured). */
  readonly remote?: { readonly redis?: boolean; readonly postgres?: boolean }
  /**
   * Per-tier caps on how long a stored value lives in that tier (fresh and stale time both cut
   * to the cap), e.g. a short memory TTL so instances re-read the shared tiers often. They apply
   * when a loaded value is stored; a copy backfilled from a lower tier keeps that tier's times.
   */
  readonly tierTtl?: { readonly memory?: Duration.DurationInput; readonly redis?: Duration.DurationInput; readonly postgres?: Duration.DurationInput }
}

/** What an origin load produces. */
export interface Loaded {
  readonly value: Uint8Array
  readonly contentType: string
  readonly tags: ReadonlyArray<string>
  /** A not-found answer: cached for the policy's `negative` time instead of `fresh`. */
  readonly notFound?: boolean
}

/** An answer: the entry and how it was found. */
export interface CacheHit {
  readonly entry: CacheEntry
  readonly status: CacheStatus
}

/** An origin load exceeded the policy's hard timeout. */
export class LoadTimeout extends Data.TaggedError("LoadTimeout")<{ readonly key: string; readonly after: Duration.Duration }> {}

/** Cross-instance invalidation: what one instance publishes and every other applies to its memory. */
export interface InvalidationMessage {
  readonly keys?: ReadonlyArray<string>
  readonly tags?: ReadonlyArray<string>
  readonly namespace?: string
}

/** The bus other instances hear invalidations on (Redis pub/sub, PostgreSQL NOTIFY, or none). */
export interface CacheBus {
  readonly publish: (message: InvalidationMessage) => Effect.Effect<void>
}

/** Telemetry hooks; each must be cheap and must not throw. */
export interface TieredCacheHooks {
  readonly onLookup?: (tier: TierName, outcome: "hit" | "miss" | "stale" | "error") => void
  /** An origin load starts. */
  readonly onOriginLoad?: () => void
  /** An origin load ended: `ok` false when the lookup failed or hit the hard timeout. */
  readonly onOriginResult?: (ok: boolean) => void
  /** `count` entries (default 1) a remote tier did not get: dropped (queue full) or their write failed. */
  readonly onWriteFailed?: (tier: TierName, count?: number) => void
  /** After an invalidation heard from another instance was applied to this instance's memory. */
  readonly onRemoteApplied?: (message: InvalidationMessage) => void
  /** After {@link TieredCache.dropMemory} emptied the memory tier. */
  readonly onMemoryDropped?: () => void
}

/** Options of {@link make}. */
export interface TieredCacheOptions {
  readonly memory: MemoryTier
  readonly redis?: CacheTier | undefined
  readonly postgres?: CacheTier | undefined
  readonly bus?: CacheBus | undefined
  /** Capacity of the remote write queue; writes beyond it are dropped (and counted). */
  readonly writeQueueCapacity: number
  /** Most items one remote write carries. */
  readonly writeBatchSize: number
  /** Most invalidated keys/tags/namespaces remembered to reject values read or loaded before them. */
  readonly invalidationMemory: number
  readonly hooks?: TieredCacheHooks
  /** Cross-instance load lease (Redis): one instance loads a cold key, the others wait briefly for its value. */
  readonly lease?: CacheLease | undefined
}

/** The cache service. */
export interface TieredCache {
  /**
   * The entry for `key`, loading it with `lookup` on a miss. See the module documentation for
   * the read path, stale serving and failure behaviour. Fails only with `lookup`'s error (or
   * `LoadTimeout`) when no usable entry exists.
   */
  readonly getOrSet: <E>(
    key: string,
    lookup: Effect.Effect<Loaded, E>,
    policy: CachePolicy
  ) => Effect.Effect<CacheHit, E | LoadTimeout>
  /** {@link getOrSet} for many keys at once (remote tiers read in one batch per tier). */
  readonly getOrSetMany: <E>(
    requests: ReadonlyArray<{ readonly key: string; readonly lookup: Effect.Effect<Loaded, E> }>,
    policy: CachePolicy
  ) => Effect.Effect<ReadonlyArray<Exit.Exit<CacheHit, E | LoadTimeout>>>
  /** A usable entry, from the first tier that has one (backfilling the tiers above). */
  readonly get: (key: string) => Effect.Effect<Option.Option<CacheHit>>
  /** Usable entries for many keys (one batch per remote tier). */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<CacheHit>>>
  /** Stores a value as if loaded from the origin now. */
  readonly set: (key: string, loaded: Loaded, policy: CachePolicy) => Effect.Effect<CacheEntry>
  /**
   * Stores entries exactly as given (times and tags): memory at once, every remote tier through
   * the writer. An entry already past `staleUntil` removes its key. Await {@link flush} to know
   * the remote writes are done.
   */
  readonly setEntries: (items: ReadonlyArray<CacheItem>) => Effect.Effect<void>
  /** Removes keys on every tier and every instance. */
  readonly delete: (keys: ReadonlyArray<string>) => Effect.Effect<void>
  /** Removes every entry carrying one of the tags, on every tier and every instance. */
  readonly invalidateTags: (tags: ReadonlyArray<string>) => Effect.Effect<void>
  /** Removes a namespace on every tier and every instance. Dies on an invalid namespace (see `CacheTier.clear`). */
  readonly clear: (namespace: string) => Effect.Effect<void>
  /** Applies an invalidation heard from another instance to this instance's memory tier. Never fails. */
  readonly applyRemote: (message: InvalidationMessage) => Effect.Effect<void>
  /**
   * Drops this instance's memory entries (after a bus outage, entries may have missed
   * invalidations): the given namespaces and every namespace this cache has stored in memory.
   * Keys without a namespace are not dropped. Never fails; invalid namespaces are skipped.
   */
  readonly dropMemory: (namespaces: ReadonlyArray<string>) => Effect.Effect<void>
  /** Remote writes not done yet: waiting in the queue or being written. */
  readonly pendingWrites: Effect.Effect<number>
  /**
   * Waits until every remote write enqueued before the call has been attempted (written,
   * failed or skipped as overtaken). Waits as long as the remote tiers take (they are bounded).
   */
  readonly flush: Effect.Effect<void>
  /**
   * Tells the telemetry hooks of an origin load made outside `getOrSet` (a streamed answer the
   * caller stores itself with `set`), so origin-load counts cover every full miss.
   */
  readonly recordOriginLoad: (ok: boolean) => Effect.Effect<void>
  /** The memory tier (e.g. for a synchronous hit path). */
  readonly memory: MemoryTier
}

/** Tag of the cache (tag name = interface name). */
export const TieredCache = Context.GenericTag<TieredCache>("accelerator/TieredCache")


/** One key read from the remote tiers named in `tiers` (comma-separated), batched with others. */
class RemoteRead extends Request.Class<Option.Option<CacheHit>, never, {
  readonly key: string
  readonly tiers: string
  readonly since: number
}> {}

/** Namespaces remembered for {@link TieredCache.dropMemory}; keys use a small fixed set. */
const MAX_TRACKED_NAMESPACES = 4_096

/** Creates the cache in the current scope (its writer and refresh fibers live there). */
export const make = (options: TieredCacheOptions): Effect.Effect<TieredCache, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { memory } = options
    const hooks = options.hooks ?? {}
    const remotes = [options.redis, options.postgres].filter((t): t is CacheTier => t !== undefined)
    const loads = yield* SingleFlight.make({ maxKeys: 100_000 })
    const reads = yield* SingleFlight.make({ maxKeys: 100_000 })
    const background = yield* FiberSet.make()
    const guard = InvalidationGuard.make(options.invalidationMemory)
    const { invalidating, overtaken, sharedRun } = guard
    const writer = yield* RemoteWriter.make({
      remotes,
      capacity: options.writeQueueCapacity,
      batchSize: options.writeBatchSize,
      overtaken,
      onWriteFailed: hooks.onWriteFailed
    })
    const { enqueue, flush } = writer

    const remotesFor = (policy: CachePolicy) =>
      remotes.filter((tier) => (tier.name === "redis" ? policy.remote?.redis : policy.remote?.postgres) !== false)

    // ---- memory -------------------------------------------------------------------------------
    const namespaces = new Set<string>()
    const writeMemory = (items: ReadonlyArray<CacheItem>) =>
      Effect.suspend(() => {
        for (const { key } of items) {
          const namespace = namespaceOf(key)
          if (namespace !== undefined && namespaces.size < MAX_TRACKED_NAMESPACES) namespaces.add(namespace)
        }
        return Effect.ignore(memory.setMany(items))
      })

    // ---- reads --------------------------------------------------------------------------------
    const usable = (entry: Option.Option<CacheEntry>, now: number): Option.Option<CacheEntry> =>
      Option.filter(entry, (e) => now < e.staleUntil)

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

    const jittered = (policy: CachePolicy, base: Duration.DurationInput) => {
      const ms = Duration.toMillis(base)
      const spread = Math.max(0, Math.min(policy.jitter, 1))
      return Math.round(ms * (1 - spread + Math.random() * 2 * spread))
    }

    /** The entry with its fresh and stale times cut to `now + cap` (unchanged without a cap). */
    const capped = (entry: CacheEntry, cap: Duration.DurationInput | undefined, now: number): CacheEntry => {
      if (cap === undefined) return entry
      const until = now + Duration.toMillis(cap)
      return until >= entry.staleUntil
        ? entry
        : { ...entry, freshUntil: Math.min(entry.freshUntil, until), staleUntil: until }
    }

    const entryFor = (loaded: Loaded, policy: CachePolicy, now: number): CacheEntry => {
      const fresh = loaded.notFound === true ? Duration.toMillis(policy.negative) : jittered(policy, policy.fresh)
      const freshUntil = now + fresh
      return {
        value: loaded.value,
        contentType: loaded.contentType,
        createdAt: now,
        freshUntil,
        staleUntil: loaded.notFound === true ? freshUntil : freshUntil + Duration.toMillis(policy.grace),
        tags: loaded.tags
      }
    }

    /**
     * Stores a loaded value unless an invalidation overtook the load (`since`). A value that is
     * not to be kept (negative 0) removes the entry it replaces (`replacing`), else touches nothing.
     */
    const store = (key: string, loaded: Loaded, policy: CachePolicy, since: number, replacing: boolean) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const entry = entryFor(loaded, policy, now)
        if (overtaken(key, loaded.tags, since)) return entry
        if (entry.staleUntil <= now && !replacing) return entry
        yield* writeMemory([{ key, entry: capped(entry, policy.tierTtl?.memory, now) }])
        const remote = remotesFor(policy)
        if (policy.tierTtl?.redis === undefined && policy.tierTtl?.postgres === undefined) {
          yield* enqueue([{ key, entry }], remote, since)
        } else {
          for (const tier of remote) {
            const cap = tier.name === "redis" ? policy.tierTtl?.redis : policy.tierTtl?.postgres
            yield* enqueue([{ key, entry: capped(entry, cap, now) }], [tier], since)
          }
        }
        return entry
      })

    /** One origin load of `key` (unless memory, or for a refresh a remote tier, now has it fresh). */
    const loadOnce = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy, replacing: boolean) =>
      Effect.gen(function*() {
        const since = guard.epoch()
        const now = yield* Clock.currentTimeMillis
        const current = yield* Effect.orElseSucceed(memory.get(key), () => Option.none<CacheEntry>())
        if (Option.isSome(current) && now < current.value.freshUntil) {
          return { value: { entry: current.value, status: "HIT-MEMORY" as CacheStatus }, since }
        }
        const remote = remotesFor(policy)
        if (replacing && remote.length > 0) {
          const [found] = yield* readRemote([key], remote, since)
          if (found !== undefined && Option.isSome(found) && now < found.value.entry.freshUntil) return { value: found.value, since }
        }
        const lease = options.lease
        const useLease = lease !== undefined && remote.some((tier) => tier.name === "redis")
        let leased = useLease ? yield* lease.acquire(key) : false
        if (useLease && !leased) {
          // Another instance is loading this key: wait briefly for its value in the shared tiers,
          // or for its lease to go (its load failed), whichever comes first.
          const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(lease.wait)
          while ((yield* Clock.currentTimeMillis) < deadline) {
            yield* Effect.sleep(Duration.millis(20))
            const [found] = yield* readRemote([key], remote, since)
            const at = yield* Clock.currentTimeMillis
            if (found !== undefined && Option.isSome(found) && at < found.value.entry.freshUntil) return { value: found.value, since }
            if (yield* lease.acquire(key)) {
              leased = true
              break
            }
          }
        }
        hooks.onOriginLoad?.()
        const hard = Duration.decode(policy.hardTimeout)
        const loaded = yield* lookup.pipe(
          Effect.timeoutFail({ duration: hard, onTimeout: () => new LoadTimeout({ key, after: hard }) }),
          Effect.onExit((exit) =>
            Exit.isInterrupted(exit) ? Effect.void : Effect.sync(() => hooks.onOriginResult?.(Exit.isSuccess(exit)))
          ),
          // A failed load gives the lease back at once, so the others load instead of waiting.
          Effect.tapErrorCause(() => (leased && lease !== undefined ? lease.release(key) : Effect.void))
        )
        const entry = yield* store(key, loaded, policy, since, replacing)
        if (leased && lease !== undefined) {
          // The others poll the shared tiers: let this value reach them before the lease goes.
          yield* flush
          yield* lease.release(key)
        }
        return { value: { entry, status: "MISS" as CacheStatus }, since }
      })

    /** The shared load of `key` (single-flight; see {@link sharedRun} for joiners it overtook). */
    const load = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy, replacing: boolean) =>
      sharedRun(loads, key, loadOnce(key, lookup, policy, replacing), (hit: CacheHit, since) => overtaken(key, hit.entry.tags, since))

    // Keys with a background refresh running: one refresh per key, however many stale reads.
    const refreshing = new Set<string>()
    const refreshInBackground = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy) =>
      Effect.suspend(() => {
        if (refreshing.has(key)) return Effect.void
        refreshing.add(key)
        return FiberSet.run(
          background,
          Effect.catchAllCause(load(key, lookup, policy, true), (cause) =>
            Effect.logDebug("cache: background refresh failed; the stale entry is kept").pipe(
              Effect.annotateLogs({ namespace: namespaceOf(key) ?? "", cause: String(cause).slice(0, 200) })
            ))
        ).pipe(
          // An observer, not `ensuring`: it also fires for a fiber interrupted before it ran.
          Effect.map((fiber) => fiber.addObserver(() => refreshing.delete(key)))
        )
      })

    const resolve = <E>(
      key: string,
      found: Option.Option<CacheHit>,
      lookup: Effect.Effect<Loaded, E>,
      policy: CachePolicy
    ): Effect.Effect<CacheHit, E | LoadTimeout> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (Option.isSome(found)) {
          if (now < found.value.entry.freshUntil) return found.value
          const stale: CacheHit = { entry: found.value.entry, status: "STALE" }
          if (policy.staleWhileRevalidate !== false) {
            // Stale within grace: answer it now, refresh once in the background.
            yield* refreshInBackground(key, lookup, policy)
            return stale
          }
          // Fail-safe with a soft timeout: wait for the load a little; on failure or when it is
          // slow, answer the stale entry (the shared load goes on and stores its result).
          const fresh = yield* load(key, lookup, policy, true).pipe(Effect.timeoutOption(policy.softTimeout), Effect.option)
          return Option.isSome(fresh) && Option.isSome(fresh.value) ? fresh.value.value : stale
        }
        return yield* load(key, lookup, policy, false)
      })

    const getOrSet = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy) =>
      Effect.flatMap(readOne(key, remotesFor(policy)), (found) => resolve(key, found, lookup, policy))

    const getOrSetMany = <E>(
      requests: ReadonlyArray<{ readonly key: string; readonly lookup: Effect.Effect<Loaded, E> }>,
      policy: CachePolicy
    ) =>
      Effect.flatMap(readTiers(requests.map((r) => r.key), remotesFor(policy)), (found) =>
        Effect.forEach(requests, (request, i) => Effect.exit(resolve(request.key, found[i] ?? Option.none(), request.lookup, policy)), {
          concurrency: "unbounded" // one fiber per requested key; callers bound the batch size
        }))

    const set = (key: string, loaded: Loaded, policy: CachePolicy) => Effect.suspend(() => store(key, loaded, policy, guard.epoch(), true))

    const setEntries = (items: ReadonlyArray<CacheItem>) =>
      Effect.suspend(() => {
        const since = guard.epoch()
        const kept = items.filter((item) => !overtaken(item.key, item.entry.tags, since))
        return Effect.zipRight(writeMemory(kept), enqueue(kept, remotes, since))
      })

    // ---- invalidation -------------------------------------------------------------------------
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
    return {
      getOrSet: Effect.fn("TieredCache.getOrSet")(getOrSet),
      getOrSetMany: Effect.fn("TieredCache.getOrSetMany")(getOrSetMany),
      get: Effect.fn("TieredCache.get")((key: string) => readOne(key, remotes)),
      getMany: Effect.fn("TieredCache.getMany")((keys: ReadonlyArray<string>) => readTiers(keys, remotes)),
      set: Effect.fn("TieredCache.set")(set),
      setEntries: Effect.fn("TieredCache.setEntries")(setEntries),
      delete: Effect.fn("TieredCache.delete")(deleteKeys),
      invalidateTags: Effect.fn("TieredCache.invalidateTags")(invalidateTags),
      clear: Effect.fn("TieredCache.clear")(clear),
      applyRemote: Effect.fn("TieredCache.applyRemote")(applyRemote),
      dropMemory: Effect.fn("TieredCache.dropMemory")(dropMemory),
      pendingWrites: writer.pending,
      flush: flush.pipe(Effect.withSpan("TieredCache.flush")),
      recordOriginLoad: (ok) => Effect.sync(() => hooks.onOriginResult?.(ok)),
      memory
    } satisfies TieredCache
  })

/** The cache as a layer over explicit options. */
export const layer = (options: TieredCacheOptions): Layer.Layer<TieredCache> =>
  Layer.scoped(TieredCache, make(options))

/**
 * The cache seen as one {@link CacheTier} (named after its top tier, `memory`), so the tier
 * conformance suite can hold the composition to the tier contract. `setMany` stores the entries
 * as given and waits for the remote writes ({@link TieredCache.flush}); reads go through every
 * tier with backfill; invalidations run everywhere and are published.
 */
export const asTier = (cache: TieredCache): CacheTier =>
  makeTier({
    name: "memory",
    getMany: (keys) => Effect.map(cache.getMany(keys), (hits) => hits.map(Option.map((hit) => hit.entry))),
    setMany: (items) => (items.length === 0 ? Effect.void : Effect.zipRight(cache.setEntries(items), cache.flush)),
    delete: cache.delete,
    invalidateTags: cache.invalidateTags,
    clear: cache.clear
  })
