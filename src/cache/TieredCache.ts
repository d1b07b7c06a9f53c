/**
 * The multi-level cache: memory → Redis → PostgreSQL → origin, behind one service.
 *
 * This module wires the parts, each with one job and its own contract (concurrency, failure):
 * - `TieredReads.ts`: the read path: memory, then each configured remote tier (a remote
 *   failure is a fall-through, never a failed request), backfill of the tiers above a hit, and
 *   batched, shared remote reads;
 * - `TieredLoads.ts`: after the read: origin loads (single-flight per key per process, the
 *   cross-instance lease), freshness, stale-while-revalidate, soft/hard timeouts and fail-safe,
 *   and storing a loaded value;
 * - `TieredInvalidation.ts`: `delete`, `invalidateTags`, `clear` on every tier, then published
 *   on the {@link CacheBus}; invalidations heard from other instances;
 * - `InvalidationGuard.ts`: whether a value read or loaded at some moment may still be stored,
 *   given the invalidations that ran since (so once an invalidation has returned, this instance
 *   never answers the old value again, provided every tier applied it);
 * - `RemoteWriter.ts`: the bounded background writer to the remote tiers (one queue and one
 *   fiber per tier, so a dead tier never holds up the other; batches of `writeBatchSize`; when a
 *   tier's queue of `writeQueueCapacity` writes or `writeQueueMaxBytes` bytes of values is full,
 *   its writes are dropped and counted, the reader never waits);
 * - `TieredModel.ts`: the types they share (re-exported here).
 *
 * The memory tier is written at once (reads' backfill, loads, `setEntries`); the namespaces it
 * holds are remembered (at most 4,096) for `dropMemory`.
 *
 * @since 0.1.0
 */
import { Context, Effect, type Exit, FiberSet, Layer, Option, type Scope } from "effect"
import * as SingleFlight from "../concurrency/SingleFlight.js"
import { type CacheItem, type CacheTier, make as makeTier, namespaceOf } from "./CacheTier.js"
import type { CacheEntry } from "./Envelope.js"
import type { CacheLease } from "./CacheLease.js"
import * as InvalidationGuard from "./InvalidationGuard.js"
import type { MemoryTier } from "./MemoryTier.js"
import * as RemoteWriter from "./RemoteWriter.js"
import * as TieredInvalidation from "./TieredInvalidation.js"
import * as TieredLoads from "./TieredLoads.js"
import {
  type CacheBus,
  type CacheHit,
  type CachePolicy,
  type InvalidationMessage,
  type Loaded,
  type LoadTimeout,
  remotesFor,
  type TieredCacheHooks
} from "./TieredModel.js"
import * as TieredReads from "./TieredReads.js"
import * as Traced from "../telemetry/Traced.js"

export {
  type CacheBus,
  type CacheHit,
  type CachePolicy,
  type CacheStatus,
  type InvalidationMessage,
  type Loaded,
  LoadTimeout,
  type TieredCacheHooks
} from "./TieredModel.js"

/** Options of {@link make}. */
export interface TieredCacheOptions {
  readonly memory: MemoryTier
  readonly redis?: CacheTier | undefined
  readonly postgres?: CacheTier | undefined
  readonly bus?: CacheBus | undefined
  /** Capacity of each remote tier's write queue; writes beyond it are dropped (and counted). */
  readonly writeQueueCapacity: number
  /** Most bytes of values each remote tier's write queue holds (default `RemoteWriter.DEFAULT_MAX_BYTES`). */
  readonly writeQueueMaxBytes?: number | undefined
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
  /**
   * For a load made outside `getOrSet` (a streamed answer) that failed with `error` and had
   * nothing to answer instead: a refusal under `policy` fails with it; for a transient failure
   * the remote tiers are asked once more past their breakers, and a copy within grace is the
   * answer (`STALE` once past fresh), else `error` is.
   */
  readonly failSafe: <E>(key: string, policy: CachePolicy, error: E) => Effect.Effect<CacheHit, E>
  /** A usable entry, from the first tier that has one (backfilling the tiers above). */
  readonly get: (key: string) => Effect.Effect<Option.Option<CacheHit>>
  /** Usable entries for many keys (one batch per remote tier). */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<CacheHit>>>
  /**
   * Stores a value as if loaded from the origin. `since` is the {@link TieredCache.epoch} noted
   * when its load began (default: now): a value whose load an invalidation of its key, tags or
   * namespace overtook is not stored, so a slow load that straddles an invalidation never
   * brings the old value back.
   */
  readonly set: (key: string, loaded: Loaded, policy: CachePolicy, since?: number) => Effect.Effect<CacheEntry>
  /** The invalidation epoch now: note it when a load made outside `getOrSet` begins, pass it to `set`. */
  readonly epoch: () => number
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
  /** Remote writes not done yet, summed over the remote tiers: waiting in a queue or being written. */
  readonly pendingWrites: Effect.Effect<number>
  /**
   * Waits until every remote write enqueued before the call has been attempted (written,
   * failed or skipped as overtaken), and the leases of the loads so written are given back.
   * Waits as long as the remote tiers take (they are bounded).
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

/** Namespaces remembered for {@link TieredCache.dropMemory}; keys use a small fixed set. */
const MAX_TRACKED_NAMESPACES = 4_096

/** Creates the cache in the current scope (its writer and refresh fibers live there). */
export const make = (options: TieredCacheOptions): Effect.Effect<TieredCache, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { memory } = options
    const hooks = options.hooks ?? {}
    const remotes = [options.redis, options.postgres].filter((t): t is CacheTier => t !== undefined)
    const loads = yield* SingleFlight.make({ maxKeys: 100_000 })
    const background = yield* FiberSet.make()
    const guard = InvalidationGuard.make(options.invalidationMemory)
    const writer = yield* RemoteWriter.make({
      remotes,
      capacity: options.writeQueueCapacity,
      maxBytes: options.writeQueueMaxBytes,
      batchSize: options.writeBatchSize,
      overtaken: guard.overtaken,
      onWriteFailed: hooks.onWriteFailed
    })
    const { enqueue, flush } = writer

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

    const { readMemoryOne, readOne, readRemote, readShared, readTiers, recheck } = yield* TieredReads.make({
      memory,
      guard,
      enqueue,
      writeMemory,
      hooks
    })
    const { failSafe, resolve, settled, store } = TieredLoads.make({
      memory,
      remotes,
      guard,
      writer,
      writeMemory,
      readRemote,
      recheck,
      hooks,
      lease: options.lease,
      loads,
      background,
      runInBackground: yield* Effect.map(FiberSet.runtime(background)(), (run) => (effect: Effect.Effect<void>) => run(effect)),
      // Bound late: the invalidation part is built next, and a refusal only comes with a load.
      forget: (key) => Effect.suspend(() => deleteKeys([key]))
    })
    const { applyRemote, clear, deleteKeys, dropMemory, invalidateTags } = TieredInvalidation.make({
      memory,
      remotes,
      guard,
      bus: options.bus,
      hooks,
      namespaces
    })

    // A fresh memory hit answers without a span (one would cost ~15x the lookup); past memory,
    // the whole operation is the `TieredCache.getOrSet` span.
    const getOrSet = <E>(key: string, lookup: Effect.Effect<Loaded, E>, policy: CachePolicy) =>
      Effect.clockWith((clock): Effect.Effect<CacheHit, E | LoadTimeout> => {
        const now = clock.unsafeCurrentTimeMillis()
        const inMemory = readMemoryOne(key, now)
        if (Option.isSome(inMemory) && now < inMemory.value.entry.freshUntil) return Effect.succeed(inMemory.value)
        const remote = remotesFor(remotes, policy)
        const found = Option.isSome(inMemory) || remote.length === 0 ? Effect.succeed(inMemory) : readShared(key, remote)
        return Traced.withSpan(Effect.flatMap(found, (f) => resolve(key, f, lookup, policy)), "TieredCache.getOrSet")
      })

    const getOrSetMany = <E>(
      requests: ReadonlyArray<{ readonly key: string; readonly lookup: Effect.Effect<Loaded, E> }>,
      policy: CachePolicy
    ) =>
      Effect.flatMap(readTiers(requests.map((r) => r.key), remotesFor(remotes, policy)), (found) =>
        Effect.forEach(requests, (request, i) => Effect.exit(resolve(request.key, found[i] ?? Option.none(), request.lookup, policy)), {
          concurrency: "unbounded" // one fiber per requested key; callers bound the batch size
        }))

    const set = (key: string, loaded: Loaded, policy: CachePolicy, since?: number) =>
      Effect.suspend(() => store(key, loaded, policy, since ?? guard.epoch(), true))

    const setEntries = (items: ReadonlyArray<CacheItem>) =>
      Effect.suspend(() => {
        const since = guard.epoch()
        const kept = items.filter((item) => !guard.overtaken(item.key, item.entry.tags, since))
        return Effect.zipRight(writeMemory(kept), enqueue(kept, remotes, since))
      })

    // Every public operation is a span (`TieredCache.<op>`), except: `getOrSet` opens its span
    // only past a fresh memory hit, and `get` has none (a span cost ~15x a memory hit and as much
    // as the rest of a Redis hit): its remote reads are traced per batch (`TieredCache.readBatch`).
    // The HTTP hit path never comes here.
    return {
      getOrSet,
      getOrSetMany: Traced.fn("TieredCache.getOrSetMany")(getOrSetMany),
      get: (key: string) => readOne(key, remotes),
      failSafe: (key, policy, error) => Traced.withSpan(failSafe(key, policy, error), "TieredCache.failSafe"),
      getMany: Traced.fn("TieredCache.getMany")((keys: ReadonlyArray<string>) => readTiers(keys, remotes)),
      set: Traced.fn("TieredCache.set")(set),
      epoch: () => guard.epoch(),
      setEntries: Traced.fn("TieredCache.setEntries")(setEntries),
      delete: Traced.fn("TieredCache.delete")(deleteKeys),
      invalidateTags: Traced.fn("TieredCache.invalidateTags")(invalidateTags),
      clear: Traced.fn("TieredCache.clear")(clear),
      applyRemote: Traced.fn("TieredCache.applyRemote")(applyRemote),
      dropMemory: Traced.fn("TieredCache.dropMemory")(dropMemory),
      pendingWrites: writer.pending,
      flush: Effect.zipRight(flush, settled).pipe(Traced.withSpan("TieredCache.flush")),
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
